"""Attacks on signed `/files` links, which name no sandbox: sandboxd routes them by their
signature (sandboxd/envd/signed_links.py), so a link must open the one box whose token signed
it, for the one path, operation, user and time it was signed for, and nothing else."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from e2b import Sandbox
from e2b.sandbox.signature import get_signature

SECRET_PATH = "/home/user/secret.txt"


@pytest.fixture
def two_boxes(sdk_env: None) -> Iterator[tuple[Sandbox, Sandbox]]:
    """Boxes A and B, each holding its own secret at the same path."""
    boxes: list[Sandbox] = []
    try:
        for name in ("A", "B"):
            box = Sandbox.create(timeout=120, secure=True)
            boxes.append(box)
            box.files.write(SECRET_PATH, f"secret of {name}")
        yield boxes[0], boxes[1]
    finally:
        for box in boxes:
            with contextlib.suppress(Exception):
                box.kill()


def with_params(url: str, **changes: str) -> str:
    """`url` with some query parameters replaced, the rest as they were."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    params.update(changes)
    return urlunsplit(parts._replace(query=urlencode(params)))


def refused(answer: httpx.Response, message: str) -> bool:
    return answer.status_code == 401 and answer.json() == {"code": 401, "message": message}


def test_a_link_opens_only_the_box_that_signed_it(two_boxes: tuple[Sandbox, Sandbox]) -> None:
    box_a, box_b = two_boxes
    link_a = box_a.download_url(SECRET_PATH)

    plain = httpx.get(link_a)
    aimed_at_b = httpx.get(link_a, headers={"E2b-Sandbox-Id": box_b.sandbox_id})

    assert plain.status_code == 200 and plain.text == "secret of A"
    assert aimed_at_b.status_code == 401 and "secret of B" not in aimed_at_b.text


def test_a_tampered_link_is_refused(two_boxes: tuple[Sandbox, Sandbox]) -> None:
    box_a, _ = two_boxes
    link = box_a.download_url(SECRET_PATH, use_signature_expiration=60)
    signature = dict(parse_qsl(urlsplit(link).query))["signature"]
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    later = str(int(dict(parse_qsl(urlsplit(link).query))["signature_expiration"]) + 3600)

    assert httpx.get(link).text == "secret of A"
    for tampered in (
        with_params(link, path="/home/user/.bashrc"),  # another file
        with_params(link, username="root"),  # another user
        with_params(link, signature=flipped),
        with_params(link, signature_expiration=later),  # a longer life
    ):
        assert refused(httpx.get(tampered), "invalid signature"), tampered


def test_a_read_link_cannot_write(two_boxes: tuple[Sandbox, Sandbox]) -> None:
    box_a, _ = two_boxes
    read_link = box_a.download_url(SECRET_PATH)

    answer = httpx.post(read_link, files={"file": ("secret.txt", b"overwritten")})

    assert refused(answer, "invalid signature")
    assert box_a.files.read(SECRET_PATH) == "secret of A"


def test_an_expired_link_is_refused(two_boxes: tuple[Sandbox, Sandbox]) -> None:
    box_a, _ = two_boxes
    token = box_a._envd_access_token
    expired = get_signature(SECRET_PATH, "read", None, token, -5)  # signed, then time passed
    link = with_params(
        box_a.download_url(SECRET_PATH),
        signature=expired["signature"],
        signature_expiration=str(expired["expiration"]),
    )

    answer = httpx.get(link)

    assert refused(answer, "signature is already expired")
    assert "secret" not in answer.text


def test_a_link_signed_with_a_guessed_token_opens_nothing(
    two_boxes: tuple[Sandbox, Sandbox],
) -> None:
    box_a, _ = two_boxes
    forged = get_signature(SECRET_PATH, "read", None, "guessed-token")

    answer = httpx.get(with_params(box_a.download_url(SECRET_PATH), signature=forged["signature"]))

    assert refused(answer, "invalid signature")
