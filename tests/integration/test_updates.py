"""The update lifecycle: create, start (lock and lease), status, renew_lease, complete, cancel, lease expiry,
and which token each update route accepts."""
import re
import time
import uuid

import pytest

from psapi import Stack, Update, assert_error, assert_ok, deployment, small_state, uid

CONFLICT = "Conflict: Another update is currently in progress."


def status_of(api, upd):
    return assert_ok(api.get(upd.path))


def versions(api, st):
    return api.stack(st)["version"]


@pytest.mark.parametrize("kind", ["update", "refresh", "destroy"])
def test_lifecycle(api, server, kind):
    st = api.new_stack()
    base = small_state(st, server, n=1)
    api.run_update(st, base)
    v0 = versions(api, st)
    upd = api.create_update(st, kind, message="m-" + kind, environment={"exec.kind": "cli", "git.head": "abc"})
    s = status_of(api, upd)
    assert s["status"] == "not started" and s["events"] == [] and s["continuationToken"] is not None
    # Creating an update does not take the stack.
    assert api.stack(st)["activeUpdate"] != upd.id
    r = api.start(upd, tags={"pulumi:project": st.project, "pulumi:runtime": "yaml"})
    assert r["version"] == v0 + 1
    assert r["tokenExpiration"] > time.time()
    assert r["journalVersion"] == 0
    g = api.stack(st)
    assert g["activeUpdate"] == upd.id
    assert g["currentOperation"]["kind"] == kind
    assert isinstance(g["currentOperation"]["started"], int) and g["currentOperation"]["started"] > 0
    assert g["tags"] == {"pulumi:project": st.project, "pulumi:runtime": "yaml"}  # start-update tags replace
    assert g["version"] == v0  # the version only moves on completion
    s = status_of(api, upd)
    assert s["status"] == "running" and s["continuationToken"] is not None
    new = deployment(st, [] if kind == "destroy" else small_state(st, server, n=2)["resources"], server)
    assert_ok(api.checkpoint(upd, new))
    assert api.export(st) == {"version": 3, "deployment": new}  # live while running
    assert versions(api, st) == v0
    assert assert_ok(api.complete(upd)) == {}
    s = status_of(api, upd)
    assert s["status"] == "succeeded" and s["continuationToken"] is None
    g = api.stack(st)
    assert g["version"] == v0 + 1
    assert "currentOperation" not in g
    assert g["activeUpdate"] == upd.id  # the last update once none is running
    assert api.export(st) == api.export(st, v0 + 1) == {"version": 3, "deployment": new}
    assert api.export(st, v0) == {"version": 3, "deployment": base}
    assert_error(api.get(st.path + "/export/%d" % (v0 + 2)), 404)
    h = assert_ok(api.get(st.path + "/updates"))["updates"][0]
    assert (h["kind"], h["version"], h["result"], h["message"]) == (kind, v0 + 1, "succeeded", "m-" + kind)


def test_updates_alias_and_kind_segment(api):
    st = api.new_stack()
    upd = api.create_update(st, "destroy")
    # Everything after create uses the literal segment "update"; "updates" is accepted as an alias.
    assert assert_ok(api.get("%s/updates/%s" % (st.path, upd.id)))["status"] == "not started"
    assert_ok(api.post("%s/updates/%s" % (st.path, upd.id), {}))
    assert assert_ok(api.get(upd.path))["status"] == "running"


