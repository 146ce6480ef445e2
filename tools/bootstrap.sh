#!/usr/bin/env bash
# Make the project ready to run and test on a fresh Debian machine that has only python3:
# Debian packages (installed only as root), the .venv virtualenv, and the Python dependencies at
# the exact versions and hashes of requirements.lock (re-installed only when a lock file,
# pyproject.toml or the list of packages changed). Safe to run again; fast when nothing changed.
# Never downloads a browser: browser tests use Debian's chromium.
set -euo pipefail

# Debian packages the project needs: bubblewrap isolates sandboxd's sandboxes; slirp4netns and
# iproute2 give them filtered outbound network; chromium runs the
# dashboard's browser tests (driven by Playwright, which must never download its own browser).
APT_PACKAGES=(bubblewrap libseccomp2 slirp4netns iproute2 chromium)

PYTHON="${PYTHON:-python3}"
VENV=".venv"
STAMP="$VENV/.sandscope-lock.sha256"
# Everything the virtualenv holds, pinned with hashes (`make lock` writes it from pyproject.toml).
LOCK="requirements.lock"
# uv, which installs LOCK: pinned with hashes too, and installed by pip, which the venv comes with.
UV_LOCK="requirements-uv.lock"

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

ensure_uv() {
    local want
    want="$(sed -n 's/^uv==\([^ ]*\).*/\1/p' "$UV_LOCK")"
    # `uv --version` prints "uv 0.13.9 (x86_64-unknown-linux-gnu)".
    [ "$("$VENV/bin/uv" --version 2>/dev/null | cut -d' ' -f2)" = "$want" ] && return 0
    say "installing uv $want from $UV_LOCK"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r "$UV_LOCK"
}

ensure_python_packages() {
    local want
    # The lock files, pyproject.toml (the package's own metadata: scripts, package list) and the
    # list of top-level packages: an editable install maps the packages it found, so a new
    # package needs a new install too.
    want="$( { cat "$LOCK" "$UV_LOCK" pyproject.toml; ls -d */__init__.py; } | "$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
        say "python packages up to date (lock files, pyproject.toml and packages unchanged)"
        return 0
    fi
    rm -f "$STAMP"
    ensure_uv
    say "installing the locked dependencies from $LOCK (uv pip sync)"
    # sync makes the venv hold exactly the lock (removing what is not in it); every file's hash
    # is checked. uv keeps pip and itself, which are not in the lock.
    "$VENV/bin/uv" pip sync --quiet --python "$VENV/bin/python" --require-hashes "$LOCK"
    say "installing sandscope itself (editable, without dependencies)"
    # No build isolation: the build backend (setuptools) is in the lock and already installed,
    # so nothing is fetched unpinned.
    "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --no-deps --no-build-isolation -e .
    # A dependency added to pyproject.toml but not yet locked shows here, not as an ImportError.
    if ! "$VENV/bin/uv" pip check --quiet --python "$VENV/bin/python"; then
        die "$LOCK does not satisfy pyproject.toml's dependencies; run 'make lock'"
    fi
    echo "$want" >"$STAMP"
}

check_python
if [ "${1:-}" = "--uv-only" ]; then
    # For `make lock`: uv alone, so a lock that no longer satisfies pyproject.toml can be redone.
    ensure_venv
    ensure_uv
    exit 0
fi
ensure_apt_packages
ensure_venv
ensure_python_packages
say "ready"
