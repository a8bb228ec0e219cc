"""Retention: pulumi-state-admin prune (batched, with progress) and the deploy agents' periodic prune delete old
state versions by count and by age (never a stack's current version), journals of ended updates, engine events,
audit rows and deployment logs by age. A cluster of its own: a prune is database-wide."""
import os
import subprocess

import pytest

import harness
import psapi
from psapi import assert_ok, small_state


@pytest.fixture(scope="module")
def own():
    c = harness.Cluster(procs=1, threads=2, settings={"PULUMI_STATE_JOURNALING": "true"})
    c.start()
    yield c, psapi.Api(c.server, c.pg)
    c.stop()


def prune(c, **settings):
    env = dict(os.environ, PULUMI_STATE_DATABASE=c.pg.conninfo, **settings)
    return subprocess.run([os.path.join(c.server.bindir, "pulumi-state-admin"), "prune"], env=env,
                          capture_output=True, text=True, check=True).stdout


def versions(c, st):
    return [int(r[0]) for r in c.pg.psql(
        "SELECT v.version FROM extension_pulumi_state_versions v JOIN extension_pulumi_state_stacks s ON "
        "s.id = v.stack_id WHERE s.project = '%s' AND s.name = '%s' ORDER BY 1" % (st.project, st.name))]


def stack_with_versions(api, n):
    st = api.new_stack()
    for i in range(n):
        api.import_state(st, {"version": 3, "deployment": small_state(st, n=i + 1)})
    return st


def test_by_count_keeps_the_newest_and_the_current(own):
    c, api = own
    st = stack_with_versions(api, 6)
    assert versions(c, st) == [1, 2, 3, 4, 5, 6]
    before = api.export(st)
    out = prune(c, PULUMI_STATE_RETAIN_VERSIONS="2")
    assert "versions: 4 deleted" in out and "pruned" in out
    assert versions(c, st) == [5, 6]
    assert api.export(st) == before
    assert api.export(st, 5)["deployment"]
    assert api.get(st.path + "/export/1").status == 404
    # Nothing more to do: a second prune deletes nothing.
    assert "pruned 0 rows" in prune(c, PULUMI_STATE_RETAIN_VERSIONS="2")


def test_by_age_never_the_current_version(own):
    c, api = own
    st = stack_with_versions(api, 3)
    c.pg.psql("UPDATE extension_pulumi_state_versions SET created_at = now() - interval '40 days' WHERE stack_id = "
              "(SELECT id FROM extension_pulumi_state_stacks WHERE name = '%s')" % st.name)
    prune(c, PULUMI_STATE_RETAIN_VERSION_DAYS="30")
    assert versions(c, st) == [3]
    assert api.export(st)["deployment"]["resources"]
    # The stack keeps working: a new update on top of its only version.
    api.run_update(st, small_state(st, n=5))
    assert versions(c, st) == [3, 4]


def test_events_audit_and_deployment_logs_by_age(own):
    c, api = own
    st = api.new_stack()
    api.run_update(st, small_state(st, n=2))
    api.events(api.begin(st), [{"sequence": 1, "timestamp": 1, "stdoutEvent": {"message": "x", "color": "never"}}])
    c.pg.psql("UPDATE extension_pulumi_state_updates SET ended_at = now() - interval '100 days' WHERE stack_id = "
              "(SELECT id FROM extension_pulumi_state_stacks WHERE name = '%s') AND ended_at IS NOT NULL" % st.name)
    c.pg.psql("INSERT INTO extension_pulumi_state_events (update_id, sequence, event) SELECT id, 99, '\\x7b7d' FROM "
              "extension_pulumi_state_updates WHERE stack_id = (SELECT id FROM extension_pulumi_state_stacks WHERE "
              "name = '%s') AND ended_at IS NOT NULL" % st.name)
    c.pg.psql("UPDATE extension_pulumi_state_audit SET at = now() - interval '400 days' WHERE id IN (SELECT id FROM "
              "extension_pulumi_state_audit ORDER BY id LIMIT 3)")
    dep = assert_ok(api.post(st.path + "/deployments", {"operation": "update",
                                                        "source": {"repoURL": "https://git.example.com/x.git"}}), 202)
    c.pg.psql("UPDATE extension_pulumi_state_deployments SET status = 'failed', ended_at = now() - interval '60 days' "
              "WHERE id = '%s'" % dep["id"])
    c.pg.psql("INSERT INTO extension_pulumi_state_deployment_logs (deployment_id, line_no, line) VALUES ('%s', 1, "
              "'old')" % dep["id"])
    audit_before = int(c.pg.psql("SELECT count(*) FROM extension_pulumi_state_audit")[0][0])
    out = prune(c, PULUMI_STATE_RETAIN_EVENTS_DAYS="90", PULUMI_STATE_RETAIN_AUDIT_DAYS="365",
                PULUMI_STATE_RETAIN_DEPLOYMENT_LOG_DAYS="30")
    assert "events:" in out and "audit: 3 deleted" in out and "deployment logs: 1 deleted" in out
    old_events = c.pg.psql("SELECT count(*) FROM extension_pulumi_state_events e JOIN extension_pulumi_state_updates u "
                           "ON u.id = e.update_id WHERE u.ended_at < now() - interval '90 days'")
    assert old_events == [["0"]]
    # The running update's events stay.
    assert int(c.pg.psql("SELECT count(*) FROM extension_pulumi_state_events e JOIN extension_pulumi_state_updates u "
                         "ON u.id = e.update_id WHERE u.ended_at IS NULL")[0][0]) >= 1
    assert int(c.pg.psql("SELECT count(*) FROM extension_pulumi_state_audit")[0][0]) == audit_before - 3