@pytest.mark.parametrize("how", ["preview", "dryRun"])
def test_dry_run_takes_no_lock_and_no_version(api, server, how):
    st = api.new_stack()
    api.run_update(st, small_state(st, server))
    before = api.snapshot(st)
    v0 = before["stack"]["version"]
    upd = api.create_update(st, "preview") if how == "preview" else api.create_update(st, "update", dry_run=True)
    r = api.start(upd, tags={"would": "be-ignored"})
    assert r["version"] == v0  # the current version, not +1
    g = api.stack(st)
    assert g["activeUpdate"] != upd.id and "currentOperation" not in g
    assert g["tags"] == before["stack"].get("tags", {})
    # A real update can start while the preview runs, and another preview too.
    real = api.begin(st)
    assert real.version == v0 + 1
    other = api.begin(st, "preview")
    assert other.version == v0
    # A preview takes no state.
    assert_error(api.checkpoint(upd, small_state(st, server, n=3)), 400)
    assert_ok(api.events(upd, [{"sequence": 0, "timestamp": 1, "stdoutEvent": {"message": "hi", "color": "raw"}}]))
    assert_ok(api.complete(upd))
    assert_ok(api.complete(other))
    assert status_of(api, upd)["status"] == "succeeded"
    assert_ok(api.complete(real))
    assert versions(api, st) == v0 + 1
    # Previews are not in the history.
    kinds = [h["kind"] for h in assert_ok(api.get(st.path + "/updates"))["updates"]]
    assert "preview" not in kinds and len(kinds) == 2


def test_second_start_is_409_conflict(api, server):
    st = api.new_stack()
    first = api.begin(st)
    second = api.create_update(st, "update")
    third = api.create_update(st, "refresh")
    before = api.snapshot(st)
    # The automation API matches "[409] Conflict: Another update is currently in progress." exactly.
    assert_error(api.post(second.path, {}), 409, exact=CONFLICT)
    assert_error(api.post(third.path, {}), 409, exact=CONFLICT)
    assert api.snapshot(st) == before
    assert status_of(api, second)["status"] == "not started"
    assert_ok(api.complete(first))
    # Once the stack is free the refused update can start after all.
    api.start(second)
    assert second.version == before["stack"]["version"] + 2
    assert_ok(api.complete(second))


def test_start_errors(api):
    st = api.new_stack()
    other = api.new_stack()
    upd = api.create_update(st)
    foreign = api.create_update(other)
    assert_error(api.post("%s/update/%s" % (st.path, uuid.uuid4()), {}), 404)
    assert_error(api.post("%s/update/not-a-uuid" % st.path, {}), 404)
    assert_error(api.post("%s/update/%s" % (st.path, upd.id.upper()), {}), 404)
    assert_error(api.post("%s/update/%s" % (st.path, foreign.id), {}), 404)  # an update of another stack
    assert_error(api.post(upd.path, {"journalVersion": "1"}), 400)
    assert_error(api.post(upd.path, {"tags": {"bad tag": "v"}}), 400)
    assert_error(api.post(upd.path, {"tags": ["x"]}), 400)
    assert_error(api.call("POST", upd.path, raw=b"{nope"), 400)
    assert status_of(api, upd)["status"] == "not started"
    api.start(upd, journal=1)  # journaling is on by default: journalVersion 1 (checked in start)
    assert_error(api.post(upd.path, {}), 409)  # started twice
    assert_ok(api.complete(upd))
    assert_error(api.post(upd.path, {}), 409)


def test_create_update_errors(api):
    st = api.new_stack()
    before = api.snapshot(st)
    for body in [{"options": []}, {"options": {"dryRun": "yes"}}, {"config": []}, {"metadata": "m"}]:
        assert_error(api.post(st.path + "/update", body), 400)
    for raw in [b"", b"[]", b"{", b"null"]:
        assert_error(api.call("POST", st.path + "/update", raw=raw), 400)
    assert api.snapshot(st) == before
    assert_error(api.post("%s/%s/%s/%s/update" % ("/api/stacks", st.org, st.project, uid("none")), {}), 404)
    # A minimal body is accepted (every key optional).
    assert_ok(api.post(st.path + "/update", {}))


