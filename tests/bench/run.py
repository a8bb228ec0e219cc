"""run.py - the pulumi-state benchmark: the real CLI against pulumi-state (journal, delta, full
modes), the CLI's DIY file:// backend and its floor (file:// with PULUMI_SKIP_CHECKPOINTS=true),
plus server-side figures, a PostgreSQL floor for journal batches, and a multi-worker load test.

    python3 tests/bench/run.py [--sizes 10,200,600] [--repeats 1] [--backends ...] [--out build/bench]
                               [--extra NAME=URL,TOKEN[,VAR=VALUE...]] [--quick]

Not part of the test suite. Everything runs on loopback and stops what it started.
"""
import argparse
import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
import harness  # noqa: E402
from clilib import Cli, write_program  # noqa: E402
import loadgen  # noqa: E402

ORG = "itlusions"
STEPS = ["create", "noop", "add2", "export", "destroy"]
MODES = {
    "journal": {},
    # The same, with the CLI flushing journal batches every 5 ms instead of 50 ms: shows how much of
    # the journal-mode time is the CLI's own batching timer, not the server.
    "journal-5ms": {"PULUMI_JOURNALING_BATCH_PERIOD": "5"},
    "journal-1ms": {"PULUMI_JOURNALING_BATCH_PERIOD": "1"},
    "delta": {"PULUMI_DISABLE_JOURNALING": "true"},
    "full": {"PULUMI_DISABLE_JOURNALING": "true", "PULUMI_OPTIMIZED_CHECKPOINT_PATCH": "false"},
}
LOG_LINE = re.compile(r"\] (\w+) (\S+) -> (\d+) \(([\d.]+) ms(?:, db ([\d.]+) ms)?\)")


