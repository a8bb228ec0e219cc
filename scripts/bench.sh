#!/usr/bin/env bash
# Set up and run the benchmark (tests/bench/README.md): the packages, the release build, the pinned
# CLI (built on first use), matplotlib for the chart; arguments go to tests/bench/run.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if ! python3 -c 'import matplotlib' 2>/dev/null; then
    { apt-get update -qq >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-matplotlib >&2; } ||
        python3 -m pip install -q matplotlib || python3 -m pip install -q --break-system-packages matplotlib ||
        echo "bench: no matplotlib, so no chart" >&2
fi
bash scripts/build.sh
PULUMI_CLI_DIR=$(bash tests/cli/install-pulumi.sh)
export PULUMI_CLI_DIR
exec python3 tests/bench/run.py "$@"
