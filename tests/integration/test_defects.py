"""Regression tests of the reliability defects found by attacking a running instance (issue "Reliability:
nine defects"): each failed on the main branch before its fix. The real CLI's side of defects 1, 5 and 9 is in
tests/cli/test_reliability_cli.py; PostgreSQL restarts (defect 4) are in test_faults.py."""
import gzip
import json
import os

import pytest

from psapi import assert_error, assert_ok, small_state, uid
from test_access import make_token
from test_journal import SP, start_journaled

# Every number form Go's encoder (or any client) may write, that a JSON tree would change or refuse.
NUMBERS = ["100000000000000000000", "-100000000000000000000", "123456789012345678901234567890", "-0", "0.1",
           "1.50", "3.141592653589793238462643383279", "1e20", "1E+400", "-2.5e-10", "9223372036854775808",
           "18446744073709551616", "0.000000000000000000000001"]


TINY = '{"n":100000000000000000000,"z":-0,"f":0.10,"e":1e5}'


def numbers_object(extra=""):
    return "{" + ",".join('"n%d":%s' % (i, n) for i, n in enumerate(NUMBERS)) + extra + "}"


def stash(st, name, inputs_text, outputs_text=None):
    """A resource's JSON text with inputs/outputs given as text (so the numbers stay as written)."""
    urn = st.urn("pulumi:index:Stash", name)
    return ('{"urn":"%s","custom":true,"id":"%s","type":"pulumi:index:Stash","inputs":%s,"outputs":%s}'
            % (urn, name, inputs_text, outputs_text or inputs_text))


def entry_text(seq, kind, op, **kw):
    parts = ['"version":1', '"kind":%d' % kind, '"sequenceID":%d' % seq, '"operationID":%s' % op]
    for k, v in kw.items():
        parts.append('"%s":%s' % (k, v if isinstance(v, str) else json.dumps(v)))
    return "{" + ",".join(parts) + "}"


def patch_entries(japi, upd, entries_text):
    return japi.call("PATCH", upd.path + "/journalentries", raw=('{"entries":[%s]}' % ",".join(entries_text)).encode(),
                     update=upd)


def assert_numbers_in(text):
    for i, n in enumerate(NUMBERS):
        assert ('"n%d":%s' % (i, n)) in text, (n, text[:2000])


# ---- 1. numbers beyond 64 bits, exponents, -0, long fractions survive every path byte for byte ----

def test_numbers_survive_journal_replay(japi):
    st = japi.new_stack()
    upd, _ = start_journaled(japi, st)
    small = stash(st, "small", numbers_object())  # well under the size replay sets aside whole
    big = stash(st, "big", numbers_object(',"pad":"%s"' % ("x" * 200)))
    tiny = stash(st, "tiny", TINY)  # small enough to be parsed as a tree, not set aside whole
    ents = [entry_text(1, 6, 0, secretsProvider=SP),
            entry_text(6, 0, 3, operation='{"resource":%s,"type":"creating"}' % tiny),
            entry_text(7, 1, 3, state=tiny),
            entry_text(2, 0, 1, operation='{"resource":%s,"type":"creating"}' % small),
            entry_text(3, 1, 1, state=small),
            entry_text(4, 0, 2, operation='{"resource":%s,"type":"creating"}' % big),
            entry_text(5, 1, 2, state=big)]
    assert_ok(patch_entries(japi, upd, ents))
    # Export during the update replays what has arrived.
    assert_numbers_in(japi.get(st.path + "/export").raw.decode())
    assert_ok(japi.complete(upd))
    text = japi.get(st.path + "/export").raw.decode()
    assert_numbers_in(text)
    assert text.count('"n0":100000000000000000000') == 4  # inputs and outputs of both resources
    assert text.count(TINY) == 2
    assert japi.stack(st).get("currentOperation") is None

    # A later journaled update on top of that state (its base holds the numbers) replays too.
    upd2, _ = start_journaled(japi, st)
    assert_ok(patch_entries(japi, upd2, [entry_text(1, 6, 0, secretsProvider=SP)]))
    assert_ok(japi.complete(upd2))
    assert_numbers_in(japi.get(st.path + "/export").raw.decode())
    assert_numbers_in(japi.get(st.path + "/export/2").raw.decode())