def program(n, extra=0):
    """N pulumi:Stash resources of about 16 KB of state each (8 KB input, echoed as output)."""
    lines = ["name: bench", "runtime: yaml", "resources:"]
    for i in range(n + extra):
        blob = ("r%05d-" % i) * (8192 // 7)
        lines += ["  r%05d:" % i, "    type: pulumi:Stash", "    properties:", "      input: %s" % blob]
    return "\n".join(lines) + "\n"


class Runner(Cli):
    """The CLI driver of the tests, timing each command."""

    def run(self, *args):
        t0 = time.monotonic()
        r = subprocess.run(["pulumi", "--non-interactive"] + list(args), cwd=self.project, env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=3600)
        dt = time.monotonic() - t0
        if r.returncode != 0:
            raise RuntimeError("pulumi %s failed: %s" % (" ".join(args), r.stderr[-2000:]))
        return dt, r.stdout

    def write(self, text):
        write_program(self, text)


def proc_cpu(pids, reaped=False):
    """CPU seconds of pids; with reaped, also of their children that have exited and been waited for
    (PostgreSQL's backends come and go: the postmaster's cutime keeps what the gone ones used)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            if reaped:
                total += (int(fields[13]) + int(fields[14])) / tick
        except (OSError, IndexError):
            pass
    return total


def postgres_cpu():
    """All of PostgreSQL's processes at this moment, and those that have exited."""
    return proc_cpu(children(None, "postgres"), reaped=True)


def rss_kb(pid, key):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(ppid, name):
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = open("/proc/%s/stat" % pid).read()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            parent = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if name in comm and (ppid is None or parent == ppid):
            out.append(int(pid))
    return out


def reset_peak(pids):
    """Reset VmHWM (Linux: writing 5 to clear_refs), so the peak of one step can be read after it."""
    for pid in pids:
        try:
            with open("/proc/%d/clear_refs" % pid, "w") as f:
                f.write("5")
        except OSError:
            pass


def scenario(runner, stack, n, server=None):
    """The five steps; returns {step: seconds} and server-side samples per step (create's at top level)."""
    times, extra = {}, {"steps": {}}
    runner.write(program(n))
    runner.run("stack", "init", stack)
    workers = children(server.proc.pid, "pulumi-state-fc") if server else []
    for step in STEPS:
        if step == "add2":
            runner.write(program(n, extra=2))
        args = {"create": ("up", "--yes", "--skip-preview"), "noop": ("up", "--yes", "--skip-preview"),
                "add2": ("up", "--yes", "--skip-preview"),
                "export": ("stack", "export", "--file", os.path.join(runner.project, "export.json")),
                "destroy": ("destroy", "--yes", "--skip-preview")}[step]
        if server:
            reset_peak(workers)
            cpu0 = (proc_cpu(workers), postgres_cpu())
            log0 = log_size(server)
        times[step], _ = runner.run(*args)
        if server:
            per_route = {}
            for _, path, _, ms, db_ms in log_lines(server, log0):
                c = per_route.setdefault(route_of(path), [0, 0.0, 0.0])
                c[0] += 1
                c[1] += ms
                c[2] += db_ms
            extra["steps"][step] = {
                "wall_s": times[step],
                "worker_cpu_s": proc_cpu(workers) - cpu0[0],
                "postgres_cpu_s": postgres_cpu() - cpu0[1],
                "worker_request_s": sum(v[1] for v in per_route.values()) / 1000.0,
                "worker_db_wait_s": sum(v[2] for v in per_route.values()) / 1000.0,
                "peak_worker_rss_kb": max([rss_kb(p, "VmHWM") for p in workers] or [0]),
                "routes": {k: {"calls": v[0], "total_ms": round(v[1], 2), "db_ms": round(v[2], 2)}
                           for k, v in per_route.items()},
            }
    if server:
        c = extra["steps"]["create"]
        for k in ("worker_cpu_s", "postgres_cpu_s", "worker_request_s", "worker_db_wait_s", "peak_worker_rss_kb"):
            extra[k] = c[k]
    return times, extra


def worker_log(server):
    """Workers spawned by lighttpd write to lighttpd's own stderr."""
    return os.path.join(server.dir, "lighttpd.stderr")


def log_size(server):
    if not server:
        return 0
    p = worker_log(server)
    return os.path.getsize(p) if os.path.exists(p) else 0


def log_lines(server, offset=0):
    p = worker_log(server)
    with open(p, errors="replace") as f:
        f.seek(offset)
        for line in f:
            m = LOG_LINE.search(line)
            if m:
                yield m.group(1), m.group(2), int(m.group(3)), float(m.group(4)), float(m.group(5) or 0)


def route_of(path):
    return path.rsplit("/", 1)[-1] if "/update/" in path else ("export" if path.endswith("/export") else path)


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100.0
    f, c = int(k), min(int(k) + 1, len(values) - 1)
    return values[f] + (values[c] - values[f]) * (k - f)


def pg_floor(pg, rows, size, runs=50):
    """What PostgreSQL alone takes to insert and commit one journal batch of `rows` rows of `size` bytes
    (hex text, compressible like real states) into a table defined like the journal (same columns, key
    and storage), one transaction per batch, measured with pgbench. Two figures: the rows sent by the
    client in the INSERT (what any server must do), and the rows already inside PostgreSQL (copied from
    another table: no client at all)."""
    pg.psql("CREATE TABLE IF NOT EXISTS bench_floor (LIKE extension_pulumi_state_journal INCLUDING ALL)")
    src = "bench_src_%d_%d" % (rows, size)
    pg.psql("DROP TABLE IF EXISTS %s" % src)
    pg.psql("CREATE TABLE %s AS SELECT g AS n, convert_to(substring(string_agg(md5(g::text || ':' || x::text), '') "
            "FROM 1 FOR %d), 'UTF8') AS payload FROM generate_series(1, %d) g, generate_series(1, %d) x GROUP BY g"
            % (src, size, rows, size // 32 + 1))
    payloads = [r[0] for r in pg.psql("SELECT convert_from(payload, 'UTF8') FROM %s ORDER BY n" % src)]
    values = ",".join("(%d, convert_to('%s', 'UTF8'))" % (i + 1, p) for i, p in enumerate(payloads))
    scripts = {
        "client": "\\set r random(1, 1000000000)\nBEGIN;\nINSERT INTO bench_floor SELECT md5(:r::text || "
                  "clock_timestamp()::text)::uuid, v.* FROM (VALUES %s) v;\nCOMMIT;\n" % values,
        "server": "BEGIN;\nINSERT INTO bench_floor SELECT gen_random_uuid(), n, payload FROM %s;\nCOMMIT;\n" % src,
    }
    out = {}
    for name, text in scripts.items():
        script = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False)
        script.write(text)
        script.close()
        r = subprocess.run([harness.PG_BIN + "/pgbench", "-n", "-f", script.name, "-t", str(runs), "-h", pg.dir,
                            "-p", str(pg.port), "-U", "postgres", "postgres"], capture_output=True, text=True)
        os.unlink(script.name)
        m = re.search(r"latency average = ([\d.]+) ms", r.stdout)
        out[name] = float(m.group(1)) if m else float("nan")
        if not m:
            print("pgbench failed: %s" % (r.stdout + r.stderr)[-500:], file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,200,600")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--backends", default="journal,journal-5ms,journal-1ms,delta,full,diy,floor")
    ap.add_argument("--extra", action="append", default=[], help="NAME=URL,TOKEN[,VAR=VALUE...] of another Cloud-protocol backend (VAR=VALUE: the CLI's environment)")
    ap.add_argument("--out", default=os.path.join(harness.ROOT, "build", "bench"))
    ap.add_argument("--quick", action="store_true", help="sizes 10,200; no load test")
    ap.add_argument("--load-seconds", type=float, default=15.0, help="0: no load test")
    args = ap.parse_args()
    if args.quick:
        args.sizes = "10,200"
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = args.backends.split(",")
    os.makedirs(args.out, exist_ok=True)

    cluster = harness.Cluster(procs=2, threads=4, settings={"PULUMI_STATE_LOG_LEVEL": "debug"})
    cluster.start()
    server = cluster.server
    results = []      # (backend, n, step, [seconds...])
    server_rows = []  # per mode and size: cpu, request time, rss
    try:
        idle_rss = max(rss_kb(p, "VmRSS") for p in children(server.proc.pid, "pulumi-state-fc"))
        for n in sizes:
            for b in backends + [e.split("=")[0] for e in args.extra]:
                samples = {s: [] for s in STEPS}
                extras = []
                for rep in range(args.repeats):
                    stack_name = "b%d-%s-%d-%d" % (n, b, rep, int(time.time() * 1000) % 100000)
                    diydir = None
                    if b in MODES:
                        runner = Runner(server.url, server.token, MODES[b])
                        stack = "%s/bench/%s" % (ORG, stack_name)
                        srv = server
                    elif b in ("diy", "floor"):
                        diydir = tempfile.mkdtemp(prefix="bench-diy-")
                        runner = Runner("file://" + diydir, None,
                                        {"PULUMI_SKIP_CHECKPOINTS": "true"} if b == "floor" else {})
                        stack, srv = stack_name, None
                    else:
                        url, token, *envs = [e for e in args.extra if e.startswith(b + "=")][0].split("=", 1)[1].split(",")
                        runner = Runner(url, token, dict(kv.split("=", 1) for kv in envs))
                        stack, srv = "%s/bench/%s" % (ORG, stack_name), None
                    try:
                        times, extra = scenario(runner, stack, n, srv)
                    finally:
                        runner.cleanup()
                        if diydir:
                            shutil.rmtree(diydir, ignore_errors=True)
                    for s in STEPS:
                        samples[s].append(times[s])
                    if extra.get("steps"):
                        extra["create_s"] = times["create"]
                        extras.append(extra)
                    print("n=%d %-8s %s" % (n, b, " ".join("%s=%.2fs" % (s, times[s]) for s in STEPS)), flush=True)
                for s in STEPS:
                    results.append((b, n, s, samples[s]))
                if extras:
                    row = {k: statistics.median(e[k] for e in extras) for k in extras[0] if k != "steps"}
                    row["steps"] = extras[-1]["steps"]
                    row.update(backend=b, n=n)
                    server_rows.append(row)
        routes = {}
        for _, path, status, ms, _ in log_lines(server):
            routes.setdefault(route_of(path), []).append(ms)
        floors = {}
        for label, size in (("100x800B", 800), ("100x16KB", 16384)):
            off = log_size(server)
            loadgen.batch_series(server, size)
            ms = [m for _, path, _, m, _ in log_lines(server, off) if path.endswith("/journalentries")]
            pgf = pg_floor(cluster.pg, 100, size)
            floors[label] = {"postgres_ms": pgf["client"], "postgres_rows_inside_ms": pgf["server"],
                             "server_p50_ms": percentile(ms, 50),
                             "server_p99_ms": percentile(ms, 99), "batches": len(ms)}
            print("journal batch %s: server p50 %.2f ms, PostgreSQL alone %.2f ms" % (
                label, floors[label]["server_p50_ms"], floors[label]["postgres_ms"]), flush=True)
    finally:
        cluster.stop()

    load = [] if args.quick or args.load_seconds <= 0 else loadgen.scale(args.load_seconds)
    write_reports(args.out, results, server_rows, routes, floors, idle_rss, load, backends)


def write_reports(out, results, server_rows, routes, floors, idle_rss, load, backends):
    med = {(b, n, s): statistics.median(v) for b, n, s, v in results}
    with open(os.path.join(out, "cli_steps.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["backend", "n", "step", "median_s", "min_s", "max_s", "runs", "vs_floor", "vs_diy"])
        for b, n, s, v in results:
            floor, diy = med.get(("floor", n, s)), med.get(("diy", n, s))
            m = statistics.median(v)
            w.writerow([b, n, s, "%.3f" % m, "%.3f" % min(v), "%.3f" % max(v), len(v),
                        "%.2f" % (m / floor) if floor else "", "%.3f" % (m / diy) if diy else ""])
    md = ["# pulumi-state benchmark", "", "Median wall seconds of each CLI step (min-max), and ratios.", "",
          "| n | step | " + " | ".join(backends) + " |", "|---|---|" + "---|" * len(backends)]
    sizes = sorted({n for _, n, _, _ in results})
    for n in sizes:
        for s in STEPS:
            cells = []
            for b in backends:
                v = [r[3] for r in results if r[0] == b and r[1] == n and r[2] == s]
                if not v:
                    cells.append("")
                    continue
                v = v[0]
                m = statistics.median(v)
                floor, diy = med.get(("floor", n, s)), med.get(("diy", n, s))
                ratio = []
                if floor and b != "floor":
                    ratio.append("%.2f× floor" % (m / floor))
                if diy and b not in ("diy", "floor"):
                    ratio.append("%.3f× diy" % (m / diy))
                cells.append("%.2f (%.2f–%.2f)%s" % (m, min(v), max(v), (" " + ", ".join(ratio)) if ratio else ""))
            md.append("| %d | %s | %s |" % (n, s, " | ".join(cells)))
    md += ["", "## Server side", "",
           "The create step. Request time: the workers' summed handling time (wall clock, from reading the "
           "request to the reply), of it the time waiting for PostgreSQL, and the rest, the workers' own.", "",
           "| mode | n | worker CPU s | PostgreSQL CPU s | workers' request time s (share of CLI wall) | "
           "of it waiting for PostgreSQL s | workers' own s (share) | peak worker RSS MB |",
           "|---|---|---|---|---|---|---|---|"]
    for r in server_rows:
        own = r["worker_request_s"] - r.get("worker_db_wait_s", 0.0)
        md.append("| %s | %d | %.2f | %.2f | %.2f (%.1f%%) | %.2f | %.2f (%.1f%%) | %.1f |" % (
            r["backend"], r["n"], r["worker_cpu_s"], r["postgres_cpu_s"], r["worker_request_s"],
            100.0 * r["worker_request_s"] / r["create_s"], r.get("worker_db_wait_s", 0.0), own,
            100.0 * own / r["create_s"], r["peak_worker_rss_kb"] / 1024.0))
    md += critical_path(server_rows)
    md += ["", "Idle worker RSS: %.1f MB." % (idle_rss / 1024.0), "", "| route | calls | p50 ms | p99 ms |",
           "|---|---|---|---|"]
    for route in ("journalentries", "checkpointdelta", "checkpointverbatim", "checkpoint", "export", "events"):
        v = [x for k, x in routes.items() if k == route or (route == "events" and k == "batch")]
        if v:
            v = v[0]
            md.append("| %s | %d | %.2f | %.2f |" % (route, len(v), percentile(v, 50), percentile(v, 99)))
    md += ["", "## One journal batch: the server against PostgreSQL alone", "",
           "PostgreSQL alone = pgbench inserting and committing the same rows into a table defined like the "
           "journal, the rows sent by the client in the INSERT; in brackets the rows copied from a table "
           "already inside PostgreSQL (no client traffic at all).", "",
           "| batch | server p50 ms | server p99 ms | PostgreSQL alone ms | server / PostgreSQL |",
           "|---|---|---|---|---|"]
    for label, f in floors.items():
        md.append("| %s | %.2f | %.2f | %.2f (%.2f) | %.2f× (%.2f×) |" % (
            label, f["server_p50_ms"], f["server_p99_ms"], f["postgres_ms"], f["postgres_rows_inside_ms"],
            f["server_p50_ms"] / f["postgres_ms"], f["server_p50_ms"] / f["postgres_rows_inside_ms"]))
    if load:
        md += ["", "## Scale: simultaneous journaled updates through lighttpd", "",
               "| worker processes | batches/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|"]
        for row in load:
            md.append("| %d | %.1f | %.2f | %.2f | %d |" % (row["procs"], row["rate"], row["p50"], row["p99"],
                                                            row["errors"]))
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(out, "server.json"), "w") as f:
        json.dump({"server": server_rows, "routes": {k: [percentile(v, 50), percentile(v, 99), len(v)]
                                                      for k, v in routes.items()},
                   "pg_floor_ms": floors, "idle_rss_kb": idle_rss, "load": load}, f, indent=1)
    chart(out, results, backends)
    print("\n".join(md))


def critical_path(server_rows):
    """Where the server modes' create and destroy spend the server's time: the CLI sends journal batches
    or checkpoints one after another and waits for each (its steps wait for their state), reads the whole
    state (export) before it starts, and waits for complete; events go out three at a time beside."""
    rows = [r for r in server_rows if r["backend"].startswith("journal") or r["backend"] in ("delta", "full")]
    if not rows:
        return []
    top = max(r["n"] for r in rows)
    md = ["", "The server modes at %d resources, per step: the server's time on the CLI's sequential path "
          "(ms; calls in brackets)." % top, "",
          "| mode | step | CLI wall s | journalentries or checkpoints | complete | export (state reads) | start, stack, other | "
          "sum on the path (share of wall) | events (beside, 3 at a time) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["n"] != top:
            continue
        for step in ("create", "destroy"):
            st = r["steps"].get(step)
            if not st:
                continue
            routes = st["routes"]

            def get(name):
                v = routes.get(name, {"calls": 0, "total_ms": 0.0})
                return v["calls"], v["total_ms"]
            state = ("journalentries", "checkpointdelta", "checkpointverbatim", "checkpoint")
            j = tuple(map(sum, zip(*[get(k) for k in state])))
            c, e, ev = get("complete"), get("export"), get("batch")
            other = sum(v["total_ms"] for k, v in routes.items() if k not in state + ("complete", "export", "batch"))
            path = j[1] + c[1] + e[1] + other
            md.append("| %s | %s | %.2f | %.0f (%d) | %.0f | %.1f (%d) | %.1f | %.0f (%.1f%%) | %.0f (%d) |" % (
                r["backend"], step, st["wall_s"], j[1], j[0], c[1], e[1], e[0], other, path,
                100.0 * path / 1000.0 / st["wall_s"], ev[1], ev[0]))
    return md


def chart(out, results, backends):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"], check=False)
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib unavailable: no chart", file=sys.stderr)
            return
    sizes = sorted({n for _, n, _, _ in results})
    fig, axes = plt.subplots(1, len(STEPS), figsize=(4 * len(STEPS), 4))
    for ax, step in zip(axes, STEPS):
        for b in backends:
            ys = [statistics.median(v) for bb, n, s, v in results if bb == b and s == step]
            if ys:
                ax.plot(sizes[:len(ys)], ys, marker="o", label=b)
        ax.set_title(step)
        ax.set_xlabel("resources")
        ax.set_ylabel("seconds")
        ax.set_yscale("log")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "chart.png"), dpi=90)


if __name__ == "__main__":
    main()
