"""Fault injection against a cluster of its own (real PostgreSQL, lighttpd, workers): PostgreSQL restarted
before and during each update route, PostgreSQL stopped (503 + Retry-After, then recovery without a worker
restart), workers killed with SIGKILL in the middle of each update route (state unchanged or complete, never
half), and a lease expiring during an update. Each fault is recorded for the README's Reliability table."""
import os
import signal
import subprocess

import pytest

import harness
import psapi
from psapi import assert_error, assert_ok, small_state
from test_defects import entry_text, patch_entries, stash
from test_journal import SP

ROUTES = ["start", "checkpoint", "verbatim", "delta", "journal", "events", "complete"]
# The table each route writes inside its transaction: locked by the test to hold the handler mid-way.
WRITES = {"start": "extension_pulumi_state_stacks", "checkpoint": "extension_pulumi_state_checkpoints",
          "verbatim": "extension_pulumi_state_checkpoints", "delta": "extension_pulumi_state_checkpoint_deltas",
          "journal": "extension_pulumi_state_journal", "events": "extension_pulumi_state_events",
          "complete": "extension_pulumi_state_versions"}


@pytest.fixture(scope="module")
def fcluster():
    c = harness.Cluster(procs=2, threads=2, settings={"PULUMI_STATE_JOURNALING": "true"})
    c.start()
    yield c
    c.server.stop()
    reports = c.server.sanitizer_reports()
    bad = c.server.unexplained_5xx()
    c.stop()
    assert not bad, "5xx answers other than 503 during the faults:\n" + "".join(bad[:50])
    assert not reports, "sanitizer reports:\n" + "\n".join(reports)[:20000]


@pytest.fixture(scope="module")
def fapi(fcluster):
    return psapi.Api(fcluster.server, fcluster.pg)


def restart_pg(pg):
    pg.restart()


def worker_pids(server):
    """The FastCGI workers: children of the lighttpd this test started, or those spawn-fcgi started for Apache."""
    if server.frontend == "apache":
        return sorted(server.worker_pids)
    out = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
    return sorted(int(p) for p in out)


def prepared(api, st, route):
    """An update ready for route: (update, a function sending the route's request)."""
    journal = route == "journal"
    upd = api.create_update(st)
    if route == "start":
        return upd, lambda: api.post(upd.path, {})
    r = assert_ok(api.post(upd.path, {"journalVersion": 1} if journal else {}))
    upd.token, upd.version = r["token"], r["version"]
    dep = small_state(st, n=2)
    if route == "checkpoint":
        return upd, lambda: api.checkpoint(upd, dep)
    if route == "verbatim":
        import json
        body = {"version": 3, "sequenceNumber": 1, "untypedDeployment": {"version": 3, "deployment": dep}}
        return upd, lambda: api.patch(upd.path + "/checkpointverbatim", body, update=upd)
    if route == "delta":
        import hashlib
        import json
        base = json.dumps({"version": 3, "deployment": dep})
        assert_ok(api.patch(upd.path + "/checkpointverbatim", {"version": 3, "sequenceNumber": 1,
                                                               "untypedDeployment": json.loads(base)}, update=upd))
        stored = api.pg.psql("SELECT convert_from(raw, 'UTF8') FROM extension_pulumi_state_checkpoints "
                             "WHERE update_id = '%s'" % upd.id)[0][0]
        new = stored.replace('"pet-0"', '"pet-X"', 1)
        i = stored.index('"pet-0"')
        body = {"version": 3, "sequenceNumber": 2, "checkpointHash": hashlib.sha256(new.encode()).hexdigest(),
                "deploymentDelta": [{"Span": {"uri": "", "start": {"line": 1, "column": 1, "offset": i}, "end": {"line": 1, "column": 1, "offset": i + 7}}, "NewText": "\"pet-X\""}]}
        return upd, lambda: api.patch(upd.path + "/checkpointdelta", body, update=upd)
    if route == "journal":
        a = stash(st, "a", '{"v":1}')
        ents = [entry_text(1, 6, 0, secretsProvider=SP), entry_text(2, 0, 1, operation=
                '{"resource":%s,"type":"creating"}' % a), entry_text(3, 1, 1, state=a)]
        return upd, lambda: patch_entries(api, upd, ents)
    if route == "events":
        return upd, lambda: api.events(upd, [{"sequence": 0, "timestamp": 1, "stdoutEvent": {"message": "x"}}])
    assert_ok(api.checkpoint(upd, dep))
    return upd, lambda: api.complete(upd)