def test_get_update_errors(api):
    st = api.new_stack()
    other = api.new_stack()
    foreign = api.create_update(other)
    assert_error(api.get("%s/update/%s" % (st.path, uuid.uuid4())), 404)
    assert_error(api.get("%s/update/xyz" % st.path), 404)
    assert_error(api.get("%s/update/%s" % (st.path, foreign.id)), 404)
    assert_error(api.get("%s/update/%s" % (st.path, foreign.id), token=False), 401)


def test_renew_lease_rotates_tokens(api, server):
    st = api.new_stack()
    upd = api.begin(st)
    t0 = upd.token
    r1 = assert_ok(api.post(upd.path + "/renew_lease", {"token": "", "duration": 300}, update=t0))
    t1 = r1["token"]
    assert t1 and t1 != t0 and isinstance(r1["tokenExpiration"], int)
    # The previous token still works (a call already in flight, a retried renew) ...
    assert_ok(api.checkpoint(upd, small_state(st, server, n=1), token=t0))
    assert_ok(api.checkpoint(upd, small_state(st, server, n=1), token=t1))
    t2 = assert_ok(api.post(upd.path + "/renew_lease", {"token": "", "duration": 300}, update=t1))["token"]
    assert t2 not in (t0, t1)
    # ... but a token two renewals old is refused.
    assert_error(api.checkpoint(upd, small_state(st, server, n=2), token=t0), 403)
    assert_error(api.post(upd.path + "/renew_lease", {"duration": 300}, update=t0), 403)
    assert_error(api.complete(upd, token=t0), 403)
    assert status_of(api, upd)["status"] == "running"
    assert_ok(api.checkpoint(upd, small_state(st, server, n=2), token=t1))
    t3 = assert_ok(api.post(upd.path + "/renew_lease", {"duration": 300}, update=t2))["token"]
    assert t3 not in (t0, t1, t2)
    assert_error(api.checkpoint(upd, small_state(st, server, n=2), token=t1), 403)
    assert_ok(api.complete(upd, token=t3))
    assert api.export(st)["deployment"] == small_state(st, server, n=2)


def test_retried_renew_keeps_the_previous_token(api, server):
    """A renew whose answer was lost is retried with the same (now previous) token: the CLI then
    holds the newest token, and the token it still has in flight keeps working."""
    st = api.new_stack()
    upd = api.begin(st)
    t0 = upd.token
    lost = assert_ok(api.post(upd.path + "/renew_lease", {"duration": 300}, update=t0))["token"]
    t2 = assert_ok(api.post(upd.path + "/renew_lease", {"duration": 300}, update=t0))["token"]
    assert t2 not in (t0, lost)
    assert_ok(api.checkpoint(upd, small_state(st, server, n=1), token=t0))
    assert_ok(api.checkpoint(upd, small_state(st, server, n=1), token=t2))
    assert_error(api.checkpoint(upd, small_state(st, server, n=1), token=lost), 403)
    assert_ok(api.complete(upd, token=t2))


def test_renew_lease_errors(api):
    st = api.new_stack()
    upd = api.begin(st)
    assert_error(api.post(upd.path + "/renew_lease", {"duration": "300"}, update=upd), 400)
    assert_error(api.call("POST", upd.path + "/renew_lease", raw=b"[]", update=upd), 400)
    assert_ok(api.complete(upd))
    # The lease ended with the update: renewing is forbidden (the CLI treats 403 as terminal).
    assert_error(api.post(upd.path + "/renew_lease", {"duration": 300}, update=upd), 403)


def test_renew_lease_of_a_preview(api):
    st = api.new_stack()
    upd = api.begin(st, "preview")
    r = assert_ok(api.post(upd.path + "/renew_lease", {"duration": 300}, update=upd))
    assert r["token"] and r["token"] != upd.token
    upd.token = r["token"]
    assert_ok(api.complete(upd))


