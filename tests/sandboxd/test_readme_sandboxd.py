"""Every sandboxd setting is documented in the README's sandboxd table."""

from __future__ import annotations

from pathlib import Path

from sandboxd.config import documented_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_sandboxd_setting_is_in_the_readme() -> None:
    text = README.read_text()
    missing = [env for env, _, _ in documented_settings() if f"| `{env}` |" not in text]
    assert not missing, f"README lacks {missing}"
