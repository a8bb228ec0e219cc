"""Server-side deployments, the API side (no agent runs here): queueing with both body shapes, reading,
logs, linked updates, cancel of a queued deployment; secrets never come back."""
import re

from psapi import assert_error, assert_ok

REPO = "https://git.example.com/team/infra.git"


def queue(api, st, body=None, **kw):
    body = body or {"operation": "update", "source": {"repoURL": REPO, "branch": "main"}}
    r = api.post(st.path + "/deployments", body, **kw)
    assert r.status == 202, r.raw
    return r.json


def test_queue_original_shape_and_read_it_back(api):
    st = api.new_stack()
    d = queue(api, st, {"operation": "update", "source": {"repoURL": REPO, "branch": "main", "repoDir": "infra"},
                        "environmentVariables": {"PLAIN": "1", "TOKEN": {"secret": "s3cr3t-value"}}})
    assert re.fullmatch(r"[0-9a-f-]{36}", d["id"]) and d["version"] == 1
    assert d["consoleUrl"].endswith("/deployments/" + d["id"])
    g = assert_ok(api.get(st.path + "/deployments/" + d["id"]))
    assert g["status"] == "queued" and g["pulumiOperation"] == "update" and g["version"] == 1
    assert g["jobs"][0]["status"] == "not-started"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", g["created"])
    assert g["configuration"]["source"]["git"]["repoURL"] == REPO
    env = {e["name"]: e["secret"] for e in g["configuration"]["environmentVariables"]}
    assert env == {"PLAIN": False, "TOKEN": True}
    assert "s3cr3t-value" not in api.get(st.path + "/deployments/" + d["id"]).raw.decode()
    assert assert_ok(api.get(st.path + "/deployments/version/1"))["id"] == d["id"]


def test_queue_the_real_cli_body(api):
    st = api.new_stack()
    body = {"operation": "update", "inheritSettings": True, "executorContext": {"workingDirectory": ""},
            "sourceContext": {"git": {"repoUrl": REPO, "branch": "", "commit": "0123abcd",
                                      "gitAuth": {"accessToken": {"secret": "ghp_hidden"}}}},
            "operationContext": {"preRunCommands": None, "operation": "",
                                 "environmentVariables": {"A": "1", "B": {"secret": "2"}}},
            "agentPoolID": None}
    d = queue(api, st, body, headers={"X-Pulumi-Deployment-Initiator": "automation-api"})
    g = assert_ok(api.get(st.path + "/deployments/" + d["id"]))
    assert g["initiator"] == "automation-api"
    assert g["configuration"]["source"]["git"]["commit"] == "0123abcd"
    raw = api.get(st.path + "/deployments").raw.decode()
    assert "ghp_hidden" not in raw
    lst = assert_ok(api.get(st.path + "/deployments?page=1&pageSize=10"))
    assert lst["total"] == 1 and lst["deployments"][0]["id"] == d["id"]


def test_list_newest_first_with_versions(api):
    st = api.new_stack()
    ids = [queue(api, st)["id"] for _ in range(3)]
    lst = assert_ok(api.get(st.path + "/deployments?pageSize=2"))
    assert lst["total"] == 3 and [x["id"] for x in lst["deployments"]] == ids[::-1][:2]
    assert [x["version"] for x in lst["deployments"]] == [3, 2]


def test_bad_requests_change_nothing(api):
    st = api.new_stack()
    p = st.path + "/deployments"
    assert_error(api.post(p, {"source": {"repoURL": REPO}}), 400, contains="operation")
    assert_error(api.post(p, {"operation": "explode", "source": {"repoURL": REPO}}), 400, contains="operation")
    assert_error(api.post(p, {"operationContext": {"operation": "update"}, "source": {"repoURL": REPO}}), 400,
                 contains="top level")
    assert_error(api.post(p, {"operation": "update"}), 400, contains="no source")
    assert_error(api.post(p, {"operation": "update", "source": {"repoURL": "file:///etc"}}), 400,
                 contains="not allowed")
    assert_error(api.post(p, {"operation": "update", "source": {"repoURL": "https://x/y; rm -rf /"}}), 400,
                 contains="not allowed")
    assert_error(api.post(p, {"operation": "update", "source": {"repoURL": REPO, "branch": "a", "commit": "b"}}),
                 400, contains="not both")
    assert_error(api.post(p, {"operation": "update", "source": {"repoURL": REPO},
                              "environmentVariables": {"BAD NAME": "x"}}), 400, contains="environment variable")
    assert_error(api.post(p, {"operation": "update", "source": {"repoURL": REPO, "repoDir": "../x"}}), 400)
    assert_error(api.post("/api/stacks/%s/%s/nope/deployments" % (st.org, st.project),
                          {"operation": "update", "source": {"repoURL": REPO}}), 404)
    assert assert_ok(api.get(p))["total"] == 0
    assert_error(api.get(p + "?pageSize=1000"), 400)
    assert_error(api.get(p + "/00000000-0000-4000-8000-000000000000"), 404)
    assert_error(api.get(p + "/not-a-uuid"), 404)
    assert_error(api.get(p + "/version/7"), 404)
    assert_error(api.get(p + "/version/x"), 400)
    assert_error(api.get(p + "/00000000-0000-4000-8000-000000000000/logs"), 404)
    assert_error(api.get(p + "/00000000-0000-4000-8000-000000000000/updates"), 404)
    assert_error(api.post(p + "/00000000-0000-4000-8000-000000000000/cancel"), 404)
    assert_error(api.call("DELETE", p + "/00000000-0000-4000-8000-000000000000/cancel"), 404)


