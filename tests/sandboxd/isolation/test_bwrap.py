"""The bwrap command line: what is bound, and what never is."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from sandboxd.isolation.base import AGENT_PATH_INSIDE
from sandboxd.isolation.bwrap import (
    BindFd,
    BwrapPlan,
    Tmpfs,
    bwrap_argv,
    identity_files,
    open_env_fd,
    sandbox_env,
    searchable_by_others,
)
from sandboxd.isolation.cgroups import join_shim_argv
from tests.sandboxd.isolation.helpers import spec


def plan() -> BwrapPlan:
    return BwrapPlan(spec(env_vars={"A": "1"}), BindFd(7), Tmpfs(1 << 20, 0o1777), 9, 8, (), 6)


def after(argv: list[str], flag: str, n: int = 2) -> list[str]:
    """The `n` arguments that follow `flag`."""
    i = argv.index(flag)
    return argv[i + 1 : i + 1 + n]


def test_argv_binds_only_usr_etc_and_the_box_dirs() -> None:
    argv = bwrap_argv(plan(), ["/usr/bin/python3", "-V"])
    sources = [argv[i + 1] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]

    assert sources == ["/usr", "/etc"]
    assert "/sys" not in argv
    assert after(argv, "--bind-fd") == ["7", "/home/user"]
    assert after(argv, "--ro-bind-data") == ["8", AGENT_PATH_INSIDE]  # a copy
    assert after(argv, "--seccomp", 1) == ["9"]
    assert after(argv, "--size", 2) == [str(1 << 20), "--tmpfs"]
    assert argv[-3:] == ["--", "/usr/bin/python3", "-V"]
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in argv


def test_env_vars_travel_in_an_fd_never_on_the_command_line() -> None:
    fds: list[int] = []
    env_fd = open_env_fd(spec(env_vars={"TOKEN": "s3cret value"}), fds)
    try:
        args = os.read(env_fd, 1 << 16).split(b"\0")
    finally:
        os.close(env_fd)
    with_fd = BwrapPlan(spec(env_vars={"TOKEN": "s3cret value"}), BindFd(7), BindFd(8), None, None)
    argv = bwrap_argv(dataclasses.replace(with_fd, env_fd=env_fd), ["true"])

    assert fds == [env_fd]
    assert args[-4:] == [b"--setenv", b"TOKEN", b"s3cret value", b""]
    assert argv.index("--args") > argv.index("--clearenv") and after(argv, "--args", 1) == [
        str(env_fd)
    ]
    assert not any("s3cret" in arg for arg in argv)
    with pytest.raises(ValueError, match="env_fd"):
        bwrap_argv(with_fd, ["true"])  # no silent fallback to --setenv on argv
    with pytest.raises(ValueError, match="invalid"):
        open_env_fd(spec(env_vars={"A": "x\0--bind"}), [])


def test_env_vars_come_after_the_defaults() -> None:
    env = sandbox_env(spec(env_vars={"LANG": "fr_FR.UTF-8", "A": "1"}))

    assert env["HOME"] == "/home/user" and env["LANG"] == "fr_FR.UTF-8" and env["A"] == "1"


def test_join_shim_writes_each_file_then_execs() -> None:
    argv = join_shim_argv([Path("/a/cgroup.procs"), Path("/b/cgroup.procs")], ["bwrap", "x"])

    assert argv[:2] == ["/bin/sh", "-c"]
    assert argv[3:] == ["sandboxd-join", "2", "/a/cgroup.procs", "/b/cgroup.procs", "bwrap", "x"]


def test_searchable_by_others(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    (closed / "in").mkdir()

    assert not searchable_by_others(closed / "in")[0]
    closed.chmod(0o711)
    tmp_path.chmod(0o711)
    assert searchable_by_others(closed / "in")[0] is (
        all(p.stat().st_mode & 0o001 for p in tmp_path.parents)
    )


def test_identity_files_name_the_box_user_and_host() -> None:
    files = identity_files(spec(hostname="h1"))

    assert b"user:x:1000:1000:user:/home/user:" in files["/etc/passwd"]
    assert files["/etc/hostname"] == b"h1\n" and b"127.0.1.1\th1" in files["/etc/hosts"]
    argv = bwrap_argv(
        BwrapPlan(spec(), Tmpfs(1, 0o700), Tmpfs(1, 0o700), None, None, ((5, "/etc/passwd"),)),
        ["x"],
    )
    assert after(argv, "--ro-bind-data") == ["5", "/etc/passwd"]
    assert argv.index("--ro-bind-data") > argv.index("/etc")  # over the host's /etc
