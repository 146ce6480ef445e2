"""The "reduced" isolation level: for machines without root or cgroups, or when forced.

A box is `prlimit <limits> -- bwrap ... -- command` (bwrap with a user namespace, as the
current user), or `prlimit <limits> -- command` in a directory of its own when bwrap
cannot make a user namespace here ("plain"). Limits are rlimits, set by util-linux
prlimit so no preexec_fn runs in a threaded server. Pause is SIGSTOP of the tree.
"""

from __future__ import annotations

import asyncio
import logging
import os
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
)
from sandboxd.isolation.bwrap import (
    HELPER_ENV,
    BwrapPlan,
    Tmpfs,
    bwrap_argv,
    open_env_fd,
    open_etc_fds,
    sandbox_env,
)
from sandboxd.isolation.paths import check_sandbox_id
from sandboxd.isolation.proctree import create_time_of, kill_if_same
from sandboxd.isolation.reduced_box import ReducedBox
from sandboxd.isolation.seccomp import seccomp_fd

log = logging.getLogger(__name__)

PRLIMIT = "/usr/bin/prlimit"
REDUCED_LIMITATIONS: tuple[str, ...] = (
    "Memory is limited per process (RLIMIT_DATA), not per box: a box may use its limit "
    "once in every process. Running out shows as MemoryError or a failed allocation, "
    "not as an OOM kill; only a SIGKILL of the box's main process that sandboxd did not "
    "send is counted as an OOM kill, and kills of other processes are not seen.",
    "CPU is not limited; CPU % is measured per process with psutil.",
    "The process limit is RLIMIT_NPROC, which counts every process of the user that "
    "runs sandboxd (all boxes and sandboxd itself), and does not apply at all to root.",
    "Pause is SIGSTOP/SIGCONT of the process tree: a process can see it was stopped, and "
    "one that leaves the tree is not paused.",
    "Memory use is summed RSS (shared pages count once per process); no page cache figure.",
)
BWRAP_LIMITATIONS: tuple[str, ...] = (
    "The disk is two tmpfs mounts (home: 3/4 of the disk size, /tmp: 1/4) held in RAM.",
)
PLAIN_LIMITATIONS: tuple[str, ...] = (
    "No namespaces: the box sees the host's files, processes and network as the user "
    "running sandboxd does, and its home is a directory under the data dir, not /home/user.",
    "The disk size is not enforced, only each file's size (RLIMIT_FSIZE); usage is "
    "measured by walking the box's directory.",
    "A process that daemonizes out of the box's process tree is not paused or killed.",
)


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
    """RLIMIT_NPROC counts the user's threads everywhere: allow what the user already
    runs plus the box's share (root ignores the limit anyway)."""
    uid = os.getuid()
    if uid == 0:
        return max_processes
    running = 0
    for proc in psutil.process_iter(["uids", "num_threads"]):
        uids, threads = proc.info["uids"], proc.info["num_threads"]
        if uids is not None and uids.real == uid:
            running += int(threads or 0)
    return running + max_processes


class ReducedIsolation:
    """Boxes made of rlimits + bwrap (user namespace, tmpfs disk) or a plain process."""

    level: IsolationLevel = "reduced"

    def __init__(
        self,
        data_dir: Path,
        use_bwrap: bool = True,
        reasons: Sequence[str] = (),
        agent_script: Path | None = None,
        use_seccomp: bool = True,
    ) -> None:
        """`reasons` say why this level was chosen; they lead `limitations`."""
        self.data_dir = data_dir
        self.boxes_dir = data_dir / "reduced"
        self.use_bwrap = use_bwrap
        self.use_seccomp = use_seccomp
        self.agent_script = agent_script if agent_script is not None else agent_script_on_host()
        why = [f"Reduced isolation because: {reason}" for reason in reasons]
        extra = BWRAP_LIMITATIONS if use_bwrap else PLAIN_LIMITATIONS
        self.limitations: Sequence[str] = (*why, *REDUCED_LIMITATIONS, *extra)
        self._callbacks: list[Callable[[OomKill], None]] = []
        self._boxes: dict[str, ReducedBox] = {}

    def on_oom(self, callback: Callable[[OomKill], None]) -> None:
        """Call `callback` when a box's main process is SIGKILLed by someone else."""
        self._callbacks.append(callback)

    def close(self) -> None:
        """Nothing runs in the background at this level."""

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
        box_dir.mkdir(mode=0o700, parents=True, exist_ok=False)
        try:
            process, plain_dirs = await self._spawn(spec, command, box_dir)
        except BaseException:
            shutil.rmtree(box_dir, ignore_errors=True)
            raise
        started = create_time_of(process.pid)
        (box_dir / "launch").write_text(f"{process.pid} {started}\n")
        box = ReducedBox(spec, process, box_dir, plain_dirs, self._emit, self._forget)
        self._boxes[spec.sandbox_id] = box
        return box

    async def _spawn(
        self, spec: BoxSpec, command: Sequence[str], box_dir: Path
    ) -> tuple[asyncio.subprocess.Process, tuple[Path, Path] | None]:
        prefix = prlimit_argv(spec, nproc_limit(spec.max_processes))
        stderr_fd = os.open(box_dir / "stderr.log", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fds: list[int] = []
        try:
            dirs = None if self.use_bwrap else (box_dir / "home", box_dir / "tmp")
            if dirs is None:
                argv, env, cwd = self._bwrap_command(spec, command, fds), HELPER_ENV, "/"
            else:
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
        return bwrap_argv(BwrapPlan(spec, home, tmp, sc_fd, agent_fd, etc, env_fd), command)

    def _plain_command(
        self, spec: BoxSpec, command: Sequence[str], dirs: tuple[Path, Path]
    ) -> tuple[list[str], dict[str, str], str]:
        home, tmp = dirs
        home.mkdir(mode=0o700)
        tmp.mkdir(mode=0o700)
        env = sandbox_env(spec) | {"HOME": str(home), "TMPDIR": str(tmp)}
        # There is no /opt/sandboxd here: point the agent's path at the host's copy.
        agent = str(self.agent_script)
        argv = [agent if arg == AGENT_PATH_INSIDE else arg for arg in command]
        return argv, env, str(home)

    def _forget(self, box: ReducedBox) -> None:
        self._boxes.pop(box.sandbox_id, None)

    async def cleanup_leftovers(self) -> list[str]:
        """Kill the process trees a dead run left (if the PID still names the same
        process) and delete their directories. Returns what was done, one line each."""
        if not self.boxes_dir.is_dir():
            return []
        done = []
        for box_dir in self.boxes_dir.iterdir():
            if box_dir.name in self._boxes:
                continue
            if _kill_recorded(box_dir / "launch"):
                done.append(f"killed the processes of {box_dir.name}")
            shutil.rmtree(box_dir, ignore_errors=True)
            done.append(f"deleted {box_dir}")
        for line in done:
            log.info("cleanup: %s", line)
        return done


def _kill_recorded(launch_file: Path) -> bool:
    try:
        pid_text, time_text = launch_file.read_text().split()
        return kill_if_same(int(pid_text), float(time_text))
    except (OSError, ValueError):
        return False