def test_logs_updates_and_cancel_of_a_queued_deployment(api):
    st = api.new_stack()
    d = queue(api, st)
    base = st.path + "/deployments/" + d["id"]
    logs = assert_ok(api.get(base + "/logs"))
    assert logs["lines"] == [] and logs["nextToken"] == "0"  # still queued: the reader keeps its place
    assert_error(api.get(base + "/logs?continuationToken=abc"), 400)
    assert assert_ok(api.get(base + "/updates")) == []
    assert_ok(api.post(base + "/cancel"))
    assert_ok(api.post(base + "/cancel"))  # the CLI retries: idempotent
    g = assert_ok(api.get(base))
    assert g["status"] == "cancelled" and g["completedAt"]
    assert assert_ok(api.get(base + "/logs"))["nextToken"] == ""  # terminal and fully read
    d2 = queue(api, st)
    r = api.call("DELETE", st.path + "/deployments/" + d2["id"] + "/cancel")
    assert r.status == 204
    assert assert_ok(api.get(st.path + "/deployments/" + d2["id"]))["status"] == "cancelled"


def test_settings_inherited_and_secrets_sealed(api):
    st = api.new_stack()
    p = st.path + "/deployments/settings"
    assert_error(api.get(p), 404)
    enc = assert_ok(api.post(p + "/encrypt", {"secret": "from-encrypt-55"}))
    assert enc["ciphertext"] and "from-encrypt-55" not in enc["ciphertext"]
    assert_error(api.post(p + "/encrypt", {"secret": ""}), 400)
    assert_ok(api.call("PUT", p, {"sourceContext": {"git": {"repoUrl": REPO, "branch": "main"}},
                                  "operationContext": {"environmentVariables": {
                                      "S1": {"secret": "plain-in-settings-44"}, "S2": enc, "P": "x"}}}))
    assert_ok(api.post(p, {"sourceContext": {"git": {"repoDir": "infra"}}}))  # a merge patch
    got = assert_ok(api.get(p))
    assert got["sourceContext"]["git"] == {"repoUrl": REPO, "branch": "main", "repoDir": "infra"}
    assert "ciphertext" in got["operationContext"]["environmentVariables"]["S1"]
    assert "plain-in-settings-44" not in api.get(p).raw.decode()
    # A request with nothing but the operation takes the saved source and variables.
    d = queue(api, st, {"operation": "update"})
    g = assert_ok(api.get(st.path + "/deployments/" + d["id"]))
    assert g["configuration"]["source"]["git"]["repoDir"] == "infra"
    env = {e["name"]: e["secret"] for e in g["configuration"]["environmentVariables"]}
    assert env == {"S1": True, "S2": True, "P": False}
    assert_error(api.call("PUT", p, [1, 2]), 400)
    assert_error(api.post(p, [1]), 400)
    assert_error(api.post("/api/stacks/%s/%s/nope/deployments/settings" % (st.org, st.project), {}), 404)
    assert_ok(api.call("DELETE", p))
    assert_error(api.get(p), 404)
    assert_error(api.post(st.path + "/deployments", {"operation": "update"}), 400, contains="no source")
    assert_error(api.call("DELETE", "/api/stacks/%s/%s/nope/deployments/settings" % (st.org, st.project)), 404)


def test_roles_and_audit_of_the_deployment_routes(api):
    """Queue, cancel and settings need write on the stack; reading needs read; a stack-scoped token reaches
    only its stack; every change (and every refusal of one) is an audit row naming the stack."""
    from test_access import make_token
    st, other = api.new_stack(), api.new_stack()
    _, read = make_token(api.server, "read")
    _, write = make_token(api.server, "write")
    _, scoped = make_token(api.server, "write", scope="%s/%s/%s" % (st.org, st.project, st.name))
    body = {"operation": "update", "source": {"repoURL": REPO, "branch": "main"}}
    assert_error(api.post(st.path + "/deployments", body, token=read), 403)
    assert_error(api.post(st.path + "/deployments/settings", {"sourceContext": {}}, token=read), 403)
    d = queue(api, st, body, token=write)
    base = st.path + "/deployments/" + d["id"]
    assert_ok(api.get(base, token=read))
    assert_ok(api.get(st.path + "/deployments", token=read))
    assert_ok(api.get(base + "/logs", token=read))
    assert_error(api.post(base + "/cancel", token=read), 403)
    assert_error(api.post(other.path + "/deployments", body, token=scoped), 403)
    queue(api, st, body, token=scoped)
    assert_ok(api.post(base + "/cancel", token=write))
    assert assert_ok(api.get(st.path + "/deployments", token=read))["total"] == 2
    assert assert_ok(api.get(other.path + "/deployments"))["total"] == 0  # the refused queue changed nothing
    rows = api.pg.psql("SELECT action, status FROM extension_pulumi_state_audit WHERE org = :'p1' AND "
                       "project = :'p2' AND stack = :'p3' AND action LIKE 'deployment.%' ORDER BY id",
                       st.org, st.project, st.name)
    assert [tuple(r) for r in rows] == [("deployment.create", "403"), ("deployment.settings", "403"),
                                        ("deployment.create", "202"), ("deployment.cancel", "403"),
                                        ("deployment.create", "202"), ("deployment.cancel", "200")], rows
    refused = api.pg.psql("SELECT action, status FROM extension_pulumi_state_audit WHERE stack = :'p1' AND "
                          "action LIKE 'deployment.%'", other.name)
    assert [tuple(r) for r in refused] == [("deployment.create", "403")]
