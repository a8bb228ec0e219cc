#!/usr/bin/env bash
# The CLI version matrix: build every release of tests/matrix/releases from its Go modules (cached; about
# 8 minutes each on 2 cores when not), run the smoke set (tests/matrix/smoke.py) against each on a throwaway
# cluster, and rewrite the README's table between the cli-matrix markers. Needs a build (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
releases=$(awk '!/^#/ && NF {print $1}' tests/matrix/releases | sort -u)
dirs=()
for r in $releases; do
    echo "== $r" >&2
    dirs+=("$r=$(PULUMI_VERSION=$r bash tests/cli/install-pulumi.sh)")
done
out=build/test-results/cli-matrix.jsonl
mkdir -p build/test-results
PULUMI_STATE_BINDIR=${PULUMI_STATE_BINDIR:-$PWD/build} python3 tests/matrix/smoke.py "${dirs[@]}" > "$out"
python3 - "$out" <<'PY'
import json, sys
sys.path.insert(0, "tests/matrix")
import smoke
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mark = {True: "pass", False: "**FAIL**", None: "n/a"}
head = "| feature | " + " | ".join(r["label"].replace(" + ", "<br>") for r in rows) + " |"
lines = [head, "|---|" + "---|" * len(rows)]
lines.append("| checkpoints sent as | " + " | ".join(", ".join(r["modes"]) or "-" for r in rows) + " |")
for f in smoke.FEATURES:
    lines.append("| %s | " % f + " | ".join(mark[r["features"].get(f, [False])[0]] for r in rows) + " |")
notes = sorted({"%s %s: %s" % (r["label"], f, v[1]) for r in rows for f, v in r["features"].items()
                if v[0] is not True and v[1]})
table = "\n".join(lines) + "\n" + "".join("\n- %s" % n.replace("\n", " ")[:300] for n in notes) + "\n"
readme = open("README.md").read()
b, e = "<!-- cli-matrix:begin -->\n", "<!-- cli-matrix:end -->"
start, end = readme.index(b) + len(b), readme.index(e)
open("README.md", "w").write(readme[:start] + table + readme[end:])
print(table)
PY