def test_numbers_survive_checkpoints_import_create_rename(japi, server):
    st = japi.new_stack()
    dep = ('{"manifest":{"time":"2026-01-01T00:00:00Z","magic":"","version":"v3.200.0"},"metadata":{},'
           '"resources":[%s]}' % stash(st, "a", numbers_object()))
    # A full checkpoint.
    upd = japi.begin(st)
    body = '{"version":3,"deployment":%s}' % dep
    assert_ok(japi.call("PATCH", upd.path + "/checkpoint", raw=body.encode(), update=upd))
    assert_ok(japi.complete(upd))
    assert_numbers_in(japi.get(st.path + "/export").raw.decode())
    # Import stores the bytes; export gives them back.
    imported = ('{"version":3,"deployment":%s}' % dep).encode()
    r = japi.call("POST", st.path + "/import", raw=imported)
    assert_ok(r)
    assert japi.get(st.path + "/export").raw == imported
    # A stack created with a state.
    name = uid("stack")
    r = japi.call("POST", "/api/stacks/%s/%s" % (st.org, st.project),
                  raw=('{"stackName":"%s","state":{"version":3,"deployment":%s}}' % (name, dep)).encode())
    assert_ok(r)
    assert_numbers_in(japi.get("/api/stacks/%s/%s/%s/export" % (st.org, st.project, name)).raw.decode())
    # Rename keeps every number's text; a journaled update after the rename works.
    new = uid("renamed")
    assert_ok(japi.post(st.path + "/rename", {"newName": new}))
    st.name = new
    text = japi.get(st.path + "/export").raw.decode()
    assert_numbers_in(text)
    assert "urn:pulumi:%s::" % new in text
    upd2, _ = start_journaled(japi, st)
    assert_ok(patch_entries(japi, upd2, [entry_text(1, 6, 0, secretsProvider=SP)]))
    assert_ok(japi.complete(upd2))
    assert_numbers_in(japi.get(st.path + "/export").raw.decode())


# ---- 2. update tokens are verified before the body is read or inflated ----

@pytest.mark.parametrize("route", ["checkpoint", "checkpointverbatim", "checkpointdelta", "journalentries",
                                   "events/batch", "renew_lease", "complete"])
def test_made_up_update_token_refused_before_the_body(japi, route):
    st = japi.new_stack()
    upd = japi.begin(st)
    method = "POST" if route in ("events/batch", "renew_lease", "complete") else "PATCH"
    # A body that is not even gzip: had it been read and inflated, the answer would be 400.
    garbage = b"\x1f\x8b" + os.urandom(4096)
    headers = {"Content-Encoding": "gzip"}
    before = japi.snapshot(st)
    r = japi.call(method, upd.path + "/" + route, raw=garbage, headers=headers, update="made-up-token")
    assert_error(r, 403, contains="update token is not valid")
    # An update that does not exist: 404, body unread too.
    other = upd.path.rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"
    r = japi.call(method, other + "/" + route, raw=garbage, headers=headers, update="made-up-token")
    assert_error(r, 404)
    # A gzip bomb with a made-up token: refused the same way, nothing inflated.
    bomb = gzip.compress(b"\0" * (64 << 20), 9)
    r = japi.call(method, upd.path + "/" + route, raw=bomb, headers=headers, update="made-up-token")
    assert_error(r, 403)
    assert japi.snapshot(st) == before
    # The real token still works.
    assert_ok(japi.complete(upd))


# ---- 3. a journal that can never replay is refused when it arrives; what fails at complete ends failed ----

@pytest.mark.parametrize("bad,why", [
    (entry_text(2, 1, 1, deleteOld=-1), "deleteOld"),
    (entry_text(2, 1, 1, removeOld=-3), "removeOld"),
    (entry_text(2, 1, 1, removeNew='"1"'), "removeNew"),
    (entry_text(2, 1, 1, state=[]), "state"),
    (entry_text(2, 1, 1, state='"text"'), "state"),
    (entry_text(2, 0, 1, operation=5), "operation"),
    (entry_text(2, 5, 0), "newSnapshot"),
    (entry_text(2, 8, 0, extensionRef='"x"'), "ExtensionParameterize"),
    (entry_text(2, 9, 0, snippets={}), "snippets"),
    (entry_text(2, 1, 1.5), "operationID"),
])
def test_unreplayable_batch_refused_at_arrival(japi, pg, bad, why):
    st = japi.new_stack()
    upd, _ = start_journaled(japi, st)
    before = japi.snapshot(st)
    assert_error(patch_entries(japi, upd, [entry_text(1, 6, 0, secretsProvider=SP), bad]), 400, contains=why)
    assert japi.snapshot(st) == before
    assert_ok(japi.complete(upd))


