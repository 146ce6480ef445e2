"""Who may use the dashboard: logins from `.streamlit/secrets.toml`, password hashes, the
rule that anything but loopback needs logins, rate-limited sign-ins (`login_limits`) and
sessions that expire when idle.

    [users.alice]
    password_hash = "scrypt$16384$8$1$<salt base64>$<hash base64>"   # `sandscope hash-password`
    role = "operator"                                                 # or "viewer" (the default)

Hashes are stdlib scrypt, self-describing so their cost can change later. No message here
ever quotes a password or a hash.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import hmac
import ipaddress
import math
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Literal, cast, get_args

from dashboard.serving.login_limits import LoginLimiter

Role = Literal["viewer", "operator"]
ROLES: tuple[Role, ...] = get_args(Role)
SECRETS_FILE_NAME = ".streamlit/secrets.toml"

# scrypt's interactive-login parameters (16 MiB of memory per check).
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
# A hash naming a larger cost is refused: checking it would take this much memory or more.
_MAX_SCRYPT_MEMORY_BYTES = 256 * 2**20
# A signed-in session left alone this long signs out (SANDSCOPE_SESSION_IDLE_S): long enough
# for a coffee break in front of a live page, short enough that a forgotten tab does not
# stay an operator's for the day.
DEFAULT_SESSION_IDLE_S = 1800.0


class AuthConfigError(ValueError):
    """The logins are badly configured, or the dashboard would be exposed without them."""


@dataclass(frozen=True)
class User:
    """One configured login. The hash is left out of the repr, so logs never show it."""

    name: str
    role: Role
    password_hash: str = field(repr=False)


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: the user, or None with `retry_in_s` > 0 when the name or
    the address is locked out for that long (the password was then not checked)."""

    user: User | None
    retry_in_s: float = 0.0
    checked: bool = True  # False: locked out before the password was looked at

    def refusal_text(self, now: datetime) -> str:
        """Why a sign-in was refused, and when to retry if locked out (`now` in UTC)."""
        wrong = "Wrong user or password."
        if self.retry_in_s <= 0:
            return wrong
        wait_s = math.ceil(self.retry_in_s)
        at = (now + timedelta(seconds=wait_s)).strftime("%H:%M:%S UTC")
        locked = f"Too many failed sign-ins: try again in {wait_s} s (at {at})."
        return f"{wrong} {locked}" if self.checked else locked


def idle_sign_out_text(idle_s: float) -> str:
    """What a session signed out for idleness is told."""
    minutes = idle_s / 60
    shown = f"{minutes:g} min" if minutes >= 1 else f"{idle_s:g} s"
    return f"You were signed out after {shown} without activity. Sign in again."


@dataclass(frozen=True)
class Logins:
    """The configured users by name; none means logins are off (loopback only).

    One per process: `limiter` counts every session's failed sign-ins, and a session
    signed in expires after `session_idle_s` without activity.
    """

    users: Mapping[str, User] = field(default_factory=lambda: MappingProxyType({}))
    session_idle_s: float = DEFAULT_SESSION_IDLE_S
    limiter: LoginLimiter = field(default_factory=LoginLimiter, repr=False, compare=False)

    @property
    def enabled(self) -> bool:
        """True when any user is configured."""
        return bool(self.users)

    def sign_in(self, name: str, password: str, address: str | None) -> SignIn:
        """Check `password` for `name` from client `address`, unless either is locked out
        by earlier failures. The result of a wrong password also says how long the next
        try must wait, when this failure earned a lock-out."""
        wait_s = self.limiter.begin(name, address)
        if wait_s > 0:
            return SignIn(None, wait_s, checked=False)
        user = self.check(name, password)
        if user is None:
            return SignIn(None, self.limiter.locked_for_s(name, address))
        self.limiter.succeeded(name, address)
        return SignIn(user)

    def check(self, name: str, password: str) -> User | None:
        """The user when `password` is theirs, else None.

        An unknown name costs the same scrypt work as a known one, so timing does not tell
        which names exist.
        """
        user = self.users.get(name)
        if user is None:
            verify_password(password, _decoy_hash())
            return None
        return user if verify_password(password, user.password_hash) else None


