"""sandboxd's data dir and the files in it: its owner's alone, whatever the umask.

The data dir holds the API key, the store (every sandbox's details, logs and events) and
the boxes' disk images. Another host user who could list it would learn sandbox ids; one
who could read it would read every box's data. So the dir is 0700 and every file 0600,
set explicitly (mkdir and open modes are masked by the umask, and a dir made by an older
run or by hand may be 0755).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def prepare_data_dir(data_dir: Path) -> None:
    """Make `data_dir` (and missing parents) and set it to 0700; set the files directly in
    it to 0600 (what an older run or a umask of 022 left readable)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(data_dir, DIR_MODE)
    for entry in data_dir.iterdir():
        with contextlib.suppress(FileNotFoundError):  # removed meanwhile
            mode = entry.lstat().st_mode
            if stat.S_ISREG(mode) and stat.S_IMODE(mode) != FILE_MODE:
                os.chmod(entry, FILE_MODE)


def write_private_text(path: Path, text: str) -> None:
    """Write `text` to `path` (replaced whole), mode 0600 whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), FILE_MODE)  # an existing file keeps its old mode otherwise
        out.write(text)
