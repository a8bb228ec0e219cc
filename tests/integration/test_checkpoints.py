"""Checkpoints of non-journaled updates: full PATCH (plain and gzip), verbatim, delta, and the journal route's
refusal on a checkpoint update. Each accepted checkpoint replaces the live state; complete makes one version."""
import gzip
import hashlib
import json
import os

import pytest

from psapi import ROOT, assert_error, assert_ok, deployment, gz, small_state

VECTORS = os.path.join(ROOT, "..", "shared", "reference", "testdata", "snapshot_test_vectors.json")


def test_full_checkpoints_then_exactly_one_version(api, server, pg):
    st = api.new_stack()
    upd = api.begin(st)
    states = [small_state(st, server, n=i) for i in range(1, 5)]
    for i, d in enumerate(states):
        assert_ok(api.checkpoint(upd, d, gzip_body=bool(i % 2)))
        assert api.export(st) == {"version": 3, "deployment": d}
    assert api.stack(st)["version"] == 0
    assert_ok(api.complete(upd))
    snap = api.snapshot(st)
    assert [v[0] for v in snap["versions"]] == ["1"]
    assert api.export(st, 1) == {"version": 3, "deployment": states[-1]}
    # The per-update checkpoint is gone once it became a version.
    assert snap["checkpoints"] == []
    assert snap["row"][0][6] == "6"  # resource_count: stack, provider, 4 pets


def test_checkpoint_keeps_v4_features(api, server):
    st = api.new_stack()
    upd = api.begin(st)
    d = small_state(st, server, n=1)
    d["resources"][2]["refreshBeforeUpdate"] = True
    assert_ok(api.checkpoint(upd, d, version=4, features=["refreshBeforeUpdate"]))
    assert_ok(api.complete(upd))
    assert api.export(st) == {"version": 4, "features": ["refreshBeforeUpdate"], "deployment": d}


def test_checkpoint_is_idempotent(api, server):
    st = api.new_stack()
    upd = api.begin(st)
    d = small_state(st, server, n=2)
    for _ in range(3):
        assert_ok(api.checkpoint(upd, d))
    assert_ok(api.complete(upd))
    assert api.stack(st)["version"] == 1
    assert api.export(st)["deployment"] == d


def test_checkpoint_with_null_deployment(api):
    st = api.new_stack()
    upd = api.begin(st)
    assert_ok(api.patch(upd.path + "/checkpoint", {"version": 3, "deployment": None}, update=upd))
    assert_ok(api.complete(upd))
    assert api.export(st) == {"version": 3, "deployment": None}


@pytest.mark.parametrize("body", [
    {"version": 0, "deployment": {}}, {"version": 5, "deployment": {}}, {"version": -1, "deployment": {}},
    {"version": "3", "deployment": {}}, {"version": 3.5, "deployment": {}}, {"version": 3},
    {"deployment": {"manifest": {}}}, {"version": 3, "deployment": "x"}, {"version": 3, "deployment": [1]},
    {"version": 3, "deployment": 7}, {"isInvalid": False},
])
def test_checkpoint_invalid(api, server, body):
    st = api.new_stack()
    api.run_update(st, small_state(st, server, n=1))
    upd = api.begin(st)
    assert_ok(api.checkpoint(upd, small_state(st, server, n=2)))
    before = api.snapshot(st)
    assert_error(api.patch(upd.path + "/checkpoint", body, update=upd), 400)
    assert api.snapshot(st) == before
    assert_ok(api.complete(upd))
    assert api.export(st)["deployment"] == small_state(st, server, n=2)


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"null", b'"x"', b"{}x", b'{"version":3,"deployment":{}'])
def test_checkpoint_malformed_json(api, server, raw):
    st = api.new_stack()
    upd = api.begin(st)
    assert_ok(api.checkpoint(upd, small_state(st, server, n=1)))
    before = api.snapshot(st)
    assert_error(api.call("PATCH", upd.path + "/checkpoint", raw=raw, update=upd), 400)
    assert api.snapshot(st) == before
    assert_ok(api.complete(upd))


