"""sandboxd agent: the main process inside every sandbox (standard library only).

The isolation layer starts it as `/usr/bin/python3 -I /opt/sandboxd/agent.py`: as box
root (uid 0 of the box's own user namespace, with a few capabilities) in a full box, as
the sandbox user elsewhere. It is the box's init: it starts and watches the user's
processes (as uid 1000 with no capability: `become`), reaps every zombie, serves sudo
(`SudoServer`: commands as box root), and does file operations as uid 1000 (fsuid), which
the kernel confines to the box because the agent runs inside it. A request that names
`"user": "root"` (envd's user, E2B's `user="root"`) runs its command as box root, with what
sudo's commands get, and does its file operations with fsuid 0 (`Files.acting_as`); where
the agent is not box root (reduced isolation) such a request is refused with
permission_denied, saying why. If it dies, the sandbox ends; so it never lets one bad
request take it down.

Box code may run as the agent's own uid (sudo gives box root to every box process; in a
reduced box the user is the agent's uid), so the agent keeps it out by other means:
- it makes itself not dumpable (PR_SET_DUMPABLE 0): a process of the same uid without
  CAP_SYS_PTRACE (no box process ever has it) can then neither ptrace it, nor read or write
  its memory, nor open anything under /proc/<agent>/fd, where its channel to sandboxd is;
- it is the PID namespace's init (bwrap's --as-pid-1), and as init it handles no signal
  but SIGCHLD, so the kernel drops every other signal sent from inside the box, SIGKILL and
  SIGSTOP included (the host ends a box by closing the agent's stdin or killing its cgroup);
- its children start with only their own stdio (close_fds, and every descriptor of the
  agent is close-on-exec), and each child is made dumpable again before it execs.
Without bwrap ("plain" reduced isolation) the agent is not init, and box code can kill it:
that ends its own sandbox and nothing else.

Output flow control: the agent sends at most PROCESS_OUTPUT_WINDOW_BYTES of one process's
output, and BOX_OUTPUT_WINDOW_BYTES of all of them, that sandboxd has not acknowledged with
`ack`; past that it stops reading those pipes, so a process nobody reads blocks in write()
instead of piling its output up in sandboxd. A process's end is reported once the output it
had written before it ended has been sent.

Protocol: JSON lines over the agent's own stdin (requests) and stdout (answers, events);
ASCII JSON, one object per line, binary data in standard base64.

    host -> agent   {"id": <int>, "op": <name>, ...arguments}
    agent -> host   {"id": N, "ok": true, "result": {...}}
                    {"id": N, "ok": false, "error": {"code": <code>, "message": <text>}}
                    {"event": "ready", "version": 1, "pid": P, "home": H}        once, first
                    {"event": "data", "pid": P, "stream": "stdout"|"stderr"|"pty", "data": b64}
                    {"event": "end", "pid": P, "exit_code": N, "exited": bool,
                     "signal": "killed"|None, "signal_number": 9|None,
                     "status": "exit status 1"|"signal: killed", "error": text|None}
    host -> agent   {"id": N, "op": "ack", "pid": P, "bytes": B}   never answered: B bytes
                    of P's output have left sandboxd's buffers (see flow control above)

An answer to a request with no usable id carries `"id": null`. The answer to `start`
comes before any event of that process, and a process's data events before its end.

Ops (arguments -> result). Those marked * also take `user`: "user" (the default) or "root";
a handle (open file, listing, watcher) keeps the user it was made as.
    ping                                        -> {"version"}
  * start  cmd, args, envs, cwd, stdin, tag, timeout_ms, pty{cols,rows}   -> {"pid"}
    connect pid                                 -> {"pid"} (not_found once it has ended)
    signal pid, signal ("SIGKILL", "SIGNAL_SIGTERM", "INT", 15)            -> {}
    input  pid, data                            -> {} once written (stdin or pty)
    close_stdin pid                             -> {} once pending input is written
    resize pid, cols, rows                      -> {}
    list                                        -> {"processes": [{pid, cmd, args, envs,
                                                    cwd, tag, pty}], "omitted"} (cut to
                                                    bounds: see LIST_PROCESS*)
  * open   path, mode ("r" | "w"), metadata     -> {"handle", "path", "size"} (for "w", the
                                                    file's metadata once closed)
    read   handle, max_bytes                    -> {"data", "eof"}
    write  handle, data                         -> {}
    close  handle                               -> {"entry"} for "w", {} for "r"
  * stat   path                                 -> {"entry"}
  * list_dir path, depth                        -> {"entries"}
  * list_open path, depth                       -> {"handle"} (list_dir, a page at a time)
    list_next handle, max_bytes                 -> {"entries", "done"} (closed once done)
    list_close handle                           -> {}
  * make_dir path                               -> {"entry"} (already_exists if present)
  * move   source, destination                  -> {"entry"}
  * remove path                                 -> {}
  * watch_start path, recursive, include_entry  -> {"watcher", "path"}
    watch_take watcher, max_bytes, wait_ms      -> {"events": [{name, type, entry?}], "more"}
                                                    (waits up to wait_ms for one; once the
                                                    queue overflowed and is empty: an error)
    watch_stop watcher                          -> {}
An entry is {name, path, type, size, mode, permissions, owner, group, mtime_ns, is_symlink,
symlink_target, metadata}; metadata holds the file's user.e2b.* attributes (METADATA_*).
Error codes: not_found, already_exists, permission_denied, invalid_argument,
failed_precondition, resource_exhausted (ENOSPC), internal.
Relative paths and `~` resolve against the user's home directory, also the default cwd:
for "user" `--home`, else $HOME when it is a directory, else /home/user; for "root" root's
/etc/passwd home (/root).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import ctypes
import errno
import fcntl
import grp
import json
import os
import pwd
import selectors
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import termios
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

PROTOCOL_VERSION = 1
DEFAULT_HOME = "/home/user"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_LINE_BYTES = 64 << 20  # a 1 MiB write chunk is ~1.4 MB of base64: ample headroom
OUTPUT_CHUNK_BYTES = 64 << 10
# Output sent but not yet acknowledged by sandboxd: per process, and for the whole box. Four
# chunks keep a fast reader streaming without a stall; 1 MiB is what one box may make
# sandboxd hold of unread output (sandboxd enforces both, as protocol limits).
PROCESS_OUTPUT_WINDOW_BYTES = 4 * OUTPUT_CHUNK_BYTES
BOX_OUTPUT_WINDOW_BYTES = 1 << 20
READ_CHUNK_MAX_BYTES = 4 << 20
# A listing is one answer line that sandboxd parses whole, so it is bounded: past either
# limit list_dir answers invalid_argument (list with a smaller depth) instead of a huge line.
# 10,000 entries cover a project tree a few levels deep; 2 MiB of entry JSON keeps the line
# well under what sandboxd accepts of one line. The walk stops as soon as a limit is passed.
LIST_MAX_ENTRIES = 10_000
LIST_MAX_BYTES = 2 << 20
# A page of a paged listing (list_open / list_next): small enough that sandboxd holds one
# page's parsed entries at a time, big enough (about 1,000 entries) to need few round trips.
LIST_PAGE_MAX_BYTES = 256 << 10
MAX_OPEN_FILES = 256
# The process list is one answer line too, and its content (commands, args, envs) is what
# box code asked for, so each entry is cut: strings to LIST_PROCESS_FIELD_MAX_CHARS, args
# and envs to their first LIST_PROCESS_MAX_ITEMS (an arg, or env name, says how many were
# cut), and the answer stops before LIST_PROCESSES_MAX_BYTES of entries, with the count of
# those left out. 1 MiB keeps the line a quarter of what sandboxd accepts (4 MiB); 256
# characters show any honest command; the entry count is also capped, far above the
# box's process limit.
LIST_PROCESS_FIELD_MAX_CHARS = 256
LIST_PROCESS_MAX_ITEMS = 32
LIST_PROCESSES_MAX_BYTES = 1 << 20
LIST_PROCESSES_MAX_ENTRIES = 4096
CUT_MARKER = "...[cut]"
# The user's processes, not the agent, should be the OOM killer's first choice.
CHILD_OOM_SCORE_ADJ = b"100"
PR_SET_CHILD_SUBREAPER = 36
PR_SET_DUMPABLE = 4
# A pty cannot say what it holds: after its process ends, read it until it is empty, up to
# this much (a pty buffers a few KiB; orphans still writing must not delay the end forever).
PTY_DRAIN_MAX_BYTES = 1 << 20
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

Json = dict[str, Any]
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded once: children call it between fork and exec
OVERSIZED = b"<over-long line>"  # compared by identity: stands for a line that was dropped

_ERRNO_CODES = {
    errno.ENOENT: "not_found",
    errno.ENOTDIR: "not_found",
    errno.EEXIST: "already_exists",
    errno.ENOTEMPTY: "already_exists",
    errno.EACCES: "permission_denied",
    errno.EPERM: "permission_denied",
    errno.EROFS: "permission_denied",
    errno.ENOSPC: "resource_exhausted",
    errno.EDQUOT: "resource_exhausted",
    errno.EFBIG: "resource_exhausted",
    errno.EMFILE: "resource_exhausted",
    errno.EISDIR: "invalid_argument",
    errno.EINVAL: "invalid_argument",
    errno.ENAMETOOLONG: "invalid_argument",
    errno.ELOOP: "invalid_argument",
    errno.EXDEV: "invalid_argument",
}


class AgentError(Exception):
    """A request failed; `code` is one of the protocol's error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def os_error(exc: OSError) -> AgentError:
    """The protocol error for an OSError, with the path it concerned."""
    code = _ERRNO_CODES.get(exc.errno or 0, "internal")
    where = f": {exc.filename}" if exc.filename else ""
    return AgentError(code, f"{exc.strerror or exc}{where}")


# --- request arguments -------------------------------------------------------------


def arg_str(msg: Json, key: str, default: str | None = None) -> str:
    value = msg.get(key, default)
    if not isinstance(value, str):
        raise AgentError("invalid_argument", f"'{key}' must be a string")
    return value


def arg_opt_str(msg: Json, key: str) -> str | None:
    value = msg.get(key)
    return None if value is None else arg_str(msg, key)


def arg_int(msg: Json, key: str, default: int | None = None) -> int:
    value = msg.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise AgentError("invalid_argument", f"'{key}' must be an integer")
    return value


def arg_bool(msg: Json, key: str, default: bool) -> bool:
    value = msg.get(key, default)
    if not isinstance(value, bool):
        raise AgentError("invalid_argument", f"'{key}' must be a boolean")
    return value


