"""Engine events (stored once per sequence, read back in order, paged) and the stack history."""
import uuid

import pytest

from psapi import assert_error, assert_ok, gz, small_state


def ev(seq, text=None, **kind):
    e = {"sequence": seq, "timestamp": 1700000000 + seq}
    if kind:
        e.update(kind)
    else:
        e["stdoutEvent"] = {"message": text if text is not None else "line %d\n" % seq, "color": "raw"}
    return e


def read_all(api, upd, token=None):
    """Follow continuationToken until null (or until it repeats while the update runs)."""
    out, pages = [], 0
    while True:
        path = upd.path + "/events" + ("?continuationToken=" + token if token is not None else "")
        r = assert_ok(api.get(path))
        assert set(r) >= {"events", "continuationToken"}
        out += r["events"]
        pages += 1
        if r["continuationToken"] is None or r["continuationToken"] == token:
            return out, r["continuationToken"], pages
        token = r["continuationToken"]


def test_events_sorted_and_deduplicated(api, server):
    st = api.new_stack()
    upd = api.begin(st)
    assert_ok(api.events(upd, [ev(0), ev(1), ev(2)]))
    # Up to three batches are in flight: later ones can arrive first.
    assert_ok(api.events(upd, [ev(7), ev(8)]))
    assert_ok(api.events(upd, [ev(3), ev(4, diagnosticEvent={"message": "warn", "severity": "warning"})]))
    # A retried batch, and a batch that repeats a sequence within itself: stored once.
    assert_ok(api.events(upd, [ev(0), ev(1), ev(2)]))
    assert_ok(api.events(upd, [ev(5), ev(5), ev(6, "six")]))
    # The retry's content does not replace the first copy.
    assert_ok(api.events(upd, [ev(6, "changed")]))
    # gzip, as the CLI sends it.
    assert_ok(api.call("POST", upd.path + "/events/batch", raw=gz({"events": [ev(9)]}), update=upd,
                       headers={"Content-Encoding": "gzip"}))
    events, tok, _ = read_all(api, upd)
    assert [e["sequence"] for e in events] == list(range(10))
    assert events[4]["diagnosticEvent"] == {"message": "warn", "severity": "warning"}
    assert events[6]["stdoutEvent"]["message"] == "six"
    assert events[0] == ev(0)
    # While the update runs the token is never null (the CLI keeps polling).
    assert tok is not None
    r = assert_ok(api.get(upd.path + "/events?continuationToken=" + tok))
    assert r["events"] == [] and r["continuationToken"] is not None
    assert_ok(api.events(upd, [ev(10)]))
    r = assert_ok(api.get(upd.path + "/events?continuationToken=" + tok))
    assert [e["sequence"] for e in r["events"]] == [10]
    assert_ok(api.complete(upd))
    events, tok, _ = read_all(api, upd)
    assert [e["sequence"] for e in events] == list(range(11))
    assert tok is None


def test_a_reader_never_skips_a_late_batch(api):
    """Batches travel concurrently: while the update runs a reader gets events only up to the first
    gap, so its continuation picks up the late batch when it lands; after the update, gaps are final."""
    st = api.new_stack()
    upd = api.begin(st)
    assert_ok(api.events(upd, [ev(0), ev(1), ev(2)]))
    assert_ok(api.events(upd, [ev(6), ev(7)]))
    r = assert_ok(api.get(upd.path + "/events"))
    assert [e["sequence"] for e in r["events"]] == [0, 1, 2] and r["continuationToken"] == "2"
    r = assert_ok(api.get(upd.path + "/events?continuationToken=2"))
    assert r["events"] == [] and r["continuationToken"] == "2"
    assert_ok(api.events(upd, [ev(3), ev(4), ev(5)]))
    r = assert_ok(api.get(upd.path + "/events?continuationToken=2"))
    assert [e["sequence"] for e in r["events"]] == [3, 4, 5, 6, 7] and r["continuationToken"] == "7"
    assert_ok(api.events(upd, [ev(9)]))  # 8 never comes (the CLI gave up on it)
    r = assert_ok(api.get(upd.path + "/events?continuationToken=7"))
    assert r["events"] == [] and r["continuationToken"] == "7"
    assert_ok(api.complete(upd))
    r = assert_ok(api.get(upd.path + "/events?continuationToken=7"))
    assert [e["sequence"] for e in r["events"]] == [9] and r["continuationToken"] is None


def test_events_of_a_preview(api):
    st = api.new_stack()
    upd = api.begin(st, "preview")
    r = assert_ok(api.get(upd.path + "/events"))
    assert r == {"events": [], "continuationToken": r["continuationToken"]} and r["continuationToken"] is not None
    assert_ok(api.events(upd, [ev(1), ev(0)]))
    assert_ok(api.complete(upd))
    events, tok, _ = read_all(api, upd)
    assert [e["sequence"] for e in events] == [0, 1] and tok is None


def test_events_paged(api):
    st = api.new_stack()
    upd = api.begin(st)
    n = 1234
    seqs = list(range(n))
    for i in range(0, n, 300):
        assert_ok(api.events(upd, [ev(s) for s in reversed(seqs[i:i + 300])]))
    assert_ok(api.complete(upd))
    events, tok, pages = read_all(api, upd)
    assert tok is None
    assert [e["sequence"] for e in events] == seqs
    assert pages >= 2


