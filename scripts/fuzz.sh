#!/usr/bin/env bash
# Build the libFuzzer targets of tests/fuzz (clang, ASan+UBSan) and run each one.
#   scripts/fuzz.sh            run each target for FUZZ_SECONDS (default 300) seconds: the long run
#   scripts/fuzz.sh --ci       run each target for a fixed number of inputs (FUZZ_RUNS, default 20000),
#                              so the run is the same every time and cannot be flaky
# Each target starts from its seed corpus in tests/fuzz/corpus/<target>/ (a long run adds what it finds to a
# work copy under build-fuzz/, never to the repository). A crash stops the run; every crash found becomes a
# unit test. Prints one line per target: "<target> <inputs run>", also written to build-fuzz/iterations.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-long}
if ! command -v clang >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
    echo "installing clang and its libFuzzer runtime" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >&2
fi
out=build-fuzz
mkdir -p "$out"
libs="-lpq -ljansson -lcrypto -lz -luuid -lpthread"
cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Ilib -Ifcgi -Itests/unit \
    $(pkg-config --cflags jansson libpq 2>/dev/null || true)"
common="lib/util.c lib/jspan.c lib/crypto.c lib/gzip.c lib/delta.c lib/journal.c lib/journal-gen.c lib/journal-check.c lib/intmap.c lib/config.c lib/names.c lib/urn.c"
declare -A extra=([fuzz_router]="fcgi/router.c")
targets=(fuzz_jspan fuzz_delta fuzz_journal fuzz_gzip fuzz_router fuzz_config fuzz_int)
: > "$out/iterations.txt"
for t in "${targets[@]}"; do
    # shellcheck disable=SC2086
    clang $cflags -o "$out/$t" "tests/fuzz/$t.c" $common ${extra[$t]:-} $libs
    work="$out/corpus-$t"
    rm -rf "$work" && mkdir -p "$work" && cp tests/fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
    if [ "$mode" = "--ci" ]; then
        runs=${FUZZ_RUNS:-20000}
        args=(-runs="$runs" -seed=1 -max_len=4096)
    else
        args=(-max_total_time="${FUZZ_SECONDS:-300}" -max_len=65536)
    fi
    log="$out/$t.log"
    if ! ASAN_OPTIONS=detect_leaks=1 "$out/$t" "${args[@]}" -print_final_stats=1 "$work" tests/fuzz/corpus/"$t" \
        > "$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz: $t found a crash (input saved in $PWD as crash-*)" >&2
        exit 1
    fi
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    echo "$t ${n:-0}" | tee -a "$out/iterations.txt"
done
