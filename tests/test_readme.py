"""The README documents every setting, with its default, and how to run and test."""

import re
from pathlib import Path

from sandscope.settings import documented_settings

README = Path(__file__).resolve().parents[1] / "README.md"


def settings_table() -> dict[str, str]:
    """{env name: default} from the rows of the table under "## Settings"."""
    section = README.read_text().split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    table: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.lstrip().startswith("|") or len(cells) < 3:
            continue
        if match := re.fullmatch(r"`([A-Z0-9_]+)`", cells[0]):
            table[match.group(1)] = cells[1].strip("`")
    return table


def test_readme_settings_table_matches_the_code() -> None:
    table = settings_table()
    docs = documented_settings()

    missing = [
        f"| `{doc.env}` | `{doc.default}` | {doc.help} |"
        for doc in docs
        if table.get(doc.env) != doc.default
    ]
    assert not missing, "README settings table lacks or misstates:\n" + "\n".join(missing)
    stale = set(table) - {doc.env for doc in docs}
    assert not stale, f"README documents settings the code does not have: {sorted(stale)}"


def test_readme_says_how_to_run_and_test() -> None:
    text = README.read_text()

    assert "make run" in text
    assert "make test" in text
