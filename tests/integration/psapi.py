"""psapi.py - helpers shared by the HTTP integration tests: one error-shape check used by every call,
unique stacks, the update lifecycle, deployments with URNs, and before/after state snapshots."""
import base64
import collections
import gzip
import json
import os
import re
import uuid

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

Resp = collections.namedtuple("Resp", "status json raw headers")

# Substrings an error message must never contain (internals: SQL, libpq, paths, table names).
LEAKS = ("sql", "error:", "pq", "/work/", "extension_pulumi_state", "pgresult", "jansson")
SOURCE_REF = re.compile(r"\w+\.[ch]:\d+")

# Every (method, path, status) the suite sent through Api.call; test_zz_routes.py checks coverage.
CALLS = []
def record_fault(what):
    harness.record("fault", what)


def check_error_body(resp, method="GET"):
    """Any 4xx/5xx produced by the application: {"code": <HTTP status>, "message": str}, no internals.
    Errors from lighttpd itself (no X-Pulumi-Request-ID) are not JSON and are only checked for 4xx."""
    status, body, raw, headers = resp
    assert status >= 400
    if not headers.get("X-Pulumi-Request-ID"):
        assert 400 <= status < 500, (status, raw[:300])
        return None
    if method == "HEAD":
        return None
    assert isinstance(body, dict), "error body is not a JSON object: %r" % raw[:300]
    assert body.get("code") == status, "code %r != HTTP status %d: %r" % (body.get("code"), status, raw[:300])
    msg = body.get("message")
    assert isinstance(msg, str) and msg.strip(), "error without a message: %r" % raw[:300]
    low = msg.lower()
    for leak in LEAKS:
        assert leak not in low, "error message leaks %r: %r" % (leak, msg)
    assert not SOURCE_REF.search(msg), "error message names a source line: %r" % msg
    return msg


def assert_error(resp, status, exact=None, contains=None, method="GET"):
    """The one helper for expected errors: status, JSON shape, optional exact/substring message."""
    assert resp.status == status, "expected %d, got %d: %r" % (status, resp.status, resp.raw[:500])
    msg = check_error_body(resp, method)
    if exact is not None:
        assert msg == exact, msg
    if contains is not None:
        assert contains in msg, msg
    return msg


def assert_ok(resp, status=200):
    assert resp.status == status, "expected %d, got %d: %r" % (status, resp.status, resp.raw[:500])
    return resp.json


