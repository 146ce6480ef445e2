"""Templates: the built-in ones, and those built through the API (E2B's template builds).

`find_template` is what a sandbox's create asks (sandboxd/planning.py). Built templates live
in the catalog (catalog.py) that sandboxd installs at its start; without one (a unit test of
planning) only the built-in templates exist.
"""

from __future__ import annotations

from typing import Protocol

from sandboxd.templates.builtin import (
    MAX_CPU_COUNT,
    MAX_DISK_MB,
    MAX_MEMORY_MB,
    MIN_DISK_MB,
    MIN_MEMORY_MB,
    TEMPLATES,
    Template,
    find_built_in,
)

__all__ = [
    "MAX_CPU_COUNT",
    "MAX_DISK_MB",
    "MAX_MEMORY_MB",
    "MIN_DISK_MB",
    "MIN_MEMORY_MB",
    "TEMPLATES",
    "Template",
    "find_template",
    "install_catalog",
]


class StartableTemplates(Protocol):
    def startable(self, name: str) -> Template | None:
        """The built template `name` (ID, name or name:tag) names, if it has a ready build."""


_catalog: StartableTemplates | None = None


def install_catalog(catalog: StartableTemplates | None) -> None:
    """Make `find_template` consult `catalog` (sandboxd's server does it once at start).
    A module-level hook, so planning keeps asking one function whatever the catalog."""
    global _catalog
    _catalog = catalog


def find_template(name: str) -> Template | None:
    """A template by ID, alias or name (`name:tag` for a tagged build)."""
    built_in = find_built_in(name)
    if built_in is not None or _catalog is None:
        return built_in
    return _catalog.startable(name)
