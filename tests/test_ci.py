"""CI runs exactly what the README tells a developer to run."""

import os
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

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


def locked_versions() -> dict[str, Version]:
    """Each package requirements.lock pins, by its canonical name, with the pinned version."""
    pins: dict[str, Version] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"([A-Za-z0-9._-]+)==([^ ;\\]+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def declared_requirements() -> list[Requirement]:
    """What pyproject.toml asks for: dependencies, the dev extra and the build backend."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = [
        *pyproject["project"]["dependencies"],
        *pyproject["project"]["optional-dependencies"]["dev"],
        *pyproject["build-system"]["requires"],
    ]
    return [Requirement(text) for text in declared]


def test_lock_pins_every_declared_requirement_within_its_range() -> None:
    pins = locked_versions()
    unlocked = [
        str(requirement)
        for requirement in declared_requirements()
        if canonicalize_name(requirement.name) not in pins
        or not requirement.specifier.contains(
            pins[canonicalize_name(requirement.name)], prereleases=True
        )
    ]

    assert not unlocked, f"run `make lock`: requirements.lock misses or breaks {unlocked}"


def test_every_locked_package_has_hashes() -> None:
    text = (ROOT / "requirements.lock").read_text() + (ROOT / "requirements-uv.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])

    without_hash = [entry.split()[0] for entry in entries if "--hash=sha256:" not in entry]

    assert len(entries) > 1
    assert not without_hash


def top_level_packages() -> set[str]:
    """Every directory at the root that is a Python package."""
    return {init.parent.name for init in ROOT.glob("*/__init__.py")}


def test_mypy_and_import_linter_cover_every_package() -> None:
    tools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]

    assert set(tools["mypy"]["files"]) == top_level_packages() | {"tests"}
    assert set(tools["importlinter"]["root_packages"]) == top_level_packages()
