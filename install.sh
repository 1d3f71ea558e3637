#!/usr/bin/env bash
# Installs Forewarn from this checkout into a virtualenv of its own and puts
# `agent` on the PATH. Needs only python3 (3.11 or later) and network access to PyPI.
#
#   as root:  venv in /opt/forewarn,               agent linked in /usr/local/bin
#   as a user: venv in ~/.local/share/forewarn,    agent linked in ~/.local/bin
#   FOREWARN_PREFIX=DIR FOREWARN_BIN=DIR bash install.sh   # choose both places
#   PYTHON=python3.12 bash install.sh                      # choose the interpreter
#
# Safe to run again: the venv is kept and the package upgraded in place, which
# is also how an update is installed (git pull && bash install.sh). As root,
# Debian's python3-venv is installed first when it is missing, waiting for a
# busy apt rather than failing.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
if [[ $EUID -eq 0 ]]; then
    PREFIX="${FOREWARN_PREFIX:-/opt/forewarn}"
    BIN="${FOREWARN_BIN:-/usr/local/bin}"
else
    PREFIX="${FOREWARN_PREFIX:-${XDG_DATA_HOME:-$HOME/.local/share}/forewarn}"
    BIN="${FOREWARN_BIN:-$HOME/.local/bin}"
fi

log() { printf 'install: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

check_python() {
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (apt-get install python3)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "Forewarn needs Python 3.11 or later; $PYTHON is $("$PYTHON" -V 2>&1)"
}

# Debian and Ubuntu ship venv's pip bootstrap (ensurepip) in python3-venv.
ensure_venv_module() {
    "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null && return
    [[ $EUID -eq 0 ]] || die "$PYTHON cannot make a virtualenv: run as root once, or: sudo apt-get install python3-venv"
    command -v apt-get >/dev/null || die "$PYTHON has no ensurepip; install your distribution's venv package"
    "$REPO/contrib/apt-install" python3-venv
    "$PYTHON" -c 'import ensurepip, venv' || die "python3-venv installed, but $PYTHON still has no ensurepip"
}

make_venv() {
    if [[ -x $PREFIX/bin/python && -x $PREFIX/bin/pip ]] && "$PREFIX/bin/python" -c '' 2>/dev/null; then
        log "reusing the virtualenv in $PREFIX"
        return
    fi
    log "creating a virtualenv in $PREFIX"
    "$PYTHON" -m venv --clear "$PREFIX"
}

# From a clean copy: setuptools' build/ in the checkout would keep files deleted since.
install_package() {
    COPY="$(mktemp -d)"
    trap 'rm -rf "$COPY"' EXIT
    tar -C "$REPO" --exclude=.git --exclude=.venv --exclude=build --exclude='*.egg-info' --exclude=__pycache__ \
        -cf - . | tar -C "$COPY" -xf -
    log "installing forewarn and its dependencies from $REPO"
    "$PREFIX/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$COPY"
}

link_command() {
    mkdir -p "$BIN"
    ln -sfn "$PREFIX/bin/agent" "$BIN/agent"
    log "agent is $BIN/agent ($("$BIN/agent" --version))"
    case ":$PATH:" in
        *":$BIN:"*) ;;
        *) log "$BIN is not on your PATH: add it (export PATH=\"$BIN:\$PATH\"), or log in again" ;;
    esac
}

check_python
ensure_venv_module
make_venv
install_package
link_command