def test_checkpoint_after_complete_is_409(api, server):
    st = api.new_stack()
    upd = api.run_update(st, small_state(st, server, n=1))
    before = api.snapshot(st)
    assert_error(api.checkpoint(upd, small_state(st, server, n=2)), 409)
    assert_error(api.patch(upd.path + "/checkpointverbatim",
                           {"version": 3, "sequenceNumber": 5,
                            "untypedDeployment": {"version": 3, "deployment": small_state(st, server)}},
                           update=upd), 409)
    assert api.snapshot(st) == before


def _verbatim(api, upd, raw_doc, seq, gzip_body=False):
    body = b'{"version":3,"untypedDeployment":' + raw_doc + b',"sequenceNumber":%d}' % seq
    if gzip_body:
        return api.call("PATCH", upd.path + "/checkpointverbatim", raw=gzip.compress(body), update=upd,
                        headers={"Content-Encoding": "gzip"})
    return api.call("PATCH", upd.path + "/checkpointverbatim", raw=body, update=upd)


def test_verbatim_keeps_the_exact_bytes(api, server):
    st = api.new_stack()
    upd = api.begin(st)
    d = small_state(st, server, n=2)
    # Odd but valid spacing and key order: the stored bytes must be these, not a re-serialisation.
    raw1 = b'{ "version" : 3 ,\n "deployment":' + json.dumps(d, indent=3, sort_keys=True).encode() + b"}"
    assert_ok(_verbatim(api, upd, raw1, 1))
    assert api.get(st.path + "/export").raw == raw1
    raw2 = json.dumps({"version": 3, "deployment": small_state(st, server, n=3)}, separators=(",", ":")).encode()
    assert_ok(_verbatim(api, upd, raw2, 2, gzip_body=True))
    assert api.get(st.path + "/export").raw == raw2
    # The same sequence number again overwrites (the CLI's fallback after a failed delta).
    assert_ok(_verbatim(api, upd, raw1, 2))
    assert api.get(st.path + "/export").raw == raw1
    # An older one is refused and changes nothing.
    before = api.snapshot(st)
    assert_error(_verbatim(api, upd, raw2, 1), 409)
    assert api.snapshot(st) == before
    assert_ok(api.complete(upd))
    assert api.get(st.path + "/export/1").raw == raw1
    assert api.get(st.path + "/export").raw == raw1


@pytest.mark.parametrize("body", [
    {"version": 3, "sequenceNumber": 0, "untypedDeployment": {"version": 3, "deployment": {}}},
    {"version": 3, "sequenceNumber": -2, "untypedDeployment": {"version": 3, "deployment": {}}},
    {"version": 3, "sequenceNumber": "1", "untypedDeployment": {"version": 3, "deployment": {}}},
    {"version": 3, "untypedDeployment": {"version": 3, "deployment": {}}},
    {"version": 3, "sequenceNumber": 1},
    {"version": 3, "sequenceNumber": 1, "untypedDeployment": "{}"},
    {"version": 3, "sequenceNumber": 1, "untypedDeployment": {"version": 0, "deployment": {}}},
    {"version": 3, "sequenceNumber": 1, "untypedDeployment": {"version": 3}},
    {"version": 3, "sequenceNumber": 1, "untypedDeployment": {"version": 3, "deployment": [1]}},
])
def test_verbatim_invalid(api, server, body):
    st = api.new_stack()
    upd = api.begin(st)
    assert_ok(api.checkpoint(upd, small_state(st, server, n=1)))
    before = api.snapshot(st)
    assert_error(api.patch(upd.path + "/checkpointverbatim", body, update=upd), 400)
    assert api.snapshot(st) == before
    assert_ok(api.complete(upd))


def test_delta_without_a_verbatim_base_is_409(api, server):
    st = api.new_stack()
    api.run_update(st, small_state(st, server, n=1))
    upd = api.begin(st)
    before = api.snapshot(st)
    body = {"version": 3, "checkpointHash": "a" * 64, "sequenceNumber": 1, "deploymentDelta": []}
    assert_error(api.patch(upd.path + "/checkpointdelta", body, update=upd), 409)
    assert api.snapshot(st) == before
    assert_ok(api.complete(upd))
    assert api.export(st)["deployment"] == small_state(st, server, n=1)


