"""Stacks: create, get, delete, tags, rename, export (+ by version), import."""
import gzip
import json
import re

import pytest

from psapi import Stack, assert_error, assert_ok, deployment, small_state, uid

EMPTY_MANIFEST = {"time": "0001-01-01T00:00:00Z", "magic": "", "version": ""}


def test_create_and_get_shape(api):
    org, project, name = api.org, uid("proj"), uid("stack")
    r = assert_ok(api.post("/api/stacks/%s/%s" % (org, project), {"stackName": name, "tags": {"pulumi:project": project,
                                                                                            "env": "dev"}}))
    assert isinstance(r, dict)
    assert isinstance(r.get("messages", []), list)
    st = Stack(org, project, name)
    g = api.stack(st)
    assert re.fullmatch(r"[0-9a-f-]{36}", g["id"])
    assert (g["orgName"], g["projectName"], g["stackName"]) == (org, project, name)
    assert g["tags"] == {"pulumi:project": project, "env": "dev"}
    assert g["version"] == 0
    assert g["activeUpdate"] == ""
    assert "currentOperation" not in g
    # "config" makes the CLI treat the stack's config as remote (ESC): never present here.
    assert "config" not in g


def test_create_existing_is_409_already_exists(api):
    st = api.new_stack()
    assert_error(api.post("/api/stacks/%s/%s" % (st.org, st.project), {"stackName": st.name}), 409,
                 contains="already exists")
    # Same name in another project or org is a different stack.
    api.new_stack(project=uid("other"), name=st.name)
    api.new_stack(project=st.project, org=uid("org"), name=st.name)


@pytest.mark.parametrize("body", [
    {}, {"stackName": ""}, {"stackName": None}, {"stackName": 7}, {"stackName": "a/b"}, {"stackName": ".."},
    {"stackName": "."}, {"stackName": "x" * 101}, {"stackName": "has space"}, {"stackName": "é"},
    {"stackName": "ok", "tags": []}, {"stackName": "ok", "tags": {"bad tag": "v"}},
    {"stackName": "ok", "tags": {"k": 1}}, {"stackName": "ok", "tags": {"k": "v" * 257}},
    {"stackName": "ok", "tags": {"k" * 41: "v"}},
    {"stackName": "ok", "state": {"version": 0, "deployment": {}}},
    {"stackName": "ok", "state": {"version": 5, "deployment": {}}},
    {"stackName": "ok", "state": {"version": 3}}, {"stackName": "ok", "state": {"version": 3, "deployment": []}},
    {"stackName": "ok", "state": "text"},
])
def test_create_invalid(api, body):
    project = uid("proj")
    assert_error(api.post("/api/stacks/%s/%s" % (api.org, project), body), 400)
    # Nothing was created.
    assert_error(api.call("HEAD", "/api/stacks/%s/%s" % (api.org, project)), 404, method="HEAD")


def test_create_with_initial_state(api, server):
    st = Stack(api.org, uid("proj"), uid("stack"))
    state = {"version": 3, "deployment": {"manifest": EMPTY_MANIFEST, "metadata": {},
                                          "secrets_providers": {"type": "passphrase", "state": {"salt": "v1:abc"}}}}
    api.new_stack(st.project, st.org, st.name, state=state)
    assert api.stack(st)["version"] == 1
    assert api.export(st) == state
    assert api.export(st, 1) == state


def test_get_unknown_is_404(api):
    st = api.new_stack()
    for path in ["/api/stacks/%s/%s/%s" % (st.org, st.project, uid("nope")),
                 "/api/stacks/%s/%s/%s" % (st.org, uid("nope"), st.name),
                 "/api/stacks/%s/%s/%s" % (uid("org"), st.project, st.name)]:
        for suffix in ["", "/export", "/export/1", "/updates", "/updates/latest"]:
            assert_error(api.get(path + suffix), 404)
        assert_error(api.call("DELETE", path + "?force=true"), 404)
        assert_error(api.patch(path + "/tags", {}), 404)
        assert_error(api.post(path + "/rename", {"newName": uid("n"), "newProject": st.project}), 404)
        assert_error(api.post(path + "/import", {"version": 3, "deployment": deployment(st)}), 404)
        assert_error(api.post(path + "/update", {}), 404)


