#!/usr/bin/python3 -I
"""sudo in a sandboxd box: asks the agent (box root) to run a command as another box user.

bwrap sets no_new_privs, so a setuid sudo could never work in a box. This client parses
what scripts pass to sudo, builds the command's argv and environment as sudo would (env
reset, secure path, HOME/USER/LOGNAME/SHELL/SUDO_* of the target), and sends them with its
stdin, stdout and stderr to the agent's socket (agent.py, "sudo"); it relays the signals
it gets to the command and exits with its exit code. Every box process may use it, as
E2B's user has passwordless sudo: no password is ever asked, so -S and -n change nothing.
Standard library only: it runs with the box's /usr/bin/python3.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shlex
import signal
import socket
import sys
from typing import Any, NoReturn

SOCKET_NAME = b"\0sandboxd-sudo"
MAX_REQUEST_BYTES = 128 << 10  # the agent's SUDO_MAX_REQUEST_BYTES
SECURE_PATH = "/opt/sandboxd/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Kept from the caller's environment without -E, as sudo's env_reset keeps them.
KEPT_ENV = ("TERM", "COLORTERM", "DISPLAY", "LANG", "LANGUAGE", "TZ", "PS1", "PS2")
RELAYED_SIGNALS = (
    signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
    signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT,
)  # fmt: skip
USAGE = """usage: sudo -h | -K | -k | -V
usage: sudo -v [-knS] [-u user]
usage: sudo -l [-knS] [-u user] [command [arg ...]]
usage: sudo [-EHiknS] [-u user] [VAR=value] [-i | -s] [command [arg ...]]
"""
NO_ROOT = (
    "sudo: this sandbox has no root: sandboxd runs it with reduced isolation, where box "
    "code runs as one unprivileged user (see sandboxd's docs/SECURITY.md)"
)


class Options:
    """What the command line asked for."""

    def __init__(self) -> None:
        self.user = "root"
        self.preserve_env = False
        self.login = False
        self.shell = False
        self.only_validate = False
        self.list_rights = False
        self.command: list[str] = []
        self.env_args: dict[str, str] = {}


def fail(message: str, code: int = 1) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(code)


def usage() -> NoReturn:
    sys.stderr.write(USAGE)
    sys.exit(1)


def parse(args: list[str]) -> Options:
    """sudo's options; `usage` for anything this sudo does not do."""
    options = Options()
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        if arg.startswith("--"):
            name, has_value, value = arg[2:].partition("=")
            if name == "user":
                if not has_value:
                    i += 1
                    if i >= len(args):
                        usage()
                    value = args[i]
                options.user = value
            elif not _long_flag(options, name, bool(has_value)):
                usage()
        else:
            letters = arg[1:]
            for at, letter in enumerate(letters):
                if letter == "u":
                    value = letters[at + 1 :]
                    if not value:
                        i += 1
                        if i >= len(args):
                            usage()
                        value = args[i]
                    options.user = value
                    break
                if not _short_flag(options, letter):
                    usage()
        i += 1
    rest = args[i:]
    while rest and "=" in rest[0] and not rest[0].startswith("="):
        name, _, value = rest.pop(0).partition("=")
        options.env_args[name] = value
    options.command = rest
    return options


def _short_flag(options: Options, letter: str) -> bool:
    if letter == "E":
        options.preserve_env = True
    elif letter == "i":
        options.login = True
    elif letter == "s":
        options.shell = True
    elif letter == "v":
        options.only_validate = True
    elif letter == "l":
        options.list_rights = True
    elif letter == "h":
        sys.stdout.write(USAGE)
        sys.exit(0)
    elif letter == "V":
        print("sudo (sandboxd: commands run as box root by the agent)")
        sys.exit(0)
    elif letter in "kK":  # no timestamp to forget; alone, that is all they ask
        options.only_validate = True
    elif letter not in "nSH":  # no password is ever asked: nothing to do for these
        return False
    return True


def _long_flag(options: Options, name: str, has_value: bool) -> bool:
    letters = {
        "preserve-env": "E", "login": "i", "shell": "s", "validate": "v", "list": "l",
        "help": "h", "version": "V", "non-interactive": "n", "reset-timestamp": "k",
        "remove-timestamp": "K", "stdin": "S", "set-home": "H",
    }  # fmt: skip
    if name not in letters or (has_value and name != "preserve-env"):
        return False
    return _short_flag(options, letters[name])