def test_complete_is_idempotent(api, server, pg):
    st = api.new_stack()
    upd = api.begin(st)
    assert_ok(api.checkpoint(upd, small_state(st, server, n=2)))
    assert_ok(api.complete(upd))
    after = api.snapshot(st)
    assert after["stack"]["version"] == 1
    assert_ok(api.complete(upd))  # a retried complete
    assert api.snapshot(st) == after
    # A different outcome after the fact is a conflict, and changes nothing.
    assert_error(api.complete(upd, "failed"), 409)
    assert api.snapshot(st) == after
    assert len(after["versions"]) == 1


def test_complete_errors(api):
    st = api.new_stack()
    upd = api.begin(st)
    for body in [{}, {"status": "done"}, {"status": None}, {"status": 1}, {"status": "SUCCEEDED"}]:
        assert_error(api.post(upd.path + "/complete", body, update=upd), 400)
    assert_error(api.call("POST", upd.path + "/complete", raw=b"", update=upd), 400)
    assert status_of(api, upd)["status"] == "running"
    assert_ok(api.complete(upd))


def test_failed_update_keeps_its_last_checkpoint(api, server):
    st = api.new_stack()
    api.run_update(st, small_state(st, server, n=1))
    upd = api.begin(st)
    assert_ok(api.checkpoint(upd, small_state(st, server, n=2)))
    assert_ok(api.checkpoint(upd, small_state(st, server, n=3)))
    assert_ok(api.complete(upd, "failed"))
    assert status_of(api, upd)["status"] == "failed"
    g = api.stack(st)
    assert g["version"] == 2 and "currentOperation" not in g
    assert api.export(st) == {"version": 3, "deployment": small_state(st, server, n=3)}
    h = assert_ok(api.get(st.path + "/updates"))["updates"][0]
    assert (h["result"], h["version"], h["resourceCount"]) == ("failed", 2, 5)
    # The stack is free.
    api.run_update(st, small_state(st, server, n=1))
    assert api.stack(st)["version"] == 3


def test_update_without_checkpoints_keeps_the_state(api, server):
    st = api.new_stack()
    api.run_update(st, small_state(st, server, n=2))
    api.run_update(st, None)
    assert api.stack(st)["version"] == 2
    assert api.export(st, 2) == api.export(st, 1)


def test_cancel(api, server):
    st = api.new_stack()
    upd = api.begin(st)
    assert_ok(api.checkpoint(upd, small_state(st, server, n=2)))
    # pulumi cancel: GET stack for activeUpdate, then POST cancel with the user token and no body.
    active = api.stack(st)["activeUpdate"]
    assert active == upd.id
    assert_ok(api.call("POST", "%s/update/%s/cancel" % (st.path, active), raw=b""))
    g = api.stack(st)
    assert "currentOperation" not in g
    assert status_of(api, upd)["status"] == "failed"
    # The cancelled update's work is kept as a version.
    assert g["version"] == 1
    assert api.export(st)["deployment"] == small_state(st, server, n=2)
    # The running CLI's lease is gone: renew is forbidden, state calls conflict.
    assert_error(api.post(upd.path + "/renew_lease", {"duration": 300}, update=upd), 403)
    assert_error(api.checkpoint(upd, small_state(st, server, n=3)), 409)
    assert_error(api.complete(upd, "succeeded"), 409)
    assert_error(api.complete(upd, "failed"), 409)
    assert_error(api.events(upd, [{"sequence": 0, "timestamp": 1, "stdoutEvent": {"message": "x"}}]), 409)
    assert api.export(st)["deployment"] == small_state(st, server, n=2)
    # Cancel again: idempotent.
    assert_ok(api.post(upd.path + "/cancel"))
    # The stack is free for the next update.
    nxt = api.run_update(st, small_state(st, server, n=1))
    assert nxt.version == 2 and api.stack(st)["version"] == 2