@pytest.mark.parametrize("late", ["removeNew", "removeOld", "alias"])
def test_unreplayable_journal_at_complete_ends_failed_keeping_what_was_recorded(japi, late):
    st = japi.new_stack()
    japi.run_update(st, small_state(st, n=1))
    base = japi.export(st)
    upd, _ = start_journaled(japi, st)
    a = stash(st, "a", '{"v":1}')
    b = stash(st, "b", '{"v":2}')
    ents = [entry_text(1, 6, 0, secretsProvider=SP),
            entry_text(2, 0, 1, operation='{"resource":%s,"type":"creating"}' % a), entry_text(3, 1, 1, state=a),
            entry_text(4, 0, 2, operation='{"resource":%s,"type":"creating"}' % b)]
    if late == "removeNew":
        ents.append(entry_text(5, 1, 2, state=b, removeNew=77))  # an operation that produced nothing
    elif late == "removeOld":
        ents.append(entry_text(5, 1, 2, state=b, removeOld=99))  # the base has 3 resources
    else:
        a2 = json.loads(a)
        a2["aliases"] = ["urn:pulumi:x::y::t::same"]
        b2 = json.loads(b)
        b2["aliases"] = ["urn:pulumi:x::y::t::same"]
        ents[2] = entry_text(3, 1, 1, state=json.dumps(a2))
        ents.append(entry_text(5, 1, 2, state=json.dumps(b2)))
    assert_ok(patch_entries(japi, upd, ents))
    r = japi.complete(upd)
    assert_error(r, 400, contains="cannot be replayed")
    # Ended failed, the stack is free, and both resources the journal recorded are there with the base's.
    assert japi.get(upd.path).json["status"] == "failed"
    assert "currentOperation" not in japi.stack(st)
    urns = [r["urn"] for r in japi.export(st)["deployment"]["resources"]]
    for name in ("a", "b"):
        assert st.urn("pulumi:index:Stash", name) in urns
    for r in base["deployment"]["resources"]:
        assert r["urn"] in urns
    # A retried complete does not turn it into a success, and never answers 5xx.
    assert_error(japi.complete(upd), 409)
    nxt = japi.run_update(st, small_state(st, n=2))
    assert japi.export(st)["deployment"] == small_state(st, n=2)
    assert nxt.version == japi.stack(st)["version"]


# ---- 5. rename rewrites every reference to the stack's URNs, as the CLI's RenameStack does ----

def test_rename_rewrites_every_reference(japi):
    st = japi.new_stack()
    old = st.name
    u = lambda n: st.urn("pulumi:index:Stash", n)  # noqa: E731
    ref = {"4dabf18193072939515e22adb298388d": "5cf8f73096256a8f31e491e813e4eb8e", "urn": u("a"), "id": "a"}
    dep = small_state(st, n=1)
    dep["resources"] += [
        {"urn": u("a"), "custom": True, "id": "a", "type": "pulumi:index:Stash", "inputs": {"v": 1}, "outputs": {}},
        {"urn": u("b"), "custom": True, "id": "b", "type": "pulumi:index:Stash", "viewOf": u("a"),
         "replaceWith": [u("a")], "aliases": [u("b-old")], "deletedWith": u("a"), "dependencies": [u("a")],
         "propertyDependencies": {"x": [u("a")]}, "inputs": {"x": ref, "list": [ref]}, "outputs": {"x": ref},
         "replacementTrigger": ref, "parent": dep["resources"][0]["urn"]}]
    japi.run_update(st, dep)
    new = uid("renamed")
    assert_ok(japi.post(st.path + "/rename", {"newName": new}))
    st.name = new
    text = japi.get(st.path + "/export").raw.decode()
    assert "urn:pulumi:%s::" % old not in text
    assert ("%s-%s" % (st.project, old)) not in text
    got = json.loads(text)["deployment"]["resources"][-1]
    assert got["viewOf"] == u("a") and got["replaceWith"] == [u("a")] and got["aliases"] == [u("b-old")]
    assert got["inputs"]["x"]["urn"] == u("a") and got["inputs"]["list"][0]["urn"] == u("a")
    assert got["outputs"]["x"]["urn"] == u("a") and got["replacementTrigger"]["urn"] == u("a")
    assert got["parent"] == st.urn("pulumi:pulumi:Stack", "%s-%s" % (st.project, new))


# ---- 6. a bad summary in an event batch is refused before anything is stored ----

@pytest.mark.parametrize("changes", ['{"create\\u0000":1}', '{"create":1e999999}', '{"create":1.5}',
                                     '{"create":-1}', '{"create":"1"}', '{"create":100000000000000000000}'])