def target(user: str) -> tuple[int, str, str, str]:
    """(uid, name, home, shell) of `user` (a name or #uid)."""
    try:
        entry = pwd.getpwuid(int(user[1:])) if user.startswith("#") else pwd.getpwnam(user)
    except (KeyError, ValueError):
        if user.startswith("#") and user[1:].isdigit():
            uid = int(user[1:])
            return uid, user, "/", "/bin/sh"
        fail(f"sudo: unknown user {user}")
    shell = entry.pw_shell if os.path.exists(entry.pw_shell) else "/bin/sh"
    if shell.endswith("nologin"):
        shell = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
    return entry.pw_uid, entry.pw_name, entry.pw_dir, shell


def command_argv(options: Options, shell: str) -> list[str]:
    """What runs: the command, or a (login) shell running it."""
    if not (options.login or options.shell):
        return options.command
    run_shell = os.environ.get("SHELL", shell) if options.shell and not options.login else shell
    flags = ["-l"] if options.login else []
    if options.command:
        return [run_shell, *flags, "-c", shlex.join(options.command)]
    return [run_shell, *flags]


def environment(options: Options, uid: int, name: str, home: str, shell: str) -> dict[str, str]:
    """sudo's env_reset (or -E: everything kept), then the target's identity."""
    caller = os.environ
    if options.preserve_env:
        env = dict(caller)
    else:
        env = {key: caller[key] for key in KEPT_ENV if key in caller}
        env |= {key: value for key, value in caller.items() if key.startswith("LC_")}
        env["PATH"] = SECURE_PATH
        env["HOME"] = home
    if options.login:
        env["HOME"] = home
    me = os.getuid()
    try:
        my_name = pwd.getpwuid(me).pw_name
    except KeyError:
        my_name = str(me)
    env |= {"USER": name, "LOGNAME": name, "SHELL": shell, "MAIL": f"/var/mail/{name}"}
    env |= {"SUDO_USER": my_name, "SUDO_UID": str(me), "SUDO_GID": str(os.getgid())}
    env["SUDO_COMMAND"] = " ".join(options.command)[:4096]
    return env | options.env_args


def stdio_fds() -> list[int]:
    """Our stdin, stdout and stderr; /dev/null for one that is closed."""
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(os.open(os.devnull, os.O_RDWR))
    return fds


def run(request: dict[str, Any]) -> int:
    """Send the request, relay signals, and return the command's exit code."""
    data = json.dumps(request).encode()
    if len(data) > MAX_REQUEST_BYTES:
        fail("sudo: unable to execute: Argument list too long")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sock.connect(SOCKET_NAME)
    except OSError:
        fail(NO_ROOT)
    # Handlers first, so no signal is lost before the request is sent; one that comes
    # earlier waits for it (the agent reads the request first).
    early: list[int] = []
    sent = False

    def on_signal(number: int, _: object) -> None:
        if sent:
            _relay(sock, number)
        else:
            early.append(number)

    for signum in RELAYED_SIGNALS:
        signal.signal(signum, on_signal)
    socket.send_fds(sock, [data], stdio_fds())
    sent = True
    for number in early:
        _relay(sock, number)
    answer = sock.recv(4096)
    if not answer:
        fail("sudo: the sandbox's agent refused or dropped the request (too many at once?)")
    result = json.loads(answer)
    if "error" in result:
        fail(f"sudo: {result['error']}")
    return int(result["exit"])


def _relay(sock: socket.socket, number: int) -> None:
    with contextlib.suppress(OSError):  # the agent is gone: the answer says so
        sock.send(json.dumps({"signal": int(number)}).encode())


def main(args: list[str]) -> int:
    options = parse(args)
    uid, name, home, shell = target(options.user)
    if options.list_rights:
        print(f"User {pwd.getpwuid(os.getuid()).pw_name} may run the following commands:")
        print("    (ALL : ALL) NOPASSWD: ALL")
        return 0
    if options.only_validate and not options.command:
        return 0
    if not options.command and not (options.login or options.shell):
        usage()
    argv = command_argv(options, shell)
    env = environment(options, uid, name, home, shell)
    cwd = home if options.login else os.getcwd()
    return run({"argv": argv, "env": env, "cwd": cwd, "uid": uid})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
