"""Deploy agent figures (not part of the test suite): queue-to-start latency with NOTIFY and with the
one-second poll fallback (agent_listen=false), log lines streamed per second, the agent's idle RSS.

    PULUMI_STATE_BINDIR=build python3 tests/bench/deploy.py [--runs 20] [--lines 50000]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
import harness  # noqa: E402
from test_deployments_cli import GOOD, api, make_repo, new_stack, wait_terminal  # noqa: E402


def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def latencies(c, url, project, runs):
    stack = new_stack(c, project)
    out = []
    for _ in range(runs):
        _, d, _, _ = api(c, "POST", stack + "/deployments",
                         {"operation": "update", "source": {"repoURL": url},
                          "operationContext": {"preRunCommands": ["exit 3"]}})
        wait_terminal(c, stack, d["id"])
        ms = c.pg.psql("SELECT extract(epoch from started_at - created_at) * 1000 FROM "
                       "extension_pulumi_state_deployments WHERE id = '%s'" % d["id"])[0][0]
        out.append(float(ms))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--lines", type=int, default=50000)
    a = ap.parse_args()
    c = harness.Cluster(procs=1, threads=4, settings={"PULUMI_STATE_DEPLOY_ALLOW_FILE_URLS": "true"})
    c.start()
    repos = tempfile.mkdtemp(prefix="pulumi-state-repos-")
    try:
        url = make_repo(repos, "bench", GOOD % {"project": "dbench"})
        agent = harness.Agent(c.server, jobs=1).start()
        time.sleep(2)
        idle = rss_kb(agent.proc.pid)
        notify = latencies(c, url, "dbench", a.runs)
        stack = new_stack(c, "dlines")
        _, d, _, _ = api(c, "POST", stack + "/deployments",
                         {"operation": "update", "source": {"repoURL": url},
                          "operationContext": {"preRunCommands": ["seq 1 %d; exit 3" % a.lines]}})
        wait_terminal(c, stack, d["id"])
        n, secs = c.pg.psql("SELECT count(*), extract(epoch from max(created_at) - min(created_at)) FROM "
                            "extension_pulumi_state_deployment_logs WHERE deployment_id = '%s'" % d["id"])[0]
        agent.stop()
        poller = harness.Agent(c.server, jobs=1, extra={"PULUMI_STATE_AGENT_LISTEN": "false"}).start()
        poll = latencies(c, url, "dpoll", a.runs)
        poller.stop()
        print("| figure | value |\n|---|---|")
        print("| queue-to-start p50, NOTIFY | %.1f ms (%d runs, max %.1f) |" % (statistics.median(notify), a.runs,
                                                                           max(notify)))
        print("| queue-to-start p50, poll fallback (1 s) | %.1f ms (%d runs, max %.1f) |" % (
            statistics.median(poll), a.runs, max(poll)))
        print("| log lines streamed | %d lines in %.2f s: %.0f lines/s |" % (int(n), float(secs),
                                                                             int(n) / max(float(secs), 1e-3)))
        print("| agent idle RSS | %.1f MB |" % (idle / 1024.0))
    finally:
        c.stop()


if __name__ == "__main__":
    main()
