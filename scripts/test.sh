#!/usr/bin/env bash
# Runs every test: unit, integration (headless runs on the simulator, check fixtures), the AWS adapter against
# moto server (installed into a venv on first use), TUI snapshots and the tmux end-to-end test.
# Fails, and says why, when something a test needs cannot be installed or started: nothing is skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

# Dependencies are built without debug info (Cargo.toml); keep one target directory across runs when possible.
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
    export CARGO_TARGET_DIR="$HOME/.cache/drconsole/target"
fi
mkdir -p "$CARGO_TARGET_DIR"

# moto server for the AWS adapter tests (Python venv, moto[server]==5.2.5)
scripts/moto-venv.sh >/dev/null

# tmux for the end-to-end console tests
if ! command -v tmux >/dev/null 2>&1; then
    echo "test.sh: installing tmux for the end-to-end console tests" >&2
    if ! { apt-get update -qq && apt-get install -y -qq tmux; } >/dev/null 2>&1; then
        echo "test.sh: tmux is missing and could not be installed (apt-get install tmux)" >&2
        exit 1
    fi
fi

cargo test "$@"