def test_cancel_errors(api):
    st = api.new_stack()
    assert_error(api.post("%s/update/%s/cancel" % (st.path, uuid.uuid4())), 404)
    assert_error(api.post("%s/update/bogus/cancel" % st.path), 404)
    upd = api.run_update(st, None)
    before = api.snapshot(st)
    assert_error(api.post(upd.path + "/cancel"), 409)  # already completed
    assert api.snapshot(st) == before
    # Cancel needs the user's token, not the lease's.
    live = api.begin(st)
    assert_error(api.post(live.path + "/cancel", update=live), 403)
    assert_error(api.post(live.path + "/cancel", token=False), 401)
    assert api.stack(st)["activeUpdate"] == live.id
    assert_ok(api.complete(live))


def test_cancel_of_a_not_started_update(api):
    st = api.new_stack()
    upd = api.create_update(st)
    assert_ok(api.post(upd.path + "/cancel"))
    assert status_of(api, upd)["status"] == "failed"
    assert_error(api.post(upd.path, {}), 409)
    assert api.stack(st)["version"] == 0


def expire(pg, upd):
    pg.psql("UPDATE extension_pulumi_state_updates SET lease_expires_at = now() - interval '1 second' "
            "WHERE id = '%s'" % upd.id)


def test_lease_expiry_reaps_the_update(api, server, pg):
    st = api.new_stack()
    api.run_update(st, small_state(st, server, n=1))
    upd = api.begin(st)
    assert_ok(api.checkpoint(upd, small_state(st, server, n=2)))
    assert_ok(api.checkpoint(upd, small_state(st, server, n=3)))
    expire(pg, upd)
    # Touching the stack reaps the abandoned update.
    g = api.stack(st)
    assert "currentOperation" not in g
    assert g["version"] == 2
    assert status_of(api, upd)["status"] == "failed"
    row = pg.psql("SELECT status, result_version, lease_expires_at IS NULL FROM extension_pulumi_state_updates "
                  "WHERE id = '%s'" % upd.id)
    assert row == [["failed", "2", "t"]]
    assert api.export(st) == {"version": 3, "deployment": small_state(st, server, n=3)}
    h = assert_ok(api.get(st.path + "/updates"))["updates"][0]
    assert (h["result"], h["version"]) == ("failed", 2)
    # The abandoned CLI, should it come back, is refused.
    assert_error(api.post(upd.path + "/renew_lease", {"duration": 300}, update=upd), 403)
    assert_error(api.checkpoint(upd, small_state(st, server, n=4)), 409)
    assert_error(api.complete(upd), 409)
    # And the stack takes a new update.
    nxt = api.run_update(st, small_state(st, server, n=1))
    assert nxt.version == 3


@pytest.mark.parametrize("touch", ["start", "export", "checkpoint", "list"])
def test_lease_expiry_is_reaped_by_any_touch(api, server, pg, touch):
    st = api.new_stack()
    upd = api.begin(st)
    assert_ok(api.checkpoint(upd, small_state(st, server, n=2)))
    expire(pg, upd)
    if touch == "start":
        nxt = api.begin(st)  # no 409: the expired lease does not hold the stack
        assert nxt.version == 2
        assert_ok(api.complete(nxt))
    elif touch == "export":
        assert api.export(st)["deployment"] == small_state(st, server, n=2)
    elif touch == "checkpoint":
        assert_error(api.checkpoint(upd, small_state(st, server, n=3)), 409)
    else:
        assert_ok(api.get(st.path + "/updates"))
    assert status_of(api, upd)["status"] == "failed"
    assert api.export(st, 1)["deployment"] == small_state(st, server, n=2)


def test_expired_preview_lease(api, pg):
    st = api.new_stack()
    upd = api.begin(st, "preview")
    expire(pg, upd)
    assert_error(api.post(upd.path + "/renew_lease", {"duration": 300}, update=upd), 403)
    assert status_of(api, upd)["status"] == "failed"
    assert api.stack(st)["version"] == 0


