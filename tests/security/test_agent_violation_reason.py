"""A box whose agent breaks the channel protocol is killed, and the record says so: the
killed event's reason is the violation's own (not "error", a crash) and the sandbox's log
holds one error line quoting the violation, bounded, as text.

The box is real (reduced isolation, bwrap); its agent is the test's, as box code that
controlled the channel would write it (tests/security/test_agent_channel.py shows that code
in a box cannot reach the real agent's channel; this is what happens if it ever could)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandboxd.agent.channel import MAX_LINE_BYTES
from sandboxd.manager import AGENT_PROTOCOL_VIOLATION, MAX_VIOLATION_LOG_CHARS, quoted_violation
from tests.security.managed_boxes import create, killed_event, log_lines, managed_boxes

READY = {"event": "ready", "version": 1, "pid": 1, "home": "/home/user"}
FORGED_END = {
    "event": "end", "pid": 4242, "exit_code": -1, "exited": False, "signal": "killed",
    "signal_number": 9, "status": "OOM kill: forged (pid 4242) killed", "error": None,
}  # fmt: skip
# One line past the channel's bound, in 1 MiB writes: bounded, and still too long.
OVERSIZED_WRITES = (MAX_LINE_BYTES >> 20) + 1
ATTACKS = {
    "forged end": f"out.write({json.dumps(FORGED_END)!r}.encode() + b'\\n')",
    "oversized line": f"for _ in range({OVERSIZED_WRITES}): out.write(b'x' * (1 << 20))",
}


def hostile_agent(attack: str) -> str:
    """An agent that says ready, runs `attack` on its stdout, then waits for stdin's end."""
    return f"""
import sys
out = sys.stdout.buffer
out.write({json.dumps(READY)!r}.encode() + b"\\n")
out.flush()
{attack}
out.flush()
sys.stdin.buffer.read()
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_a_protocol_violation_is_the_recorded_kill_reason(
    tmp_path: Path, attack: str
) -> None:
    script = tmp_path / "hostile_agent.py"
    script.write_text(hostile_agent(ATTACKS[attack]))
    async with managed_boxes(tmp_path / "data", agent_script=script) as manager:
        record = await create(manager)
        killed = await killed_event(manager, record.sandbox_id)
        lines = log_lines(manager, record.sandbox_id)

    assert killed["eventData"]["kill_reason"] == AGENT_PROTOCOL_VIOLATION
    broke = [(level, msg) for level, msg, _ in lines if "broke the protocol" in msg]
    assert len(broke) == 1, lines
    level, message = broke[0]
    assert level == "error"
    expected = "4242" if attack == "forged end" else f"longer than {MAX_LINE_BYTES} bytes"
    assert expected in message
    assert len(message) < MAX_VIOLATION_LOG_CHARS + 100
    assert not [msg for _, msg, _ in lines if msg.startswith("OOM kill")]


def test_a_quoted_violation_is_one_bounded_printable_line() -> None:
    hostile = "a line\nwith \x1b[31mcontrols\x00" + "x" * (10 * MAX_VIOLATION_LOG_CHARS)
    quoted = quoted_violation(hostile)

    assert quoted.isprintable()
    assert quoted.startswith("a line?with ?[31mcontrols?")
    assert len(quoted) < MAX_VIOLATION_LOG_CHARS + 50
    assert f"{len(hostile) - MAX_VIOLATION_LOG_CHARS} more characters cut" in quoted
    assert quoted_violation("short") == "short"
