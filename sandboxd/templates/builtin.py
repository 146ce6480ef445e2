"""The templates built into sandboxd, what a template gives its sandboxes, and the limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Template:
    """A startable template: its ID, alias and default limits (MiB for memory and disk),
    and what a built one adds at a sandbox's start (sandboxd/templates/startup.py)."""

    template_id: str
    alias: str
    cpu_count: int
    memory_mb: int
    disk_size_mb: int
    build_id: str
    # Environment from the build's ENV steps, under the create request's own.
    envs: dict[str, str] = field(default_factory=dict)
    workdir: str = ""  # "" is the sandbox user's home
    start_cmd: str | None = None
    ready_cmd: str | None = None
    # The build's layer: a tar of the build box's home, extracted in the box at its start.
    layer_file: Path | None = None
    built_in: bool = False


# `base`: the host's Debian userland read-only (Python 3, bash), a writable home and /tmp.
# `small` is `base` with tight limits, handy for OOM and disk-full experiments.
TEMPLATES = {
    template.template_id: template
    for template in (
        Template(
            "base", "base", 2, 512, 1024, "00000000-0000-4000-8000-0000000000b1", built_in=True
        ),
        Template(
            "small", "small", 1, 128, 64, "00000000-0000-4000-8000-0000000000b2", built_in=True
        ),
    )
}

MIN_MEMORY_MB = 128
MIN_DISK_MB = 16
MAX_MEMORY_MB = 8192
MAX_CPU_COUNT = 8
MAX_DISK_MB = 10240


def find_built_in(name: str) -> Template | None:
    """A built-in template by ID or alias."""
    if name in TEMPLATES:
        return TEMPLATES[name]
    return next((t for t in TEMPLATES.values() if t.alias == name), None)