def test_export_of_a_never_updated_stack(api):
    st = api.new_stack()
    e = api.export(st)
    assert e["version"] == 3
    assert e["deployment"]["manifest"] == EMPTY_MANIFEST
    assert "resources" not in e["deployment"] or e["deployment"]["resources"] in (None, [])
    # No stored version 1 yet.
    assert_error(api.get(st.path + "/export/1"), 404)


def test_export_gzip_when_accepted(api):
    st = api.new_stack()
    d = small_state(st, n=1)
    api.run_update(st, d)
    plain = api.get(st.path + "/export")
    assert plain.headers.get("Content-Encoding") is None
    zipped = api.get(st.path + "/export", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers.get("Content-Encoding") == "gzip"  # the harness inflated it into .json
    assert zipped.json == plain.json == {"version": 3, "deployment": d}
    v = api.get(st.path + "/export/1", headers={"Accept-Encoding": "gzip"})
    assert v.json == plain.json


def test_export_version_errors(api):
    st = api.new_stack()
    api.run_update(st, small_state(st))
    for bad in ["0", "-1", "abc", "1x", "99999999999", "1.5"]:
        assert_error(api.get(st.path + "/export/" + bad), 400)
    assert_error(api.get(st.path + "/export/2"), 404)
    assert_ok(api.get(st.path + "/export/1"))


def test_delete(api):
    st = api.new_stack()
    assert_ok(api.call("DELETE", st.path + "?force=false"))
    assert_error(api.get(st.path), 404)
    assert_error(api.call("DELETE", st.path + "?force=false"), 404)
    # The name is free again.
    api.new_stack(st.project, st.org, st.name)
    assert api.stack(st)["version"] == 0


def test_delete_with_resources_needs_force(api, pg):
    st = api.new_stack()
    api.run_update(st, small_state(st, n=2))
    before = api.snapshot(st)
    # The CLI compares this message exactly (isStackHasResourcesError).
    assert_error(api.call("DELETE", st.path + "?force=false"), 400, exact="Bad Request: Stack still contains resources.")
    assert_error(api.call("DELETE", st.path), 400, exact="Bad Request: Stack still contains resources.")
    assert api.snapshot(st) == before
    assert_ok(api.call("DELETE", st.path + "?force=true"))
    assert_error(api.get(st.path), 404)
    sid = before["row"][0][0]
    assert pg.psql("SELECT count(*) FROM extension_pulumi_state_versions WHERE stack_id = '%s'" % sid) == [["0"]]
    assert pg.psql("SELECT count(*) FROM extension_pulumi_state_updates WHERE stack_id = '%s'" % sid) == [["0"]]


def test_delete_after_destroy_leaves_no_resources(api):
    st = api.new_stack()
    api.run_update(st, small_state(st, n=2))
    api.run_update(st, deployment(st), kind="destroy")
    assert_ok(api.call("DELETE", st.path + "?force=false"))


def test_delete_during_an_update(api):
    st = api.new_stack()
    upd = api.begin(st)
    before = api.snapshot(st)
    assert_error(api.call("DELETE", st.path + "?force=false"), 409)
    assert api.snapshot(st) == before
    assert_ok(api.call("DELETE", st.path + "?force=true"))
    assert_error(api.get(st.path), 404)
    # The update went with its stack.
    assert_error(api.complete(upd), 404)


def test_tags_replace_the_set(api):
    st = api.new_stack(tags={"a": "1", "b": "2"})
    assert_ok(api.patch(st.path + "/tags", {"c": "3", "vcs:owner": "me", "pulumi:description": "x y/z"}))
    assert api.stack(st)["tags"] == {"c": "3", "vcs:owner": "me", "pulumi:description": "x y/z"}
    assert_ok(api.patch(st.path + "/tags", {}))
    assert api.stack(st).get("tags", {}) == {}
    assert_ok(api.patch(st.path + "/tags", {"only": ""}))
    assert api.stack(st)["tags"] == {"only": ""}


@pytest.mark.parametrize("tags", [{"": "v"}, {"bad tag": "v"}, {"a" * 41: "v"}, {"k": "v" * 257}, {"k": 1},
                                  {"k": None}, {"k": ["v"]}, {"ok": "v", "b\u00e9": "v"}, {"semi;colon": "v"}])
def test_tags_invalid(api, tags):
    st = api.new_stack(tags={"keep": "me"})
    before = api.snapshot(st)
    assert_error(api.patch(st.path + "/tags", tags), 400)
    assert api.snapshot(st) == before


def test_tags_body_must_be_an_object(api):
    st = api.new_stack(tags={"keep": "me"})
    before = api.snapshot(st)
    for raw in [b"[]", b'"a"', b"1", b"null", b"{", b""]:
        assert_error(api.call("PATCH", st.path + "/tags", raw=raw), 400)
    assert api.snapshot(st) == before


def _all_urns(dep):
    out = []
    for r in dep.get("resources", []):
        out.append(r["urn"])
        if r.get("parent"):
            out.append(r["parent"])
        if r.get("provider"):
            out.append(r["provider"].rsplit("::", 1)[0])
        out += r.get("dependencies", [])
        for v in r.get("propertyDependencies", {}).values():
            out += v
    return out


def test_rename_rewrites_urns_and_secrets_state(api, server):
    st = api.new_stack()
    state = {"version": 3, "deployment": small_state(st, server, n=2)}
    api.import_state(st, state)
    v = api.stack(st)["version"]
    new = Stack(st.org, st.project, uid("renamed"))
    assert_ok(api.post(st.path + "/rename", {"newName": new.name, "newProject": st.project}))
    assert_error(api.get(st.path), 404)
    assert_error(api.get(st.path + "/export"), 404)
    g = api.stack(new)
    assert g["stackName"] == new.name and g["version"] == v + 1
    e = api.export(new)
    # Exactly the state the same program would have produced under the new name.
    assert e == {"version": 3, "deployment": small_state(new, server, n=2)}
    urns = _all_urns(e["deployment"])
    assert len(urns) >= 10
    for u in urns:
        assert u.startswith("urn:pulumi:%s::%s::" % (new.name, st.project)), u
    assert e["deployment"]["resources"][0]["urn"].endswith("::%s-%s" % (st.project, new.name))
    sp = e["deployment"]["secrets_providers"]["state"]
    assert (sp["owner"], sp["project"], sp["stack"]) == (st.org, st.project, new.name)
    assert sp["url"] == server.url
    # Old versions stay readable under the new name.
    assert api.export(new, v) == state
    hist = assert_ok(api.get(new.path + "/updates"))["updates"]
    assert hist[0]["kind"] == "rename" and hist[0]["version"] == v + 1 and hist[0]["result"] == "succeeded"


def test_rename_into_another_project(api, server):
    st = api.new_stack()
    api.import_state(st, {"version": 3, "deployment": small_state(st, server, n=2)})
    new = Stack(st.org, uid("newproj"), uid("renamed"))
    assert_ok(api.post(st.path + "/rename", {"newName": new.name, "newProject": new.project}))
    assert_error(api.get(st.path), 404)
    assert api.export(new) == {"version": 3, "deployment": small_state(new, server, n=2)}
    assert api.call("HEAD", "/api/stacks/%s/%s" % (st.org, st.project)).status == 404
    assert api.call("HEAD", "/api/stacks/%s/%s" % (new.org, new.project)).status == 200


def test_rename_of_a_never_updated_stack(api):
    st = api.new_stack(tags={"t": "v"})
    new = Stack(st.org, st.project, uid("renamed"))
    assert_ok(api.post(st.path + "/rename", {"newName": new.name, "newProject": ""}))
    g = api.stack(new)
    assert g["version"] == 0 and g["tags"] == {"t": "v"}
    assert_error(api.get(st.path), 404)


def test_rename_to_its_own_name_is_a_no_op(api):
    st = api.new_stack()
    api.run_update(st, small_state(st))
    before = api.snapshot(st)
    assert_ok(api.post(st.path + "/rename", {"newName": st.name, "newProject": st.project}))
    assert api.snapshot(st) == before


def test_rename_onto_an_existing_stack_is_409(api):
    a = api.new_stack()
    api.run_update(a, small_state(a))
    b = api.new_stack(project=a.project)
    before_a, before_b = api.snapshot(a), api.snapshot(b)
    assert_error(api.post(a.path + "/rename", {"newName": b.name, "newProject": a.project}), 409,
                 contains="already exists")
    assert api.snapshot(a) == before_a and api.snapshot(b) == before_b


@pytest.mark.parametrize("body", [{}, {"newName": ""}, {"newName": "a/b"}, {"newName": ".."}, {"newName": 3},
                                  {"newName": "x" * 101}, {"newName": "ok", "newProject": "a b"},
                                  {"newName": "ok", "newProject": ".."}])
def test_rename_invalid(api, body):
    st = api.new_stack()
    api.run_update(st, small_state(st))
    before = api.snapshot(st)
    assert_error(api.post(st.path + "/rename", body), 400)
    assert api.snapshot(st) == before


def test_rename_during_an_update_is_409(api):
    st = api.new_stack()
    upd = api.begin(st)
    before = api.snapshot(st)
    assert_error(api.post(st.path + "/rename", {"newName": uid("n"), "newProject": st.project}), 409)
    assert api.snapshot(st) == before
    assert_ok(api.complete(upd))


def test_import(api, server):
    st = api.new_stack()
    state = {"version": 3, "deployment": small_state(st, server, n=1)}
    raw = json.dumps(state, indent=1).encode()
    r = assert_ok(api.call("POST", st.path + "/import", raw=raw))
    upd = r["updateId"]
    assert re.fullmatch(r"[0-9a-f-]{36}", upd)
    # The CLI polls the update until continuationToken is null and requires status "succeeded".
    poll = assert_ok(api.get(st.path + "/update/" + upd))
    assert poll["status"] == "succeeded" and poll["events"] == [] and poll["continuationToken"] is None
    g = api.stack(st)
    assert g["version"] == 1
    assert g["activeUpdate"] == upd
    assert api.export(st) == state
    assert api.get(st.path + "/export").raw == raw  # the bytes as imported
    h = assert_ok(api.get(st.path + "/updates"))["updates"]
    assert [(x["kind"], x["version"], x["result"]) for x in h] == [("import", 1, "succeeded")]
    assert h[0]["resourceCount"] == 3
    # A v4 state with features, gzip-compressed as the CLI sends it.
    state4 = {"version": 4, "features": ["refreshBeforeUpdate"], "deployment": small_state(st, server, n=2)}
    r = assert_ok(api.call("POST", st.path + "/import", raw=gzip.compress(json.dumps(state4).encode()),
                           headers={"Content-Encoding": "gzip"}))
    assert api.export(st) == state4
    assert api.export(st, 1) == state
    assert api.stack(st)["version"] == 2


@pytest.mark.parametrize("body", [{}, {"version": 0, "deployment": {}}, {"version": 5, "deployment": {}},
                                  {"version": "3", "deployment": {}}, {"version": 3}, {"deployment": {}},
                                  {"version": 3, "deployment": "x"}, {"version": 3, "deployment": [1]}])
def test_import_invalid(api, body):
    st = api.new_stack()
    api.run_update(st, small_state(st))
    before = api.snapshot(st)
    assert_error(api.post(st.path + "/import", body), 400)
    assert api.snapshot(st) == before


def test_import_during_an_update_is_409(api):
    st = api.new_stack()
    upd = api.begin(st)
    before = api.snapshot(st)
    assert_error(api.post(st.path + "/import", {"version": 3, "deployment": small_state(st)}), 409)
    assert api.snapshot(st) == before
    assert_ok(api.complete(upd))


def test_export_import_round_trip(api, server):
    a = api.new_stack()
    api.run_update(a, small_state(a, server, n=3))
    exported = api.get(a.path + "/export")
    b = api.new_stack(project=a.project)
    assert_ok(api.call("POST", b.path + "/import", raw=exported.raw))
    assert api.get(b.path + "/export").json == exported.json