def test_delta_sequence_rules(api, server):
    st = api.new_stack()
    upd = api.begin(st)
    raw = json.dumps({"version": 3, "deployment": small_state(st, server, n=1)}).encode()
    assert_ok(_verbatim(api, upd, raw, 3))
    before = api.snapshot(st)
    body = {"version": 3, "checkpointHash": "b" * 64, "deploymentDelta": []}
    # The same sequence number as the last accepted save: a retry of a delta already applied, no-op.
    assert_ok(api.patch(upd.path + "/checkpointdelta", dict(body, sequenceNumber=3), update=upd))
    assert api.snapshot(st) == before
    assert_error(api.patch(upd.path + "/checkpointdelta", dict(body, sequenceNumber=2), update=upd), 409)
    assert api.snapshot(st) == before
    assert_ok(api.complete(upd))
    assert api.get(st.path + "/export").raw == raw


@pytest.mark.parametrize("body", [
    {}, {"version": 3, "checkpointHash": "a" * 64, "sequenceNumber": 0, "deploymentDelta": []},
    {"version": 3, "checkpointHash": "a" * 63, "sequenceNumber": 2, "deploymentDelta": []},
    {"version": 3, "checkpointHash": 5, "sequenceNumber": 2, "deploymentDelta": []},
    {"version": 3, "checkpointHash": "a" * 64, "sequenceNumber": 2, "deploymentDelta": "[]"},
    {"version": 3, "checkpointHash": "a" * 64, "sequenceNumber": 2},
])
def test_delta_invalid(api, server, body):
    st = api.new_stack()
    upd = api.begin(st)
    assert_ok(_verbatim(api, upd, json.dumps({"version": 3, "deployment": small_state(st)}).encode(), 1))
    before = api.snapshot(st)
    assert_error(api.patch(upd.path + "/checkpointdelta", body, update=upd), 400)
    assert api.snapshot(st) == before
    assert_ok(api.complete(upd))


def test_delta_applies_the_cli_test_vectors(api):
    """pkg/backend/httpstate/testdata/snapshot_test.json: req1 verbatim, req2..req4 deltas with their hashes."""
    vec = json.load(open(VECTORS))
    st = api.new_stack()
    upd = api.begin(st)
    raw1 = vec["req1"].encode()  # the exact bytes the CLI sent
    assert_ok(_verbatim(api, upd, raw1, 1))
    for seq, name in enumerate(["req2", "req3", "req4"], start=2):
        body = {"version": 3, "checkpointHash": vec[name + ".hash"], "sequenceNumber": seq,
                "deploymentDelta": json.loads(vec[name])}
        assert_ok(api.call("PATCH", upd.path + "/checkpointdelta", raw=gz(body), update=upd,
                           headers={"Content-Encoding": "gzip"}))
        got = api.get(st.path + "/export").raw
        assert hashlib.sha256(got).hexdigest() == vec[name + ".hash"]
    # A hash that does not match the result is refused and changes nothing.
    before = api.snapshot(st)
    body = {"version": 3, "checkpointHash": "0" * 64, "sequenceNumber": 5,
            "deploymentDelta": json.loads(vec["req3"])}
    r = api.patch(upd.path + "/checkpointdelta", body, update=upd)
    assert r.status in (400, 409)
    assert api.snapshot(st) == before
    assert_ok(api.complete(upd))
    assert hashlib.sha256(api.get(st.path + "/export/1").raw).hexdigest() == vec["req4.hash"]