def test_bad_resource_changes_refused_before_storing(japi, changes):
    st = japi.new_stack()
    upd = japi.begin(st)
    body = ('{"events":[{"sequence":0,"timestamp":1,"stdoutEvent":{"message":"x"}},'
            '{"sequence":1,"timestamp":1,"summaryEvent":{"maybeCorrupt":false,"durationSeconds":1,'
            '"resourceChanges":%s}}]}' % changes).encode()
    before = japi.snapshot(st)
    for _ in range(2):  # a retry answers the same
        assert_error(japi.call("POST", upd.path + "/events/batch", raw=body, update=upd), 400,
                     contains="resourceChanges")
    assert japi.snapshot(st) == before
    good = body.replace(changes.encode(), b'{"create":3,"same":1}')
    assert_ok(japi.call("POST", upd.path + "/events/batch", raw=good, update=upd))
    assert_ok(japi.call("POST", upd.path + "/events/batch", raw=good, update=upd))
    assert_ok(japi.complete(upd))


# ---- 7. integers from the query string are range-checked ----

@pytest.mark.parametrize("token,status", [("9223372036854775807", 400), ("9223372036854775808", 400),
                                          ("-9223372036854775808", 400), ("99999999999999999999999", 400),
                                          ("-2", 400), ("1x", 400), ("+1", 400), (" 1", 400),
                                          ("9223372036854775806", 200), ("-1", 200), ("0", 200)])
def test_events_continuation_token_range(japi, token, status):
    st = japi.new_stack()
    upd = japi.begin(st)
    r = japi.get(upd.path + "/events?continuationToken=" + token.replace("+", "%2B").replace(" ", "%20"))
    if status == 200:
        assert_ok(r)
    else:
        assert_error(r, 400)
    assert_ok(japi.complete(upd))


@pytest.mark.parametrize("q", ["pageSize=99999999999999999999", "page=9223372036854775807",
                               "page=-1", "pageSize=1e3"])
def test_history_paging_range(japi, q):
    st = japi.new_stack()
    assert_error(japi.get(st.path + "/updates?" + q), 400)


@pytest.mark.parametrize("q", ["pageSize=4294967297", "pageSize=-1", "pageSize=10abc"])
def test_stack_list_paging_range(japi, q):
    assert_error(japi.get("/api/user/stacks?" + q), 400)


# ---- 8. HEAD of a project respects the token's scope ----

def test_head_project_respects_scope(japi, server):
    inside = japi.new_stack(project=uid("scoped"))
    outside = japi.new_stack(project=uid("other"))
    _, token = make_token(server, "read", scope="%s/%s/*" % (inside.org, inside.project))
    r = japi.call("HEAD", "/api/stacks/%s/%s" % (inside.org, inside.project), token=token)
    assert r.status == 200
    r = japi.call("HEAD", "/api/stacks/%s/%s" % (outside.org, outside.project), token=token)
    assert r.status == 404
    r = japi.call("HEAD", "/api/stacks/%s/%s" % (outside.org, "no-such-project"), token=token)
    assert r.status == 404
    _, narrow = make_token(server, "read", scope="%s/%s/nomatch-*" % (inside.org, inside.project))
    assert japi.call("HEAD", "/api/stacks/%s/%s" % (inside.org, inside.project), token=narrow).status == 404
    assert japi.call("HEAD", "/api/stacks/%s/%s" % (outside.org, outside.project)).status == 200


# ---- 9. a journaled state is stamped with the version of the CLI that ran the update ----

def test_journaled_state_carries_the_cli_version(japi):
    st = japi.new_stack()
    ua = {"User-Agent": "pulumi-cli/1 (v3.259.0; linux; cmd=up)"}
    body = {"name": st.project, "runtime": "yaml", "options": {"dryRun": False}, "config": {},
            "metadata": {"message": "", "environment": {"exec.kind": "cli"}}}
    upd_id = assert_ok(japi.call("POST", st.path + "/update", body, headers=ua))["updateID"]
    path = st.path + "/update/" + upd_id
    r = assert_ok(japi.call("POST", path, {"journalVersion": 1}, headers=ua))
    tok = r["token"]
    assert_ok(japi.call("PATCH", path + "/journalentries", raw=('{"entries":[%s]}' % entry_text(
        1, 6, 0, secretsProvider=SP)).encode(), update=tok, headers=ua))
    assert_ok(japi.call("POST", path + "/complete", {"status": "succeeded"}, update=tok, headers=ua))
    m = japi.export(st)["deployment"]["manifest"]
    assert m["version"] == "v3.259.0"
    import hashlib
    assert m["magic"] == hashlib.sha256(b"v3.259.0").hexdigest()
