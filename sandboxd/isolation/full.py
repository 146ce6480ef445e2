"""The "full" isolation level (root, cgroups, bwrap): how a box is launched and cleaned up.

A launch makes the box's cgroups and loop disk, then starts

    sh -c '<join cgroups>; exec "$@"' ... nsenter --net ... setpriv --reuid=<R> ... \
        bwrap --userns <fd> ... -- command

so the first process is in its cgroups before it execs anything, joins the network
namespace host root made, drops to host id R (box root, the first of the box's 65,536
ids), and bwrap joins the user namespace host root made for it (userns.py), builds the
other namespaces, mounts (the box's /usr, /etc, /var: overlays host root mounted for
it, rootfs.py) and seccomp filter, and starts the agent as box root with a few
capabilities; the agent runs every command as the box's user (R + 1000) unless sudo asks
for root (agent/sudo.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from sandboxd.isolation.base import (
    AGENT_PATH_INSIDE,
    SANDBOX_UID,
    BoxSpec,
    IsolationLevel,
    OomKill,
    agent_script_on_host,
    sudo_script_on_host,
)
from sandboxd.isolation.bwrap import (
    HELPER_ENV,
    BindFd,
    BwrapPlan,
    bwrap_argv,
    open_env_fd,
    open_etc_fds,
    open_path_fd,
    searchable_by_others,
    setpriv_argv,
)
from sandboxd.isolation.cgroups import (
    BoxCgroups,
    CgroupLayout,
    CgroupLimits,
    detect_cgroup_layout,
    join_shim_argv,
    new_cgroup_set,
    remove_empty_parent,
)
from sandboxd.isolation.disk import LoopDisk
from sandboxd.isolation.egress import Egress
from sandboxd.isolation.full_box import FullBox
from sandboxd.isolation.full_cleanup import cleanup_full_leftovers
from sandboxd.isolation.netns import new_netns
from sandboxd.isolation.network import (
    BoxNetwork,
    nsenter_argv,
    slirp_available,
)
from sandboxd.isolation.oom_watch import KmsgOomWatcher
from sandboxd.isolation.paths import (
    RUNTIME_ROOT,
    check_sandbox_id,
    default_mounts_dir,
    new_box_name,
)
from sandboxd.isolation.reduced_uid import uids_with_processes
from sandboxd.isolation.rootfs import BoxRootfs, ensure_base_tree
from sandboxd.isolation.seccomp import seccomp_fd
from sandboxd.isolation.uids import HOST_ID_RANGE_COUNT, HostIdRangePool
from sandboxd.isolation.userns import BOX_ID_COUNT, BoxUserns, new_box_userns

log = logging.getLogger(__name__)

FULL_LIMITATIONS: tuple[str, ...] = (
    "Outbound network is IPv4 only, filtered by address (allowOut/denyOut domain names are "
    "refused), through slirp4netns; host and private addresses are never reachable.",
    "Pausing freezes the processes in memory; nothing is saved to disk, so a paused box "
    "does not survive a restart of sandboxd.",
    "A box's stderr log lives on its disk and counts against its disk quota.",
)


class FullIsolation:
    """Boxes made of cgroups + loop ext4 + setpriv + bwrap (user, pid, net, uts, ipc,
    cgroup namespaces) + seccomp. Needs root."""

    level: IsolationLevel = "full"

    def __init__(
        self,
        data_dir: Path,
        cgroup_parent: str = "sandboxd",
        host_uid_base: int = 200_000,
        host_uid_count: int = HOST_ID_RANGE_COUNT,
        agent_script: Path | None = None,
        oom_watcher: KmsgOomWatcher | None = None,
        mounts_dir: Path | None = None,
        cgroup_layout: CgroupLayout | None = None,
        box_internet: bool = True,
    ) -> None:
        """Disk images go to `<data_dir>/boxes/<name>/`, mount points to `mounts_dir/<name>`
        (default `/run/sandboxd/<cgroup_parent>`), with an opaque name (`new_box_name`).
        `agent_script` defaults to `agent_script_on_host()`; it is copied into each box
        only if the file exists.
        `oom_watcher` defaults to one reading /dev/kmsg, started at the first launch.
        `cgroup_layout` (hybrid or v2) defaults to the one found at /sys/fs/cgroup.
        `box_internet` False (or slirp4netns missing) keeps every box off the network.
        Each box gets host ids [R, R + 65,536), R = `host_uid_base` + i * 65,536 for i
        below `host_uid_count`."""
        self.data_dir = data_dir
        self.boxes_dir = data_dir / "boxes"
        self.cgroup_parent = cgroup_parent.strip("/")
        self.cgroup_layout = cgroup_layout or detect_cgroup_layout()
        log.info("cgroups: %s", self.cgroup_layout.reason)
        self.mounts_dir = mounts_dir or default_mounts_dir(self.cgroup_parent)
        self.limitations: Sequence[str] = FULL_LIMITATIONS
        self.box_internet = box_internet and self._egress_possible()
        if not self.box_internet:
            no_net = "No network: boxes have only their own loopback, no outbound internet."
            self.limitations = (no_net, *FULL_LIMITATIONS[1:])
        self.agent_script = agent_script if agent_script is not None else agent_script_on_host()
        if not self.agent_script.is_file():
            log.warning("no agent at %s: boxes get no %s", self.agent_script, AGENT_PATH_INSIDE)
        self.watcher = oom_watcher if oom_watcher is not None else KmsgOomWatcher()
        self._uids = HostIdRangePool(host_uid_base, BOX_ID_COUNT, host_uid_count)
        self.sudo_script = sudo_script_on_host()
        self._boxes: dict[str, FullBox] = {}
        self._egress_updates = asyncio.Lock()
        self._base_tree: Path | None = None
        self._base_tree_lock = asyncio.Lock()

    @staticmethod
    def _egress_possible() -> bool:
        ok, reason = slirp_available()
        if not ok:
            log.warning("boxes get no internet: %s", reason)
        return ok

    def on_oom(self, callback: Callable[[OomKill], None]) -> None:
        """Call `callback` from the watcher thread for every OOM kill in any box."""
        self.watcher.add_callback(callback)

    def close(self) -> None:
        """Stop the OOM watcher thread, and remove the cgroup parent and mounts dir if no
        box is left in them (live boxes are left as they are), then /run/sandboxd if no
        other sandboxd's mounts dir is in it."""
        self.watcher.close()
        remove_empty_parent(self.cgroup_parent, self.cgroup_layout)
        with contextlib.suppress(OSError):  # not empty: left
            self.mounts_dir.rmdir()
            if self.mounts_dir.parent == RUNTIME_ROOT:
                RUNTIME_ROOT.rmdir()

    def live_boxes(self) -> list[FullBox]:
        """Boxes launched and not yet destroyed."""
        return list(self._boxes.values())

    async def launch(self, spec: BoxSpec, command: Sequence[str]) -> FullBox:
        """Make the cgroups and disk, start `command` in a new box and return it. On
        failure, removes everything it made."""
        check_sandbox_id(spec.sandbox_id)
        if spec.sandbox_id in self._boxes:
            raise ValueError(f"box {spec.sandbox_id} is already running")
        self._prepare_dirs()
        self.watcher.start()
        # A range no process runs in: old processes that survived (stuck in the kernel,
        # or another sandboxd's box) would otherwise be signalable by the new box.
        uid = self._uids.allocate(uids_with_processes())  # box root; its user is uid + 1000
        name = new_box_name()  # what other host users may see instead of the sandbox id
        cgroups = new_cgroup_set(name, self.cgroup_parent, self.cgroup_layout)
        disk = LoopDisk(self.boxes_dir / name, self.mounts_dir / name)
        netns_fd = new_netns()
        network: BoxNetwork | None = None
        userns: BoxUserns | None = None
        try:
            cgroups.create(CgroupLimits(spec.memory_mb << 20, spec.cpu_count, spec.max_processes))
            try:
                userns = await _with_disk(
                    new_box_userns(uid),
                    disk.create(spec.disk_size_mb, uid + SANDBOX_UID, root_uid=uid),
                )
                rootfs = await self._mount_rootfs(disk, userns)
                process, network = await self._spawn(
                    spec, command, cgroups, disk, userns, netns_fd, rootfs
                )
            except BaseException:
                await _undo(cgroups, disk)
                raise
        except BaseException:
            os.close(netns_fd)
            self._uids.release(uid)
            raise
        finally:
            if userns is not None:
                userns.close()  # bwrap is in it (or gone): the box's processes keep it
        box = FullBox(spec, process, cgroups, disk, uid, self._forget, netns_fd, network)
        self._boxes[spec.sandbox_id] = box
        self.watcher.register(
            cgroups.memcg_path, spec.sandbox_id, spec.memory_mb << 20, cgroups.oom_kill_count
        )
        return box

    async def _mount_rootfs(self, disk: LoopDisk, userns: BoxUserns) -> BoxRootfs:
        """The box's writable /usr, /etc, /var (rootfs.py). The base tree is checked, and
        rebuilt if the host's trees changed, at the first launch after sandboxd starts
        (0.1 s to check, 1-4 s to build on a 2-core machine); later host changes reach
        boxes after a restart."""
        async with self._base_tree_lock:
            if self._base_tree is None:
                self._base_tree = await asyncio.to_thread(
                    ensure_base_tree, self.data_dir / "rootfs"
                )
        rootfs = BoxRootfs(disk.mount_dir)
        rootfs.mount(self._base_tree, userns.fd, userns.host_base)
        return rootfs

    async def update_egress(self, sandbox_id: str, egress: Egress) -> None:
        """Replace a live box's allowOut/denyOut rules (E2B's network update): slirp4netns
        starts now if the box had no way out, and stays (behind the rules) once it has.
        KeyError for a box not launched here."""
        box = self._boxes[sandbox_id]
        async with self._egress_updates:  # each update starts from the last one's rules
            if self.box_internet and box.netns_fd is not None:
                if box.network is not None:
                    await BoxNetwork.replace_rules(box.netns_fd, box.egress, egress)
                elif not egress.blocks_everything:
                    box.network = await BoxNetwork.start(box.netns_fd, egress)
            box.egress = egress

    def _prepare_dirs(self) -> None:
        self.boxes_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.boxes_dir, 0o700)  # images are the boxes' files: root's eyes only
        try:
            _make_walkable_dirs(self.mounts_dir)
        except FileNotFoundError:  # another sandboxd removed /run/sandboxd as it closed
            _make_walkable_dirs(self.mounts_dir)
        os.chmod(self.mounts_dir, 0o711)  # boxes may pass through, not list their peers
        ok, reason = searchable_by_others(self.mounts_dir)
        if not ok:
            raise PermissionError(reason)

    async def _spawn(
        self,
        spec: BoxSpec,
        command: Sequence[str],
        cgroups: BoxCgroups,
        disk: LoopDisk,
        userns: BoxUserns,
        netns_fd: int,
        rootfs: BoxRootfs,
    ) -> tuple[asyncio.subprocess.Process, BoxNetwork | None]:
        """The box's first process, and its network when it has a way out: slirp4netns
        starts beside the box (the tap comes up only after the rules are in)."""
        starting = None
        if self.box_internet and spec.egress is not None and not spec.egress.blocks_everything:
            starting = asyncio.ensure_future(BoxNetwork.start(netns_fd, spec.egress))
        try:
            process = await self._spawn_box(spec, command, cgroups, disk, userns, netns_fd, rootfs)
        except BaseException:
            if starting is not None:
                with contextlib.suppress(BaseException):
                    await (await starting).close()
            raise
        if starting is None:
            return process, None
        try:
            return process, await starting
        except BaseException:
            cgroups.kill()  # the box without its network: _undo removes the rest
            await process.wait()
            raise

    async def _spawn_box(
        self,
        spec: BoxSpec,
        command: Sequence[str],
        cgroups: BoxCgroups,
        disk: LoopDisk,
        userns: BoxUserns,
        netns_fd: int,
        rootfs: BoxRootfs,
    ) -> asyncio.subprocess.Process:
        fds: list[int] = []
        try:
            home = BindFd(_keep(fds, open_path_fd(disk.home_dir, directory=True)))
            tmp = BindFd(_keep(fds, open_path_fd(disk.tmp_dir, directory=True)))
            root_home = BindFd(_keep(fds, open_path_fd(disk.root_home_dir, directory=True)))
            agent_fd = _open_script(self.agent_script, fds)
            sudo_fd = _open_script(self.sudo_script, fds)
            etc = open_etc_fds(spec, fds)
            env_fd = open_env_fd(spec, fds)
            plan = BwrapPlan(
                spec, home, tmp, _keep(fds, seccomp_fd()), agent_fd, etc, env_fd, share_net=True,
                userns_fd=userns.fd, root_home=root_home, sudo_fd=sudo_fd,
                rootfs_dir=rootfs.merged,
            )  # fmt: skip
            stderr_fd = _keep(fds, _open_log(disk.private_dir / "stderr.log"))
            # nsenter (still root) joins the namespace host root made; bwrap shares it.
            # setpriv: bwrap may join the user namespace only as its owner, box root.
            setpriv = setpriv_argv(userns.host_base)
            inner = [*nsenter_argv(netns_fd), *setpriv, *bwrap_argv(plan, command)]
            argv = join_shim_argv(cgroups.procs_files(), inner)
            return await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr_fd,
                pass_fds=[fd for fd in fds if fd != stderr_fd] + [userns.fd],
                env=HELPER_ENV,
                cwd="/",
            )
        finally:
            for fd in fds:  # the child has its copies; ours would pin the mount
                os.close(fd)

    def _forget(self, box: FullBox) -> None:
        self.watcher.unregister(box.cgroups.memcg_path)
        self._boxes.pop(box.sandbox_id, None)
        self._uids.release(box.host_uid)

    async def cleanup_leftovers(self) -> list[str]:
        """Kill and remove the cgroups, mounts and disk images a dead run left under this
        isolation's cgroup parent, data dir and mounts dir (live boxes are left alone).
        Returns what was removed, one line each."""
        live_names = {box.disk.mount_dir.name for box in self._boxes.values()}
        return await cleanup_full_leftovers(
            self.cgroup_parent, self.boxes_dir, self.mounts_dir, live_names, self.cgroup_layout
        )


