#!/usr/bin/env bash
# Make the project ready to run and test on a fresh Debian machine that has only python3:
# Debian packages (installed only as root), the .venv virtualenv, and the Python dependencies
# (re-installed only when pyproject.toml changed). Safe to run again; fast when nothing changed.
# Never downloads a browser: browser tests use Debian's chromium.
set -euo pipefail

# Debian packages the project needs: bubblewrap isolates sandboxd's sandboxes; chromium runs the
# dashboard's browser tests (driven by Playwright, which must never download its own browser).
APT_PACKAGES=(bubblewrap libseccomp2 chromium)

PYTHON="${PYTHON:-python3}"
VENV=".venv"
STAMP="$VENV/.sandscope-pyproject.sha256"

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "sandscope: $*"; }
die() {
    echo "sandscope: error: $*" >&2
    exit 1
}
is_root() { [ "$(id -u)" -eq 0 ]; }

apt_install() {
    say "installing Debian packages: $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

check_python() {
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.11 or newer"
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        die "Python 3.11 or newer is needed; $PYTHON is $("$PYTHON" -V 2>&1)"
    fi
}

ensure_apt_packages() {
    [ "${#APT_PACKAGES[@]}" -gt 0 ] || return 0
    if ! command -v dpkg >/dev/null; then
        say "warning: not a Debian system; make sure these are installed: ${APT_PACKAGES[*]}" >&2
        return 0
    fi
    local missing=() pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    if is_root; then
        apt_install "${missing[@]}"
    else
        say "warning: missing Debian packages: ${missing[*]}" >&2
        say "warning: install them with: sudo apt-get install -y ${missing[*]}" >&2
    fi
}

venv_works() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1
}

ensure_venv() {
    venv_works && return 0
    if [ -e "$VENV" ]; then
        # Left half-made by a failed run (no pip) or built by a Python that is gone.
        say "removing broken virtualenv $VENV"
        rm -rf "$VENV"
    fi
    say "creating virtualenv $VENV"
    if "$PYTHON" -m venv "$VENV" && venv_works; then
        return 0
    fi
    rm -rf "$VENV"
    # Debian splits venv/ensurepip out of python3 into python3-venv.
    local version
    version="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    if ! is_root; then
        die "'$PYTHON -m venv' failed; install the venv module (Debian: sudo apt-get install -y python3-venv, or python$version-venv) and run again"
    fi
    apt_install python3-venv
    say "creating virtualenv $VENV (after installing python3-venv)"
    "$PYTHON" -m venv "$VENV" && venv_works || die "'$PYTHON -m venv' still fails after installing python3-venv"
}

ensure_python_packages() {
    local want
    # pyproject.toml and the list of top-level packages: an editable install maps the
    # packages it found, so a new package needs a new install too.
    want="$( { cat pyproject.toml; ls -d */__init__.py; } | "$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
        say "python packages up to date (pyproject.toml and packages unchanged)"
        return 0
    fi
    say "installing sandscope and its dependencies (pip install -e '.[dev]')"
    rm -f "$STAMP"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    echo "$want" >"$STAMP"
}

check_python
ensure_apt_packages
ensure_venv
ensure_python_packages
say "ready"
