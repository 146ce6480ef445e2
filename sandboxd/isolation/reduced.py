"""The "reduced" isolation level: for machines without root or cgroups, or when forced.

A box is `prlimit <limits> -- [setpriv <box uid>] bwrap ... -- command` (bwrap with a user
namespace), or the same without bwrap in a directory of its own when bwrap cannot make a
user namespace here ("plain"). Box code never runs as host root: as root, sandboxd gives
each box its own unprivileged host uid (setpriv, after prlimit so the limits are set by
root and cannot be raised), which makes RLIMIT_NPROC a per-box limit; without root it runs
as sandboxd's own uid. Limits are rlimits, set by util-linux prlimit so no preexec_fn runs
in a threaded server. Pause is SIGSTOP of the tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

from sandboxd.isolation.base import (
    AGENT_PATH_INSIDE,
    BoxSpec,
    IsolationLevel,
    OomKill,
    agent_script_on_host,
    sudo_script_on_host,
)
from sandboxd.isolation.bwrap import (
    HELPER_ENV,
    BwrapPlan,
    Tmpfs,
    bwrap_argv,
    open_env_fd,
    open_etc_fds,
    sandbox_env,
    setpriv_argv,
)
from sandboxd.isolation.paths import RUNTIME_ROOT, check_sandbox_id
from sandboxd.isolation.proctree import create_time_of, kill_if_same
from sandboxd.isolation.reduced_box import ReducedBox
from sandboxd.isolation.reduced_uid import (
    capability_blocker,
    kill_uid,
    uid_switch_blocker,
    uids_with_processes,
)
from sandboxd.isolation.seccomp import seccomp_fd
from sandboxd.isolation.uids import HOST_UID_COUNT, HostUidPool, accounts_in_range
from sandboxd.private_files import write_private_text

log = logging.getLogger(__name__)

PRLIMIT = "/usr/bin/prlimit"
REDUCED_LIMITATIONS: tuple[str, ...] = (
    "Memory is limited per process (RLIMIT_DATA), not per box: a box may use its limit "
    "once in every process. Running out shows as MemoryError or a failed allocation, "
    "not as an OOM kill. A SIGKILL of the box's main process that sandboxd did not send "
    "is logged as a suspected OOM kill, never counted as one (box code can send it too); "
    "kills of other processes are not seen.",
    "CPU is not limited; CPU % is measured per process with psutil.",
    "Pause is SIGSTOP/SIGCONT of the process tree: a process can see it was stopped, and "
    "one that leaves the tree is not paused.",
    "Memory use is summed RSS (shared pages count once per process); no page cache figure.",
)
OWN_UID_LIMITATIONS: tuple[str, ...] = (
    "Each box runs as an unprivileged host uid of its own (never root, no capabilities); "
    "the process limit is that uid's RLIMIT_NPROC, so it holds per box (threads count).",
)
SHARED_UID_LIMITATIONS: tuple[str, ...] = (
    "Boxes run as the user that runs sandboxd (never root), all as the same uid: they may "
    "signal each other, and the process limit is RLIMIT_NPROC of that user, which counts "
    "its every process: a box may start SANDBOXD_MAX_PROCESSES more than the user ran "
    "when it started, and what one box runs counts against the others.",
)
BWRAP_LIMITATIONS: tuple[str, ...] = (
    "The disk is two tmpfs mounts (home: 3/4 of the disk size, /tmp: 1/4) held in RAM.",
)
PLAIN_LIMITATIONS: tuple[str, ...] = (
    "No namespaces: the box sees the host's files, processes and network as its host uid "
    "does, and its home is a host directory of its own, not /home/user.",
    "The disk size is not enforced, only each file's size (RLIMIT_FSIZE); usage is "
    "measured by walking the box's directory.",
    "A process that daemonizes out of the box's process tree is not paused (and, unless "
    "the box has a uid of its own, not killed).",
)


class UnprivilegedBoxesUnavailable(PermissionError):
    """Box code could not run here unprivileged and with a process limit, so sandboxd
    refuses to start; the message says what is missing. (A PermissionError: the command
    line reports it as "cannot start", as a data dir it may not write.)"""


def uid_range_blocker(host_uid_base: int, host_uid_count: int = HOST_UID_COUNT) -> str | None:
    """Why the box uid range may not be used (it holds a host account's uid or gid, which a
    box would then share), or None. For every level that gives boxes uids of their own."""
    taken = accounts_in_range(host_uid_base, host_uid_count)
    if not taken:
        return None
    last = host_uid_base + host_uid_count - 1
    return (
        f"the box uids {host_uid_base}..{last} (SANDBOXD_HOST_UID_BASE) include {', '.join(taken)}"
    )


def reduced_blockers(host_uid_base: int, host_uid_count: int = HOST_UID_COUNT) -> list[str]:
    """What keeps reduced boxes from running unprivileged with a process limit here;
    empty when nothing does. As root: a free uid range and a working switch to it (tried
    for real, ~5 ms); otherwise: no capability a box would inherit."""
    blockers = []
    if not os.access(PRLIMIT, os.X_OK):
        blockers.append(f"{PRLIMIT} (util-linux) is not installed: no process limit")
    if os.geteuid() == 0:
        taken = uid_range_blocker(host_uid_base, host_uid_count)
        if taken is not None:
            blockers.append(taken)
        switch = uid_switch_blocker(host_uid_base)
        if switch is not None:
            blockers.append(switch)
    else:
        caps = capability_blocker()
        if caps is not None:
            blockers.append(caps)
    return blockers


def prlimit_argv(spec: BoxSpec, nproc: int) -> list[str]:
    """prlimit prefix: data (bytes), file size (bytes), processes, no core dumps."""
    return [
        PRLIMIT,
        f"--data={spec.memory_mb << 20}",
        f"--fsize={spec.disk_size_mb << 20}",
        f"--nproc={nproc}",
        "--core=0",
        "--",
    ]


def nproc_limit(max_processes: int) -> int:
    """RLIMIT_NPROC for a box run as sandboxd's own (unprivileged) uid: the limit counts
    the user's threads everywhere, so allow what the user already runs plus the box's
    share, but never above sandboxd's own hard limit (which it could not raise anyway)."""
    uid = os.getuid()
    running = 0
    for proc in psutil.process_iter(["uids", "num_threads"]):
        uids, threads = proc.info["uids"], proc.info["num_threads"]
        if uids is not None and uids.real == uid:
            running += int(threads or 0)
    hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    wanted = running + max_processes
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


