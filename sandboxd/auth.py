"""The API key: made at first start, kept in a file only its owner can read."""

from __future__ import annotations

import hmac
import os
import secrets
import uuid
from pathlib import Path

from sandboxd.private_files import write_private_text

KEY_PREFIX = "e2b_"


def load_or_create_key(key_file: Path) -> str:
    """The key stored in `key_file`, made (`e2b_` + 40 hex digits, mode 0600) if absent."""
    key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        key = key_file.read_text().strip()
    except FileNotFoundError:
        key = KEY_PREFIX + secrets.token_hex(20)
        # O_EXCL: two sandboxd starting at once cannot both write a key.
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(key + "\n")
        return key
    os.chmod(key_file, 0o600)
    return key


def key_matches(expected: str, presented: str | None) -> bool:
    """Whether `presented` is the key, compared in constant time."""
    if presented is None:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def load_or_create_team_id(team_file: Path) -> str:
    """The team ID kept in `team_file`, made (a random UUID) at first start."""
    try:
        return team_file.read_text().strip()
    except FileNotFoundError:
        team_id = str(uuid.uuid4())
        write_private_text(team_file, team_id + "\n")
        return team_id
