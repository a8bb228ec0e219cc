"""Operations endpoints: /healthz (no database needed), /readyz (database, schema, master key canary) and
/metrics (Prometheus text; the request counters are shared by every worker process of the front end, so
any one scrape reports all of them)."""
import re

import harness
import psapi


def scrape(server):
    status, _, raw, headers = server.request("GET", "/metrics", token=False)
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    psapi.CALLS.append(("GET", "/metrics", status))
    return raw.decode()


def value(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.fullmatch(r'(\w+)(?:\{([^}]*)\})? (\S+)', line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == ",".join(
                sorted(want.split(","))):
            return float(m.group(3))
    return None


def call(server, path, want):
    status, body, raw, _ = server.request("GET", path, token=False)
    psapi.CALLS.append(("GET", path, status))
    assert status == want, raw
    return body


def test_health_ready_and_metrics_without_a_token(api):
    assert call(api.server, "/healthz", 200) == {"status": "ok"}
    r = call(api.server, "/readyz", 200)
    assert r["status"] == "ready" and r["checks"] == {"database": "ok", "schema": "ok", "master_key": "ok"}
    text = scrape(api.server)
    assert "# TYPE pulumi_state_http_request_duration_seconds histogram" in text
    assert value(text, "pulumi_state_up") == 1
    assert value(text, "pulumi_state_deployment_queue_depth") is not None


def test_counts_cover_every_worker_process():
    """Four worker processes, one thread each: 40 requests spread over them; one scrape sees all 40."""
    c = harness.Cluster(procs=4, threads=1)
    c.start()
    try:
        s = c.server
        before = value(scrape(s), "pulumi_state_http_requests_total", route="stacks", code="4xx") or 0
        for i in range(40):
            assert s.request("GET", "/api/stacks/itlusions/nope/s%d" % i)[0] == 404
        text = scrape(s)
        assert value(text, "pulumi_state_http_requests_total", route="stacks", code="4xx") == before + 40
        count = value(text, "pulumi_state_http_request_duration_seconds_count", route="stacks")
        inf = value(text, "pulumi_state_http_request_duration_seconds_bucket", route="stacks", le="+Inf")
        assert count == inf and count >= 40
        assert value(text, "pulumi_state_db_wait_seconds_total", route="stacks") > 0  # each lookup asked PostgreSQL
        # The cluster gauges come from PostgreSQL.
        st, _, _, _ = s.request("POST", "/api/stacks/itlusions/ops", {"stackName": "g"})
        assert st == 200
        s.request("POST", "/api/stacks/itlusions/ops/g/deployments",
                  {"operation": "update", "source": {"repoURL": "https://git.example.com/x.git"}})
        api = psapi.Api(s, c.pg)
        upd = api.begin(psapi.Stack("itlusions", "ops", "g"))
        text = scrape(s)
        assert value(text, "pulumi_state_deployment_queue_depth") == 1
        assert value(text, "pulumi_state_deployments", status="queued") == 1
        assert value(text, "pulumi_state_updates_active") == 1
        assert value(text, "pulumi_state_updates", status="running") == 1
        psapi.assert_ok(api.complete(upd))
        text = scrape(s)
        assert value(text, "pulumi_state_updates_active") == 0
        assert value(text, "pulumi_state_updates", status="succeeded") == 1
    finally:
        c.stop()


def test_readyz_names_what_is_wrong():
    c = harness.Cluster(procs=1, threads=2)
    c.start()
    try:
        s = c.server
        c.pg.psql("UPDATE extension_pulumi_state_schema SET name = 'parked:' || name WHERE name = "
                  "(SELECT max(name) FROM extension_pulumi_state_schema WHERE name LIKE 'migration:%')")
        r = call(s, "/readyz", 503)
        assert r["code"] == 503 and "pulumi-state-admin migrate" in r["message"] and r["checks"]["schema"] == "behind"
        c.pg.psql("UPDATE extension_pulumi_state_schema SET name = substr(name, 8) WHERE name LIKE 'parked:%'")
        assert call(s, "/readyz", 200)["status"] == "ready"
        c.pg.stop()
        try:
            r = call(s, "/readyz", 503)
            assert r["checks"]["database"] == "unreachable"
            assert call(s, "/healthz", 200) == {"status": "ok"}
            assert value(scrape(s), "pulumi_state_up") == 0
            assert s.request("GET", "/api/stacks/itlusions/ops/down")[0] == 503
        finally:
            c.pg.start()
        assert call(s, "/readyz", 200)["status"] == "ready"
        # The refusal during the outage is counted with the server errors (the counters live in shared memory).
        assert value(scrape(s), "pulumi_state_http_requests_total", route="stacks", code="5xx") >= 1
    finally:
        c.stop()


def test_json_logs_carry_the_request_id():
    import json
    c = harness.Cluster(procs=1, threads=1, settings={"PULUMI_STATE_LOG_FORMAT": "json",
                                                      "PULUMI_STATE_LOG_LEVEL": "debug"})
    c.start()
    try:
        s = c.server
        status, _, _, headers = s.request("GET", "/api/stacks/itlusions/nope/json-log")
        assert status == 404
        rid = headers["X-Pulumi-Request-ID"]

        def objs():
            return [json.loads(l) for l in s.logs().splitlines() if l.startswith("{")]
        # The worker logs the answer just after sending it.
        harness.wait_until(lambda: any(o.get("context") == rid and "-> 404" in o["message"] for o in objs()),
                           "the request's log line")
        assert all(set(o) >= {"time", "level", "program", "pid", "message"} for o in objs())
    finally:
        c.stop()