def arg_str_list(msg: Json, key: str) -> list[str]:
    value = msg.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AgentError("invalid_argument", f"'{key}' must be a list of strings")
    return list(value)


def arg_str_map(msg: Json, key: str) -> dict[str, str]:
    value = msg.get(key) or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise AgentError("invalid_argument", f"'{key}' must map strings to strings")
    return dict(value)


def arg_bytes(msg: Json, key: str) -> bytes:
    value = msg.get(key, "")
    if not isinstance(value, str):
        raise AgentError("invalid_argument", f"'{key}' must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise AgentError("invalid_argument", f"'{key}' is not valid base64: {exc}") from None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- the channel to the host ---------------------------------------------------------


class Channel:
    """JSON lines in from `in_fd` (non-blocking), out to `out_fd` (blocking: the host
    always reads, and blocking here is the back-pressure we want)."""

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd
        self._buffer = bytearray()
        self._discarding = False
        os.set_blocking(in_fd, False)

    def send(self, message: Json) -> None:
        data = memoryview(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        while data:
            written = os.write(self.out_fd, data)
            data = data[written:]

    def send_line(self, line: str) -> None:
        """Send a line already encoded as ASCII JSON (watch events, encoded as they came)."""
        data = memoryview(line.encode("ascii") + b"\n")
        while data:
            written = os.write(self.out_fd, data)
            data = data[written:]

    def receive(self) -> list[bytes] | None:
        """Complete lines read so far; None at end of input. An over-long line comes
        back as OVERSIZED (its id unknown) so the caller can answer with an error."""
        try:
            chunk = os.read(self.in_fd, 1 << 20)
        except BlockingIOError:
            return []
        if not chunk:
            return None
        self._buffer += chunk
        lines: list[bytes] = []
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._discarding or line.strip():
                lines.append(OVERSIZED if self._discarding else line)
            self._discarding = False
        if len(self._buffer) > MAX_LINE_BYTES:
            self._buffer.clear()
            self._discarding = True
        return lines


# --- processes -----------------------------------------------------------------------


def cut_text(text: str) -> str:
    """`text`, or its first LIST_PROCESS_FIELD_MAX_CHARS characters and CUT_MARKER."""
    if len(text) <= LIST_PROCESS_FIELD_MAX_CHARS:
        return text
    return text[:LIST_PROCESS_FIELD_MAX_CHARS] + CUT_MARKER


def bounded_process_entry(pid: int, request: Json) -> Json:
    """A `list` entry for a process started with `request`: strings cut by `cut_text`,
    args and envs to their first LIST_PROCESS_MAX_ITEMS, plus one item saying how many
    more there were."""
    args = [cut_text(a) for a in request["args"][:LIST_PROCESS_MAX_ITEMS]]
    if len(request["args"]) > LIST_PROCESS_MAX_ITEMS:
        args.append(f"[{len(request['args']) - LIST_PROCESS_MAX_ITEMS} more args cut]")
    env_items = list(request["envs"].items())
    envs = {cut_text(k): cut_text(v) for k, v in env_items[:LIST_PROCESS_MAX_ITEMS]}
    if len(env_items) > LIST_PROCESS_MAX_ITEMS:
        envs[f"[{len(env_items) - LIST_PROCESS_MAX_ITEMS} more envs cut]"] = ""
    optional = {k: cut_text(request[k]) if request[k] is not None else None for k in ("cwd", "tag")}
    return {
        "pid": pid, "cmd": cut_text(request["cmd"]), "args": args, "envs": envs,
        **optional, "pty": request["pty"],
    }  # fmt: skip


class Proc:
    """A process the host started, until its end has been reported."""

    def __init__(self, popen: subprocess.Popen[bytes], request: Json, pty_fd: int | None) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.request = request  # cmd, args, envs, cwd, tag as requested
        self.pty_fd = pty_fd
        self.out_fds: dict[int, str] = {}  # fd -> "stdout" | "stderr" | "pty"
        self.in_fd: int | None = None  # stdin pipe or pty master
        self.pending: deque[tuple[int | None, memoryview]] = deque()  # (request id, data)
        self.close_after: list[int | None] = []  # close_stdin requests waiting for pending
        self.deadline: float | None = None
        # Once reaped: its wait status, and per output fd the bytes it had left in the pipe,
        # still to send (under flow control) before its end is reported.
        self.exit_status: int | None = None
        self.drain_left: dict[int, int] = {}


def signal_text(number: int) -> str:
    """The signal as Go's os.ProcessState prints it: "killed", "terminated"."""
    text = signal.strsignal(number)
    return text[0].lower() + text[1:] if text else f"signal {number}"


def end_event(pid: int, status: int) -> Json:
    """The end event for a wait status, worded like Go's os.ProcessState."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        text = f"signal: {signal_text(number)}"
        if os.WCOREDUMP(status):
            text += " (core dumped)"
        fields: Json = {"exit_code": -1, "exited": False, "signal": signal_text(number)}
        fields["signal_number"] = number
    else:
        code = os.WEXITSTATUS(status)
        text = f"exit status {code}"
        fields = {"exit_code": code, "exited": True, "signal": None, "signal_number": None}
    failed = not (fields["exited"] and fields["exit_code"] == 0)
    return {"event": "end", "pid": pid, **fields, "status": text, "error": text if failed else None}


def parse_signal(value: object) -> signal.Signals:
    """SIGKILL, KILL, SIGNAL_SIGKILL (the envd enum name) or 9."""
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return signal.Signals(value)
        if isinstance(value, str):
            name = value.upper().removeprefix("SIGNAL_")
            return signal.Signals[name if name.startswith("SIG") else "SIG" + name]
    except (KeyError, ValueError):
        pass
    raise AgentError("invalid_argument", f"unknown signal {value!r}")


def set_winsize(fd: int, cols: int, rows: int) -> None:
    if not (0 < cols < 1 << 16 and 0 < rows < 1 << 16):
        raise AgentError("invalid_argument", f"bad terminal size {cols}x{rows}")
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


# --- who a child runs as ---------------------------------------------------------------

# In a full box the agent starts as box root with a few capabilities (isolation/bwrap.py,
# BOX_ROOT_CAPS) and runs every command as the box's user: uid/gid 1000, group 1000 only,
# and all five capability sets empty (bounding and ambient included, so nothing it execs
# gets one back). Its own file operations use fsuid/fsgid 1000 (`use_user_file_ids`), so
# files it makes are the user's and permissions apply as to the user. Commands run as root
# only for sudo (agent/sudo.py, `SudoServer`) and for a start request as "root" (envd's
# user), both with `identity_of(ROOT_UID)` through `become`: one set of credentials for
# every root child. Elsewhere (reduced isolation) the agent already is the user, changes
# nothing, and refuses "root".
SANDBOX_UID = 1000
SANDBOX_GID = 1000
ROOT_UID = 0
ROOT_HOME = "/root"  # root's home when /etc/passwd names none
# The users a request may name (envd's users, E2B's `user` argument).
USERS = ("user", "root")
NO_ROOT = (
    "user 'root' is not available: this sandbox has no root, sandboxd runs it with reduced "
    "isolation, where box code runs as one unprivileged user (see sandboxd's docs/SECURITY.md)"
)
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CAP_LAST_POSSIBLE = 63  # PR_CAPBSET_DROP of a cap the kernel does not know fails: ignored
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def is_box_root(uid_map_path: str = "/proc/self/uid_map") -> bool:
    """Whether the agent is root of its box: uid 0 and the box's init (full isolation),
    in a user namespace whose root is not host root (a test may run the agent as host
    root: that is never box root)."""
    if os.getuid() != 0 or os.getpid() != 1:
        return False
    try:
        with open(uid_map_path) as uid_map:
            first = uid_map.read(4096).split()
    except OSError:
        return False
    return len(first) >= 3 and first[0] == "0" and first[1] != "0"


def set_file_ids(uid: int, gid: int) -> None:
    """File operations as `uid`/`gid` from now on (setfsuid/setfsgid). The kernel drops the
    file capabilities (DAC_OVERRIDE, CHOWN, FOWNER, ...) from the effective set while the
    fsuid is not 0, and gives them back when it is 0 again. The kernel says nothing when a
    change fails, so both are read back: if they did not take, the agent ends (the sandbox
    with it) rather than do a user's file operation as root. A credential change resets
    the agent's dumpable flag to fs.suid_dumpable: it is cleared again at once."""
    _LIBC.setfsgid(gid)  # CAP_SETGID is no file capability: it holds whatever the fsuid
    _LIBC.setfsuid(uid)
    if _LIBC.setfsuid(-1) != uid or _LIBC.setfsgid(-1) != gid:  # -1 changes nothing
        print(f"sandboxd agent: cannot set file ids {uid}/{gid}", file=sys.stderr, flush=True)
        os._exit(70)
    set_dumpable(False)


def use_user_file_ids() -> None:
    """File operations as the box's user from now on."""
    set_file_ids(SANDBOX_UID, SANDBOX_GID)


def suid_dumpable_value(path: str = "/proc/sys/fs/suid_dumpable") -> int | None:
    """The host's fs.suid_dumpable, None when it cannot be read."""
    try:
        with open(path) as value:
            return int(value.read(16).strip())
    except (OSError, ValueError):
        return None


def clear_capabilities() -> None:
    """Empty the effective, permitted and inheritable sets (capset v3)."""
    header = struct.pack("Ii", _LINUX_CAPABILITY_VERSION_3, 0)
    data = ctypes.create_string_buffer(24)  # two {effective, permitted, inheritable}
    if _LIBC.capset(ctypes.c_char_p(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def become(uid: int, gid: int, groups: list[int]) -> None:
    """In a child of the box-root agent, before exec: become `uid` with `gid` and
    `groups`. For any uid but 0 every capability set ends empty, the bounding set and
    the ambient set included; root keeps box root's few (bwrap's bounding set)."""
    if uid == 0:  # fsuid 0 again: the kernel gives back the file capabilities it took
        _LIBC.setfsuid(0)
        _LIBC.setfsgid(0)
    os.setgroups(groups)
    if uid != 0:
        for cap in range(CAP_LAST_POSSIBLE + 1):
            _LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
        if _LIBC.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "clearing the ambient capabilities")
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # also sets the fsuid back to uid
    if uid != 0:
        clear_capabilities()


def child_setup(
    take_tty: bool, identity: tuple[int, int, list[int]] | None = None, cwd: str | None = None
) -> Callable[[], None]:
    """Runs in the child between fork and exec (the agent has a single thread).
    `identity` (uid, gid, groups): who to become (a box-root agent's children); `cwd`:
    where to go once that is done (so it is checked as that user)."""

    def setup() -> None:
        # Inherited from the agent: without it /proc/self is root's and this write fails;
        # exec would make the child dumpable anyway.
        set_dumpable(True)
        try:
            with open("/proc/self/oom_score_adj", "wb") as f:
                f.write(CHILD_OOM_SCORE_ADJ)
        except OSError:
            pass
        if identity is not None:
            become(*identity)
        if cwd is not None:
            os.chdir(cwd)
        if take_tty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    return setup


# --- sudo -------------------------------------------------------------------------------

# The sudo client (agent/sudo.py) sends one request per connection on this abstract unix
# socket (the box's own network namespace: nothing outside the box sees it): a JSON object
# {"argv", "env", "cwd", "uid"} with its stdin, stdout and stderr as SCM_RIGHTS. The agent
# (box root) starts argv as `uid` with those fds and answers {"exit": N} when it ends
# (128 + N for a signal), or {"error": text}; meanwhile the client may send
# {"signal": N} to relay a signal it got to the command's process group. Every box process
# may ask (E2B's user has passwordless sudo): there is no secret. Bounds: one request per
# connection, SUDO_MAX_CONNECTIONS at once, SUDO_MAX_REQUEST_BYTES per message (the
# socket's default buffer holds it), SUDO_MAX_ARGS arguments, SUDO_MAX_ENV variables.
SUDO_SOCKET_NAME = b"\0sandboxd-sudo"
SUDO_MAX_REQUEST_BYTES = 128 << 10
SUDO_MAX_ARGS = 4096
SUDO_MAX_ENV = 1024
SUDO_MAX_CONNECTIONS = 32
SUDO_STDIO_FDS = 3
SUDO_MAX_ID = 65535  # the box's ids: 0..65535
SUDO_RELAYED_SIGNALS = frozenset(
    int(sig)
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
                signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT)
)  # fmt: skip


class SudoConnection:
    """One client: its socket, then the command it asked for, until that ends."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        # Kept while it runs: a Popen dropped early is waited for by the next Popen made
        # (subprocess's cleanup of lost children), stealing the exit status from `_reap`.
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.popen is None else self.popen.pid


def sudo_request(data: bytes) -> tuple[list[str], dict[str, str], str, int]:
    """(argv, env, cwd, uid) of a request message; AgentError when it is not one."""
    msg = json.loads(data)
    if not isinstance(msg, dict):
        raise AgentError("invalid_argument", "a request must be a JSON object")
    argv, env = arg_str_list(msg, "argv"), arg_str_map(msg, "env")
    cwd, uid = arg_str(msg, "cwd"), arg_int(msg, "uid")
    if not 0 < len(argv) <= SUDO_MAX_ARGS or len(env) > SUDO_MAX_ENV:
        raise AgentError("invalid_argument", "bad argument or environment count")
    if not 0 <= uid <= SUDO_MAX_ID:
        raise AgentError("invalid_argument", f"no uid {uid} in this sandbox")
    texts = [*argv, *env, *env.values(), cwd]
    if any("\0" in text for text in texts) or any("=" in key or not key for key in env):
        raise AgentError("invalid_argument", "bad argument or environment variable")
    return argv, env, cwd, uid


Identity = tuple[int, int, list[int]]  # (uid, gid, supplementary groups)


def identity_of(uid: int) -> Identity:
    """(uid, gid, groups) of a box uid: its /etc/passwd group, else the gid of its number."""
    try:
        gid = pwd.getpwuid(uid).pw_gid
    except KeyError:
        gid = uid
    return uid, gid, [] if uid == 0 else [gid]


class SudoServer:
    """Root commands for sudo clients (see above). Lives in the agent's event loop."""

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.selector = selector
        self.listener = socket.socket(
            socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        )
        self.listener.bind(SUDO_SOCKET_NAME)
        self.listener.listen(SUDO_MAX_CONNECTIONS)
        self.fd = self.listener.fileno()
        self.connections: dict[int, SudoConnection] = {}  # socket fd -> connection
        self.jobs: dict[int, SudoConnection] = {}  # pid -> its connection
        selector.register(self.fd, selectors.EVENT_READ)

    def owns(self, fd: int) -> bool:
        return fd == self.fd or fd in self.connections

    def on_readable(self, fd: int) -> None:
        if fd == self.fd:
            self._accept()
        else:
            self._on_message(self.connections[fd])

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if len(self.connections) >= SUDO_MAX_CONNECTIONS:
            sock.close()  # the client reads EOF and says the agent refused
            return
        sock.setblocking(False)
        connection = SudoConnection(sock)
        self.connections[sock.fileno()] = connection
        self.selector.register(sock.fileno(), selectors.EVENT_READ)

    def _on_message(self, connection: SudoConnection) -> None:
        fds: list[int] = []
        try:
            data, ancillary, flags, _ = connection.sock.recvmsg(
                SUDO_MAX_REQUEST_BYTES + 1, socket.CMSG_SPACE(SUDO_STDIO_FDS * 4)
            )
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, ancillary, flags = b"", [], 0
        try:
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    usable = len(payload) - len(payload) % 4
                    fds += struct.unpack(f"{usable // 4}i", payload[:usable])
            if not data:
                self._close(connection, kill=True)
            elif connection.pid is None:
                self._start(connection, data, fds, flags)
            else:
                self._relay(connection, data)
        finally:
            for fd in fds:
                os.close(fd)

    def _start(self, connection: SudoConnection, data: bytes, fds: list[int], flags: int) -> None:
        try:
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(fds) != SUDO_STDIO_FDS:
                raise AgentError("invalid_argument", "request too long, or not 3 fds")
            argv, env, cwd, uid = sudo_request(data)
            popen = self._spawn(argv, env, cwd, uid, fds)
        except AgentError as exc:
            self._answer(connection, {"error": exc.message})
            self._close(connection, kill=False)
        except (ValueError, TypeError, UnicodeError) as exc:
            self._answer(connection, {"error": f"bad request: {exc}"})
            self._close(connection, kill=False)
        else:
            connection.popen = popen
            self.jobs[popen.pid] = connection

    @staticmethod
    def _spawn(
        argv: list[str], env: dict[str, str], cwd: str, uid: int, fds: list[int]
    ) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(
                argv,
                stdin=fds[0],
                stdout=fds[1],
                stderr=fds[2],
                env=env,
                start_new_session=True,  # its own group: relayed signals reach its children
                preexec_fn=child_setup(False, identity_of(uid), cwd),
            )
        except OSError as exc:
            raise AgentError("not_found", f"{argv[0]}: {exc.strerror or exc}") from None
        except subprocess.SubprocessError:  # the child could not become uid, or cd
            text = f"unable to run {argv[0]} as uid {uid} in {cwd} (permission denied?)"
            raise AgentError("permission_denied", text) from None

    def _relay(self, connection: SudoConnection, data: bytes) -> None:
        try:
            number = json.loads(data).get("signal")
        except (ValueError, AttributeError):
            return
        if connection.pid is not None and number in SUDO_RELAYED_SIGNALS:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(connection.pid, number)

    def finish(self, pid: int, status: int) -> bool:
        """A child was reaped: if it was a sudo command, tell its client how it ended."""
        connection = self.jobs.pop(pid, None)
        if connection is None:
            return False
        code = os.waitstatus_to_exitcode(status)
        if connection.popen is not None:
            connection.popen.returncode = code  # reaped here, not by Popen
        connection.popen = None
        self._answer(connection, {"exit": 128 - code if code < 0 else code})
        self._close(connection, kill=False)
        return True

    @staticmethod
    def _answer(connection: SudoConnection, answer: Json) -> None:
        with contextlib.suppress(OSError):  # the client is gone: nobody to tell
            connection.sock.send(json.dumps(answer).encode())

    def _close(self, connection: SudoConnection, kill: bool) -> None:
        """Forget a client; `kill`: its command too (its sudo went away, e.g. killed)."""
        if kill and connection.popen is not None:
            kill_group(connection.popen.pid)  # reaped by `_reap` (it stays in `jobs`)
        fd = connection.sock.fileno()
        if self.connections.pop(fd, None) is not None:
            self.selector.unregister(fd)
        connection.sock.close()

    def shutdown(self) -> None:
        for pid in list(self.jobs):
            kill_group(pid)


# --- files ---------------------------------------------------------------------------

# File metadata lives in extended attributes named METADATA_XATTR_PREFIX + key, as envd keeps
# it (docs/E2B-API.md, "File metadata"). Keys and values are printable ASCII; a key is at
# most 246 bytes (the kernel's 255-byte attribute name less the prefix), and a file's
# metadata, each key counted with its prefix, at most 4096 bytes (envd's bound: what an
# ext4 inode's attribute space holds). That byte bound also caps the count of keys.
METADATA_XATTR_PREFIX = "user.e2b."
METADATA_KEY_MAX_BYTES = 255 - len(METADATA_XATTR_PREFIX)
METADATA_MAX_BYTES = 4096
METADATA_MAX_KEYS = METADATA_MAX_BYTES // (len(METADATA_XATTR_PREFIX) + 1)


def printable_ascii(text: str) -> bool:
    return all(" " <= c <= "~" for c in text)


def metadata_problem(metadata: dict[str, str]) -> str | None:
    """What makes `metadata` unfit to keep (bad key or value, too big), or None."""
    total_bytes = 0
    for key, value in metadata.items():
        if not key or len(key) > METADATA_KEY_MAX_BYTES or not printable_ascii(key):
            return f"metadata key {key[:40]!r} is not 1-{METADATA_KEY_MAX_BYTES} printable ASCII"
        if not printable_ascii(value):
            return f"the value of metadata key {key[:40]!r} is not printable ASCII"
        total_bytes += len(METADATA_XATTR_PREFIX) + len(key) + len(value)
    if total_bytes > METADATA_MAX_BYTES or len(metadata) > METADATA_MAX_KEYS:
        return f"metadata over {METADATA_MAX_BYTES} bytes (keys with their prefix, and values)"
    return None


def read_metadata(path: str) -> dict[str, str]:
    """The file's metadata, from its user.e2b.* attributes (following a symlink), in key
    order, within the bounds above: attributes set in the box that break them (binary
    values, odd names, too many) are left out. {} where there are none or none can be."""
    try:
        names = sorted(n for n in os.listxattr(path) if n.startswith(METADATA_XATTR_PREFIX))
    except OSError:
        return {}
    found: dict[str, str] = {}
    for name in names[:METADATA_MAX_KEYS]:
        try:
            value = os.getxattr(path, name).decode("ascii")
        except (OSError, UnicodeDecodeError):
            continue
        candidate = {**found, name[len(METADATA_XATTR_PREFIX) :]: value}
        if metadata_problem(candidate) is None:
            found = candidate
    return found


def replace_metadata(path: str, metadata: dict[str, str]) -> None:
    """Make `metadata` the file's whole metadata: user.e2b.* attributes not in it are
    removed (an upload without metadata clears it, as in envd). failed_precondition where
    the filesystem keeps no user attributes and there is metadata to keep."""
    wanted = {METADATA_XATTR_PREFIX + k: v.encode("ascii") for k, v in metadata.items()}
    try:
        present = [n for n in os.listxattr(path) if n.startswith(METADATA_XATTR_PREFIX)]
        for name in present:
            if name not in wanted:
                os.removexattr(path, name)
        for name, value in wanted.items():
            os.setxattr(path, name, value)
    except OSError as exc:
        if not wanted:
            return  # clearing is best effort: a device file, say, can hold none anyway
        if exc.errno != errno.EOPNOTSUPP:
            raise
        raise AgentError(
            "failed_precondition",
            "file metadata needs user extended attributes, which this sandbox's "
            "filesystem does not keep",
        ) from None


_GO_MODE_LETTERS = (  # Go's os.FileMode.String() letters, in its order
    (stat.S_ISDIR, "d"),
    (stat.S_ISLNK, "L"),
    (stat.S_ISBLK, "D"),
    (stat.S_ISCHR, "D"),
    (stat.S_ISFIFO, "p"),
    (stat.S_ISSOCK, "S"),
)


def go_mode_string(mode: int) -> str:
    """Permissions as Go prints them, as envd reports: "-rw-r--r--", "drwxr-xr-x"."""
    prefix = "".join(letter for test, letter in _GO_MODE_LETTERS if test(mode))
    prefix += "u" if mode & stat.S_ISUID else ""
    prefix += "g" if mode & stat.S_ISGID else ""
    prefix += "c" if stat.S_ISCHR(mode) else ""
    prefix += "t" if mode & stat.S_ISVTX else ""
    bits = "".join(c if mode & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
    return (prefix or "-") + bits


def file_type(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    return "symlink" if stat.S_ISLNK(mode) else "other"


def arg_user(msg: Json) -> str:
    """The request's `user` ("user" when absent): one of USERS."""
    user = arg_str(msg, "user", "user")
    if user not in USERS:
        raise AgentError("invalid_argument", f"unknown user {user[:40]!r}")
    return user


def root_home() -> str:
    """Root's home in this box's /etc/passwd, else /root."""
    try:
        home = pwd.getpwuid(ROOT_UID).pw_dir
    except KeyError:
        return ROOT_HOME
    return home if os.path.isabs(home) else ROOT_HOME


class Files:
    """File operations as the box's user or box root (`acting_as`), with names looked up
    once. `home` is the acting user's home: where relative paths resolve."""

    def __init__(self, home: str, box_root: bool = False) -> None:
        self.user_home = home
        self.home = home
        self.user = "user"
        # Root's file operations switch the agent's fsuid, a credential change, which
        # resets its dumpable flag to fs.suid_dumpable for a moment: with 1 there, box
        # root could ptrace the agent in that moment, so root is refused instead.
        self.root_refusal: str | None = None if box_root else NO_ROOT
        if box_root and suid_dumpable_value() not in (0, 2):
            self.root_refusal = (
                "user 'root' is not available: the host's fs.suid_dumpable is not 0 or 2, "
                "and acting as root would make sandboxd's agent briefly traceable by box root"
            )
        self.box_root = box_root
        self._users: dict[int, str] = {}
        self._groups: dict[int, str] = {}

    @contextlib.contextmanager
    def acting_as(self, user: str) -> Iterator[None]:
        """File operations as `user` ("user" or "root") inside the block: box root's are
        done with fsuid/fsgid 0 (its capabilities apply), the user's with 1000, and
        relative paths resolve against that user's home. permission_denied for "root"
        where the agent is not box root."""
        previous = self.user
        if user == previous:
            yield
            return
        self._become(user)
        try:
            yield
        finally:
            self._become(previous)

    def _become(self, user: str) -> None:
        if user == "root":
            if self.root_refusal is not None:
                raise AgentError("permission_denied", self.root_refusal)
            set_file_ids(ROOT_UID, ROOT_UID)
            self.home = root_home()
        else:
            if self.box_root:
                use_user_file_ids()
            self.home = self.user_home
        self.user = user

    def resolve(self, raw: str) -> str:
        """An absolute, normalised path; relative paths and `~` are under home."""
        if "\0" in raw:
            raise AgentError("invalid_argument", "path contains a NUL byte")
        if raw in ("", "~"):
            path = self.home
        elif raw.startswith("~/"):
            path = self.home + raw[1:]
        else:
            path = os.path.join(self.home, raw)
        return "/" + os.path.normpath(path).lstrip("/")

    def owner(self, uid: int) -> str:
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._users[uid] = str(uid)
        return self._users[uid]

    def group(self, gid: int) -> str:
        if gid not in self._groups:
            try:
                self._groups[gid] = grp.getgrgid(gid).gr_name
            except KeyError:
                self._groups[gid] = str(gid)
        return self._groups[gid]

    def entry(self, path: str, st: os.stat_result | None = None) -> Json:
        """What envd reports of a path; a symlink gets its target's type and mode."""
        st = st or os.lstat(path)
        kind, perm, target = file_type(st.st_mode), stat.S_IMODE(st.st_mode) & 0o777, None
        if stat.S_ISLNK(st.st_mode):
            target = os.path.realpath(path)
            try:
                target_st = os.stat(path)
                kind, perm = file_type(target_st.st_mode), stat.S_IMODE(target_st.st_mode) & 0o777
            except OSError:
                kind, perm = "symlink", 0  # a dangling link
        return {
            "name": os.path.basename(path) or "/",
            "path": path,
            "type": kind,
            "size": st.st_size,
            "mode": perm,
            "permissions": go_mode_string(st.st_mode),
            "owner": self.owner(st.st_uid),
            "group": self.group(st.st_gid),
            "mtime_ns": st.st_mtime_ns,
            "is_symlink": target is not None,
            "symlink_target": target,
            "metadata": read_metadata(path) if kind != "other" else {},
        }

    def list_dir(self, raw: str, depth: int) -> list[Json]:
        """Entries under a directory, `depth` levels deep, in lexical pre-order; like
        envd it follows a symlink at the top but never below it. invalid_argument when
        there are more than LIST_MAX_ENTRIES or they pass LIST_MAX_BYTES of JSON."""
        listing, entries, done = self.listing(raw, depth), [], False
        while not done:
            page, done = listing.page(LIST_PAGE_MAX_BYTES)
            entries += page
        return entries

    def listing(self, raw: str, depth: int) -> Listing:
        """A walk of the directory, as list_dir's, to take a page at a time."""
        root = os.path.realpath(self.resolve(raw))
        if not os.path.isdir(root):
            if not os.path.lexists(root):
                raise AgentError("not_found", f"directory not found: {root}")
            raise AgentError("invalid_argument", f"path is not a directory: {root}")
        return Listing(root, self._walk(root, max(depth, 1)), self.user)

    def _walk(self, root: str, depth: int) -> Iterator[Json]:
        """Entries in pre-order, from a stack of directories being listed rather than
        recursion: any depth in constant C stack."""
        stack = [(iter(self._children(root)), depth)]
        while stack:
            children, levels = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                continue
            entry, subdirectory = child
            yield entry
            if levels > 1 and subdirectory is not None:
                stack.append((iter(self._children(subdirectory)), levels - 1))

    def _children(self, directory: str) -> list[tuple[Json, str | None]]:
        """Each child's entry, by name, with its path when it is a directory to descend
        into (never through a symlink); an unreadable directory has none."""
        try:
            with os.scandir(directory) as it:
                found = sorted(it, key=lambda e: e.name)
        except OSError:
            return []  # an unreadable subdirectory is left out rather than failing the list
        children: list[tuple[Json, str | None]] = []
        for child in found:
            try:
                entry = self.entry(child.path, child.stat(follow_symlinks=False))
            except OSError:
                continue  # vanished while listing
            children.append((entry, child.path if child.is_dir(follow_symlinks=False) else None))
        return children

    def make_dir(self, raw: str) -> Json:
        path = self.resolve(raw)
        if os.path.isdir(path):
            raise AgentError("already_exists", f"directory already exists: {path}")
        if os.path.lexists(path):
            raise AgentError("invalid_argument", f"path exists but is not a directory: {path}")
        os.makedirs(path, exist_ok=True)
        return self.entry(path)

    def move(self, raw_source: str, raw_destination: str) -> Json:
        source, destination = self.resolve(raw_source), self.resolve(raw_destination)
        if not os.path.lexists(source):
            raise AgentError("not_found", f"source not found: {source}")
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        try:
            os.rename(source, destination)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.move(source, destination)
        return self.entry(destination)

    def remove(self, raw: str) -> None:
        path = self.resolve(raw)
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)


class Listing:
    """A directory walk the host takes in pages, by handle; in all it may hold at most
    LIST_MAX_ENTRIES entries and LIST_MAX_BYTES of their JSON."""

    def __init__(self, root: str, entries: Iterator[Json], user: str = "user") -> None:
        self.root = root
        self.user = user  # the walk goes on as this user, page after page
        self._entries = entries
        self._count = 0
        self._total_bytes = 0

    def page(self, max_bytes: int) -> tuple[list[Json], bool]:
        """The next entries, up to about `max_bytes` of JSON, and whether the walk is done;
        invalid_argument once the walk passes a limit."""
        page: list[Json] = []
        page_bytes = 0
        for entry in self._entries:
            size_bytes = len(json.dumps(entry, separators=(",", ":"))) + 1  # as on the line
            self._count += 1
            self._total_bytes += size_bytes
            if self._count > LIST_MAX_ENTRIES or self._total_bytes > LIST_MAX_BYTES:
                raise AgentError(
                    "invalid_argument",
                    f"the listing of {self.root} passes {LIST_MAX_ENTRIES} entries or "
                    f"{LIST_MAX_BYTES} bytes; list it with a smaller depth",
                )
            page.append(entry)
            page_bytes += size_bytes
            if page_bytes >= max_bytes:
                return page, False
        return page, True


class OpenFile:
    """A file the host reads or writes in chunks, by handle."""

    def __init__(
        self,
        path: str,
        mode: str,
        file: BinaryIO,
        metadata: dict[str, str] | None = None,
        user: str = "user",
    ) -> None:
        self.path = path
        self.mode = mode
        self.file = file
        self.metadata = metadata  # for "w": the file's metadata once written
        self.user = user  # who closes it (its metadata and entry): who opened it


# --- directory watching --------------------------------------------------------------

# inotify(7) flags (linux/inotify.h).
IN_MODIFY, IN_ATTRIB, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x4, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_Q_OVERFLOW, IN_IGNORED, IN_ISDIR = 0x4000, 0x8000, 0x40000000
IN_ONLYDIR, IN_DONT_FOLLOW = 0x1000000, 0x2000000
WATCH_MASK = (
    IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
    | IN_DELETE_SELF | IN_MOVE_SELF
)  # fmt: skip
# What a kernel event is called in envd's events, as fsnotify (envd's watcher) maps them: a
# move is a rename of the old name and a create of the new one (docs/E2B-API.md).
WATCH_EVENT_TYPES = (
    (IN_CREATE | IN_MOVED_TO, "create"),
    (IN_MODIFY, "write"),
    (IN_DELETE | IN_DELETE_SELF, "remove"),
    (IN_MOVED_FROM | IN_MOVE_SELF, "rename"),
    (IN_ATTRIB, "chmod"),
)
_INOTIFY_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
INOTIFY_READ_BYTES = 64 << 10
# Watchers one box may have at once (streams, and polled ones not yet removed): each may
# hold a queue of events in this process, in the box's memory.
WATCH_MAX_WATCHERS = 64
# Directories watched at once in the box (a recursive watch takes one per subdirectory).
# Each is a kernel inotify watch (about 1 KiB of kernel memory) counted against the uid's
# fs.inotify.max_user_watches, which boxes sharing a host uid share.
WATCH_MAX_DIRS = 8192
# Events waiting for a watcher's client, by count and JSON bytes, and for the whole box. A
# box makes events far faster than a client takes them (a loop creating files), so past
# either bound the watcher fails, as envd's does when its kernel queue overflows, instead
# of events piling up. 10,000 cover a `git clone` between two polls a second apart.
WATCH_QUEUE_MAX_EVENTS = 10_000
WATCH_QUEUE_MAX_BYTES = 2 << 20
WATCH_BOX_QUEUE_MAX_BYTES = 8 << 20
# One watch_take answer: what sandboxd holds of a watcher's events at a time.
WATCH_PAGE_MAX_EVENTS = 4096
WATCH_PAGE_MAX_BYTES = 256 << 10
# The longest event name, PATH_MAX: no client can use a longer path. Events under a tree
# deeper than that are left out.
WATCH_NAME_MAX_BYTES = 4096
# How long a waiting watch_take is held before it is answered empty: well under sandboxd's
# request timeout (60 s), so a quiet directory never looks like a dead agent.
WATCH_WAIT_MAX_MS = 20_000


def libc_error(path: bytes | None = None) -> AgentError:
    """The protocol error for a failed libc call (its errno)."""
    number = ctypes.get_errno()
    return os_error(OSError(number, os.strerror(number), os.fsdecode(path) if path else None))


class Watcher:
    """One client's watch of a directory, and its events waiting for the client."""

    def __init__(
        self, watcher_id: int, root: bytes, recursive: bool, with_entry: bool, user: str = "user"
    ) -> None:
        self.id = watcher_id
        self.root = root
        self.user = user  # its events' entries and new subdirectories are looked at as this
        self.recursive = recursive
        self.with_entry = with_entry
        self.wds: set[int] = set()
        self.queue: deque[str] = deque()  # events, each encoded as JSON
        self.queued_bytes = 0
        self.failure: str | None = None  # why it stopped watching (events were lost)
        # A watch_take waiting for events: (request id, monotonic deadline, max_bytes).
        self.waiting: tuple[int, float, int] | None = None


class Watches:
    """Every watcher of the box, on one inotify instance (boxes of a host uid share the
    kernel's fs.inotify.max_user_instances, 128 by default)."""

    def __init__(self, channel: Channel, files: Files, selector: selectors.BaseSelector) -> None:
        self.channel = channel
        self.files = files
        self.selector = selector
        self.fd = -1
        self.watchers: dict[int, Watcher] = {}
        self.dirs: dict[int, dict[int, bytes]] = {}  # wd -> watcher id -> dir under its root
        self.queued_bytes = 0
        self.next_id = 1

    # -- ops --

    def op_watch_start(self, msg: Json) -> Json:
        path = os.path.realpath(self.files.resolve(arg_str(msg, "path")))
        if not os.path.isdir(path):
            if not os.path.lexists(path):
                raise AgentError("not_found", f"path {path} not found")
            raise AgentError("invalid_argument", f"path {path} not a directory")
        if len(self.watchers) >= WATCH_MAX_WATCHERS:
            raise AgentError("resource_exhausted", f"over {WATCH_MAX_WATCHERS} watchers")
        self._open()
        root = os.fsencode(path)
        recursive = arg_bool(msg, "recursive", False)
        with_entry = arg_bool(msg, "include_entry", False)
        watcher = Watcher(self.next_id, root, recursive, with_entry, self.files.user)
        self.next_id += 1
        self.watchers[watcher.id] = watcher
        try:
            self._add_dir(watcher, root, b"", top=True)
            if recursive:
                self._add_tree(watcher, root, b"")
        except BaseException:
            self._unwatch(watcher)
            del self.watchers[watcher.id]
            raise
        return {"watcher": watcher.id, "path": path}

    def op_watch_take(self, msg: Json) -> None:
        """Answers with the watcher's next events (waiting up to `wait_ms` for one), or
        with the error that stopped it once its last events have been taken."""
        watcher = self._watcher(msg)
        max_bytes = arg_int(msg, "max_bytes", WATCH_PAGE_MAX_BYTES)
        max_bytes = min(max(max_bytes, 1), WATCH_PAGE_MAX_BYTES)
        wait_ms = min(max(arg_int(msg, "wait_ms", 0), 0), WATCH_WAIT_MAX_MS)
        if watcher.waiting is not None:  # one waiting take at a time: the earlier gets none
            self._send_page(watcher.waiting[0], [], bool(watcher.queue))
            watcher.waiting = None
        if watcher.queue or watcher.failure is not None or wait_ms == 0:
            self._answer(watcher, msg["id"], max_bytes)
        else:
            watcher.waiting = (msg["id"], time.monotonic() + wait_ms / 1000, max_bytes)

    def op_watch_stop(self, msg: Json) -> Json:
        watcher = self._watcher(msg)
        self._unwatch(watcher)
        if watcher.waiting is not None:
            gone = AgentError("not_found", f"watcher {watcher.id} was removed")
            self.channel.send({"id": watcher.waiting[0], "ok": False, "error": error_json(gone)})
        self.queued_bytes -= watcher.queued_bytes
        del self.watchers[watcher.id]
        return {}

    def _watcher(self, msg: Json) -> Watcher:
        watcher = self.watchers.get(arg_int(msg, "watcher"))
        if watcher is None:
            raise AgentError("not_found", f"watcher with id {msg.get('watcher')} not found")
        return watcher

    # -- answers --

    def _answer(self, watcher: Watcher, request_id: int, max_bytes: int) -> None:
        """Send the next page of events (at least one when there is one), or the failure."""
        if not watcher.queue and watcher.failure is not None:
            error = AgentError("resource_exhausted", f"watcher error: {watcher.failure}")
            self.channel.send({"id": request_id, "ok": False, "error": error_json(error)})
            return
        page: list[str] = []
        page_bytes = 0
        while watcher.queue and len(page) < WATCH_PAGE_MAX_EVENTS:
            size_bytes = len(watcher.queue[0]) + 1
            if page and page_bytes + size_bytes > max_bytes:
                break
            page.append(watcher.queue.popleft())
            page_bytes += size_bytes
        watcher.queued_bytes -= page_bytes
        self.queued_bytes -= page_bytes
        self._send_page(request_id, page, bool(watcher.queue))

    def _send_page(self, request_id: int, page: list[str], more: bool) -> None:
        """Answer a take with events already encoded: they are joined, not parsed again."""
        result = f'{{"events":[{",".join(page)}],"more":{"true" if more else "false"}}}'
        self.channel.send_line(f'{{"id":{int(request_id)},"ok":true,"result":{result}}}')

    def answer_waiting(self) -> None:
        """Answer the waiting takes that have events (or a failure), or whose time is up."""
        now = time.monotonic()
        for watcher in self.watchers.values():
            waiting = watcher.waiting
            if waiting is None:
                continue
            request_id, deadline, max_bytes = waiting
            if watcher.queue or watcher.failure is not None or deadline <= now:
                watcher.waiting = None
                self._answer(watcher, request_id, max_bytes)

    def next_deadline(self) -> float | None:
        deadlines = [w.waiting[1] for w in self.watchers.values() if w.waiting is not None]
        return min(deadlines) if deadlines else None

    # -- the kernel's watches --

    def _open(self) -> None:
        if self.fd < 0:
            fd = int(_LIBC.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
            if fd < 0:
                raise libc_error()
            self.fd = fd
            self.selector.register(fd, selectors.EVENT_READ)

    def _add_dir(self, watcher: Watcher, path: bytes, relative: bytes, top: bool = False) -> None:
        if len(self.dirs) >= WATCH_MAX_DIRS:
            raise AgentError("resource_exhausted", f"over {WATCH_MAX_DIRS} directories watched")
        flags = WATCH_MASK | IN_ONLYDIR | (0 if top else IN_DONT_FOLLOW)
        wd = int(_LIBC.inotify_add_watch(self.fd, path, flags))
        if wd < 0:
            raise libc_error(path)
        self.dirs.setdefault(wd, {})[watcher.id] = relative
        watcher.wds.add(wd)

    def _add_tree(
        self, watcher: Watcher, path: bytes, relative: bytes, announce: bool = False
    ) -> None:
        """Watch every directory under `path` (not through symlinks), from a stack rather
        than recursion; ones that vanish or cannot be read are skipped. With `announce`
        (a directory that just appeared), what it already holds is reported as created:
        it was made before its watch, and would otherwise go unseen (a rare event made
        just after the watch is then reported twice)."""
        stack = [(path, relative)]
        while stack:
            directory, under = stack.pop()
            try:
                with os.scandir(directory) as found:
                    children = [(c.name, c.is_dir(follow_symlinks=False)) for c in found]
            except OSError:
                continue
            for name, is_dir in children:
                child, child_under = directory + b"/" + os.fsencode(name), joined(under, name)
                if announce:
                    self._queue(watcher, child_under, "create")
                if not is_dir:
                    continue
                try:
                    self._add_dir(watcher, child, child_under)
                except AgentError as exc:
                    if exc.code == "resource_exhausted":
                        raise
                    continue
                stack.append((child, child_under))

    def _unwatch(self, watcher: Watcher) -> None:
        """Remove the watcher's kernel watches (those no other watcher shares)."""
        for wd in watcher.wds:
            owners = self.dirs.get(wd, {})
            owners.pop(watcher.id, None)
            if not owners:
                self.dirs.pop(wd, None)
                _LIBC.inotify_rm_watch(self.fd, wd)
        watcher.wds.clear()

    def _fail(self, watcher: Watcher, reason: str) -> None:
        """Stop watching; its queued events are still taken, then `reason` is the error."""
        if watcher.failure is None:
            watcher.failure = reason
            self._unwatch(watcher)

    # -- events --

    def on_readable(self) -> None:
        try:
            data = os.read(self.fd, INOTIFY_READ_BYTES)
        except BlockingIOError:
            return
        offset = 0
        while offset + _INOTIFY_EVENT.size <= len(data):
            wd, mask, _, length = _INOTIFY_EVENT.unpack_from(data, offset)
            offset += _INOTIFY_EVENT.size
            name = data[offset : offset + length].rstrip(b"\0")
            offset += length
            self._on_event(wd, mask, name)
        self.answer_waiting()

    def _on_event(self, wd: int, mask: int, name: bytes) -> None:
        if mask & IN_Q_OVERFLOW:
            for each in self.watchers.values():
                self._fail(each, "the kernel's event queue overflowed; events were lost")
            return
        owners = self.dirs.get(wd)
        if not owners:
            return  # removed by us, its last events still coming
        if mask & IN_IGNORED:  # the directory is gone: the kernel dropped its watch
            del self.dirs[wd]
            for watcher_id in owners:
                if watcher_id in self.watchers:
                    self.watchers[watcher_id].wds.discard(wd)
            return
        for watcher_id, under in list(owners.items()):
            watcher = self.watchers.get(watcher_id)
            if watcher is not None and watcher.failure is None:
                with self.files.acting_as(watcher.user):
                    self._on_watcher_event(watcher, mask, under, name)

    def _on_watcher_event(self, watcher: Watcher, mask: int, under: bytes, name: bytes) -> None:
        if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
            if under:
                return  # a subdirectory's own end: its parent reported it by name
            relative = b"."
        else:
            relative = joined(under, name)
        for bits, kind in WATCH_EVENT_TYPES:
            if mask & bits:
                self._queue(watcher, relative, kind)
        new_dir = mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO)
        if watcher.recursive and new_dir and watcher.failure is None:
            path = watcher.root + b"/" + relative
            try:
                self._add_dir(watcher, path, relative)
                self._add_tree(watcher, path, relative, announce=True)
            except AgentError as exc:
                if exc.code == "resource_exhausted":
                    self._fail(watcher, exc.message)

    def _queue(self, watcher: Watcher, relative: bytes, kind: str) -> None:
        if len(relative) > WATCH_NAME_MAX_BYTES:
            return
        event: Json = {"name": relative.decode("utf-8", "replace"), "type": kind}
        if watcher.with_entry:
            path = watcher.root if relative == b"." else watcher.root + b"/" + relative
            # Gone already (a remove, a rename away): no entry, as in envd.
            with contextlib.suppress(OSError):
                event["entry"] = self.files.entry(os.fsdecode(path))
        encoded = json.dumps(event, separators=(",", ":"))  # ASCII: its length is its size
        size_bytes = len(encoded) + 1
        if (
            len(watcher.queue) >= WATCH_QUEUE_MAX_EVENTS
            or watcher.queued_bytes + size_bytes > WATCH_QUEUE_MAX_BYTES
            or self.queued_bytes + size_bytes > WATCH_BOX_QUEUE_MAX_BYTES
        ):
            self._fail(
                watcher,
                f"more than {WATCH_QUEUE_MAX_EVENTS} events ({WATCH_QUEUE_MAX_BYTES} bytes) "
                "waited to be read; later ones were lost: list the directory, then watch again",
            )
            return
        watcher.queue.append(encoded)
        watcher.queued_bytes += size_bytes
        self.queued_bytes += size_bytes


def joined(under: bytes, name: str | bytes) -> bytes:
    """`name` under the relative directory `under` ("" for the watched one)."""
    name_bytes = os.fsencode(name)
    return under + b"/" + name_bytes if under else name_bytes


def error_json(error: AgentError) -> Json:
    return {"code": error.code, "message": error.message}


# --- the agent -----------------------------------------------------------------------

# The ops that run as the request's `user` (see the ops table at the top).
USER_OPS = frozenset(
    ("start", "open", "stat", "list_dir", "list_open", "make_dir", "move", "remove", "watch_start")
)


class Agent:
    """One event loop: requests, children's output and input, signals, deadlines."""

    def __init__(self, channel: Channel, home: str) -> None:
        self.channel = channel
        self.box_root = is_box_root()
        # Who commands run as: the box's user when the agent is box root, else itself.
        self.user_identity = (SANDBOX_UID, SANDBOX_GID, [SANDBOX_GID]) if self.box_root else None
        if self.box_root:
            use_user_file_ids()  # it also clears the dumpable flag the change reset
        self.files = Files(home, self.box_root)
        self.home = home
        self.base_env = self._base_env()
        self.procs: dict[int, Proc] = {}
        self.fd_reader: dict[int, Proc] = {}  # output fd -> its process
        self.fd_writer: dict[int, Proc] = {}  # input fd -> its process
        self.open_files: dict[int, OpenFile] = {}
        self.listings: dict[int, Listing] = {}
        self.next_handle = 1
        # Output sent and not yet acknowledged, by pid (it outlives the process) and in all.
        self.unacked: dict[int, int] = {}
        self.unacked_total = 0
        self.stopping = False
        self.selector = selectors.DefaultSelector()
        self.wakeup_r, self.wakeup_w = os.pipe()
        self.watches = Watches(channel, self.files, self.selector)
        self.sudo = SudoServer(self.selector) if self.box_root else None
        self.ops: dict[str, Callable[[Json], Json | None]] = {
            "ping": lambda _: {"version": PROTOCOL_VERSION},
            "start": self.op_start,
            "connect": self.op_connect,
            "signal": self.op_signal,
            "input": self.op_input,
            "close_stdin": self.op_close_stdin,
            "resize": self.op_resize,
            "list": self.op_list,
            "open": self.op_open,
            "read": self.op_read,
            "write": self.op_write,
            "close": self.op_close,
            "stat": lambda m: {"entry": self.files.entry(self.files.resolve(arg_str(m, "path")))},
            "list_dir": lambda m: {
                "entries": self.files.list_dir(arg_str(m, "path"), arg_int(m, "depth", 1))
            },
            "list_open": self.op_list_open,
            "list_next": self.op_list_next,
            "list_close": self.op_list_close,
            "make_dir": lambda m: {"entry": self.files.make_dir(arg_str(m, "path"))},
            "move": lambda m: {
                "entry": self.files.move(arg_str(m, "source"), arg_str(m, "destination"))
            },
            "remove": self.op_remove,
            "ack": self.op_ack,
            "watch_start": self.watches.op_watch_start,
            "watch_take": self.watches.op_watch_take,
            "watch_stop": self.watches.op_watch_stop,
        }

    def _base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("PATH", DEFAULT_PATH)
        env.setdefault("HOME", self.home)
        try:
            name = pwd.getpwuid(SANDBOX_UID if self.box_root else os.getuid()).pw_name
        except KeyError:
            name = "user"
        env.setdefault("USER", name)
        env.setdefault("LOGNAME", name)
        return env

    # -- the loop --

    def run(self) -> None:
        os.set_blocking(self.wakeup_w, False)
        signal.set_wakeup_fd(self.wakeup_w)
        as_init = ignore_signals_from_the_box()
        for signum in (signal.SIGCHLD, *STOP_SIGNALS):
            # As init, SIG_DFL (also for Python's own SIGINT handler) makes the kernel drop it.
            stays_default = as_init and signum != signal.SIGCHLD
            signal.signal(signum, signal.SIG_DFL if stays_default else lambda *_: None)
        become_subreaper()
        self.selector.register(self.channel.in_fd, selectors.EVENT_READ)
        self.selector.register(self.wakeup_r, selectors.EVENT_READ)
        ready = {"event": "ready", "version": PROTOCOL_VERSION, "pid": os.getpid()}
        self.channel.send({**ready, "home": self.home})
        while not self.stopping:
            for key, events in self.selector.select(self._timeout()):
                self._guarded(self._on_ready, key.fd, events)
            self._guarded(self._kill_overdue)
            self._guarded(self.watches.answer_waiting)
        self._shutdown()

    def _guarded(self, func: Callable[..., None], *args: Any) -> None:
        """The loop's boundary: log a bug, and carry on serving everyone else."""
        try:
            func(*args)
        except Exception as exc:  # noqa: BLE001 (the agent must outlive its own bugs)
            print(f"sandboxd agent: {func.__name__}: {exc!r}", file=sys.stderr, flush=True)

    def _timeout(self) -> float | None:
        deadlines = [p.deadline for p in self.procs.values() if p.deadline is not None]
        if (waits_until := self.watches.next_deadline()) is not None:
            deadlines.append(waits_until)
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _on_ready(self, fd: int, events: int) -> None:
        if fd == self.channel.in_fd:
            self._on_requests()
        elif fd == self.wakeup_r:
            self._on_signals()
        elif fd == self.watches.fd:
            self.watches.on_readable()
        elif self.sudo is not None and self.sudo.owns(fd):
            self.sudo.on_readable(fd)
        else:
            if events & selectors.EVENT_READ and fd in self.fd_reader:
                self._on_output(fd)
            if events & selectors.EVENT_WRITE and fd in self.fd_writer:
                self._flush_input(self.fd_writer[fd])

    def _watch(self, fd: int) -> None:
        """(Re)register `fd` for whatever its process needs from it now: its output only
        while there is credit to send it."""
        reader = self.fd_reader.get(fd)
        events = selectors.EVENT_READ if reader and self._credit_bytes(reader) > 0 else 0
        proc = self.fd_writer.get(fd)
        if proc is not None and proc.pending:
            events |= selectors.EVENT_WRITE
        registered = fd in self.selector.get_map()
        if events and registered:
            self.selector.modify(fd, events)
        elif events:
            self.selector.register(fd, events)
        elif registered:
            self.selector.unregister(fd)

    # -- requests --

    def _on_requests(self) -> None:
        lines = self.channel.receive()
        if lines is None:
            self.stopping = True  # the host is gone: so is the sandbox
            return
        for line in lines:
            self._handle(line)

    def _handle(self, line: bytes) -> None:
        request_id: int | None = None
        try:
            if line is OVERSIZED:
                raise AgentError("invalid_argument", f"request line over {MAX_LINE_BYTES} bytes")
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise AgentError("invalid_argument", "a request must be a JSON object")
            request_id = arg_int(msg, "id")
            name = msg.get("op")
            op = self.ops.get(name) if isinstance(name, str) else None
            if op is None:
                raise AgentError("invalid_argument", f"unknown op {msg.get('op')!r}")
            if name in USER_OPS:
                with self.files.acting_as(arg_user(msg)):
                    result = op(msg)
            else:
                result = op(msg)
        except AgentError as exc:
            self.answer_error(request_id, exc)
        except OSError as exc:
            self.answer_error(request_id, os_error(exc))
        except (ValueError, TypeError, UnicodeError) as exc:
            self.answer_error(request_id, AgentError("invalid_argument", str(exc)))
        except Exception as exc:  # noqa: BLE001 (a bug answers `internal`, the box lives on)
            self.answer_error(request_id, AgentError("internal", repr(exc)))
        else:
            if result is not None:  # None: answered later (input, close_stdin)
                self.channel.send({"id": request_id, "ok": True, "result": result})

    def answer_error(self, request_id: int | None, exc: AgentError) -> None:
        error = {"code": exc.code, "message": exc.message}
        self.channel.send({"id": request_id, "ok": False, "error": error})

    # -- process ops --

    def op_start(self, msg: Json) -> Json | None:
        request = self._start_request(msg)  # checks everything: nothing may fail after spawning
        timeout_ms, with_stdin = arg_int(msg, "timeout_ms", 0), arg_bool(msg, "stdin", True)
        identity, env = self.user_identity, {**self.base_env, **request["envs"]}
        if self.files.user == "root":  # as sudo's root commands: one function decides that
            identity = identity_of(ROOT_UID)
            env = {**self.base_env, **self._root_env(), **request["envs"]}
        if request["pty"]:
            proc = self._spawn_pty(request, env, msg["pty"], identity)
        else:
            proc = self._spawn_pipes(request, env, with_stdin, identity)
        if timeout_ms > 0:
            proc.deadline = time.monotonic() + timeout_ms / 1000
        earlier = self.procs.get(proc.pid)
        if earlier is not None:  # an ended process's pid, reused while its output waited
            self._end_now(earlier)
        self.procs[proc.pid] = proc
        # Answer before watching the output, so the pid reaches the host before its data.
        self.channel.send({"id": msg["id"], "ok": True, "result": {"pid": proc.pid}})
        for fd in (*proc.out_fds, *([proc.in_fd] if proc.in_fd is not None else [])):
            self._watch(fd)
        return None

    def _root_env(self) -> dict[str, str]:
        """What a root command's environment says of its user (the rest is the box's)."""
        return {"HOME": self.files.home, "USER": "root", "LOGNAME": "root"}

    def _start_request(self, msg: Json) -> Json:
        """The start request, checked: what `list` reports of the process later. The cwd
        defaults to the acting user's home (/root for root, as in E2B)."""
        cwd = self.files.resolve(arg_opt_str(msg, "cwd") or self.files.home)
        if not os.path.isdir(cwd):
            raise AgentError("invalid_argument", f"cwd '{cwd}' does not exist")
        if msg.get("pty") is not None and not isinstance(msg["pty"], dict):
            raise AgentError("invalid_argument", "'pty' must be an object")
        return {
            "cmd": arg_str(msg, "cmd"),
            "args": arg_str_list(msg, "args"),
            "envs": arg_str_map(msg, "envs"),
            "cwd": cwd,
            "tag": arg_opt_str(msg, "tag"),
            "pty": msg.get("pty") is not None,
        }

    def _spawn_pipes(
        self, request: Json, env: dict[str, str], with_stdin: bool, identity: Identity | None
    ) -> Proc:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe() if with_stdin else (subprocess.DEVNULL, -1)
        try:
            popen = self._popen(request, env, (in_r, out_w, err_w), False, identity)
        except BaseException:
            for fd in (out_r, err_r, in_w):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            for fd in (out_w, err_w, in_r):
                if fd >= 0:
                    os.close(fd)
        proc = Proc(popen, request, None)
        for fd, stream in ((out_r, "stdout"), (err_r, "stderr")):
            os.set_blocking(fd, False)
            proc.out_fds[fd] = stream
            self.fd_reader[fd] = proc
        if in_w >= 0:
            os.set_blocking(in_w, False)
            proc.in_fd = in_w
            self.fd_writer[in_w] = proc
        return proc

    def _spawn_pty(
        self, request: Json, env: dict[str, str], size: Json, identity: Identity | None
    ) -> Proc:
        master, slave = os.openpty()
        try:
            set_winsize(master, arg_int(size, "cols", 80), arg_int(size, "rows", 24))
            popen = self._popen(request, env, (slave, slave, slave), True, identity)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        proc = Proc(popen, request, master)
        os.set_blocking(master, False)
        proc.out_fds[master] = "pty"
        proc.in_fd = master
        self.fd_reader[master] = proc
        self.fd_writer[master] = proc
        return proc

    def _popen(
        self,
        request: Json,
        env: dict[str, str],
        stdio: tuple[int, int, int],
        take_tty: bool,
        identity: Identity | None,
    ) -> subprocess.Popen[bytes]:
        """Start it as `identity` (None: as the agent). The fork happens while the agent
        acts as the request's user, so Popen's chdir to the cwd is checked as that user."""
        stdin, stdout, stderr = stdio
        try:
            return subprocess.Popen(
                [request["cmd"], *request["args"]],
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                cwd=request["cwd"],
                env=env,
                start_new_session=True,  # its own group: signals reach what it spawned
                preexec_fn=child_setup(take_tty, identity),
            )
        except OSError as exc:
            text = f"error starting process '{request['cmd']}': {exc.strerror or exc}"
            raise AgentError("invalid_argument", text) from None

    def _proc(self, msg: Json) -> Proc:
        pid = arg_int(msg, "pid")
        proc = self.procs.get(pid)
        if proc is None:
            raise AgentError("not_found", f"process with pid {pid} not found")
        return proc

    def op_connect(self, msg: Json) -> Json:
        return {"pid": self._proc(msg).pid}

    def op_signal(self, msg: Json) -> Json:
        proc, signum = self._proc(msg), parse_signal(msg.get("signal"))
        if proc.exit_status is not None:
            return {}  # reaped: its pid may be someone else's by now
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            os.kill(proc.pid, signum)  # not reaped yet, so the pid is still ours
        return {}

    def op_input(self, msg: Json) -> Json | None:
        proc, data = self._proc(msg), arg_bytes(msg, "data")
        if proc.in_fd is None or proc.close_after:
            raise AgentError("failed_precondition", f"stdin of process {proc.pid} is closed")
        proc.pending.append((msg["id"], memoryview(data)))
        self._flush_input(proc)
        return None

    def op_close_stdin(self, msg: Json) -> Json | None:
        proc = self._proc(msg)
        if proc.pty_fd is not None:
            raise AgentError("failed_precondition", "a pty has no stdin to close: send EOT")
        if proc.in_fd is None:
            return {}
        proc.close_after.append(msg["id"])
        self._flush_input(proc)
        return None

    def op_resize(self, msg: Json) -> Json:
        proc = self._proc(msg)
        if proc.pty_fd is None:
            raise AgentError("failed_precondition", f"process {proc.pid} has no pty")
        set_winsize(proc.pty_fd, arg_int(msg, "cols"), arg_int(msg, "rows"))
        return {}

    def op_list(self, _: Json) -> Json:
        running = [p for p in self.procs.values() if p.exit_status is None]
        listed: list[Json] = []
        listed_bytes = 0
        for proc in running[:LIST_PROCESSES_MAX_ENTRIES]:
            entry = bounded_process_entry(proc.pid, proc.request)
            listed_bytes += len(json.dumps(entry))
            if listed_bytes > LIST_PROCESSES_MAX_BYTES:
                break
            listed.append(entry)
        return {"processes": listed, "omitted": len(running) - len(listed)}

    def op_remove(self, msg: Json) -> Json:
        self.files.remove(arg_str(msg, "path"))
        return {}

    # -- process output, under flow control --

    def op_ack(self, msg: Json) -> None:
        """sandboxd has passed on `bytes` of the process's output: that much more may go.
        Never answered (one per chunk would double the traffic); acks past what is owed
        count as what is owed."""
        pid, count = arg_int(msg, "pid"), arg_int(msg, "bytes")
        owed = self.unacked.get(pid, 0)
        count = max(0, min(count, owed))
        box_was_full = self.unacked_total >= BOX_OUTPUT_WINDOW_BYTES
        if owed > count:
            self.unacked[pid] = owed - count
        else:
            self.unacked.pop(pid, None)
        self.unacked_total -= count
        proc = self.procs.get(pid)
        self._rewatch_outputs(list(self.procs.values()) if box_was_full else [proc] if proc else [])

    def _credit_bytes(self, proc: Proc) -> int:
        """How much of `proc`'s output may be sent now without passing either window."""
        own = PROCESS_OUTPUT_WINDOW_BYTES - self.unacked.get(proc.pid, 0)
        return min(own, BOX_OUTPUT_WINDOW_BYTES - self.unacked_total)

    def _rewatch_outputs(self, procs: list[Proc]) -> None:
        for proc in procs:
            for fd in list(proc.out_fds):
                self._watch(fd)

    def _on_output(self, fd: int) -> None:
        proc = self.fd_reader[fd]
        size = min(OUTPUT_CHUNK_BYTES, self._credit_bytes(proc))
        size = min(size, proc.drain_left.get(fd, size))
        if size <= 0:
            self._watch(fd)  # out of credit: wait for an ack
            return
        try:
            data = os.read(fd, size)
        except BlockingIOError:
            if proc.exit_status is None:
                return
            data = b""  # ended, and nothing more in the pipe now: the drain is done
        except OSError:  # EIO: a pty whose last holder closed it
            data = b""
        if data:
            self._emit_data(proc, fd, data)
            if fd in proc.drain_left:
                proc.drain_left[fd] -= len(data)
        if not data or proc.drain_left.get(fd, 1) <= 0:
            self._close_output(proc, fd)
            if proc.exit_status is not None:
                self._end_if_drained(proc)

    def _emit_data(self, proc: Proc, fd: int, data: bytes) -> None:
        stream = proc.out_fds[fd]
        self.channel.send({"event": "data", "pid": proc.pid, "stream": stream, "data": b64(data)})
        self.unacked[proc.pid] = self.unacked.get(proc.pid, 0) + len(data)
        self.unacked_total += len(data)
        if self.unacked_total >= BOX_OUTPUT_WINDOW_BYTES:
            self._rewatch_outputs(list(self.procs.values()))  # the whole box waits for acks
        elif self._credit_bytes(proc) <= 0:
            self._rewatch_outputs([proc])

    def _close_output(self, proc: Proc, fd: int) -> None:
        proc.out_fds.pop(fd, None)
        proc.drain_left.pop(fd, None)
        self.fd_reader.pop(fd, None)
        self._watch(fd)
        if fd != proc.pty_fd:  # a pty master is also the input: closed in _end_if_drained
            os.close(fd)

    def _flush_input(self, proc: Proc) -> None:
        fd = proc.in_fd
        if fd is None:
            return
        while proc.pending:
            request_id, data = proc.pending[0]
            try:
                written = os.write(fd, data[:OUTPUT_CHUNK_BYTES])
            except BlockingIOError:
                break
            except OSError as exc:  # EPIPE: nobody reads it any more
                self._fail_input(proc, AgentError("failed_precondition", f"stdin: {exc}"))
                self._close_input(proc)
                return
            data = data[written:]
            if data:
                proc.pending[0] = (request_id, data)
            else:
                proc.pending.popleft()
                self.channel.send({"id": request_id, "ok": True, "result": {}})
        if not proc.pending and proc.close_after:
            self._close_input(proc)
        else:
            self._watch(fd)

    def _fail_input(self, proc: Proc, exc: AgentError) -> None:
        while proc.pending:
            self.answer_error(proc.pending.popleft()[0], exc)

    def _close_input(self, proc: Proc) -> None:
        """Close a stdin pipe (never a pty master, which is also the output)."""
        fd = proc.in_fd
        if fd is None or fd == proc.pty_fd:
            return
        proc.in_fd = None
        self.fd_writer.pop(fd, None)
        self._watch(fd)
        os.close(fd)
        for request_id in proc.close_after:
            self.channel.send({"id": request_id, "ok": True, "result": {}})
        proc.close_after.clear()

    # -- children's ends --

    def _on_signals(self) -> None:
        try:
            received = os.read(self.wakeup_r, 4096)
        except BlockingIOError:
            return
        if any(signum in received for signum in STOP_SIGNALS):
            self.stopping = True
        self._reap()

    def _reap(self) -> None:
        """Wait for every child that has ended, ours or an orphan we inherited."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.sudo is not None and self.sudo.finish(pid, status):
                continue
            proc = self.procs.get(pid)
            if proc is not None and proc.exit_status is None:  # not an orphan of reused pid
                self._finish(proc, status)

    def _finish(self, proc: Proc, status: int) -> None:
        """A process was reaped: send what it had written before it ended (under flow
        control, so maybe later), then its end. Not what its orphans write after."""
        proc.popen.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        proc.exit_status, proc.deadline = status, None
        self._fail_input(proc, AgentError("failed_precondition", "the process has ended"))
        self._close_input(proc)  # also answers close_stdin requests still waiting
        if proc.pty_fd is not None:
            self.fd_writer.pop(proc.pty_fd, None)
        for fd in list(proc.out_fds):
            left = PTY_DRAIN_MAX_BYTES if fd == proc.pty_fd else bytes_in_pipe(fd)
            if left > 0:
                proc.drain_left[fd] = left
                self._watch(fd)
            else:
                self._close_output(proc, fd)
        self._end_if_drained(proc)

    def _end_if_drained(self, proc: Proc) -> None:
        """Report the end of a reaped process once its output is all sent; forget it."""
        if proc.out_fds or self.procs.get(proc.pid) is not proc:
            return
        if proc.pty_fd is not None:
            self._watch(proc.pty_fd)  # neither reader nor writer now: unregistered
            os.close(proc.pty_fd)
        del self.procs[proc.pid]
        assert proc.exit_status is not None
        self.channel.send(end_event(proc.pid, proc.exit_status))

    def _end_now(self, proc: Proc) -> None:
        """Its pid was given to a new process: drop what it still had to send, end it."""
        for fd in list(proc.out_fds):
            self._close_output(proc, fd)
        self._end_if_drained(proc)

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for proc in list(self.procs.values()):
            if proc.deadline is not None and proc.deadline <= now:
                proc.deadline = None  # once: the end event follows when it is reaped
                kill_group(proc.pid)

    def _shutdown(self) -> None:
        if self.sudo is not None:
            self.sudo.shutdown()
        for proc in self.procs.values():
            if proc.exit_status is None:
                kill_group(proc.pid)

    # -- file ops --

    def op_open(self, msg: Json) -> Json:
        mode = arg_str(msg, "mode", "r")
        if mode not in ("r", "w"):
            raise AgentError("invalid_argument", "'mode' must be 'r' or 'w'")
        if len(self.open_files) + len(self.listings) >= MAX_OPEN_FILES:
            raise AgentError("resource_exhausted", f"over {MAX_OPEN_FILES} files open")
        path = self.files.resolve(arg_str(msg, "path"))
        metadata = arg_str_map(msg, "metadata")
        if problem := metadata_problem(metadata):
            raise AgentError("invalid_argument", problem)
        if mode == "r":
            if os.path.isdir(path):
                raise AgentError("invalid_argument", f"path '{path}' is a directory")
            file: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by op_close
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            file = open(path, "wb")  # noqa: SIM115 - closed by op_close
        handle, self.next_handle = self.next_handle, self.next_handle + 1
        self.open_files[handle] = OpenFile(path, mode, file, metadata, self.files.user)
        return {"handle": handle, "path": path, "size": os.fstat(file.fileno()).st_size}

    def _open_file(self, msg: Json, mode: str) -> OpenFile:
        handle = arg_int(msg, "handle")
        opened = self.open_files.get(handle)
        if opened is None or opened.mode != mode:
            raise AgentError("invalid_argument", f"no file open for '{mode}' as handle {handle}")
        return opened

    def op_read(self, msg: Json) -> Json:
        opened = self._open_file(msg, "r")
        max_bytes = min(max(arg_int(msg, "max_bytes", 1 << 20), 1), READ_CHUNK_MAX_BYTES)
        data = opened.file.read(max_bytes)
        return {"data": b64(data), "eof": len(data) < max_bytes}

    def op_write(self, msg: Json) -> Json:
        opened = self._open_file(msg, "w")
        opened.file.write(arg_bytes(msg, "data"))
        return {}

    def op_close(self, msg: Json) -> Json:
        handle = arg_int(msg, "handle")
        opened = self.open_files.pop(handle, None)
        if opened is None:
            raise AgentError("invalid_argument", f"no file open as handle {handle}")
        opened.file.close()  # a write's ENOSPC can surface here, as resource_exhausted
        if opened.mode != "w":
            return {}
        with self.files.acting_as(opened.user):
            replace_metadata(opened.path, opened.metadata or {})
            return {"entry": self.files.entry(opened.path)}

    def op_list_open(self, msg: Json) -> Json:
        if len(self.open_files) + len(self.listings) >= MAX_OPEN_FILES:
            raise AgentError("resource_exhausted", f"over {MAX_OPEN_FILES} files open")
        listing = self.files.listing(arg_str(msg, "path"), arg_int(msg, "depth", 1))
        handle, self.next_handle = self.next_handle, self.next_handle + 1
        self.listings[handle] = listing
        return {"handle": handle}

    def op_list_next(self, msg: Json) -> Json:
        handle = arg_int(msg, "handle")
        listing = self.listings.get(handle)
        if listing is None:
            raise AgentError("invalid_argument", f"no listing open as handle {handle}")
        max_bytes = min(max(arg_int(msg, "max_bytes", LIST_PAGE_MAX_BYTES), 1), LIST_PAGE_MAX_BYTES)
        try:
            with self.files.acting_as(listing.user):
                entries, done = listing.page(max_bytes)
        except BaseException:
            del self.listings[handle]  # a walk past a limit is over
            raise
        if done:
            del self.listings[handle]
        return {"entries": entries, "done": done}

    def op_list_close(self, msg: Json) -> Json:
        self.listings.pop(arg_int(msg, "handle"), None)  # a finished listing closed itself
        return {}


def bytes_in_pipe(fd: int) -> int:
    """What is waiting to be read from a pipe (FIONREAD); 0 when it cannot tell."""
    try:
        count: int = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
    except OSError:
        return 0
    return max(count, 0)


def kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
            return
        except ProcessLookupError:
            continue


def set_dumpable(dumpable: bool) -> bool:
    """PR_SET_DUMPABLE: when off, processes of the same uid without CAP_SYS_PTRACE can no
    longer ptrace this one or open its /proc/<pid>/{fd,mem,environ}. Returns success."""
    try:
        return int(_LIBC.prctl(PR_SET_DUMPABLE, int(dumpable), 0, 0, 0)) == 0
    except AttributeError:
        return False


def ignore_signals_from_the_box() -> bool:
    """As the PID namespace's init, the kernel delivers to us only the signals we handle
    (from inside the namespace; SIGKILL/SIGSTOP from the host still work). So the stop
    signals are handled only when we are not init. Returns whether we are init."""
    return os.getpid() == 1


def become_subreaper() -> None:
    """Orphans then come to the agent to be reaped even where it is not PID 1 (tests)."""
    _LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def take_stdio() -> Channel:
    """Keep the protocol on private descriptors, so a stray write to fd 1 (or a read
    from fd 0) by anything in this process cannot corrupt it."""
    in_fd, out_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    return Channel(in_fd, out_fd)


def default_home() -> str:
    """$HOME when it names a directory (the box sets /home/user; reduced isolation runs
    the agent on the host with HOME at the box's directory), else /home/user."""
    home = os.environ.get("HOME", "")
    return home if os.path.isabs(home) and os.path.isdir(home) else DEFAULT_HOME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="sandboxd in-sandbox agent")
    parser.add_argument("--home", help="home and default cwd (default: $HOME, /home/user)")
    options = parser.parse_args(argv)
    home = os.path.abspath(options.home or default_home())
    if not set_dumpable(False):
        print("sandboxd agent: cannot make itself undumpable", file=sys.stderr, flush=True)
    Agent(take_stdio(), home).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
