#!/usr/bin/env bash
# Set up and run the Python side of the machine attestation API: the client tests of the provider
# package (provider/tests) and the demo program (examples/pulumi-demo) run by the real Pulumi CLI
# through the Automation API (tests/attestation), both against a real server on loopback.
#
# Installs what it needs: the Debian packages (scripts/install-deps.sh), the server build when
# $PULUMI_STATE_BINDIR (default build/) has none, the pinned CLI (tests/cli/install-pulumi.sh), a venv
# with pulumi==3.259.0, requests and pytest, the provider package, and the Python dynamic provider
# scripts from the SDK's Go module - all cached under ~/.cache/pulumi-state/, nothing in the repo.
# Extra arguments go to pytest (e.g. -k keep_on_delete, or one of the two test directories).
set -euo pipefail
cd "$(dirname "$0")/.."
PULUMI_VERSION=${PULUMI_VERSION:-v3.259.0}
export PULUMI_VERSION
cache=${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-state
venv=$cache/pyenv-${PULUMI_VERSION#v}
results=$PWD/build/test-results

bash scripts/install-deps.sh
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends openssl; } >&2
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >&2
fi

bindir=${PULUMI_STATE_BINDIR:-$PWD/build}
if [ ! -x "$bindir/pulumi-state-fcgi" ] || [ ! -x "$bindir/pulumi-state-admin" ]; then
    echo "== building the server (no binaries in $bindir)"
    bash scripts/build.sh
    bindir=$PWD/build
fi
export PULUMI_STATE_BINDIR=$bindir

echo "== the real Pulumi CLI"
PULUMI_CLI_DIR=$(bash tests/cli/install-pulumi.sh)
export PULUMI_CLI_DIR

echo "== venv $venv (pulumi ${PULUMI_VERSION#v}, requests, pytest)"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "pulumi==${PULUMI_VERSION#v}" requests pytest

echo "== pip install ./provider"
# From a copy, so that setuptools' build/ and egg-info stay out of the work tree.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r provider "$work/provider"
rm -rf "$work/provider/build" "$work"/provider/*.egg-info
"$venv/bin/python" -m pip uninstall -q -y pulumi-itl-attestation >/dev/null 2>&1 || true
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$work/provider"

echo "== the Python dynamic provider scripts of the SDK module beside pulumi"
"$venv/bin/python" tests/attestation/pytools.py "$PULUMI_CLI_DIR"

echo "== provider client tests and the demo through the Automation API"
mkdir -p "$results"
[ $# -gt 0 ] || set -- provider/tests tests/attestation
"$venv/bin/python" -m pytest -q -p no:cacheprovider --junitxml="$results/provider.xml" "$@"