def test_the_agent_prunes_periodically(own):
    c, api = own
    st = stack_with_versions(api, 4)
    agent = harness.Agent(c.server, extra={"PULUMI_STATE_RETAIN_VERSIONS": "1", "PULUMI_STATE_PRUNE_INTERVAL": "1"})
    agent.start()
    try:
        harness.wait_until(lambda: versions(c, st) == [4], "the agent's prune")
    finally:
        agent.stop()


def journal_entries(st):
    """The entries that create the root stack, its provider and one resource (a complete journal)."""
    full = small_state(st, n=1)["resources"]
    stack_res, prov, pet = full[0], full[1], dict(full[2], dependencies=[], propertyDependencies={})
    sp = {"type": "service", "state": {"url": "http://x", "owner": "o", "project": "p", "stack": "s"}}

    def e(seq, kind, op, **kw):
        return dict({"version": 1, "kind": kind, "sequenceID": seq, "operationID": op, "removeOld": None,
                     "removeNew": None}, **kw)
    return [e(1, 6, 0, secretsProvider=sp),
            e(2, 0, 1, operation={"resource": dict(stack_res, outputs={}), "type": "creating"}),
            e(3, 1, 1, state=dict(stack_res, outputs={})),
            e(4, 0, 2, operation={"resource": prov, "type": "creating"}), e(5, 1, 2, state=prov),
            e(6, 0, 3, operation={"resource": pet, "type": "creating"}), e(7, 1, 3, state=pet),
            e(8, 4, 4, state=stack_res, removeNew=1)], [stack_res["urn"], prov["urn"], pet["urn"]]


def test_journals_left_by_ended_updates_go_a_running_update_keeps_its_own(own):
    c, api = own

    def journaled(st):
        upd = api.create_update(st, "update")
        r = assert_ok(api.post(upd.path, {"journalVersion": 1}))
        assert r["journalVersion"] == 1
        upd.token = r["token"]
        return upd

    def rows(upd):
        return int(c.pg.psql("SELECT count(*) FROM extension_pulumi_state_journal WHERE update_id = :'p1'",
                             upd.id)[0][0])
    ended, running = api.new_stack(), api.new_stack()
    u1 = journaled(ended)
    entries1, urns1 = journal_entries(ended)
    assert_ok(api.patch(u1.path + "/journalentries", {"entries": entries1}, update=u1))
    assert_ok(api.complete(u1))
    u2 = journaled(running)
    entries2, urns2 = journal_entries(running)
    assert_ok(api.patch(u2.path + "/journalentries", {"entries": entries2[:5]}, update=u2))
    # Ending an update drops its journal; what an older server or an interrupted finish left is the
    # prune's to delete.
    assert rows(u1) == 0 and rows(u2) == 5
    c.pg.psql("INSERT INTO extension_pulumi_state_journal (update_id, sequence_id, entry) SELECT :'p1', g, "
              "convert_to('{}', 'UTF8') FROM generate_series(1, 3) g", u1.id)
    assert rows(u1) == 3
    out = prune(c)
    assert "journal: 3 deleted" in out, out
    assert rows(u1) == 0 and rows(u2) == 5
    # The ended update's state is its version; the running one goes on and ends with every entry applied.
    assert [r["urn"] for r in api.export(ended)["deployment"]["resources"]] == urns1
    assert_ok(api.patch(u2.path + "/journalentries", {"entries": entries2[5:]}, update=u2))
    assert_ok(api.complete(u2))
    assert [r["urn"] for r in api.export(running)["deployment"]["resources"]] == urns2
    prune(c)
    assert rows(u2) == 0
