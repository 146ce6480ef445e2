"""`sandscope hash-password`: a hash that verifies, and refusals that print none."""

from __future__ import annotations

import io
from collections.abc import Callable

from dashboard.serving.auth import verify_password
from sandscope.password_command import EXIT_OK, EXIT_REFUSED, run_hash_password


def typed(*answers: str) -> Callable[[str], str]:
    """A getpass stand-in answering in turn; the prompts are kept."""
    remaining = list(answers)
    prompts: list[str] = []

    def read_secret(prompt: str) -> str:
        prompts.append(prompt)
        return remaining.pop(0)

    return read_secret


def run(
    stdin_is_tty: bool, read_secret: Callable[[str], str], stdin_text: str = ""
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_hash_password(
        stdin_is_tty,
        read_secret=read_secret,
        stdin=io.StringIO(stdin_text),
        stdout=out,
        stderr=err,
    )
    return code, out.getvalue(), err.getvalue()


def never_asked(prompt: str) -> str:
    raise AssertionError(f"asked {prompt!r} without a terminal")


def test_on_a_terminal_the_password_is_asked_twice_and_its_hash_printed_alone() -> None:
    code, out, err = run(True, typed("s3cret pass", "s3cret pass"))

    assert code == EXIT_OK
    password_hash = out.strip()
    assert out == password_hash + "\n"
    assert verify_password("s3cret pass", password_hash)
    assert "[users.<name>]" in err and "s3cret" not in err


def test_two_different_passwords_are_refused() -> None:
    code, out, err = run(True, typed("one", "two"))

    assert (code, out) == (EXIT_REFUSED, "")
    assert "differ" in err


def test_an_empty_password_is_refused() -> None:
    code, out, err = run(True, typed(""))

    assert (code, out) == (EXIT_REFUSED, "")
    assert "empty" in err


def test_ctrl_d_at_the_prompt_is_an_empty_password() -> None:
    def end_of_input(prompt: str) -> str:
        raise EOFError

    code, out, _ = run(True, end_of_input)

    assert (code, out) == (EXIT_REFUSED, "")


def test_without_a_terminal_the_first_line_of_stdin_is_the_password() -> None:
    code, out, err = run(False, never_asked, "piped pass\nignored\n")

    assert code == EXIT_OK
    assert verify_password("piped pass", out.strip())
    assert err == ""


def test_empty_stdin_is_refused() -> None:
    code, out, _ = run(False, never_asked, "")

    assert (code, out) == (EXIT_REFUSED, "")
