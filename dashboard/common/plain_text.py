"""Text from outside (log lines, command lines, process names, sandbox metadata, template and
alias names, kill reasons, IDs, error messages) made safe to show. Pure.

Streamlit draws the text of st.markdown, st.write, st.caption, st.info/warning/error,
st.subheader, widget labels and `help=` tooltips as Markdown: `![x](http://host/x.png)`
there makes the operator's browser fetch an image, `[x](http://...)` draws a link,
`:red[x]` colours and `$x$` typesets. Sandboxes write such text, so it goes through
`literal` before it reaches any of those, and is shown exactly as it came, in code style
(which also tells the operator which words came from outside).

Spreadsheets run a CSV cell that starts with `=`, `+`, `-` or `@` as a formula (one can
fetch a URL), so exports write such cells through `csv_cell`; Plotly reads `<b>`, `<a>`
and entities in labels, so chart labels from outside go through `plot_literal`.
"""

from __future__ import annotations

import re

# A line break would end a code span's line or start a new Markdown block.
_BREAKS = re.compile(r"[\r\n]+")
_BACKTICK_RUNS = re.compile(r"`+")
# Streamlit's frontend rewrites ":material/" to ":material_" anywhere in Markdown, code
# included; an invisible word joiner after the colon keeps the text as it came.
_STREAMLIT_ICON = ":material/"
_ICON_KEPT = ":\u2060material/"
_PLOT_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# Spreadsheets treat these as the start of a formula (tab and CR as well, before them).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def literal(text: object) -> str:
    """`text` as Markdown that Streamlit shows as exactly that text (line breaks become
    spaces), in code style; "" for empty text.

    A code span, fenced by more backticks than any run inside: its content is the one
    place Markdown leaves alone. Backslash escapes are not enough: GitHub's autolinks
    (a bare `http://...`), emoji names and Streamlit's `:red[...]` are found in the text
    after escapes are undone.
    """
    line = _BREAKS.sub(" ", str(text)).replace(_STREAMLIT_ICON, _ICON_KEPT)
    if not line:
        return ""
    fence = "`" * (1 + max((len(run) for run in _BACKTICK_RUNS.findall(line)), default=0))
    # One space on each side is dropped again, and lets the text begin or end with "`".
    padded = f" {line} " if line[0] in "` " or line[-1] in "` " else line
    return f"{fence}{padded}{fence}"


def plot_literal(text: object) -> str:
    """`text` for a Plotly label or hover text, which reads `<b>`, `<a href=...>` and `&...;`
    as markup: those characters become entities, shown as themselves."""
    return str(text).translate(_PLOT_ENTITIES)


def csv_cell(value: object) -> object:
    """`value` for a CSV cell that a spreadsheet shows as text: a string starting like a
    formula gets a leading apostrophe; anything else is returned as it is."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
