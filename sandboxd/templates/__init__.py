"""Templates: the built-in ones, and those built through the API (E2B's template builds).

`TemplateLookup` is what a sandbox's create asks (the manager holds one). Built templates
live in the catalog (catalog.py) that sandboxd attaches to it at its start.
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
    "StartableTemplates",
    "Template",
    "TemplateLookup",
]


class StartableTemplates(Protocol):
    def startable(self, name: str) -> Template | None:
        """The built template `name` (ID, name or name:tag) names, if it has a ready build."""


class TemplateLookup:
    """What a sandbox's create and a build's parent may name: the built-in templates, then
    the built ones once sandboxd's catalog is attached (service.py does it at start; a unit
    test of the manager runs with the built-in ones only)."""

    def __init__(self, catalog: StartableTemplates | None = None) -> None:
        self.catalog = catalog

    def find(self, name: str) -> Template | None:
        """A template by ID, alias or name (`name:tag` for a tagged build)."""
        built_in = find_built_in(name)
        if built_in is not None or self.catalog is None:
            return built_in
        return self.catalog.startable(name)
