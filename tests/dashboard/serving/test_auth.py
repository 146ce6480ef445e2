"""Logins: scrypt hashes, the secrets file, and no exposure beyond loopback without them."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dashboard.serving.auth import (
    DEFAULT_SESSION_IDLE_S,
    SECRETS_FILE_NAME,
    AuthConfigError,
    Logins,
    SignIn,
    User,
    check_exposure,
    hash_password,
    idle_sign_out_text,
    load_logins,
    local_actor,
    session_expired,
    verify_password,
)
from dashboard.serving.login_limits import LoginLimiter


@pytest.fixture(scope="module")
def alice_hash() -> str:
    return hash_password("correct horse")


def write_secrets(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "secrets.toml"
    path.write_text(text)
    return path


def test_a_hash_is_self_describing_scrypt_and_salted(alice_hash: str) -> None:
    kind, n, r, p, salt_b64, digest_b64 = alice_hash.split("$")
    salt = base64.b64decode(salt_b64)

    assert (kind, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(salt) == 16
    expected = hashlib.scrypt(b"correct horse", salt=salt, n=16384, r=8, p=1, dklen=32)
    assert base64.b64decode(digest_b64) == expected
    assert hash_password("correct horse") != alice_hash  # a new salt every time


def test_verify_accepts_the_password_only(alice_hash: str) -> None:
    assert verify_password("correct horse", alice_hash)
    assert not verify_password("correct horse ", alice_hash)
    assert not verify_password("", alice_hash)


@pytest.mark.parametrize(
    "bad_hash",
    [
        "",
        "plain-text-password",
        "bcrypt$16384$8$1$c2FsdA==$aGFzaA==",
        "scrypt$16384$8$1$not base64!$aGFzaA==",
        "scrypt$1000$8$1$c2FsdHNhbHRzYWx0c2FsdA==$" + "A" * 44,  # n not a power of two
        "scrypt$1073741824$8$1$c2FsdHNhbHRzYWx0c2FsdA==$" + "A" * 44,  # 1 TiB of memory
    ],
)
def test_a_malformed_hash_never_verifies(bad_hash: str) -> None:
    assert not verify_password("anything", bad_hash)


def test_logins_check_returns_the_user_on_the_right_password(alice_hash: str) -> None:
    alice = User("alice", "operator", alice_hash)
    logins = Logins({"alice": alice})

    assert logins.enabled
    assert logins.check("alice", "correct horse") == alice
    assert logins.check("alice", "wrong") is None
    assert logins.check("mallory", "correct horse") is None
    assert not Logins().enabled


def test_the_hash_is_not_in_a_users_repr(alice_hash: str) -> None:
    assert alice_hash not in repr(User("alice", "viewer", alice_hash))


def test_load_logins_reads_users_and_roles(tmp_path: Path, alice_hash: str) -> None:
    path = write_secrets(
        tmp_path,
        f'E2B_API_KEY = "e2b_x"\n\n[users.alice]\npassword_hash = "{alice_hash}"\n'
        f'role = "operator"\n\n[users.bob]\npassword_hash = "{alice_hash}"\n',
    )

    logins = load_logins(path)

    assert {name: user.role for name, user in logins.users.items()} == {
        "alice": "operator",
        "bob": "viewer",  # no role: the least one
    }
    assert logins.check("alice", "correct horse") is not None


def test_no_file_or_no_users_section_means_no_logins(tmp_path: Path) -> None:
    assert not load_logins(tmp_path / "absent.toml").enabled
    assert not load_logins(write_secrets(tmp_path, 'E2B_API_KEY = "e2b_x"\n')).enabled


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ('role = "operator"', "has no password_hash"),
        ('password_hash = "HASH"\nrole = "admin"', 'role must be "viewer" or "operator"'),
        ('password_hash = "swordfish-plain"\nrole = "viewer"', "password_hash is not valid"),
    ],
)
def test_a_bad_user_entry_names_the_user_and_never_echoes_the_hash(
    tmp_path: Path, alice_hash: str, entry: str, problem: str
) -> None:
    path = write_secrets(tmp_path, "[users.carol]\n" + entry.replace("HASH", alice_hash))

    with pytest.raises(AuthConfigError, match=problem) as refused:
        load_logins(path)

    assert "[users.carol]" in str(refused.value)
    assert alice_hash not in str(refused.value)
    assert "swordfish" not in str(refused.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write_secrets(tmp_path, "[users.alice\n")

    with pytest.raises(AuthConfigError, match="is not valid TOML"):
        load_logins(path)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_logins(address: str) -> None:
    check_exposure(address, Logins())


@pytest.mark.parametrize("address", ["0.0.0.0", "192.168.1.20", "::", "monitor.example", ""])
def test_anything_else_refuses_to_start_without_logins(address: str, alice_hash: str) -> None:
    with pytest.raises(AuthConfigError, match=r"refuses to listen on .* without logins") as refused:
        check_exposure(address, Logins())
    assert ".streamlit/secrets.toml" in str(refused.value)

    check_exposure(address, Logins({"alice": User("alice", "viewer", alice_hash)}))


def test_the_local_actor_names_the_os_user() -> None:
    assert local_actor().startswith("local:")
    assert len(local_actor()) > len("local:")


def test_the_secrets_file_is_ignored_by_git() -> None:
    """Logins' hashes and the API key live in .streamlit/secrets.toml: never committed."""
    repository = Path(__file__).resolve().parents[3]
    if shutil.which("git") is None or not (repository / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "--quiet", "--no-index", SECRETS_FILE_NAME],
        cwd=repository,
        check=False,
    )
    assert ignored.returncode == 0, f"{SECRETS_FILE_NAME} is not in .gitignore"


