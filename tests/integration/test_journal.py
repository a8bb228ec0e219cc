"""Journaling negotiated in start-update (on a front end with PULUMI_STATE_JOURNALING=true): entries stored
once per sequenceID, checkpoints refused on a journaled update, bad batches refused without a 5xx."""
import gzip

import pytest

from psapi import assert_error, assert_ok, gz, small_state

SP = {"type": "service", "state": {"url": "http://x", "owner": "o", "project": "p", "stack": "s"}}


def entries_of(pg, upd):
    return [int(r[0]) for r in pg.psql("SELECT sequence_id FROM extension_pulumi_state_journal WHERE update_id = '%s' "
                                       "ORDER BY 1" % upd.id)]


def start_journaled(japi, st, kind="update"):
    upd = japi.create_update(st, kind)
    r = assert_ok(japi.post(upd.path, {"journalVersion": 1}))
    upd.token, upd.version = r["token"], r["version"]
    return upd, r


def test_journal_negotiation(japi):
    st = japi.new_stack()
    upd, r = start_journaled(japi, st)
    assert r["journalVersion"] == 1
    assert_ok(japi.complete(upd, "failed"))
    # Not asked for: not given. A preview never journals.
    plain = japi.create_update(st)
    japi.start(plain)
    assert_ok(japi.complete(plain))
    prev = japi.create_update(st, "preview")
    r = assert_ok(japi.post(prev.path, {"journalVersion": 1}))
    assert r.get("journalVersion", 0) == 0
    prev.token = r["token"]
    assert_ok(japi.complete(prev))


def test_journal_entries_stored_once(japi, pg, server):
    st = japi.new_stack()
    upd, _ = start_journaled(japi, st)
    e1 = {"version": 1, "kind": 6, "sequenceID": 1, "operationID": 0, "removeOld": None, "removeNew": None,
          "secretsProvider": SP}
    e2 = {"version": 1, "kind": 0, "sequenceID": 2, "operationID": 1, "removeOld": None, "removeNew": None,
          "operation": {"resource": small_state(st)["resources"][0], "type": "creating"}}
    assert_ok(japi.patch(upd.path + "/journalentries", {"entries": [e1]}, update=upd))
    assert_ok(japi.call("PATCH", upd.path + "/journalentries", raw=gz({"entries": [e2, e1]}), update=upd,
                        headers={"Content-Encoding": "gzip"}))
    assert_ok(japi.patch(upd.path + "/journalentries", {"entries": [e1, e2]}, update=upd))  # a retried batch
    assert_ok(japi.patch(upd.path + "/journalentries", {"entries": []}, update=upd))
    assert entries_of(pg, upd) == [1, 2]
    e3 = dict(e1, sequenceID=3)
    assert_ok(japi.patch(upd.path + "/journalentries", {"entries": [e3, dict(e3, operationID=9)]}, update=upd))
    assert entries_of(pg, upd) == [1, 2, 3]  # an id repeated within a batch: the first is kept
    row = pg.psql("SELECT convert_from(entry, 'UTF8') FROM extension_pulumi_state_journal WHERE update_id = '%s' "
                  "AND sequence_id = 3" % upd.id)
    assert '"operationID":0' in row[0][0].replace(" ", "")
    # The exact text of each entry is kept.
    row = pg.psql("SELECT convert_from(entry, 'UTF8') FROM extension_pulumi_state_journal WHERE update_id = '%s' "
                  "AND sequence_id = 1" % upd.id)
    assert row[0][0].replace(" ", "") == '{"version":1,"kind":6,"sequenceID":1,"operationID":0,"removeOld":null,' \
        '"removeNew":null,"secretsProvider":{"type":"service","state":{"url":"http://x","owner":"o","project":"p",' \
        '"stack":"s"}}}'
    # Checkpoints are refused on a journaled update.
    before = japi.snapshot(st)
    assert_error(japi.checkpoint(upd, small_state(st)), 409)
    assert_error(japi.call("PATCH", upd.path + "/checkpointverbatim",
                           raw=b'{"version":3,"sequenceNumber":1,"untypedDeployment":{"version":3,"deployment":{}}}',
                           update=upd), 409)
    assert japi.snapshot(st) == before
    assert_ok(japi.complete(upd, "failed"))
    assert_error(japi.patch(upd.path + "/journalentries", {"entries": [dict(e1, sequenceID=3)]}, update=upd), 409)
    assert entries_of(pg, upd) == []  # the entries went with the update's end


