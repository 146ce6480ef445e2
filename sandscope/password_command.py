"""`sandscope hash-password`: a password hash for a login in `.streamlit/secrets.toml`."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import IO

from dashboard.serving.auth import SECRETS_FILE_NAME, hash_password

EXIT_OK = 0
EXIT_REFUSED = 1


def run_hash_password(
    stdin_is_tty: bool,
    *,
    read_secret: Callable[[str], str] = getpass.getpass,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Read a password and print its hash (alone on stdout); returns the exit code.

    On a terminal the password is asked twice without echo (`read_secret`) and a mismatch
    is refused; otherwise the first line of `stdin` is the password, so scripts can pipe
    it in. An empty password is refused. stdout carries only the hash; on a terminal,
    stderr also shows where to put it.
    """
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        if stdin_is_tty:
            password = read_secret("Password: ")
            if password and read_secret("Repeat it: ") != password:
                return _refuse("the two passwords differ", stderr)
        else:
            password = stdin.readline().removesuffix("\n").removesuffix("\r")
    except EOFError:
        password = ""
    if not password:
        return _refuse("the password is empty", stderr)
    password_hash = hash_password(password)
    print(password_hash, file=stdout)
    if stdin_is_tty:
        print(
            f"Add it to {SECRETS_FILE_NAME}:\n\n"
            f'[users.<name>]\npassword_hash = "{password_hash}"\nrole = "operator"  # or "viewer"',
            file=stderr,
        )
    return EXIT_OK


def _refuse(reason: str, stderr: IO[str]) -> int:
    print(f"sandscope hash-password: {reason}; no hash printed", file=stderr)
    return EXIT_REFUSED
