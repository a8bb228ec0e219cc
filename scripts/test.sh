#!/usr/bin/env bash
# Set up and run the whole test suite: unit tests (release and ASan+UBSan builds), the fuzz targets
# for a fixed number of inputs, HTTP integration and fault-injection tests against the sanitizer build,
# the concurrency tests against the ThreadSanitizer build, and the real Pulumi CLI end to end; the HTTP
# and CLI suites again through Apache (the CLI one under a path prefix); the Python provider and demo;
# the docker compose deployment (Docker engine installed and started here when missing).
# JUnit XML reports and the Reliability figures go to build/test-results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
python3 -c 'import pytest' 2>/dev/null || python3 -m pip install -q pytest
bash scripts/build.sh --sanitizers
results=$PWD/build/test-results
mkdir -p "$results"
rm -f "$results"/*.jsonl

echo "== format (clang-format against .clang-format)"
make -s -C build format-check
echo "== unit tests (release build)"
make -s -C build check || { cat build/tests/unit/*.log; exit 1; }
echo "== unit tests (ASan+UBSan build)"
make -s -C build-asan check || { cat build-asan/tests/unit/*.log; exit 1; }
python3 tests/lib/check2junit.py build/tests/unit build-asan/tests/unit > "$results/unit.xml"

echo "== fuzz targets (a fixed number of inputs each; scripts/fuzz.sh runs them long)"
FUZZ_RUNS=${FUZZ_RUNS:-20000} bash scripts/fuzz.sh --ci

echo "== the real Pulumi CLI"
cli_dir=$(bash tests/cli/install-pulumi.sh)
export PULUMI_CLI_DIR=$cli_dir

echo "== integration tests (ASan+UBSan workers)"
PULUMI_STATE_BINDIR=$PWD/build-asan python3 -m pytest -q tests/integration \
    --junitxml="$results/integration.xml" -p no:cacheprovider
echo "== concurrency tests (ThreadSanitizer workers; any report fails the run)"
PULUMI_STATE_BINDIR=$PWD/build-tsan python3 -m pytest -q tests/integration/test_concurrency.py \
    --junitxml="$results/tsan.xml" -p no:cacheprovider
echo "== CLI end-to-end tests"
PULUMI_STATE_BINDIR=$PWD/build python3 -m pytest -q tests/cli \
    --junitxml="$results/cli.xml" -p no:cacheprovider
echo "== CLI release matrix: the pinned and the newest release (built when missing), the others when cached"
PULUMI_STATE_BINDIR=$PWD/build python3 -m pytest -q tests/matrix --junitxml="$results/matrix.xml" -p no:cacheprovider
echo "== integration tests through Apache 2.4 (mod_proxy_fcgi, spawn-fcgi workers; ASan+UBSan)"
PULUMI_STATE_TEST_FRONTEND=apache PULUMI_STATE_BINDIR=$PWD/build-asan python3 -m pytest -q tests/integration \
    --junitxml="$results/integration-apache.xml" -p no:cacheprovider
echo "== integration tests through lighttpd, mounted under the prefix /pulumi (release build)"
PULUMI_STATE_TEST_PREFIX=/pulumi PULUMI_STATE_BINDIR=$PWD/build python3 -m pytest -q tests/integration \
    --junitxml="$results/integration-prefix.xml" -p no:cacheprovider
echo "== CLI end-to-end tests through Apache, mounted under the prefix /pulumi"
PULUMI_STATE_TEST_FRONTEND=apache PULUMI_STATE_TEST_PREFIX=/pulumi PULUMI_STATE_BINDIR=$PWD/build \
    python3 -m pytest -q tests/cli --junitxml="$results/cli-apache.xml" -p no:cacheprovider
echo "== the machine attestation provider and its demo (Python, Automation API, real CLI)"
PULUMI_STATE_BINDIR=$PWD/build bash scripts/test-provider.sh
echo "== scale-out: lighttpd + Apache, 3 workers each, PgBouncer (transaction pooling), 2 agents, 10 CLIs at once"
PULUMI_STATE_BINDIR=$PWD/build-asan python3 -m pytest -q tests/scale --junitxml="$results/scale.xml" -p no:cacheprovider
echo "== docker compose: images from a debootstrap base, compose up, the real CLI through it, scale, agent"
python3 -m pytest -q tests/compose --junitxml="$results/compose.xml" -p no:cacheprovider
echo "== reliability figures"
python3 scripts/reliability-table.py > "$results/reliability.md"
cat "$results/reliability.md"