def finish(api, upd, route):
    """After the fault, the update goes on as the CLI would (the request retried, then complete)."""
    if route != "start" and route != "complete":
        assert api.get(upd.path).json["status"] == "running"
    if route == "start" and not upd.token:
        return
    if route != "complete":
        assert_ok(api.complete(upd))


@pytest.mark.parametrize("route", ROUTES)
def test_postgres_restart_before_the_route(fcluster, fapi, route):
    """An idle restart leaves every worker connection dead (and still looking open): the next call of
    each route is retried on a fresh connection and succeeds."""
    st = fapi.new_stack()
    upd, send = prepared(fapi, st, route)
    restart_pg(fcluster.pg)
    r = send()
    assert_ok(r)
    if route == "start":
        upd.token = r.json["token"]
    finish(fapi, upd, route)
    psapi.record_fault("postgres restart before " + route)


class Held:
    """A psql session holding a table lock, to stop a handler inside its transaction."""

    def __init__(self, pg, table):
        self.p = subprocess.Popen(["psql", "-X", "-q", "-d", pg.conninfo], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        self.p.stdin.write("BEGIN; LOCK TABLE %s IN EXCLUSIVE MODE; SELECT pg_backend_pid();\n" % table)
        self.p.stdin.flush()
        self.pg = pg
        self.table = table
        harness.wait_until(lambda: pg.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                                           "WHERE c.relname = '%s' AND l.mode = 'ExclusiveLock' AND l.granted"
                                           % table)[0][0] == "1", "the table lock")

    def wait_blocked(self):
        harness.wait_until(lambda: int(self.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                                                    "'Lock' AND backend_type = 'client backend'")[0][0]) >= 1,
                           "a handler waiting on the lock")

    def release(self):
        try:
            self.p.stdin.write("ROLLBACK;\n\\q\n")
            self.p.stdin.close()
        except BrokenPipeError:  # its server went away (a restart)
            pass
        self.p.wait(timeout=60)


def in_background(fn):
    import threading
    out = {}

    def run():
        try:
            out["r"] = fn()
        except Exception as e:  # the connection breaks when the worker dies
            out["e"] = e
    t = threading.Thread(target=run)
    t.start()
    return t, out


@pytest.mark.parametrize("route", ROUTES)
def test_postgres_restart_during_the_route(fcluster, fapi, route):
    """PostgreSQL restarts while the route's transaction is open: the request answers 503 with Retry-After
    (never 500), nothing of it is kept, and the retry (as the CLI makes it) succeeds."""
    st = fapi.new_stack()
    upd, send = prepared(fapi, st, route)
    before = fapi.snapshot(st)
    held = Held(fcluster.pg, WRITES[route])
    t, out = in_background(lambda: fapi.server.request(*request_of(fapi, upd, route, send)))
    held.wait_blocked()
    restart_pg(fcluster.pg)  # ends the held session's transaction too
    held.release()
    t.join(timeout=120)
    status, body, _, headers = out["r"]
    assert status in (200, 503), (status, body)
    if status == 503:
        assert headers.get("Retry-After")
        assert "retry" in body["message"].lower()
        assert fapi.snapshot(st) == before
    r = send()  # the retry the CLI makes
    if route == "start" and status == 200:
        assert_error(r, 409)  # started by the first attempt
        upd.token = body["token"]
    else:
        assert_ok(r)
        if route == "start":
            upd.token = r.json["token"]
    finish(fapi, upd, route)
    psapi.record_fault("postgres restart during " + route)


def request_of(api, upd, route, send):
    """The raw (method, path, body, ...) of the route's request, for a background call that must not
    assert (a 503 is expected there)."""
    calls = []
    orig = api.server.request

    def capture(method, path, body=None, token=None, headers=None, raw=None, auth=None):
        calls.append((method, path, body, token, headers, raw, auth))
        return 200, {}, b"{}", {}
    api.server.request = capture
    try:
        try:
            send()
        except AssertionError:
            pass
    finally:
        api.server.request = orig
    return calls[-1]


def retried(send):
    """Send as the CLI does after a worker died: lighttpd answers 503 itself (no request id) until it has
    respawned the workers and taken them back; those answers are retried."""
    out = {}

    def attempt():
        try:
            out["r"] = send()
            return True
        except AssertionError as e:
            if "503" in str(e) and ("<?xml" in str(e) or "<!DOCTYPE" in str(e)):
                return False
            raise
    harness.wait_until(attempt, "the workers respawned and taken back by lighttpd")
    return out["r"]