@dataclass(frozen=True)
class _ScryptHash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def hash_password(password: str) -> str:
    """`password` hashed with scrypt and a random salt: "scrypt$n$r$p$salt_b64$hash_b64"."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    return "$".join(
        [
            "scrypt",
            str(SCRYPT_N),
            str(SCRYPT_R),
            str(SCRYPT_P),
            base64.b64encode(salt).decode("ascii"),
            base64.b64encode(digest).decode("ascii"),
        ]
    )


def verify_password(password: str, password_hash: str) -> bool:
    """True when `password` matches `password_hash`; False for a wrong password or a
    malformed hash. The digests are compared in constant time."""
    try:
        parsed = _parse_hash(password_hash)
    except ValueError:
        return False
    digest = _scrypt(password, parsed.salt, parsed.n, parsed.r, parsed.p, len(parsed.digest))
    return hmac.compare_digest(digest, parsed.digest)


def load_logins(secrets_file: Path, session_idle_s: float = DEFAULT_SESSION_IDLE_S) -> Logins:
    """The `[users.<name>]` tables of `secrets_file` (TOML); no file or no section: no users.
    Sessions signed in with them expire after `session_idle_s` without activity.

    Raises AuthConfigError naming the file or the user for unreadable TOML, a user without a
    valid `password_hash` or with a role other than "viewer" or "operator".
    """
    try:
        with Path(secrets_file).open("rb") as fh:
            document = tomllib.load(fh)
    except FileNotFoundError:
        return Logins()
    except OSError as exc:
        raise AuthConfigError(f"cannot read {secrets_file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AuthConfigError(f"{secrets_file} is not valid TOML: {exc}") from None
    section = document.get("users", {})
    if not isinstance(section, dict):
        raise AuthConfigError(f"`users` in {secrets_file} must be a table of [users.<name>]")
    users = {name: _user(name, entry, secrets_file) for name, entry in section.items()}
    return Logins(MappingProxyType(users), session_idle_s=session_idle_s)


def session_expired(last_active_at: datetime | None, now: datetime, idle_s: float) -> bool:
    """True when a session last active at `last_active_at` (None: never) has been idle for
    more than `idle_s` at `now`."""
    return last_active_at is None or (now - last_active_at).total_seconds() > idle_s


def check_exposure(address: str, logins: Logins) -> None:
    """Refuse (AuthConfigError) to serve on a non-loopback `address` without logins.

    Loopback is 127.0.0.0/8, ::1 and "localhost"; anything else (0.0.0.0, "", a LAN
    address, a host name) reaches other machines.
    """
    if logins.enabled or is_loopback(address):
        return
    shown = address or "every interface"
    raise AuthConfigError(
        f"sandscope refuses to listen on {shown} without logins: add [users.<name>] with "
        f'password_hash = "<from `sandscope hash-password`>" and role = "viewer" or '
        f'"operator" to {SECRETS_FILE_NAME}, or listen on 127.0.0.1'
    )


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 (bracketed or not) and "localhost"."""
    host = address.strip().lower()
    if host == "localhost":
        return True
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name may resolve anywhere


def local_actor() -> str:
    """The audit's actor when logins are off: "local:<os user>"."""
    try:
        return f"local:{getpass.getuser()}"
    except (OSError, KeyError):  # no name for this uid (a bare container)
        return f"local:uid{os.getuid()}"


def _user(name: str, entry: object, secrets_file: Path) -> User:
    where = f"[users.{name}] in {secrets_file}"
    if not isinstance(entry, dict):
        raise AuthConfigError(f"{where} must be a table with password_hash and role")
    role = entry.get("role", "viewer")
    if role not in ROLES:
        raise AuthConfigError(f'{where}: role must be "viewer" or "operator"')
    password_hash = entry.get("password_hash")
    if not isinstance(password_hash, str):
        raise AuthConfigError(
            f"{where} has no password_hash: make one with `sandscope hash-password`"
        )
    try:
        _parse_hash(password_hash)
    except ValueError as problem:
        raise AuthConfigError(f"{where}: password_hash is not valid ({problem})") from None
    return User(name=name, role=cast(Role, role), password_hash=password_hash)


def _parse_hash(password_hash: str) -> _ScryptHash:
    """The parts of a "scrypt$n$r$p$salt$hash" string; ValueError (never quoting the hash)."""
    parts = password_hash.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError('expected "scrypt$n$r$p$salt$hash" from `sandscope hash-password`')
    try:
        n, r, p = (int(part) for part in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        raise ValueError("its cost, salt or hash is not readable") from None
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or p > 16 or not salt or not 16 <= len(digest) <= 64:
        raise ValueError("its scrypt parameters are out of range")
    if 128 * n * r > _MAX_SCRYPT_MEMORY_BYTES:
        raise ValueError("its scrypt cost needs more memory than allowed")
    return _ScryptHash(n=n, r=r, p=p, salt=salt, digest=digest)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # scrypt needs 128 * n * r bytes; the default maxmem (32 MiB) is too tight for some
    # hashes _parse_hash allows.
    maxmem = 128 * n * r * 2 + 2**20
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length
    )


@cache
def _decoy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))
