"""CI runs exactly what the README tells a developer to run."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CI_RUN = ROOT / ".ci" / "run"


def readme_test_command() -> str:
    """The command in the first code block under "## Test"."""
    section = (ROOT / "README.md").read_text().split("\n## Test\n", 1)[1]
    match = re.search(r"```\w*\n(.+?)\n```", section, re.DOTALL)
    assert match, "README's Test section has no code block"
    return match.group(1).strip()


def ci_commands() -> list[str]:
    lines = (line.strip() for line in CI_RUN.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_ci_runs_the_readme_test_command() -> None:
    command = readme_test_command()

    assert command == "make test"
    assert command in ci_commands()


def test_ci_script_is_strict_and_executable() -> None:
    assert os.access(CI_RUN, os.X_OK)
    assert "set -euo pipefail" in ci_commands()