def test_journal_entries_on_a_checkpoint_update_is_409(api, server):
    st = api.new_stack()
    upd = api.begin(st)  # journaling not asked for: journalVersion 0
    assert_ok(api.checkpoint(upd, small_state(st, server, n=1)))
    before = api.snapshot(st)
    entries = {"entries": [{"version": 1, "kind": 6, "sequenceID": 1, "operationID": 0, "removeOld": None,
                            "removeNew": None, "secretsProvider": {"type": "service", "state": {}}}]}
    assert_error(api.patch(upd.path + "/journalentries", entries, update=upd), 409)
    assert_error(api.call("PATCH", upd.path + "/journalentries", raw=gz(entries), update=upd,
                          headers={"Content-Encoding": "gzip"}), 409)
    assert api.snapshot(st) == before
    assert_ok(api.complete(upd))


@pytest.mark.parametrize("body", [{}, {"entries": {}}, {"entries": [{"kind": 1}]}, {"entries": [{"sequenceID": 0,
                                                                                                  "kind": 1}]},
                                  {"entries": [{"sequenceID": 1, "kind": 10}]}, {"entries": [1]}])
def test_journal_entries_invalid(api, body):
    st = api.new_stack()
    upd = api.begin(st)
    before = api.snapshot(st)
    assert_error(api.patch(upd.path + "/journalentries", body, update=upd), 400)
    assert api.snapshot(st) == before
    assert_ok(api.complete(upd))


def test_state_routes_refuse_a_preview(api, server):
    st = api.new_stack()
    upd = api.begin(st, "preview")
    before = api.snapshot(st)
    assert_error(api.checkpoint(upd, small_state(st, server)), 400)
    assert_error(_verbatim(api, upd, json.dumps({"version": 3, "deployment": deployment(st)}).encode(), 1), 400)
    assert api.snapshot(st) == before
    assert_ok(api.complete(upd))
    assert api.stack(st)["version"] == 0


def test_state_with_nul_escapes_is_kept_and_renamed(api, server):
    """Go's encoder writes a NUL in a string as \\u0000: valid JSON that every path must carry."""
    from psapi import Stack, uid
    st = api.new_stack()
    d = small_state(st, server, n=1)
    d["resources"][2]["outputs"]["bin"] = "a\u0000b\u0001"
    api.run_update(st, d)
    assert api.export(st)["deployment"] == d
    new = Stack(st.org, st.project, uid("renamed"))
    assert_ok(api.post(st.path + "/rename", {"newName": new.name, "newProject": st.project}))
    e = api.export(new)
    assert e["deployment"]["resources"][2]["outputs"]["bin"] == "a\u0000b\u0001"
    assert e["deployment"]["resources"][2]["urn"].startswith("urn:pulumi:%s::" % new.name)
    # Import takes such a state too (pulumi stack import of an exported state).
    other = api.new_stack(project=st.project)
    state = {"version": 3, "deployment": small_state(other, server, n=1)}
    state["deployment"]["resources"][1]["outputs"] = {"nul": "\u0000"}
    api.import_state(other, state)
    assert api.export(other) == state


INVALID_TEXT = [b"\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\\ud800",
                b"\\udc00", b"\\ud800\\u0041", b"\\ud800\\ud800"]


@pytest.mark.parametrize("text", INVALID_TEXT)
def test_checkpoint_with_invalid_text_is_400(api, server, text):
    """Invalid UTF-8 or unpaired surrogates: refused on the way in rather than stored (a later rename, replay
    or the CLI's own decoder would trip over them)."""
    st = api.new_stack()
    upd = api.begin(st)
    assert_ok(api.checkpoint(upd, small_state(st, server, n=1)))
    before = api.snapshot(st)
    dep = json.dumps(small_state(st, server, n=1)).encode().replace(b'"pet-0"', b'"pet-' + text + b'"', 1)
    assert_error(api.call("PATCH", upd.path + "/checkpoint", raw=b'{"version":3,"deployment":' + dep + b"}",
                          update=upd), 400)
    assert_error(_verbatim(api, upd, b'{"version":3,"deployment":' + dep + b"}", 1), 400)
    assert api.snapshot(st) == before
    assert_ok(api.complete(upd))


