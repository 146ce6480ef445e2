"""The bubblewrap command line of a box: what the sandbox sees and nothing more.

Visible inside: /usr and /etc read-only, or at the full level /usr, /etc and /var as the
box's own overlays (rootfs.py), with the merged-usr links /bin, /lib, /lib64, /sbin; a new
/proc and a minimal /dev, the box's home at /home/user and its /tmp, and the agent script
read-only. Nothing else of the host: no /root, /home, /tmp, /work, /sys or
data dir. All namespaces are new (user, pid, net, uts, ipc, cgroup), but the full level
hands bwrap a network namespace that host root made (`share_net`: netns.py), so root inside
the box cannot change its rules; either way the host's 127.0.0.1 is out of reach.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sandboxd.isolation.base import (
    AGENT_PATH_INSIDE,
    SANDBOX_GID,
    SANDBOX_HOME,
    SANDBOX_UID,
    SUDO_DIR_INSIDE,
    SUDO_PATH_INSIDE,
    BoxSpec,
)

BWRAP = "/usr/bin/bwrap"
SETPRIV = "/usr/bin/setpriv"
# The sudo client's directory comes first: nothing else is in it, so it hides no file of
# /usr.
SANDBOX_PATH = f"{SUDO_DIR_INSIDE}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What box root may do (and so the agent, which starts as box root and gives every other
# command uid 1000 and no capability): Docker's default set without MKNOD and NET_RAW.
# Never SYS_ADMIN (mounts), SYS_PTRACE (the agent's memory and fds), NET_ADMIN (the
# box's network rules), SYS_MODULE, SYS_RESOURCE...: docs/SECURITY.md, "Box root".
BOX_ROOT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_SETFCAP",
    "CAP_AUDIT_WRITE",
)
# The environment of the host-side helpers (sh, setpriv, prlimit, bwrap): the server's own
# environment (API keys...) never reaches a box, and bwrap clears it again anyway.
HELPER_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
_MERGED_USR = ("bin", "lib", "lib64", "sbin")
_PROFILE_MAX_BYTES = 1 << 20
_OPEN_PARENTS = ("/home", "/opt", "/opt/sandboxd", SUDO_DIR_INSIDE)
# slirp4netns's DNS forwarder in every box's network (network.py), named in its resolv.conf.
BOX_DNS_SERVER = "10.0.2.3"
# Every box's environment before the request's env vars.
DEFAULT_ENV = {"HOME": SANDBOX_HOME, "USER": "user", "PATH": SANDBOX_PATH, "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class BindFd:
    """Bind an open directory (or file) fd; the fd must be passed to the child."""

    fd: int


@dataclass(frozen=True)
class Tmpfs:
    """A new tmpfs of at most `size_bytes`, with `mode` on its root."""

    size_bytes: int
    mode: int


Mount = BindFd | Tmpfs


@dataclass(frozen=True)
class BwrapPlan:
    """Everything `bwrap_argv` needs besides the command; fds are the caller's to pass."""

    spec: BoxSpec
    home: Mount
    tmp: Mount
    seccomp_fd: int | None
    agent_fd: int | None  # the agent script, open for reading from its start
    # (fd, path inside): files bwrap copies in read-only over the host's /etc ones
    etc_fds: tuple[tuple[int, str], ...] = ()
    # `open_env_fd`: the box's environment, read by bwrap (`--args`) instead of argv
    env_fd: int | None = None
    # Run in the caller's network namespace (made by host root and entered before bwrap,
    # netns.py) instead of a new one that the box's own user namespace would own.
    share_net: bool = False
    # The box's user namespace, made by host root (userns.py): bwrap joins it and starts
    # the agent as box root with BOX_ROOT_CAPS; None: bwrap makes one mapping only the
    # box's user, and everything runs as uid 1000 without capabilities (reduced level).
    userns_fd: int | None = None
    # Box root's home (/root), on the box's disk; only with userns_fd.
    root_home: Mount | None = None
    # The sudo client script (sudo.py), copied in at SUDO_PATH_INSIDE when not None.
    sudo_fd: int | None = None
    # The box's writable /usr, /etc, /var (rootfs.py): the dir holding their overlays
    # (usr/, etc/, var/), bound in place of the host's read-only /usr and /etc.
    rootfs_dir: Path | None = None


