#!/usr/bin/env bash
# Installs (once) the moto server AWS emulator used by drconsole's integration tests.
#
# Idempotent: creates a Python venv at ${DRCONSOLE_MOTO_VENV:-$HOME/.cache/drconsole/moto-venv}
# if missing and installs moto[server]==$MOTO_VERSION into it, unless it is already there.
# All progress goes to stderr; the LAST line of stdout is the path of the moto_server binary.
# Exits non-zero with a clear message if python3, venv or pip fail.
set -euo pipefail

MOTO_VERSION=5.2.5
VENV="${DRCONSOLE_MOTO_VENV:-${HOME:-/tmp}/.cache/drconsole/moto-venv}"
PYTHON="${DRCONSOLE_PYTHON:-python3}"

die() {
    echo "moto-venv.sh: error: $*" >&2
    exit 1
}
log() { echo "moto-venv.sh: $*" >&2; }

installed_version() {
    # Prints the installed moto version, or nothing.
    "$VENV/bin/python" -m pip show moto 2>/dev/null | sed -n 's/^Version: *//p' || true
}

if [[ -x "$VENV/bin/moto_server" && "$(installed_version)" == "$MOTO_VERSION" ]]; then
    echo "$VENV/bin/moto_server"
    exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found on PATH (need Python 3 with the venv module; on Debian: apt-get install python3 python3-venv)"

# Serialise concurrent installs (e.g. several test binaries starting at once).
mkdir -p "$(dirname "$VENV")" || die "cannot create $(dirname "$VENV")"
LOCK="$VENV.lock"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCK"
    flock 9
    # Another process may have finished the install while we waited.
    if [[ -x "$VENV/bin/moto_server" && "$(installed_version)" == "$MOTO_VERSION" ]]; then
        echo "$VENV/bin/moto_server"
        exit 0
    fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv at $VENV"
    "$PYTHON" -m venv "$VENV" >&2 || die "'$PYTHON -m venv $VENV' failed (on Debian: apt-get install python3-venv)"
fi

log "installing moto[server]==$MOTO_VERSION into $VENV (takes ~1 min)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2 \
    || die "pip install 'moto[server]==$MOTO_VERSION' into $VENV failed (network / PyPI reachable?)"

[[ -x "$VENV/bin/moto_server" ]] || die "install finished but $VENV/bin/moto_server is missing"
got="$(installed_version)"
[[ "$got" == "$MOTO_VERSION" ]] || die "expected moto $MOTO_VERSION in $VENV, pip show reports '${got:-nothing}'"

log "moto $MOTO_VERSION ready"
echo "$VENV/bin/moto_server"
