from tests.storage.rowmaker import store

__all__ = ["store"]