def test_checkpoint_with_valid_unusual_text(api, server):
    st = api.new_stack()
    upd = api.begin(st)
    d = small_state(st, server, n=1)
    d["resources"][2]["outputs"]["text"] = "\u00e9\u2603\U0001F600 \ud7ff\ue000\uffff"
    raw = b'{"version":3,"deployment":' + json.dumps(d, ensure_ascii=False).encode() + b"}"
    assert_ok(api.call("PATCH", upd.path + "/checkpoint", raw=raw, update=upd))
    raw2 = b'{"version":3,"deployment":' + json.dumps(d, ensure_ascii=True).encode() + b"}"
    assert_ok(_verbatim(api, upd, raw2, 1))
    assert_ok(api.complete(upd))
    assert api.export(st)["deployment"] == d


def test_deltas_alternating_front_ends_and_rebased(api, japi, server, pg):
    """Deltas sent alternately to two front ends (each worker's copy of the document is stale every other
    time, so it is rebuilt from the base and the stored deltas), 70 of them (the base is rewritten every 32):
    every export during the update and the version it ends with are the exact bytes the CLI would have."""
    st = api.new_stack()
    upd = api.begin(st)
    state = small_state(st, server, n=5)
    doc = json.dumps({"version": 3, "deployment": state}, indent=4)
    assert_ok(_verbatim(api, upd, doc.encode(), 1))
    rows = []
    for seq in range(2, 72):
        marker = '"version": 3'
        at = doc.index(marker)
        # grow the document a little each time, at a point that moves: a comment-free JSON edit
        new = '"version": 3, "x%d": %d' % (seq, seq) if seq % 2 else marker
        edits = [{"Span": {"start": {"line": 0, "column": 0, "offset": at},
                           "end": {"line": 0, "column": 0, "offset": at + len(marker)}}, "NewText": new}]
        doc = doc[:at] + new + doc[at + len(marker):]
        body = {"version": 3, "checkpointHash": hashlib.sha256(doc.encode()).hexdigest(), "sequenceNumber": seq,
                "deploymentDelta": edits}
        front = api if seq % 2 else japi
        assert_ok(front.patch(upd.path + "/checkpointdelta", body, update=upd))
        rows.append(int(pg.psql("SELECT count(*) FROM extension_pulumi_state_checkpoint_deltas WHERE update_id = "
                                ":'p1'", upd.id)[0][0]))
        if seq % 10 == 0:
            assert (japi if seq % 20 else api).get(st.path + "/export").raw == doc.encode()
    assert max(rows) < 32 and min(rows) == 0  # rebased on the way, never more than 31 deltas kept
    # A retry of the last one changes nothing; a stale one is refused.
    assert_ok(japi.patch(upd.path + "/checkpointdelta", body, update=upd))
    assert_error(api.patch(upd.path + "/checkpointdelta", dict(body, sequenceNumber=5), update=upd), 409)
    assert_ok(api.complete(upd))
    assert api.get(st.path + "/export/1").raw == doc.encode()
    assert pg.psql("SELECT count(*) FROM extension_pulumi_state_checkpoint_deltas WHERE update_id = :'p1'",
                   upd.id)[0][0] == "0"


def test_full_checkpoints_stored_as_edits(api, japi, server, pg):
    """Full checkpoints that change little are stored as edits of the one before (on the worker that holds
    it; whole otherwise, as when the other front end served the one before): every export during the
    update and the version at the end are each checkpoint exactly."""
    st = api.new_stack()
    upd = api.begin(st)
    kept = 0
    for i in range(1, 50):
        state = small_state(st, server, n=4)
        state["resources"][-1]["outputs"] = {"step": i, "pad": "x" * 4000}
        front = api if i < 25 or i % 3 else japi
        assert_ok(front.checkpoint(upd, state))
        kept = max(kept, int(pg.psql("SELECT count(*) FROM extension_pulumi_state_checkpoint_deltas WHERE "
                                     "update_id = :'p1'", upd.id)[0][0]))
        if i % 7 == 0:
            assert (japi if i % 2 else api).export(st)["deployment"] == state
    assert kept > 0  # edits were stored, not only whole documents
    assert_ok(api.complete(upd))
    assert api.export(st, version=1)["deployment"] == state
