"""sandscope's DuckDB store: schema and migrations, bulk writes, the dashboard's questions.

store = MonitorStore.open(path)      # one process per file; StoreInUseError otherwise
store.add_samples(rows)              # bulk, deduplicated, one transaction
store.sandbox_series(id, start, end, max_points=2000)
store.close()
"""

from storage.errors import StoreError, StoreInUseError, StoreTooNewError
from storage.store import MonitorStore

__all__ = ["MonitorStore", "StoreError", "StoreInUseError", "StoreTooNewError"]