def _keep(fds: list[int], fd: int) -> int:
    fds.append(fd)
    return fd


async def _with_disk(making: Awaitable[BoxUserns], disk_made: Awaitable[float]) -> BoxUserns:
    """The user namespace, made while the disk is formatted (each takes a few ms); if
    either fails, the other is awaited too and its namespace closed."""
    userns_task = asyncio.ensure_future(making)
    try:
        await disk_made
    except BaseException:
        with contextlib.suppress(BaseException):
            (await userns_task).close()
        raise
    return await userns_task


def _open_script(path: Path, fds: list[int]) -> int | None:
    """An fd on a script bwrap copies into the box, or None when it is missing."""
    if not path.is_file():
        return None
    return _keep(fds, os.open(path, os.O_RDONLY | os.O_CLOEXEC))


def _open_log(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)


async def _undo(cgroups: BoxCgroups, disk: LoopDisk) -> None:
    """Remove a half-made box: kill what may have started, then cgroups and disk."""
    cgroups.kill()
    await cgroups.wait_empty()
    await cgroups.remove()
    await disk.remove()


def _make_walkable_dirs(leaf: Path) -> None:
    """`leaf` and its missing parents, each 0711 (walkable by every uid, listable by root)."""
    for path in reversed([leaf, *leaf.parents]):
        if not path.exists():
            with contextlib.suppress(FileExistsError):  # made meanwhile by another sandboxd
                path.mkdir(mode=0o711)
                os.chmod(path, 0o711)  # mkdir's mode is masked by the umask
