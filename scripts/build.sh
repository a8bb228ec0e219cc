#!/usr/bin/env bash
# Build pulumi-state out of tree: build/ (release) and, with --sanitizers, build-asan/ (ASan+UBSan) and
# build-tsan/ (ThreadSanitizer).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] || autoreconf -fi >/dev/null
jobs=$(nproc 2>/dev/null || echo 2)
build() { # dir, configure flags...
    local dir=$1; shift
    mkdir -p "$dir"
    (cd "$dir" && { [ -f Makefile ] || ../configure -q --enable-werror "$@"; } && make -s -j"$jobs")
}
build build CFLAGS="-O2 -g"
if [ "${1:-}" = "--sanitizers" ]; then
    build build-asan --enable-sanitizers CFLAGS="-O1 -g"
    build build-tsan --enable-tsan CFLAGS="-O1 -g"
fi
