"""sandscope: watch and operate E2B sandboxes (live usage, OOM investigation, triage)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sandscope")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
