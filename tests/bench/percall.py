#!/usr/bin/env python3
"""Server time per `checkpointdelta` against the size of the state, without the CLI.

For each size N: a verbatim base of N resources of 16 KB (the bench's program shape), then DELTAS deltas
shaped like the CLI's while it creates resources: the manifest's time rewritten near the start of the
document (the CLI stamps every snapshot) and one 16 KB resource added at the end of the resources array,
each with the SHA-256 of the result. One worker process with one thread behind lighttpd; the worker's own
log gives each request's time and its PostgreSQL wait. The base is rewritten every 32 deltas, and a
second front end on the same database answers every REBUILD_EVERY-th delta (its copy is stale, so it
rebuilds the document from the database), as happens when lighttpd spreads a CLI's calls over workers.

Usage: python3 tests/bench/percall.py [--sizes 100,600,2000] [--deltas 100] [--out build/bench]
Prints a Markdown table and writes percall.json to --out.
"""
import argparse
import hashlib
import json
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
import psapi  # noqa: E402

LOG_LINE = re.compile(r"\] PATCH (\S+)/checkpointdelta -> (\d+) \(([\d.]+) ms(?:, db ([\d.]+) ms)?\)")
PAD = "x" * 16000


def resource(st, i):
    urn = st.urn("pulumi:index:Stash", "r%d" % i)
    return {"urn": urn, "custom": True, "id": "r%d" % i, "type": "pulumi:index:Stash",
            "inputs": {"input": PAD}, "outputs": {"output": "r%d" % i}}


def text_of(st, n):
    """The document as the CLI serialises it: indented JSON, the resources last but one member."""
    dep = {"manifest": {"time": "2026-12-04T00:00:00.000000001Z", "magic": "0" * 64, "version": "v3.259.0"},
           "secrets_providers": {"type": "service", "state": {}},
           "resources": [resource(st, i) for i in range(n)], "metadata": {}}
    return json.dumps({"version": 3, "deployment": dep}, indent=4)


def edit(start, end, text):
    return {"Span": {"start": {"line": 0, "column": 0, "offset": start},
                     "end": {"line": 0, "column": 0, "offset": end}}, "NewText": text}


def log_times(path, offset):
    out = []
    with open(path, errors="replace") as f:
        f.seek(offset)
        for line in f:
            m = LOG_LINE.search(line)
            if m and m.group(2) == "200":
                out.append((float(m.group(3)), float(m.group(4) or 0)))
    return out


def run_size(api, rebuild_api, server, n, deltas, rebuild_every):
    st = api.new_stack(project="percall")
    upd = api.begin(st)
    doc = text_of(st, n)
    body = b'{"version":3,"untypedDeployment":' + doc.encode() + b',"sequenceNumber":1}'
    psapi.assert_ok(api.call("PATCH", upd.path + "/checkpointverbatim", raw=body, update=upd))
    log = os.path.join(server.dir, "lighttpd.stderr")  # lighttpd gives the workers it spawns its stderr
    offset = os.path.getsize(log)
    stamp = '"time": "'
    close = "\n        ]"  # the end of the resources array, at the indent json.dumps gives it
    walls = []
    for k in range(deltas):
        seq = k + 2
        t_at = doc.index(stamp) + len(stamp)
        t_end = doc.index('"', t_at)
        new_time = "2026-12-04T00:00:%02d.%09dZ" % (k % 60, k + 1)
        r_at = doc.rindex(close)
        add = ",\n" + "\n".join("        " + ln for ln in json.dumps(resource(st, n + k), indent=4).split("\n"))
        edits = [edit(t_at, t_end, new_time), edit(r_at, r_at, add)]
        doc = doc[:t_at] + new_time + doc[t_end:r_at] + add + doc[r_at:]
        req = {"version": 3, "checkpointHash": hashlib.sha256(doc.encode()).hexdigest(), "sequenceNumber": seq,
               "deploymentDelta": edits}
        front = rebuild_api if rebuild_every and seq % rebuild_every == 0 else api
        t0 = time.monotonic()
        psapi.assert_ok(front.patch(upd.path + "/checkpointdelta", req, update=upd))
        walls.append((time.monotonic() - t0) * 1000)
    times = log_times(log, offset)
    assert api.get(st.path + "/export").raw == doc.encode()
    psapi.assert_ok(api.complete(upd))
    req_ms = [t for t, _ in times]
    db_ms = [d for _, d in times]
    return {"n": n, "state_mb": len(doc) / 1e6, "calls": len(times), "p50_ms": statistics.median(req_ms),
            "p90_ms": sorted(req_ms)[int(0.9 * (len(req_ms) - 1))], "db_p50_ms": statistics.median(db_ms),
            "client_p50_ms": statistics.median(walls),
            "sha256_ms": hash_ms(doc.encode())}


def hash_ms(data, runs=5):
    best = None
    for _ in range(runs):
        t0 = time.perf_counter()
        hashlib.sha256(data).digest()
        dt = (time.perf_counter() - t0) * 1000
        best = dt if best is None else min(best, dt)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,600,2000")
    ap.add_argument("--deltas", type=int, default=100)
    ap.add_argument("--rebuild-every", type=int, default=0,
                    help="send every K-th delta through a second front end (0: never)")
    ap.add_argument("--out", default=os.path.join(harness.ROOT, "build", "bench"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    settings = {"PULUMI_STATE_LOG_LEVEL": "debug", "PULUMI_STATE_MAX_INFLATED_BYTES": "256m",
                "PULUMI_STATE_MAX_BODY_BYTES": "128m"}
    cluster = harness.Cluster(procs=1, threads=1, settings=settings)
    cluster.start()
    other = None
    try:
        api = psapi.Api(cluster.server, cluster.pg)
        rebuild_api = api
        if args.rebuild_every:
            other = harness.Server(os.path.join(cluster.base, "second"), cluster.pg, cluster.bindir, procs=1,
                                   threads=1, settings=settings)
            other.token = cluster.server.token
            other.master_key = cluster.server.master_key
            other.start()
            rebuild_api = psapi.Api(other, cluster.pg)
        rows = [run_size(api, rebuild_api, cluster.server, int(n), args.deltas, args.rebuild_every)
                for n in args.sizes.split(",")]
    finally:
        if other:
            other.stop()
        cluster.stop()
    with open(os.path.join(args.out, "percall.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print("| resources | state MB | calls | server p50 ms | p90 ms | of it PostgreSQL p50 ms | "
          "SHA-256 of the state ms | client p50 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %d | %.1f | %d | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
            r["n"], r["state_mb"], r["calls"], r["p50_ms"], r["p90_ms"], r["db_p50_ms"], r["sha256_ms"],
            r["client_p50_ms"]))


if __name__ == "__main__":
    main()
