"""loadgen.py - many simultaneous journaled updates on distinct stacks through lighttpd, for 1, 2, 4
and 8 worker processes. Loopback only; bounded in time and count; stops by itself."""
import json
import statistics
import sys
import threading
import time
import uuid
import os

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402

ORG = "itlusions"
BATCH = 100


def entries(stack, start_seq, start_op, count, row_bytes=800):
    """Begin+Success pairs creating resources; each entry about row_bytes of JSON (hex text)."""
    out = []
    seq, op = start_seq, start_op
    half = max(16, (row_bytes - 330) // 2)
    while len(out) < count:
        urn = "urn:pulumi:%s::load::pulumi:Stash::r%06d" % (stack, op)
        blob = (uuid.uuid4().hex * (half // 32 + 1))[:half]
        state = {"urn": urn, "custom": True, "type": "pulumi:index:Stash", "id": str(uuid.uuid4()),
                 "inputs": {"input": blob}, "outputs": {"input": blob, "output": "x" * 10}}
        out.append({"version": 1, "kind": 0, "sequenceID": seq, "operationID": op, "removeOld": None,
                    "removeNew": None, "operation": {"resource": state, "type": "creating"}})
        out.append({"version": 1, "kind": 1, "sequenceID": seq + 1, "operationID": op, "removeOld": None,
                    "removeNew": None, "state": state})
        seq, op = seq + 2, op + 1
    return out[:count], seq, op


def client(server, deadline, lat, counts, errors):
    while time.monotonic() < deadline:
        name = "l" + uuid.uuid4().hex[:10]
        try:
            upath, token = start_update(server, name)
        except (KeyError, TypeError):
            errors.append(1)
            continue
        seq, op = 2, 1
        server.request("PATCH", upath + "/journalentries",
                       {"entries": [{"version": 1, "kind": 6, "sequenceID": 1, "operationID": 0, "removeOld": None,
                                     "removeNew": None, "secretsProvider": {"type": "service", "state": {}}}]},
                       auth="update-token " + token)
        for _ in range(5):
            batch, seq, op = entries(name, seq, op, BATCH)
            t0 = time.monotonic()
            st = server.request("PATCH", upath + "/journalentries", {"entries": batch},
                                auth="update-token " + token)[0]
            lat.append((time.monotonic() - t0) * 1000.0)
            if st != 200:
                errors.append(st)
            counts.append(1)
            if time.monotonic() >= deadline:
                break
        if server.request("POST", upath + "/complete", {"status": "succeeded"},
                          auth="update-token " + token)[0] != 200:
            errors.append(1)


def start_update(server, name):
    """A stack and a started journaled update on it: (update path, token)."""
    path = "/api/stacks/%s/load/%s" % (ORG, name)
    server.request("POST", "/api/stacks/%s/load" % ORG, {"stackName": name})
    body = server.request("POST", path + "/update", {"options": {"dryRun": False}})[1]
    upath = "%s/update/%s" % (path, body["updateID"])
    token = server.request("POST", upath, {"journalVersion": 1})[1]["token"]
    return upath, token


def batch_series(server, row_bytes, batches=40, rows=BATCH):
    """One update, `batches` journal batches of `rows` entries of about row_bytes each, one after the
    other; returns the client-side latencies (ms). The server's own time is in its debug log."""
    name = "f" + uuid.uuid4().hex[:10]
    upath, token = start_update(server, name)
    seq, op, lat = 1, 1, []
    for _ in range(batches):
        batch, seq, op = entries(name, seq, op, rows, row_bytes)
        body = json.dumps({"entries": batch})
        t0 = time.monotonic()
        st = server.request("PATCH", upath + "/journalentries", raw=body.encode(), auth="update-token " + token)[0]
        lat.append((time.monotonic() - t0) * 1000.0)
        assert st == 200, st
    server.request("POST", upath + "/complete", {"status": "succeeded"}, auth="update-token " + token)
    return lat


def scale(seconds=15.0, clients=16, procs_list=(1, 2, 4, 8)):
    rows = []
    for procs in procs_list:
        c = harness.Cluster(procs=procs, threads=2)
        c.start()
        try:
            lat, counts, errors = [], [], []
            deadline = time.monotonic() + seconds
            t0 = time.monotonic()
            threads = [threading.Thread(target=client, args=(c.server, deadline, lat, counts, errors))
                       for _ in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - t0
            lat.sort()
            rows.append({"procs": procs, "rate": len(counts) / elapsed, "p50": statistics.median(lat) if lat else 0,
                         "p99": lat[int(0.99 * (len(lat) - 1))] if lat else 0, "errors": len(errors)})
            print("load: %d procs: %.1f batches/s p50 %.1f ms p99 %.1f ms errors %d" % (
                procs, rows[-1]["rate"], rows[-1]["p50"], rows[-1]["p99"], len(errors)), flush=True)
        finally:
            c.stop()
    return rows


if __name__ == "__main__":
    scale(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)
