"""The in-sandbox agent (`agent.py`, standard library only, bound read-only into every box)
and its host side: `AgentClient`, one per sandbox, over the agent's stdin/stdout."""

from sandboxd.agent.client import AgentClient
from sandboxd.agent.handle import ProcessHandle
from sandboxd.agent.messages import (
    AgentClosed,
    AgentError,
    AgentEvent,
    Data,
    End,
    EntryInfo,
    ProcessEnded,
    ProcessEvent,
    ProcessInfo,
    ProcessStarted,
)

__all__ = [
    "AgentClient",
    "AgentClosed",
    "AgentError",
    "AgentEvent",
    "Data",
    "End",
    "EntryInfo",
    "ProcessEnded",
    "ProcessEvent",
    "ProcessHandle",
    "ProcessInfo",
    "ProcessStarted",
]