def test_sign_in_checks_the_password_until_locked_out(alice_hash: str) -> None:
    now_s = [0.0]
    logins = Logins(
        {"alice": User("alice", "operator", alice_hash)},
        limiter=LoginLimiter(clock=lambda: now_s[0]),
    )
    assert logins.sign_in("alice", "correct horse", None).user is not None
    results = [logins.sign_in("alice", "wrong", None) for _ in range(5)]
    assert [r.retry_in_s for r in results[:3]] == [0.0, 0.0, 0.0]
    assert results[3].retry_in_s == 2.0 and results[3].checked
    assert results[4] == SignIn(None, 2.0, checked=False)
    now_s[0] = 2.0
    assert logins.sign_in("alice", "correct horse", None).user == logins.users["alice"]


def test_refusals_say_when_to_retry_in_utc() -> None:
    now = datetime(2026, 12, 5, 9, 0, 0, tzinfo=UTC)
    assert SignIn(None).refusal_text(now) == "Wrong user or password."
    assert SignIn(None, 7.2, checked=False).refusal_text(now) == (
        "Too many failed sign-ins: try again in 8 s (at 09:00:08 UTC)."
    )
    assert SignIn(None, 300).refusal_text(now).startswith("Wrong user or password. Too many")


def test_a_session_expires_after_its_idle_time() -> None:
    now = datetime(2026, 12, 5, 9, 0, 0, tzinfo=UTC)
    assert not session_expired(now - timedelta(seconds=1800), now, 1800)
    assert session_expired(now - timedelta(seconds=1801), now, 1800)
    assert session_expired(None, now, 1800)
    assert idle_sign_out_text(1800) == (
        "You were signed out after 30 min without activity. Sign in again."
    )
    assert "after 45 s without" in idle_sign_out_text(45)


def test_load_logins_takes_the_idle_time(tmp_path: Path, alice_hash: str) -> None:
    path = write_secrets(tmp_path, f'[users.alice]\npassword_hash = "{alice_hash}"\n')
    assert load_logins(path).session_idle_s == DEFAULT_SESSION_IDLE_S
    assert load_logins(path, 60).session_idle_s == 60