def test_update_token_only_on_its_own_update(api, server):
    st = api.new_stack()
    other = api.new_stack()
    a = api.begin(st)
    b = api.begin(st, "preview")  # a second live update on the same stack
    c = api.begin(other)
    snap_st, snap_other = api.snapshot(st), api.snapshot(other)
    dep = small_state(st, server)
    calls = [("PATCH", "/checkpoint", {"version": 3, "deployment": dep}),
             ("PATCH", "/checkpointverbatim", {"version": 3, "sequenceNumber": 1,
                                               "untypedDeployment": {"version": 3, "deployment": dep}}),
             ("PATCH", "/checkpointdelta", {"version": 3, "sequenceNumber": 2, "checkpointHash": "0" * 64,
                                            "deploymentDelta": []}),
             ("PATCH", "/journalentries", {"entries": []}),
             ("POST", "/events/batch", {"events": []}),
             ("POST", "/renew_lease", {"duration": 300}),
             ("POST", "/complete", {"status": "succeeded"})]
    for method, suffix, body in calls:
        # A's token on B (same stack) and on C (another stack).
        assert_error(api.call(method, b.path + suffix, body, update=a), 403)
        assert_error(api.call(method, c.path + suffix, body, update=a), 403)
        # A's own update id under the wrong stack is not found there.
        assert_error(api.call(method, "%s/update/%s%s" % (other.path, a.id, suffix), body, update=a), 404)
        # A user token where a lease token is required.
        assert_error(api.call(method, a.path + suffix, body), 403)
        # No token, a malformed header, a made-up lease token.
        assert_error(api.call(method, a.path + suffix, body, token=False), 401)
        assert_error(api.call(method, a.path + suffix, body, auth="update-token"), 401)
        assert_error(api.call(method, a.path + suffix, body, update="f" * 64), 403)
        assert_error(api.call(method, a.path + suffix, body, update=a.token + "x"), 403)
        # A lease token on an unknown update of the right stack.
        assert_error(api.call(method, "%s/update/%s%s" % (st.path, uuid.uuid4(), suffix), body, update=a), 404)
        assert_error(api.call(method, "%s/update/nope%s" % (st.path, suffix), body, update=a), 404)
    assert api.snapshot(st) == snap_st and api.snapshot(other) == snap_other
    # User routes refuse the lease token.
    for method, path, body in [("GET", st.path, None), ("GET", st.path + "/export", None),
                               ("POST", st.path + "/encrypt", {"plaintext": ""}), ("GET", a.path, None),
                               ("GET", a.path + "/events", None), ("POST", a.path, {}),
                               ("POST", a.path + "/cancel", None), ("POST", st.path + "/update", {}),
                               ("PATCH", st.path + "/tags", {}), ("GET", "/api/user/stacks", None)]:
        assert_error(api.call(method, path, body, update=a), 403)
    for u in (a, b, c):
        assert_ok(api.complete(u))


def test_stack_free_after_every_ending(api, server):
    """Whatever ends an update (complete ok/failed, cancel), the stack takes the next one."""
    st = api.new_stack()
    v = 0
    for end in ["succeeded", "failed", "cancel"]:
        upd = api.begin(st)
        assert upd.version == v + 1
        if end == "cancel":
            assert_ok(api.post(upd.path + "/cancel"))
        else:
            assert_ok(api.complete(upd, end))
        v += 1
        assert api.stack(st)["version"] == v
    assert [h["result"] for h in assert_ok(api.get(st.path + "/updates"))["updates"]] == \
        ["failed", "failed", "succeeded"]


def test_update_metadata_environment_must_be_an_object(api, server):
    st = api.new_stack()
    before = api.snapshot(st)
    for env in ("x", [1], 3):
        status, body, _, _ = server.request("POST", st.path + "/update",
                                            {"options": {"dryRun": False}, "metadata": {"environment": env}})
        assert status == 400 and body["code"] == 400 and "environment" in body["message"]
    assert api.snapshot(st) == before
