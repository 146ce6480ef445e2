"""How many log lines a sandbox may cause, and how long each may be.

Code using a sandbox chooses how many processes it starts and what their command lines say,
and every start and end is a line in sandboxd's store. So each sandbox gets a token bucket
(a steady rate with a burst on top), lines past it are counted instead of stored, and the
count is reported once the bucket has room again (or when the sandbox ends). Pure: the
clock is a parameter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Lines a sandbox may add per second, steadily: each command is two lines (start, end), so
# this keeps 10 commands a second in full, more than an agent driving a box by hand makes,
# while a loop starting processes as fast as it can writes at most 72,000 lines an hour.
LOG_LINES_PER_S = 20.0
# Lines a sandbox may add at once on top of the rate: a batch of 100 commands (a test
# suite, a build) is kept whole.
LOG_BURST_LINES = 200
# The longest message and field value stored, in characters: a command line is box-chosen
# and may be megabytes; 2,000 characters keep any command a person would read in full.
MAX_MESSAGE_CHARS = 2000
MAX_FIELD_CHARS = 2000
TRUNCATED_MARKER = " …[truncated]"


def clipped(text: str, max_chars: int) -> str:
    """`text`, or its start with TRUNCATED_MARKER when it is longer than `max_chars`."""
    if len(text) <= max_chars:
        return text
    return text[: max_chars - len(TRUNCATED_MARKER)] + TRUNCATED_MARKER


@dataclass
class _Bucket:
    tokens: float
    filled_at_s: float
    dropped_lines: int = 0


class LogBudget:
    """One token bucket per sandbox; `clock` gives monotonic seconds."""

    def __init__(
        self,
        lines_per_s: float = LOG_LINES_PER_S,
        burst_lines: int = LOG_BURST_LINES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lines_per_s = lines_per_s
        self.burst_lines = burst_lines
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, sandbox_id: str) -> int | None:
        """None when the sandbox's next line is over budget (it is counted as dropped);
        otherwise how many lines were dropped since the last report (usually 0), for the
        caller to report before the line."""
        now_s = self.clock()
        bucket = self._buckets.get(sandbox_id)
        if bucket is None:
            bucket = self._buckets[sandbox_id] = _Bucket(float(self.burst_lines), now_s)
        elapsed_s = max(0.0, now_s - bucket.filled_at_s)
        bucket.tokens = min(float(self.burst_lines), bucket.tokens + elapsed_s * self.lines_per_s)
        bucket.filled_at_s = now_s
        if bucket.tokens < 1.0:
            bucket.dropped_lines += 1
            return None
        bucket.tokens -= 1.0
        dropped, bucket.dropped_lines = bucket.dropped_lines, 0
        return dropped

    def settle(self, sandbox_id: str) -> int:
        """Forget the sandbox; returns the lines dropped since the last report."""
        bucket = self._buckets.pop(sandbox_id, None)
        return 0 if bucket is None else bucket.dropped_lines

    def dropped_message(self, dropped_lines: int) -> str:
        """The line that reports `dropped_lines` lines left out."""
        return f"{dropped_lines} log lines dropped (over {self.lines_per_s:g} lines/s)"