def test_journal_text_kept_exactly(japi, pg):
    """Valid but unusual text (NUL escapes, surrogate pairs, raw UTF-8) is stored as sent."""
    st = japi.new_stack()
    upd, _ = start_journaled(japi, st)
    raw = ('{"entries":[{"version":1,"kind":6,"sequenceID":1,"operationID":0,"removeOld":null,"removeNew":null,'
           '"x":"a\\u0000b \\ud83d\\ude00 \u00e9\u2603\U0001F600"}]}').encode()
    assert_ok(japi.call("PATCH", upd.path + "/journalentries", raw=raw, update=upd))
    row = pg.psql("SELECT encode(entry, 'hex') FROM extension_pulumi_state_journal WHERE update_id = '%s'" % upd.id)
    assert bytes.fromhex(row[0][0]) == raw[len('{"entries":['):-len(']}')]


@pytest.mark.parametrize("raw", [
    b'{"entries":[{"version":1,"kind":6,"sequenceID":1,"operationID":0,"x":"\xff\xfe"}]}',
    b'{"entries":[{"version":1,"kind":6,"sequenceID":1,"operationID":0,"x":"\xc3"}]}',
    b'{"entries":[{"version":1,"kind":6,"sequenceID":1,"operationID":0,"x":"\xed\xa0\x80"}]}',
    b'{"entries":[{"version":1,"kind":6,"sequenceID":1,"operationID":0,"x":"\\ud800"}]}',
    b'{"entries":[{"version":1,"kind":6,"sequenceID":1,"operationID":0,"x":"\\udc00\\ud800"}]}',
    b'{"entries":[{"version":1,"kind":6,"sequenceID":1,"operationID":0,"x":"\\ud800\\ud800"}]}',
    b'{"entries":[{"version":1,"kind":6,"sequenceID":1,"operationID":0,"x":"\xc0\xaf"}]}',
    b'{"entries":[{"version":1,"kind":6,"sequenceID":1,"operationID":0,"x":"\xf4\x90\x80\x80"}]}',
    b'{"entries":[{"kind":6,"sequenceID":99999999999999999999}]}',
    b'{"entries":[{"kind":6.0,"sequenceID":1}]}',
    b'{"entries":[{"kind":6,"sequenceID":"1"}]}',
    b'{"entries":[{"kind":6,"sequenceID":1}', b'{"entries":[{"kind":6,"sequenceID":1},]}', b'{"entries":null}',
    b'[]', b'{}', b'',
])
def test_journal_bad_batches(japi, pg, raw):
    st = japi.new_stack()
    upd, _ = start_journaled(japi, st)
    before = japi.snapshot(st)
    assert_error(japi.call("PATCH", upd.path + "/journalentries", raw=raw, update=upd), 400)
    assert_error(japi.call("PATCH", upd.path + "/journalentries", raw=gzip.compress(raw), update=upd,
                           headers={"Content-Encoding": "gzip"}), 400)
    assert japi.snapshot(st) == before
    assert entries_of(pg, upd) == []
    assert_ok(japi.post(upd.path + "/cancel"))


def test_journaled_update_becomes_a_version(japi, server):
    """The protocol page's worked example: Stack, default provider and one resource created by journal."""
    st = japi.new_stack()
    full = small_state(st, n=1)["resources"]
    stack_res, prov, pet = full[0], full[1], dict(full[2], dependencies=[], propertyDependencies={})
    upd, _ = start_journaled(japi, st)
    E = lambda seq, kind, op, **kw: dict({"version": 1, "kind": kind, "sequenceID": seq, "operationID": op,  # noqa
                                          "removeOld": None, "removeNew": None}, **kw)
    entries = [E(1, 6, 0, secretsProvider=SP),
               E(2, 0, 1, operation={"resource": dict(stack_res, outputs={}), "type": "creating"}),
               E(3, 1, 1, state=dict(stack_res, outputs={})),
               E(4, 0, 2, operation={"resource": prov, "type": "creating"}), E(5, 1, 2, state=prov),
               E(6, 0, 3, operation={"resource": pet, "type": "creating"}), E(7, 1, 3, state=pet),
               E(8, 4, 4, state=stack_res, removeNew=1)]
    # Out of order and in two batches: applied by sequenceID.
    assert_ok(japi.patch(upd.path + "/journalentries", {"entries": entries[4:]}, update=upd))
    assert_ok(japi.patch(upd.path + "/journalentries", {"entries": entries[:4]}, update=upd))
    assert_ok(japi.complete(upd))
    e = japi.export(st)
    assert e["version"] == 3
    assert [r["urn"] for r in e["deployment"]["resources"]] == [stack_res["urn"], prov["urn"], pet["urn"]]
    assert e["deployment"]["resources"][0]["outputs"] == stack_res["outputs"]
    assert e["deployment"]["secrets_providers"] == SP
    assert japi.stack(st)["version"] == 1


