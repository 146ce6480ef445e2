"""Who may use the dashboard: logins from `.streamlit/secrets.toml`, password hashes, and
the rule that anything but loopback needs logins.

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
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Literal, cast, get_args

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


class AuthConfigError(ValueError):
    """The logins are badly configured, or the dashboard would be exposed without them."""


@dataclass(frozen=True)
class User:
    """One configured login. The hash is left out of the repr, so logs never show it."""

    name: str
    role: Role
    password_hash: str = field(repr=False)


@dataclass(frozen=True)
class Logins:
    """The configured users by name; none means logins are off (loopback only)."""

    users: Mapping[str, User] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def enabled(self) -> bool:
        """True when any user is configured."""
        return bool(self.users)

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


def load_logins(secrets_file: Path) -> Logins:
    """The `[users.<name>]` tables of `secrets_file` (TOML); no file or no section: no users.

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
    return Logins(MappingProxyType(users))


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
