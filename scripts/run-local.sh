#!/usr/bin/env bash
# Set up and run pulumi-state locally: throwaway PostgreSQL + lighttpd + workers on 127.0.0.1.
# Prints the `pulumi login` line; Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
exec python3 tests/lib/harness.py serve