def identity_files(spec: BoxSpec) -> dict[str, bytes]:
    """/etc files of the box's own: uid 1000 is "user" (not whoever it is on the host,
    whose human users stay hidden), and the hostname resolves to the box. The distro's
    system accounts (ids 1..999: man, _apt, messagebus...) are copied, group members
    dropped: packages' scripts (dpkg, man-db) chown to them by name."""
    shell = "/bin/bash" if os.path.exists("/usr/bin/bash") else "/bin/sh"
    passwd = (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"user:x:{SANDBOX_UID}:{SANDBOX_GID}:user:{SANDBOX_HOME}:{shell}\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    group = f"root:x:0:\nuser:x:{SANDBOX_GID}:\nnogroup:x:65534:\n"
    passwd += "".join(_system_entries("/etc/passwd", ("root", "user", "nobody"), 7))
    group += "".join(_system_entries("/etc/group", ("root", "user", "nogroup"), 4))
    hosts = f"127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{spec.hostname}\n"
    return {
        "/etc/profile": _profile(),
        "/etc/passwd": passwd.encode(),
        "/etc/group": group.encode(),
        "/etc/hosts": hosts.encode(),
        "/etc/hostname": f"{spec.hostname}\n".encode(),
        # slirp4netns's DNS forwarder (network.py): the host's resolver may sit at a
        # private address the box is denied, and its address is none of the box's business.
        "/etc/resolv.conf": f"nameserver {BOX_DNS_SERVER}\n".encode(),
    }


def _system_entries(path: str, taken: tuple[str, ...], field_count: int) -> list[str]:
    """The host's world-readable `path` entries with ids 1..999 whose name is not taken;
    a group's member list (host user names) is emptied, passwords are `x`."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            lines = file.read(_PROFILE_MAX_BYTES).splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        fields = line.split(":")
        if len(fields) != field_count or fields[0] in taken or not fields[2].isdigit():
            continue
        if (
            not 0 < int(fields[2]) < 1000
            or not fields[0].replace("-", "").replace("_", "").isalnum()
        ):
            continue
        fields[1] = "x"
        if field_count == 4:
            fields[3] = ""
        out.append(":".join(fields) + "\n")
    return out


def _profile() -> bytes:
    """The host's /etc/profile, then the sudo client's directory put back first in PATH:
    login shells (the SDK's commands run `bash -l`) reset PATH there."""
    try:
        with open("/etc/profile", "rb") as file:
            host = file.read(_PROFILE_MAX_BYTES)
    except OSError:
        host = b""
    tail = (
        f'case ":$PATH:" in *":{SUDO_DIR_INSIDE}:"*) ;; *) PATH="{SUDO_DIR_INSIDE}:$PATH" ;; esac\n'
    )
    return host.rstrip(b"\n") + b"\n" + tail.encode() + b"export PATH\n"


def memfd_holding(name: str, data: bytes) -> int:
    """A memfd holding `data`, positioned at its start (close-on-exec: pass it with
    `pass_fds`, and close it after the spawn)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_etc_fds(spec: BoxSpec, fds: list[int]) -> tuple[tuple[int, str], ...]:
    """memfds of `identity_files`, as `BwrapPlan.etc_fds`; each fd is added to `fds`."""
    out = []
    for path, data in identity_files(spec).items():
        fd = memfd_holding("sandboxd-etc", data)
        fds.append(fd)
        out.append((fd, path))
    return tuple(out)


def open_env_fd(spec: BoxSpec, fds: list[int]) -> int:
    """A memfd of `--setenv NAME VALUE` arguments for `bwrap --args FD` (NUL-separated),
    as `BwrapPlan.env_fd`; the fd is added to `fds`. Env vars are often secrets, and every
    host user can read every process's command line (`ps`): an fd keeps them off it.
    ValueError for a name or value bwrap could not take (a NUL would split an argument)."""
    args: list[str] = []
    for key, value in sandbox_env(spec).items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise ValueError(f"invalid environment variable {key!r}")
        args += ["--setenv", key, value]
    fd = memfd_holding("sandboxd-env", b"".join(arg.encode() + b"\0" for arg in args))
    fds.append(fd)
    return fd


def sandbox_env(spec: BoxSpec) -> dict[str, str]:
    """The box's environment: the defaults, then the request's env vars over them."""
    return DEFAULT_ENV | dict(spec.env_vars)


def _mount_args(mount: Mount, dest: str) -> list[str]:
    if isinstance(mount, BindFd):
        return ["--bind-fd", str(mount.fd), dest]
    return ["--perms", f"{mount.mode:o}", "--size", str(mount.size_bytes), "--tmpfs", dest]


def _filesystem_args(plan: BwrapPlan) -> list[str]:
    if plan.rootfs_dir is None:
        args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    else:
        args = []
        for name in ("usr", "etc", "var"):
            args += ["--bind", str(plan.rootfs_dir / name), f"/{name}"]
    for name in _MERGED_USR:
        if os.path.isdir(f"/usr/{name}"):
            args += ["--symlink", f"usr/{name}", f"/{name}"]
    for fd, path in plan.etc_fds:
        args += ["--perms", "0644", "--ro-bind-data", str(fd), path]
    args += ["--proc", "/proc", "--dev", "/dev"]
    # Mount points' parents: bwrap makes missing ones 0700 when it runs as (box) root,
    # which would shut the box's user out of its own home and of sudo.
    for parent in _OPEN_PARENTS:
        args += ["--perms", "0755", "--dir", parent]
    args += _mount_args(plan.home, SANDBOX_HOME) + _mount_args(plan.tmp, "/tmp")
    if plan.root_home is not None:
        args += _mount_args(plan.root_home, "/root")
    if plan.sudo_fd is not None:
        args += ["--perms", "0555", "--ro-bind-data", str(plan.sudo_fd), SUDO_PATH_INSIDE]
    if plan.agent_fd is not None:
        # A copy, read from the fd by bwrap: binding the host file would need every
        # directory above it (/root/... for a pip-installed sandboxd) walkable by the box.
        args += ["--perms", "0444", "--ro-bind-data", str(plan.agent_fd), AGENT_PATH_INSIDE]
    return args


def bwrap_argv(plan: BwrapPlan, command: Sequence[str]) -> list[str]:
    """The full `bwrap ... -- command` argv of a box."""
    args = [BWRAP, *_identity_args(plan)]
    args += ["--die-with-parent", "--new-session", "--hostname", plan.spec.hostname]
    # The command (the agent) is the PID namespace's init, so the kernel drops the signals
    # box code sends it that it does not handle, SIGKILL and SIGSTOP included (agent.py).
    args += ["--as-pid-1"]
    args += _filesystem_args(plan)
    if plan.seccomp_fd is not None:
        args += ["--seccomp", str(plan.seccomp_fd)]
    args += ["--clearenv"]
    if plan.env_fd is not None:
        args += ["--args", str(plan.env_fd)]  # after --clearenv: bwrap applies them in order
    elif plan.spec.env_vars:
        # Never fall back to --setenv on argv: that is where `ps` shows them.
        raise ValueError("the box has env vars but its plan has no env_fd (open_env_fd)")
    else:
        for key, value in DEFAULT_ENV.items():  # no secret in these
            args += ["--setenv", key, value]
    return [*args, "--chdir", SANDBOX_HOME, "--", *command]


def _identity_args(plan: BwrapPlan) -> list[str]:
    """Namespaces, uid and capabilities. With the box's own user namespace (full level),
    bwrap joins it (no nesting: userns.py closed it to new ones, seccomp denies them, and
    bwrap's --disable-userns works only with a user namespace of its own making)."""
    if plan.userns_fd is None:
        args = ["--unshare-all", "--unshare-user", "--disable-userns"]
        if plan.share_net:
            args += ["--share-net"]  # after --unshare-all, which it partly undoes
        return [*args, "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID), "--cap-drop", "ALL"]
    args = ["--userns", str(plan.userns_fd), "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    args += ["--unshare-cgroup"]
    if not plan.share_net:
        args += ["--unshare-net"]
    args += ["--uid", "0", "--gid", "0", "--cap-drop", "ALL"]
    for cap in BOX_ROOT_CAPS:
        args += ["--cap-add", cap]
    return args


def setpriv_argv(host_uid: int) -> list[str]:
    """Become `host_uid` (uid and gid), with no groups, capabilities or new privileges."""
    return [
        SETPRIV,
        f"--reuid={host_uid}",
        f"--regid={host_uid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--nnp",
    ]


def bwrap_works(prefix: Sequence[str] = ()) -> tuple[bool, str]:
    """Whether bwrap can build a box here, run through `prefix` (e.g. setpriv to an
    unprivileged uid). Synchronous, for start-up checks; returns (ok, reason)."""
    if not os.access(BWRAP, os.X_OK):
        return False, f"{BWRAP} is not installed"
    spec = BoxSpec("probe", cpu_count=1, memory_mb=64, disk_size_mb=1, max_processes=8)
    plan = BwrapPlan(spec, Tmpfs(1 << 20, 0o700), Tmpfs(1 << 20, 0o1777), None, None)
    argv = [*prefix, *bwrap_argv(plan, ["/usr/bin/true"])]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=10, env=HELPER_ENV, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap failed to start: {exc}"
    if done.returncode != 0:
        return False, f"bwrap cannot make a sandbox here: {done.stderr.decode().strip()}"
    return True, "bwrap works with a new user namespace"


def searchable_by_others(path: Path) -> tuple[bool, str]:
    """Whether an unprivileged uid may walk to `path`: bwrap resolves a bind source by
    its path, even when given an fd, as the box's uid. Returns (ok, reason)."""
    for part in [path, *path.parents]:
        if part.exists() and not part.stat().st_mode & stat.S_IXOTH:
            return False, f"{part} is not searchable by other users (needs o+x) for bwrap"
    return True, f"{path} is searchable"


def open_path_fd(path: Path, directory: bool) -> int:
    """An fd for `--bind-fd`: pins the very directory the server made (bwrap still walks
    its path as the box's uid, so the path must be searchable: see `disk`)."""
    flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECTORY if directory else 0)
    return os.open(path, flags)