def _E(seq, kind, op, **kw):
    return dict({"version": 1, "kind": kind, "sequenceID": seq, "operationID": op, "removeOld": None,
                 "removeNew": None}, **kw)


def _res(name, alias):
    return {"urn": "urn:pulumi:s::p::t:m:T::" + name, "custom": True, "id": name, "type": "t:m:T", "aliases": [alias]}


# Two new resources claiming one alias (NormalizeURNReferences refuses that), and a Success removing base
# resource 99 of a base with 4 resources: no faithful replayer produces a state from this.
UNREPLAYABLE = [_E(1, 6, 0, secretsProvider=SP),
                _E(2, 0, 1, operation={"resource": _res("a", "urn:pulumi:s::p::t:m:T::old"), "type": "creating"}),
                _E(3, 1, 1, state=_res("a", "urn:pulumi:s::p::t:m:T::old")),
                _E(4, 0, 2, operation={"resource": _res("b", "urn:pulumi:s::p::t:m:T::old"), "type": "creating"}),
                _E(5, 1, 2, state=_res("b", "urn:pulumi:s::p::t:m:T::old")),
                _E(6, 0, 3), _E(7, 1, 3, removeOld=99)]


@pytest.mark.parametrize("ending", ["expiry", "cancel", "failed"])
def test_unreplayable_journal_does_not_wedge_the_stack(japi, pg, ending):
    """Whatever the journal holds, an update that is cancelled, fails or is abandoned frees its stack; the
    state keeps every resource the journal recorded (what cannot be applied is skipped) on top of the base."""
    st = japi.new_stack()
    japi.run_update(st, small_state(st, n=2))
    base = japi.export(st)
    upd, _ = start_journaled(japi, st)
    assert_ok(japi.patch(upd.path + "/journalentries", {"entries": UNREPLAYABLE}, update=upd))
    if ending == "expiry":
        pg.psql("UPDATE extension_pulumi_state_updates SET lease_expires_at = now() - interval '1 second' "
                "WHERE id = '%s'" % upd.id)
        g = japi.stack(st)  # the reap happens here
    elif ending == "cancel":
        assert_ok(japi.post(upd.path + "/cancel"))
        g = japi.stack(st)
    else:
        assert_ok(japi.complete(upd, "failed"))
        g = japi.stack(st)
    assert "currentOperation" not in g
    assert japi.get(upd.path).json["status"] == "failed"
    urns = [r["urn"] for r in japi.export(st)["deployment"]["resources"]]
    recorded = ["urn:pulumi:s::p::t:m:T::a", "urn:pulumi:s::p::t:m:T::b"]
    assert urns == recorded + [r["urn"] for r in base["deployment"]["resources"]]
    nxt = japi.run_update(st, small_state(st, n=3))
    assert japi.export(st)["deployment"] == small_state(st, n=3)
    assert nxt.version == g["version"] + 1


def test_entries_after_the_update_ended_are_refused(japi, pg):
    """A batch arriving after complete or cancel is refused (409) and stores nothing."""
    st = japi.new_stack()
    upd, _ = start_journaled(japi, st)
    e = {"version": 1, "kind": 6, "sequenceID": 1, "operationID": 0, "secretsProvider": SP}
    assert_ok(japi.patch(upd.path + "/journalentries", {"entries": [e]}, update=upd))
    assert_ok(japi.complete(upd))
    late = dict(e, sequenceID=2)
    assert_error(japi.patch(upd.path + "/journalentries", {"entries": [late]}, update=upd), 409)
    assert entries_of(pg, upd) == []  # the journal went into the version at complete


def test_deleting_a_stack_drops_its_journal_and_events(japi, pg):
    """Journal and event rows carry no foreign key: the stack's deletion removes them itself."""
    st = japi.new_stack()
    upd, _ = start_journaled(japi, st)
    e = {"version": 1, "kind": 6, "sequenceID": 1, "operationID": 0, "secretsProvider": SP}
    assert_ok(japi.patch(upd.path + "/journalentries", {"entries": [e]}, update=upd))
    assert_ok(japi.events(upd, [{"sequence": 0, "timestamp": 1, "stdoutEvent": {"message": "hi", "color": "raw"}}]))
    assert entries_of(pg, upd) == [1]
    r = japi.call("DELETE", st.path + "?force=true")
    assert r.status in (200, 204), r.raw
    for table in ("journal", "events"):
        left = pg.psql("SELECT count(*) FROM extension_pulumi_state_%s WHERE update_id = '%s'" % (table, upd.id))
        assert left[0][0] == "0", table
