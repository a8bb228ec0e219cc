"""Concurrent calls on one stack: one lock holder, no lost or torn state, no 5xx."""
import concurrent.futures
import json

from psapi import Stack, assert_error, assert_ok, small_state, uid

CONFLICT = "Conflict: Another update is currently in progress."


def parallel(n, fn):
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        return list(ex.map(fn, range(n)))


def test_concurrent_starts_have_one_winner(api):
    st = api.new_stack()
    upds = [api.create_update(st, "update") for _ in range(8)]
    results = parallel(8, lambda i: api.post(upds[i].path, {}))
    winners = [u for u, r in zip(upds, results) if r.status == 200]
    assert len(winners) == 1, [r.status for r in results]
    for r in results:
        if r.status != 200:
            assert_error(r, 409, exact=CONFLICT)
    win = winners[0]
    r = [r for r in results if r.status == 200][0]
    win.token = r.json["token"]
    assert r.json["version"] == 1
    assert api.stack(st)["activeUpdate"] == win.id
    assert_ok(api.complete(win))
    assert api.stack(st)["version"] == 1


def test_concurrent_creates_of_one_name(api):
    project, name = uid("proj"), uid("stack")
    results = parallel(6, lambda i: api.post("/api/stacks/%s/%s" % (api.org, project), {"stackName": name,
                                                                                          "tags": {"n": str(i)}}))
    assert sorted(r.status for r in results) == [200] + [409] * 5
    for r in results:
        if r.status == 409:
            assert_error(r, 409, contains="already exists")


def test_parallel_checkpoints_and_readers(api, server):
    st = api.new_stack()
    upd = api.begin(st)
    states = [small_state(st, server, n=i + 1) for i in range(12)]
    docs = [{"version": 3, "deployment": d} for d in states]

    def work(i):
        if i % 2:
            return ("w", api.checkpoint(upd, states[i], gzip_body=bool(i % 4 == 1)))
        return ("r", api.get(st.path + "/export"))

    for kind, r in parallel(12, work):
        assert r.status == 200, r.raw[:300]
        if kind == "r":
            doc = json.loads(r.raw)  # never torn
            assert doc in docs or doc["deployment"]["manifest"]["time"] == "0001-01-01T00:00:00Z"
    last = api.export(st)
    assert last in docs
    assert_ok(api.complete(upd))
    assert api.export(st, 1) == last


def test_concurrent_imports(api, server):
    st = api.new_stack()
    states = [{"version": 3, "deployment": small_state(st, server, n=i + 1)} for i in range(5)]
    results = parallel(5, lambda i: api.post(st.path + "/import", states[i]))
    assert [r.status for r in results] == [200] * 5
    assert len({r.json["updateId"] for r in results}) == 5
    assert api.stack(st)["version"] == 5
    seen = [api.export(st, v) for v in range(1, 6)]
    assert sorted(json.dumps(s, sort_keys=True) for s in seen) == sorted(json.dumps(s, sort_keys=True)
                                                                         for s in states)
    assert api.export(st) == seen[-1]


def test_complete_racing_cancel(api, server):
    st = api.new_stack()
    for _ in range(3):
        upd = api.begin(st)
        assert_ok(api.checkpoint(upd, small_state(st, server, n=2)))
        v0 = api.stack(st)["version"]
        res = parallel(2, lambda i: api.complete(upd) if i == 0 else api.post(upd.path + "/cancel"))
        # Exactly one of them ended the update; the other found it ended.
        assert sorted(r.status for r in res) in ([200, 409], [200, 200]), [r.status for r in res]
        assert api.stack(st)["version"] == v0 + 1
        assert "currentOperation" not in api.stack(st)


def test_concurrent_renames_of_one_stack(api, server):
    st = api.new_stack()
    api.run_update(st, small_state(st, server, n=1))
    names = [uid("r") for _ in range(4)]
    results = parallel(4, lambda i: api.post(st.path + "/rename", {"newName": names[i], "newProject": st.project}))
    ok = [n for n, r in zip(names, results) if r.status == 200]
    assert len(ok) == 1, [r.status for r in results]
    for r in results:
        if r.status != 200:
            assert_error(r, 404)
    new = Stack(st.org, st.project, ok[0])
    assert api.export(new) == {"version": 3, "deployment": small_state(new, server, n=1)}