@pytest.mark.parametrize("route", ROUTES)
def test_worker_killed_during_the_route(fcluster, fapi, route):
    """SIGKILL of the workers while the route's handler is inside its transaction: nothing of it is kept
    (the state is as before), the workers come back, and the retried request and the update succeed."""
    st = fapi.new_stack()
    upd, send = prepared(fapi, st, route)
    before = fapi.snapshot(st)
    server = fcluster.server
    held = Held(fcluster.pg, WRITES[route])
    t, out = in_background(lambda: server.request(*request_of(fapi, upd, route, send)))
    held.wait_blocked()
    pids = worker_pids(server)
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    t.join(timeout=120)
    held.release()
    if server.frontend == "apache":
        # lighttpd respawns its workers; under Apache their supervisor does (systemd Restart=, as
        # conf/pulumi-state-fcgi.service): here the test is that supervisor.
        server.start_workers()
    back = lambda: len(worker_pids(server)) == len(pids) and all(  # noqa: E731
        server.request("GET", "/api/capabilities")[0] == 200 for _ in range(8))
    harness.wait_until(back, "every worker back")
    # The killed backends' transactions are gone, their advisory locks with them.
    assert fapi.snapshot(st) == before
    r = retried(send)
    assert_ok(r)
    if route == "start":
        upd.token = r.json["token"]
    retried(lambda: finish(fapi, upd, route))
    psapi.record_fault("worker SIGKILL during " + route)


def test_postgres_stopped_every_route_503_then_recovers(fcluster, fapi):
    st = fapi.new_stack()
    upd = fapi.begin(st)
    pids = worker_pids(fcluster.server)
    pg = fcluster.pg
    subprocess.run(["runuser", "-u", "postgres", "--", harness.PG_BIN + "/pg_ctl", "-D", pg.data, "-m", "fast", "-w",
                    "stop"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        calls = [("GET", st.path, None, None),
                 ("POST", st.path + "/update", {"options": {}}, None),
                 ("PATCH", upd.path + "/checkpoint", {"version": 3, "deployment": small_state(st)}, upd.token),
                 ("PATCH", upd.path + "/journalentries", {"entries": []}, upd.token),
                 ("POST", upd.path + "/events/batch", {"events": []}, upd.token),
                 ("POST", upd.path + "/renew_lease", {"duration": 60}, upd.token),
                 ("POST", upd.path + "/complete", {"status": "succeeded"}, upd.token),
                 ("GET", st.path + "/export", None, None), ("GET", "/api/user/stacks", None, None)]
        for method, path, body, tok in calls:
            status, resp, _, headers = fcluster.server.request(
                method, path, body, auth=("update-token " + tok) if tok else None)
            assert status == 503, (method, path, status, resp)
            assert resp["code"] == 503 and headers.get("Retry-After"), resp
            psapi.record_fault("postgres stopped: " + method + " " + path.split("/")[-1])
    finally:
        pg.started = False
        pg._as_pg(harness.PG_BIN + "/pg_ctl", "-D", pg.data, "-l", pg.log, "-o",
                  "-k %s -p %d -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c max_connections=200"
                  % (pg.dir, pg.port), "-w", "start")
        pg.started = True
    # Back without a worker restart.
    assert_ok(fapi.checkpoint(upd, small_state(st)))
    assert_ok(fapi.complete(upd))
    assert fapi.export(st)["deployment"] == small_state(st)
    assert worker_pids(fcluster.server) == pids


def test_lease_expiry_during_an_update_keeps_the_journal(fcluster, fapi):
    st = fapi.new_stack()
    upd = fapi.create_update(st)
    r = assert_ok(fapi.post(upd.path, {"journalVersion": 1}))
    upd.token = r["token"]
    a = stash(st, "a", '{"v":1}')
    b = stash(st, "b", '{"v":2}')
    assert_ok(patch_entries(fapi, upd, [entry_text(1, 6, 0, secretsProvider=SP),
                                        entry_text(2, 0, 1, operation='{"resource":%s,"type":"creating"}' % a),
                                        entry_text(3, 1, 1, state=a),
                                        entry_text(4, 0, 2, operation='{"resource":%s,"type":"creating"}' % b)]))
    fcluster.pg.psql("UPDATE extension_pulumi_state_updates SET lease_expires_at = now() - interval '1 second' "
                     "WHERE id = '%s'" % upd.id)
    assert "currentOperation" not in fapi.stack(st)  # reaped on the way
    dep = fapi.export(st)["deployment"]
    assert [r["urn"] for r in dep["resources"]] == [st.urn("pulumi:index:Stash", "a")]
    assert [op["resource"]["urn"] for op in dep["pending_operations"]] == [st.urn("pulumi:index:Stash", "b")]
    assert_error(fapi.complete(upd), 409)
    psapi.record_fault("lease expiry during an update")
