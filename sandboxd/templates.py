"""The templates sandboxd can start, and the limits each gives a sandbox by default."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Template:
    """A template: its ID, alias and default limits (MiB for memory and disk)."""

    template_id: str
    alias: str
    cpu_count: int
    memory_mb: int
    disk_size_mb: int
    build_id: str


# `base`: the host's Debian userland read-only (Python 3, bash), a writable home and /tmp.
# `small` is `base` with tight limits, handy for OOM and disk-full experiments.
TEMPLATES = {
    template.template_id: template
    for template in (
        Template("base", "base", 2, 512, 1024, "00000000-0000-4000-8000-0000000000b1"),
        Template("small", "small", 1, 128, 64, "00000000-0000-4000-8000-0000000000b2"),
    )
}

MIN_MEMORY_MB = 128
MIN_DISK_MB = 16
MAX_MEMORY_MB = 8192
MAX_CPU_COUNT = 8
MAX_DISK_MB = 10240


def find_template(name: str) -> Template | None:
    """A template by ID or alias."""
    if name in TEMPLATES:
        return TEMPLATES[name]
    return next((t for t in TEMPLATES.values() if t.alias == name), None)