class ReducedIsolation:
    """Boxes made of rlimits + bwrap (user namespace, tmpfs disk) or a plain process, each
    as its own host uid from `host_uids` (required as root), else as sandboxd's uid."""

    level: IsolationLevel = "reduced"

    def __init__(
        self,
        data_dir: Path,
        use_bwrap: bool = True,
        reasons: Sequence[str] = (),
        agent_script: Path | None = None,
        use_seccomp: bool = True,
        host_uids: HostUidPool | None = None,
        runtime_dir: Path | None = None,
    ) -> None:
        """`reasons` say why this level was chosen; they lead `limitations`. As root,
        `host_uids` gives each box its own uid, and plain boxes' homes are made under
        `runtime_dir` (default /run/sandboxd/reduced), which every uid may walk through
        (the data dir is private). ValueError as root without `host_uids`."""
        if os.geteuid() == 0 and host_uids is None:
            raise ValueError("as root, reduced boxes need host uids of their own (host_uids)")
        self.data_dir = data_dir
        self.boxes_dir = data_dir / "reduced"
        self.host_uids = host_uids
        own_dirs = host_uids is not None and not use_bwrap
        self.plain_root = (runtime_dir or RUNTIME_ROOT / "reduced") if own_dirs else self.boxes_dir
        self.use_bwrap = use_bwrap
        self.use_seccomp = use_seccomp
        self.agent_script = agent_script if agent_script is not None else agent_script_on_host()
        self.sudo_script = sudo_script_on_host()
        why = [f"Reduced isolation because: {reason}" for reason in reasons]
        uid = OWN_UID_LIMITATIONS if host_uids is not None else SHARED_UID_LIMITATIONS
        extra = BWRAP_LIMITATIONS if use_bwrap else PLAIN_LIMITATIONS
        self.limitations: Sequence[str] = (*why, *uid, *REDUCED_LIMITATIONS, *extra)
        self._callbacks: list[Callable[[OomKill], None]] = []
        self._boxes: dict[str, ReducedBox] = {}

    def on_oom(self, callback: Callable[[OomKill], None]) -> None:
        """Call `callback` when a box's main process is SIGKILLed by someone else."""
        self._callbacks.append(callback)

    def close(self) -> None:
        """Nothing runs in the background at this level; the runtime dirs of plain boxes
        (as root) are removed up to /run/sandboxd if no box is left in them."""
        if self.plain_root == self.boxes_dir:
            return
        for path in (self.plain_root, *self.plain_root.parents):
            if not path.is_relative_to(RUNTIME_ROOT):
                break
            try:
                path.rmdir()
            except FileNotFoundError:
                continue
            except OSError:  # not empty (live boxes, another sandboxd's): left
                break

    def live_boxes(self) -> list[ReducedBox]:
        """Boxes launched and not yet destroyed."""
        return list(self._boxes.values())

    def _emit(self, kill: OomKill) -> None:
        for callback in list(self._callbacks):
            try:
                callback(kill)
            except Exception:  # one failing callback must not hide the kill from others
                log.exception("OOM callback failed for %s", kill.sandbox_id)

    async def launch(self, spec: BoxSpec, command: Sequence[str]) -> ReducedBox:
        """Start `command` in a new box and return it."""
        check_sandbox_id(spec.sandbox_id)
        if spec.sandbox_id in self._boxes:
            raise ValueError(f"box {spec.sandbox_id} is already running")
        box_dir = self.boxes_dir / spec.sandbox_id
        plain_dir = self.plain_root / spec.sandbox_id
        # A uid no process runs as: a leftover of a crash, or another sandboxd's box, with
        # the same uid could signal this box and would count against its process limit.
        uid = self.host_uids.allocate(uids_with_processes()) if self.host_uids else None
        try:
            box_dir.mkdir(mode=0o700, parents=True, exist_ok=False)
            try:
                process, plain_dirs = await self._spawn(spec, command, box_dir, uid)
            except BaseException:
                shutil.rmtree(box_dir, ignore_errors=True)
                shutil.rmtree(plain_dir, ignore_errors=True)
                raise
        except BaseException:
            self._release(uid)
            raise
        started = create_time_of(process.pid)
        uid_text = "" if uid is None else f" {uid}"
        write_private_text(box_dir / "launch", f"{process.pid} {started}{uid_text}\n")
        extra_dirs = (plain_dir,) if plain_dir != box_dir else ()
        box = ReducedBox(
            spec, process, box_dir, plain_dirs, self._emit, self._forget, uid, extra_dirs
        )
        self._boxes[spec.sandbox_id] = box
        return box

    def _release(self, uid: int | None) -> None:
        if self.host_uids is not None and uid is not None:
            self.host_uids.release(uid)

    async def _spawn(
        self, spec: BoxSpec, command: Sequence[str], box_dir: Path, uid: int | None
    ) -> tuple[asyncio.subprocess.Process, tuple[Path, Path] | None]:
        # prlimit first: root sets soft and hard limits, which the box's uid cannot raise.
        if uid is None:
            prefix = prlimit_argv(spec, nproc_limit(spec.max_processes))
        else:  # a fresh uid: its count starts at 0, so the limit is the box's alone
            prefix = [*prlimit_argv(spec, spec.max_processes), *setpriv_argv(uid)]
        stderr_fd = os.open(box_dir / "stderr.log", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fds: list[int] = []
        try:
            dirs = None
            if self.use_bwrap:
                argv, env, cwd = self._bwrap_command(spec, command, fds), HELPER_ENV, "/"
            else:
                dirs = self._make_plain_dirs(self.plain_root / spec.sandbox_id, uid)
                argv, env, cwd = self._plain_command(spec, command, dirs)
            process = await asyncio.create_subprocess_exec(
                *prefix, *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=stderr_fd, pass_fds=fds, env=env, cwd=cwd, start_new_session=True,
            )  # fmt: skip
        finally:
            for fd in [stderr_fd, *fds]:
                os.close(fd)
        return process, dirs

    def _bwrap_command(self, spec: BoxSpec, command: Sequence[str], fds: list[int]) -> list[str]:
        disk_bytes = spec.disk_size_mb << 20
        home = Tmpfs(disk_bytes * 3 // 4, 0o700)
        tmp = Tmpfs(disk_bytes // 4, 0o1777)
        agent_fd = None
        if self.agent_script.is_file():
            agent_fd = os.open(self.agent_script, os.O_RDONLY | os.O_CLOEXEC)
            fds.append(agent_fd)
        sc_fd = None
        if self.use_seccomp:
            sc_fd = seccomp_fd()
            fds.append(sc_fd)
        etc = open_etc_fds(spec, fds)
        env_fd = open_env_fd(spec, fds)  # env vars through an fd: never on argv (ps)
        # The sudo client too: with no root here, it says so instead of "command not found".
        sudo_fd = None
        if self.sudo_script.is_file():
            sudo_fd = os.open(self.sudo_script, os.O_RDONLY | os.O_CLOEXEC)
            fds.append(sudo_fd)
        plan = BwrapPlan(spec, home, tmp, sc_fd, agent_fd, etc, env_fd, sudo_fd=sudo_fd)
        return bwrap_argv(plan, command)

    def _make_plain_dirs(self, plain_dir: Path, uid: int | None) -> tuple[Path, Path]:
        """home and tmp of a plain box, owned by its uid and closed to every other user;
        under a root-owned dir (0711 up to /) that holds a read-only copy of the agent."""
        if uid is not None:
            _make_walkable_dirs(plain_dir.parent)
        plain_dir.mkdir(mode=0o700, exist_ok=uid is None)  # without a uid: the box dir
        if uid is not None:
            os.chmod(plain_dir, 0o711)  # the box walks through to its home, lists nothing
        home, tmp = plain_dir / "home", plain_dir / "tmp"
        for path in (home, tmp):
            path.mkdir(mode=0o700)
            if uid is not None:
                os.chown(path, uid, uid)
        if self.agent_script.is_file():
            # A copy the box may read but not change, wherever the host's copy lives.
            agent = plain_dir / "agent.py"
            shutil.copyfile(self.agent_script, agent)
            os.chmod(agent, 0o444)
        return home, tmp

    def _plain_command(
        self, spec: BoxSpec, command: Sequence[str], dirs: tuple[Path, Path]
    ) -> tuple[list[str], dict[str, str], str]:
        home, tmp = dirs
        env = sandbox_env(spec) | {"HOME": str(home), "TMPDIR": str(tmp)}
        # There is no /opt/sandboxd here: point the agent's path at the box's copy.
        agent = str(home.parent / "agent.py")
        argv = [agent if arg == AGENT_PATH_INSIDE else arg for arg in command]
        return argv, env, str(home)

    def _forget(self, box: ReducedBox) -> None:
        self._boxes.pop(box.sandbox_id, None)
        self._release(box.host_uid)

    async def cleanup_leftovers(self) -> list[str]:
        """Kill the process trees a dead run left (if the PID still names the same
        process), and every process of their own uids, and delete their directories
        (whoever owns the files in them). Returns what was done, one line each."""
        done = []
        for name in sorted(set(_entries(self.boxes_dir)) | set(_entries(self.plain_root))):
            if name in self._boxes:
                continue
            box_dir = self.boxes_dir / name
            if await self._kill_recorded(box_dir / "launch"):
                done.append(f"killed the processes of {name}")
            for path in dict.fromkeys((box_dir, self.plain_root / name)):
                if path.exists():
                    shutil.rmtree(path, ignore_errors=True)
                    done.append(f"deleted {path}")
        for line in done:
            log.info("cleanup: %s", line)
        return done

    async def _kill_recorded(self, launch_file: Path) -> bool:
        """Kill what the launch file names: the tree (if its PID is still the process it
        was) and, if the box had a uid of this pool, everything running as that uid."""
        try:
            fields = launch_file.read_text().split()  # pid, start time, uid if any
        except OSError:
            return False
        killed = False
        with contextlib.suppress(ValueError, IndexError):  # no start time: it died at once
            killed = kill_if_same(int(fields[0]), float(fields[1]))
        uid = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else None
        pool = self.host_uids
        if uid is not None and pool is not None and pool.base <= uid < pool.base + pool.count:
            try:
                await kill_uid(uid)
                killed = True
            except TimeoutError:  # e.g. stuck in the kernel: the uid stays busy, never reused
                log.warning("cleanup: processes of uid %d outlived SIGKILL", uid)
        return killed


def _entries(path: Path) -> list[str]:
    return [entry.name for entry in path.iterdir()] if path.is_dir() else []


def _make_walkable_dirs(leaf: Path) -> None:
    """`leaf` and its missing parents, root-owned 0711 (every uid may walk through, only
    root may list), as full isolation's mounts dir."""
    for path in reversed([leaf, *leaf.parents]):
        if not path.exists():
            with contextlib.suppress(FileExistsError):  # made meanwhile by another sandboxd
                path.mkdir(mode=0o711)
                os.chmod(path, 0o711)  # mkdir's mode is masked by the umask