def uid(prefix="s"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def gz(obj):
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return gzip.compress(data)


class Stack:
    def __init__(self, org, project, name):
        self.org, self.project, self.name = org, project, name

    @property
    def path(self):
        return "/api/stacks/%s/%s/%s" % (self.org, self.project, self.name)

    def urn(self, typ, name, parent_type=None):
        t = typ if not parent_type else parent_type + "$" + typ
        return "urn:pulumi:%s::%s::%s::%s" % (self.name, self.project, t, name)

    def __repr__(self):
        return "%s/%s/%s" % (self.org, self.project, self.name)


class Update:
    def __init__(self, stack, id, kind, dry_run):
        self.stack, self.id, self.kind, self.dry_run = stack, id, kind, dry_run
        self.token = None
        self.version = None

    @property
    def path(self):
        return "%s/update/%s" % (self.stack.path, self.id)


class Api:
    def __init__(self, server, pg):
        self.server = server
        self.pg = pg
        self._org = None

    # ---- transport -----------------------------------------------------------------------------
    def call(self, method, path, body=None, token=None, headers=None, raw=None, auth=None, update=None):
        """One request. update=<Update or token string> sends "update-token <t>". Every error answer is
        checked for the JSON error shape; a 5xx is never acceptable."""
        if update is not None:
            auth = "update-token " + (update.token if isinstance(update, Update) else update)
        r = Resp(*self.server.request(method, path, body=body, token=token, headers=headers, raw=raw, auth=auth))
        CALLS.append((method, path.split("?")[0], r.status))
        harness.record_call(method, path.split("?")[0], r.status)
        if r.status >= 400:
            check_error_body(r, method)
        assert r.status < 500, "server error on %s %s: %r" % (method, path, r.raw[:500])
        return r

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    # ---- identity ------------------------------------------------------------------------------
    @property
    def org(self):
        if self._org is None:
            self._org = assert_ok(self.get("/api/user/organizations/default"))["GitHubLogin"]
        return self._org

    # ---- stacks --------------------------------------------------------------------------------
    def new_stack(self, project=None, org=None, name=None, tags=None, state=None):
        st = Stack(org or self.org, project or uid("proj"), name or uid("stack"))
        body = {"stackName": st.name}
        if tags is not None:
            body["tags"] = tags
        if state is not None:
            body["state"] = state
        r = self.post("/api/stacks/%s/%s" % (st.org, st.project), body)
        assert isinstance(assert_ok(r), dict)
        return st

    def stack(self, st):
        return assert_ok(self.get(st.path))

    def export(self, st, version=None):
        path = st.path + "/export" + ("/%d" % version if version is not None else "")
        return assert_ok(self.get(path))

    def import_state(self, st, state):
        return assert_ok(self.post(st.path + "/import", state))["updateId"]

    # ---- updates -------------------------------------------------------------------------------
    def create_update(self, st, kind="update", dry_run=False, message="", environment=None, config=None):
        body = {"name": st.project, "runtime": "yaml", "main": "", "description": "",
                "options": {"localPolicyPackPaths": None, "color": "raw", "dryRun": dry_run, "parallel": 16,
                            "showConfig": False, "showReplacementSteps": False, "showNames": False,
                            "summary": False, "debug": False},
                "config": config or {},
                "metadata": {"message": message, "environment": environment or {"exec.kind": "cli"}}}
        r = assert_ok(self.post("%s/%s" % (st.path, kind), body))
        assert set(r) >= {"updateID"}
        assert re.fullmatch(r"[0-9a-f-]{36}", r["updateID"]), r
        return Update(st, r["updateID"], kind, dry_run or kind == "preview")

    def start(self, upd, tags=None, journal=None):
        body = {}
        if tags is not None:
            body["tags"] = tags
        if journal is not None:
            body["journalVersion"] = journal
        r = assert_ok(self.post(upd.path, body))
        assert isinstance(r["token"], str) and r["token"], r
        assert isinstance(r["version"], int) and isinstance(r["tokenExpiration"], int), r
        # The server takes journaling (it is on by default) when asked, never for a dry run.
        asked = journal is not None and journal >= 1 and not upd.dry_run
        assert r.get("journalVersion", 0) == (1 if asked else 0), r
        upd.token, upd.version = r["token"], r["version"]
        return r

    def begin(self, st, kind="update", dry_run=False, **kw):
        upd = self.create_update(st, kind, dry_run, **kw)
        self.start(upd)
        return upd

    def checkpoint(self, upd, deployment, version=3, features=None, gzip_body=False, token=None):
        body = {"isInvalid": False, "version": version, "deployment": deployment}
        if features is not None:
            body["features"] = features
        if gzip_body:
            return self.call("PATCH", upd.path + "/checkpoint", raw=gz(body), update=token or upd,
                             headers={"Content-Encoding": "gzip"})
        return self.patch(upd.path + "/checkpoint", body, update=token or upd)

    def complete(self, upd, status="succeeded", token=None):
        return self.post(upd.path + "/complete", {"status": status}, update=token or upd)

    def events(self, upd, events, token=None):
        return self.post(upd.path + "/events/batch", {"events": events}, update=token or upd)

    def run_update(self, st, deployment, kind="update", status="succeeded", **kw):
        """A whole non-dry-run update: create, start, one checkpoint, complete. Returns the Update."""
        upd = self.begin(st, kind, **kw)
        if deployment is not None:
            assert_ok(self.checkpoint(upd, deployment))
        assert_ok(self.complete(upd, status))
        return upd

    # ---- before/after ----------------------------------------------------------------------------
    def snapshot(self, st):
        """Everything an invalid request must leave alone: the export, GET stack, the stack row, the
        stored versions, the updates and their checkpoints."""
        row = self.pg.psql(
            "SELECT id, org, project, name, tags::text, version, resource_count, coalesce(active_update::text, ''), "
            "coalesce(last_update::text, ''), updated_at::text, secrets_key FROM extension_pulumi_state_stacks "
            "WHERE org = '%s' AND project = '%s' AND name = '%s'" % (st.org, st.project, st.name))
        assert len(row) == 1, row
        sid = row[0][0]
        versions = self.pg.psql("SELECT version, sha256, size FROM extension_pulumi_state_versions "
                                "WHERE stack_id = '%s' ORDER BY version" % sid)
        updates = self.pg.psql("SELECT id, status, coalesce(last_seq, 0), coalesce(token_hash, ''), "
                               "coalesce(lease_expires_at::text, '') FROM extension_pulumi_state_updates "
                               "WHERE stack_id = '%s' ORDER BY id" % sid)
        checkpoints = self.pg.psql("SELECT c.update_id, c.seq, md5(c.raw) FROM extension_pulumi_state_checkpoints c "
                                   "JOIN extension_pulumi_state_updates u ON u.id = c.update_id "
                                   "WHERE u.stack_id = '%s' ORDER BY 1" % sid)
        events = self.pg.psql("SELECT count(*) FROM extension_pulumi_state_events e JOIN extension_pulumi_state_updates"
                              " u ON u.id = e.update_id WHERE u.stack_id = '%s'" % sid)
        journal = self.pg.psql("SELECT j.update_id, j.sequence_id, md5(j.entry) FROM extension_pulumi_state_journal j "
                               "JOIN extension_pulumi_state_updates u ON u.id = j.update_id "
                               "WHERE u.stack_id = '%s' ORDER BY 1, 2" % sid)
        export = self.get(st.path + "/export").raw
        try:
            # A journaled update's export is replayed live, stamped with the time of the replay.
            doc = json.loads(export)
            doc["deployment"]["manifest"].pop("time", None)
            export = json.dumps(doc, sort_keys=True).encode()
        except (ValueError, KeyError, TypeError):
            pass
        return {"export": export, "stack": self.stack(st), "row": row, "versions": versions,
                "updates": updates, "checkpoints": checkpoints, "events": events, "journal": journal}


# ---- deployments -------------------------------------------------------------------------------
def secrets_provider(server, st):
    return {"type": "service", "state": {"url": server.url, "owner": st.org, "project": st.project,
                                         "stack": st.name}}


def deployment(st, resources=(), server=None):
    d = {"manifest": {"time": "2026-01-01T00:00:00Z", "magic": "", "version": "v3.200.0"},
         "metadata": {}}
    if server is not None:
        d["secrets_providers"] = secrets_provider(server, st)
    if resources:
        d["resources"] = list(resources)
    return d


def small_state(st, server=None, n=1):
    """A deployment with the root stack, a provider, and n custom resources depending on each other."""
    stack_urn = st.urn("pulumi:pulumi:Stack", "%s-%s" % (st.project, st.name))
    prov_urn = st.urn("pulumi:providers:random", "default")
    res = [{"urn": stack_urn, "custom": False, "type": "pulumi:pulumi:Stack", "outputs": {"out": "v"}},
           {"urn": prov_urn, "custom": True, "id": "prov-id", "type": "pulumi:providers:random",
            "parent": stack_urn}]
    prev = None
    for i in range(n):
        urn = st.urn("random:index/randomPet:RandomPet", "pet%d" % i)
        r = {"urn": urn, "custom": True, "id": "pet-%d" % i, "type": "random:index/randomPet:RandomPet",
             "inputs": {"length": i + 1}, "outputs": {"id": "pet-%d" % i}, "parent": stack_urn,
             "provider": prov_urn + "::prov-id", "dependencies": [prev] if prev else [],
             "propertyDependencies": {"length": [prev] if prev else []}}
        res.append(r)
        prev = urn
    return deployment(st, res, server)