def test_events_errors(api):
    st = api.new_stack()
    upd = api.begin(st)
    assert_ok(api.events(upd, [ev(0)]))
    before = api.snapshot(st)
    for body in [{}, {"events": {}}, {"events": [{"timestamp": 1}]}, {"events": [ev(-1)]},
                 {"events": [{"sequence": "1"}]}, {"events": [{"sequence": 1.5}]}, {"events": [1]},
                 {"events": [ev(1), {"sequence": None}]}]:
        assert_error(api.post(upd.path + "/events/batch", body, update=upd), 400)
    for raw in [b"", b"[]", b"{", b'{"events":[}']:
        assert_error(api.call("POST", upd.path + "/events/batch", raw=raw, update=upd), 400)
    assert api.snapshot(st) == before  # nothing of the bad batches was stored (not even ev(1))
    for q in ["abc", "1x", "-5", "%20"]:
        assert_error(api.get(upd.path + "/events?continuationToken=" + q), 400)
    assert_error(api.get("%s/update/%s/events" % (st.path, uuid.uuid4())), 404)
    assert_error(api.get("%s/update/zzz/events" % st.path), 404)
    other = api.new_stack()
    assert_error(api.get("%s/update/%s/events" % (other.path, upd.id)), 404)
    assert_ok(api.complete(upd))
    # After complete the update takes no more events.
    assert_error(api.events(upd, [ev(1)]), 409)
    events, _, _ = read_all(api, upd)
    assert [e["sequence"] for e in events] == [0]


def summary(changes, result="succeeded", preview=False):
    return {"maybeCorrupt": False, "durationSeconds": 1, "resourceChanges": changes, "PolicyPacks": {},
            "isPreview": preview, "result": result}


def test_history(api, server):
    st = api.new_stack()
    assert assert_ok(api.get(st.path + "/updates"))["updates"] == []
    assert_error(api.get(st.path + "/updates/latest"), 404)
    made = []
    for i, (kind, result, changes) in enumerate([("update", "succeeded", {"create": 3}),
                                                 ("update", "failed", {"same": 2, "update": 1}),
                                                 ("refresh", "succeeded", {"refresh": 3}),
                                                 ("destroy", "succeeded", {"delete": 3})]):
        env = {"exec.kind": "cli", "git.head": "h%d" % i, "git.dirty": "false"}
        upd = api.create_update(st, kind, message="msg %d" % i, environment=env,
                                config={"proj:k": {"string": "v%d" % i, "secret": False, "object": False}})
        api.start(upd)
        assert_ok(api.checkpoint(upd, small_state(st, server, n=i + 1)))
        assert_ok(api.events(upd, [ev(0), ev(1, summaryEvent=summary(changes, result))]))
        assert_ok(api.complete(upd, result))
        made.append((upd, kind, result, changes, env, i))
        # A preview between real updates does not appear in the history.
        p = api.begin(st, "preview", message="preview %d" % i)
        assert_ok(api.events(p, [ev(0, summaryEvent=summary({"same": 9}, preview=True))]))
        assert_ok(api.complete(p))
    # Running and not-started updates: the running one shows in-progress, the other not at all.
    running = api.create_update(st, "update", message="running")
    api.start(running)
    api.create_update(st, "update", message="never started")

    h = assert_ok(api.get(st.path + "/updates"))["updates"]
    assert [x["message"] for x in h] == ["running", "msg 3", "msg 2", "msg 1", "msg 0"]
    assert h[0]["result"] == "in-progress"
    for x, (upd, kind, result, changes, env, i) in zip(h[1:], reversed(made)):
        assert x["kind"] == kind
        assert x["result"] == result
        assert x["version"] == i + 1
        assert x["resourceChanges"] == changes
        assert x["environment"] == env
        assert x["config"] == {"proj:k": {"string": "v%d" % i, "secret": False, "object": False}}
        assert x["resourceCount"] == i + 3
        assert isinstance(x["startTime"], int) and isinstance(x["endTime"], int)
        assert 0 < x["startTime"] <= x["endTime"]

    # Pages, as `pulumi stack history` asks for them.
    page = lambda size, n: [x["message"] for x in  # noqa: E731
                            assert_ok(api.get(st.path + "/updates?pageSize=%d&page=%d" % (size, n)))["updates"]]
    assert page(2, 1) == ["running", "msg 3"]
    assert page(2, 2) == ["msg 2", "msg 1"]
    assert page(2, 3) == ["msg 0"]
    assert page(2, 4) == []
    assert page(10, 1) == ["running", "msg 3", "msg 2", "msg 1", "msg 0"]
    assert page(1, 5) == ["msg 0"]

    latest = assert_ok(api.get(st.path + "/updates/latest"))["info"]
    assert latest["message"] == "running" and latest["result"] == "in-progress"
    assert_ok(api.complete(running))
    latest = assert_ok(api.get(st.path + "/updates/latest"))["info"]
    assert latest["message"] == "running" and latest["result"] == "succeeded" and latest["version"] == 5


def test_history_query_errors(api):
    st = api.new_stack()
    for q in ["pageSize=abc", "pageSize=1001", "pageSize=-2", "page=-1", "page=x", "page=", "pageSize="]:
        assert_error(api.get(st.path + "/updates?" + q), 400)
    # pageSize 0 or below: the whole history, as when the CLI sends no query.
    assert assert_ok(api.get(st.path + "/updates?pageSize=0"))["updates"] == []


def test_history_environment_defaults(api):
    # No metadata at all in create: message "" and environment {}.
    st2 = api.new_stack()
    r = assert_ok(api.post(st2.path + "/update", {"options": {"dryRun": False}}))
    assert_ok(api.post("%s/update/%s" % (st2.path, r["updateID"]), {}))
    h = assert_ok(api.get(st2.path + "/updates"))["updates"]
    assert h[0]["message"] == "" and h[0]["environment"] == {} and h[0]["resourceChanges"] == {}
