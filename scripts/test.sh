#!/usr/bin/env bash
# Runs every test: unit, integration (headless runs on the simulator, check fixtures), the AWS adapter against
# moto server (installed into a venv on first use), TUI snapshots and the tmux end-to-end test.
# Fails, and says why, when something a test needs cannot be installed or started: nothing is skipped silently.
#
# One target directory for everything: CARGO_TARGET_DIR when set, else ./target, the one `cargo run` builds into,
# so the README's first command and this one share one build.
set -euo pipefail
cd "$(dirname "$0")/.."

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

# cargo-nextest runs the tests of every binary in one pool (.config/nextest.toml), so the moto tests, which mostly
# wait, overlap with the rest; it prints each binary's and test's time. Without it, cargo test runs the same tests
# one binary after another.
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run "$@"
    # nextest does not run doc tests
    cargo test --doc --quiet
else
    echo "test.sh: cargo-nextest not found: running cargo test (slower; 'cargo install cargo-nextest' for the pool)" >&2
    cargo test "$@"
fi
