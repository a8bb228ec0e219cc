#!/usr/bin/env python3
"""What one request may cost a worker in memory, measured on a real worker (1 process, 1 thread):

- authenticated checkpoints of growing size (gzip bodies): the worker's peak RSS (VmHWM) per inflated MB;
- made-up update tokens with gzip bombs (64 MiB of zeros in 64 KiB) on every update-token route: the
  worker's peak RSS before and after, and how many such refusals it answers per second.

Usage: python3 tests/bench/memory.py [BINDIR ...]   (default: build/; give an older build to compare)
"""
import gzip
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402

ROUTES = [("PATCH", "checkpoint"), ("PATCH", "checkpointverbatim"), ("PATCH", "checkpointdelta"),
          ("PATCH", "journalentries"), ("POST", "events/batch"), ("POST", "renew_lease"), ("POST", "complete")]


def status_kb(pid, field):
    for line in open("/proc/%d/status" % pid):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def worker(server):
    pids = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
    return int(pids[0])


def deployment(org, project, stack, mb):
    pad = "x" * 16000
    n = max(1, int(mb * 1e6 / 16200))
    res = [{"urn": "urn:pulumi:%s::%s::pulumi:index:Stash::r%d" % (stack, project, i), "custom": True,
            "id": "r%d" % i, "type": "pulumi:index:Stash", "inputs": {"v": pad}, "outputs": {"v": pad}}
           for i in range(n)]
    return {"manifest": {"time": "2026-01-01T00:00:00Z", "magic": "", "version": "v3"}, "metadata": {},
            "resources": res}


def measure(bindir):
    c = harness.Cluster(bindir=bindir, procs=1, threads=1,
                        settings={"PULUMI_STATE_MAX_INFLATED_BYTES": "256m", "PULUMI_STATE_MAX_BODY_BYTES": "64m"})
    c.start()
    s = c.server
    try:
        pid = worker(s)
        org = s.request("GET", "/api/user/organizations/default")[1]["GitHubLogin"]
        out = {"bindir": bindir, "idle_rss_mb": status_kb(pid, "VmRSS") / 1024}
        # Made-up tokens, gzip bombs, every update-token route.
        bomb = gzip.compress(b"\0" * (64 << 20), 9)
        s.request("POST", "/api/stacks/%s/mem" % org, {"stackName": "bomb"})
        upd = s.request("POST", "/api/stacks/%s/mem/bomb/update" % org, {})[1]["updateID"]
        base = "/api/stacks/%s/mem/bomb/update/%s/" % (org, upd)
        before = status_kb(pid, "VmHWM")
        t0 = time.monotonic()
        n = 0
        for _ in range(5):
            for method, route in ROUTES:
                st = s.request(method, base + route, raw=bomb, auth="update-token made-up",
                               headers={"Content-Encoding": "gzip"})[0]
                assert 400 <= st < 500, st
                n += 1
        out["bomb_requests"] = n
        out["bomb_refusals_per_s"] = n / (time.monotonic() - t0)
        out["bomb_peak_rss_growth_mb"] = (status_kb(pid, "VmHWM") - before) / 1024
        # Authenticated checkpoints, growing.
        points = []
        for i, mb in enumerate([4, 16, 48]):
            name = "ck%d" % i
            s.request("POST", "/api/stacks/%s/mem" % org, {"stackName": name})
            path = "/api/stacks/%s/mem/%s/update" % (org, name)
            u = s.request("POST", path, {})[1]["updateID"]
            tok = s.request("POST", path + "/" + u, {})[1]["token"]
            body = json.dumps({"version": 3, "deployment": deployment(org, "mem", name, mb)}).encode()
            st = s.request("PATCH", path + "/" + u + "/checkpoint", raw=gzip.compress(body, 1),
                           auth="update-token " + tok, headers={"Content-Encoding": "gzip"})[0]
            assert st == 200, st
            st = s.request("POST", path + "/" + u + "/complete", {"status": "succeeded"}, auth="update-token " + tok)[0]
            assert st == 200, st
            peak = status_kb(pid, "VmHWM") / 1024
            points.append({"inflated_mb": len(body) / 1e6, "peak_rss_mb": peak,
                           "peak_rss_per_inflated_mb": peak / (len(body) / 1e6)})
        out["checkpoints"] = points
        return out
    finally:
        c.stop()


def main():
    dirs = sys.argv[1:] or [os.path.join(harness.ROOT, "build")]
    for d in dirs:
        print(json.dumps(measure(os.path.abspath(d)), indent=1))


if __name__ == "__main__":
    main()
