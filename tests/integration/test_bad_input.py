"""Bad input of every kind gets a clear 4xx in the JSON error shape, and the stored state is left exactly as
it was (export, version, stack row, versions, updates, checkpoints, events compared before and after)."""
import gzip
import http.client
import json
import os
import zlib

import pytest

from psapi import assert_error, assert_ok, b64, gz, small_state, uid

MAX_BODY = 64 * 1024 * 1024        # the default max_body_bytes of the test cluster
MAX_INFLATED = 256 * 1024 * 1024   # the default max_inflated_bytes


@pytest.fixture
def busy(api, server):
    """A stack with two versions and a running update holding a checkpoint and events."""
    st = api.new_stack(tags={"keep": "these"})
    api.run_update(st, small_state(st, server, n=1))
    api.run_update(st, small_state(st, server, n=2))
    upd = api.begin(st)
    assert_ok(api.checkpoint(upd, small_state(st, server, n=3)))
    assert_ok(api.events(upd, [{"sequence": 0, "timestamp": 1, "stdoutEvent": {"message": "x", "color": "raw"}}]))
    before = api.snapshot(st)
    yield st, upd, before
    assert api.snapshot(st) == before, "a refused request changed the stored state"
    assert_ok(api.complete(upd))
    assert api.export(st) == {"version": 3, "deployment": small_state(st, server, n=3)}


def routes(st, upd):
    """(method, path, needs the update token) for every route that takes a JSON body."""
    return [("POST", "/api/stacks/%s/%s" % (st.org, st.project), False),
            ("PATCH", st.path + "/tags", False),
            ("POST", st.path + "/rename", False),
            ("POST", st.path + "/import", False),
            ("POST", st.path + "/encrypt", False),
            ("POST", st.path + "/decrypt", False),
            ("POST", st.path + "/batch-encrypt", False),
            ("POST", st.path + "/batch-decrypt", False),
            ("POST", st.path + "/decrypt/log-decryption", False),
            ("POST", st.path + "/update", False),
            ("POST", st.path + "/preview", False),
            ("POST", upd.path, False),
            ("POST", upd.path + "/renew_lease", True),
            ("POST", upd.path + "/complete", True),
            ("PATCH", upd.path + "/checkpoint", True),
            ("PATCH", upd.path + "/checkpointverbatim", True),
            ("PATCH", upd.path + "/checkpointdelta", True),
            ("PATCH", upd.path + "/journalentries", True),
            ("POST", upd.path + "/events/batch", True)]


def send(api, upd, method, path, needs_update, raw, headers=None):
    return api.call(method, path, raw=raw, headers=headers, update=upd if needs_update else None)


MALFORMED = [b"{", b"}", b'{"a":}', b'{"a" 1}', b"{'a': 1}", b'{"a":1,}', b"nul", b"\xff\xfe{}", b'{"a":"\xff"}',
             b'{"a":"\x01"}', b"{}{}", b'{"a":1} x', b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000]
NOT_OBJECT = [b"[]", b"[1,2]", b"1", b'"text"', b"null", b"true", b"   "]


@pytest.mark.parametrize("raw", MALFORMED + NOT_OBJECT)
def test_malformed_and_non_object_json(api, busy, raw):
    st, upd, _ = busy
    for method, path, needs_update in routes(st, upd):
        if path.endswith("/log-decryption") and raw.strip() == b"":
            continue  # an empty body is fine there (nothing to log)
        r = send(api, upd, method, path, needs_update, raw)
        assert_error(r, 400)


def test_duplicate_keys_are_refused(api, busy):
    st, upd, _ = busy
    assert_error(api.call("POST", st.path + "/encrypt", raw=b'{"plaintext":"YQ==","plaintext":"Yg=="}'), 400)
    assert_error(api.call("PATCH", st.path + "/tags", raw=b'{"a":"1","a":"2"}'), 400)
    assert_error(api.call("POST", upd.path + "/complete", raw=b'{"status":"succeeded","status":"failed"}',
                          update=upd), 400)


def test_bad_base64(api, busy):
    st, _, _ = busy
    for bad in ["!!!!", "YQ=", "YQ", "Y Q==", "YQ==YQ==", "\u00e9\u00e9\u00e9\u00e9", "YR==", "=YQ="]:
        assert_error(api.post(st.path + "/encrypt", {"plaintext": bad}), 400)
        assert_error(api.post(st.path + "/decrypt", {"ciphertext": bad}), 400)
        assert_error(api.post(st.path + "/batch-encrypt", {"plaintexts": [b64(b"ok"), bad]}), 400)
        assert_error(api.post(st.path + "/batch-decrypt", {"ciphertexts": [bad]}), 400)


@pytest.fixture(scope="module")
def gzip_bomb():
    """300 MB of zeros as a ~300 KB gzip stream, built in chunks."""
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (4 << 20)
    parts = [co.compress(zeros) for _ in range(300 * 1000 * 1000 // len(zeros) + 1)]
    parts.append(co.flush())
    bomb = b"".join(parts)
    assert len(bomb) < 1 << 20
    return bomb


def test_gzip_bomb_is_413(api, busy, gzip_bomb):
    st, upd, _ = busy
    for method, path, needs_update in [("POST", st.path + "/import", False),
                                       ("POST", st.path + "/batch-encrypt", False),
                                       ("PATCH", upd.path + "/checkpoint", True),
                                       ("POST", upd.path + "/events/batch", True)]:
        r = send(api, upd, method, path, needs_update, gzip_bomb, {"Content-Encoding": "gzip"})
        assert_error(r, 413)


def test_inflated_body_just_over_the_limit_is_413(api, busy):
    st, _, _ = busy
    co = zlib.compressobj(6, zlib.DEFLATED, 31)
    body = co.compress(b"{\"plaintexts\":[\"") + co.compress(b"A" * (MAX_INFLATED)) + co.compress(b"\"]}") + co.flush()
    assert_error(api.call("POST", st.path + "/batch-encrypt", raw=body, headers={"Content-Encoding": "gzip"}), 413)


def test_body_over_max_body_bytes_is_413(api, server, busy):
    st, _, _ = busy
    n = MAX_BODY + 1
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        conn.putrequest("POST", server.base_path + st.path + "/import")
        conn.putheader("Authorization", "token " + server.token)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(n))
        conn.endheaders()
        chunk = b" " * (1 << 20)
        sent = 0
        try:
            while sent < n:
                k = min(len(chunk), n - sent)
                conn.send(chunk[:k])
                sent += k
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading it all
        resp = conn.getresponse()
        raw = resp.read()
        assert resp.status == 413, raw[:300]
        body = json.loads(raw)
        assert body["code"] == 413 and "exceeds" in body["message"]
    finally:
        conn.close()


def test_body_at_max_body_bytes_is_read(api, server, busy):
    """Exactly max_body_bytes is allowed: the answer is about the content (not JSON), not its size."""
    st, _, _ = busy
    raw = b" " * (MAX_BODY - 1) + b"x"
    assert_error(api.call("POST", st.path + "/encrypt", raw=raw), 400, contains="JSON")


def _corrupt(data, i):
    b = bytearray(data)
    b[i] ^= 0x01
    return bytes(b)


@pytest.mark.parametrize("raw", [b"not gzip at all", b"\x1f\x8b", b"\x1f\x8b\x08\x00" + b"\0" * 20,
                                 gzip.compress(b'{"plaintext":"YQ=="}')[:-6],
                                 _corrupt(gzip.compress(b'{"plaintext":"YQ=="}'), -8),  # CRC-32
                                 _corrupt(gzip.compress(b'{"plaintext":"YQ=="}'), -4),  # ISIZE
                                 gzip.compress(b'{"plaintext":"YQ=="}') + b"trailing junk",
                                 zlib.compress(b'{"plaintext":"YQ=="}')])
def test_malformed_gzip_is_400(api, busy, raw):
    st, upd, _ = busy
    assert_error(api.call("POST", st.path + "/encrypt", raw=raw, headers={"Content-Encoding": "gzip"}), 400)
    assert_error(api.call("PATCH", upd.path + "/checkpoint", raw=raw, headers={"Content-Encoding": "gzip"},
                          update=upd), 400)
    assert_error(api.call("POST", st.path + "/import", raw=raw, headers={"Content-Encoding": "gzip"}), 400)


def test_gzip_of_bad_json_is_400(api, busy):
    st, upd, _ = busy
    assert_error(api.call("POST", st.path + "/import", raw=gzip.compress(b"{"), headers={"Content-Encoding": "gzip"}),
                 400)
    assert_error(api.call("PATCH", upd.path + "/checkpoint", raw=gzip.compress(b"[]"),
                          headers={"Content-Encoding": "gzip"}, update=upd), 400)


def test_gzip_variants_accepted(api, busy):
    st, _, _ = busy
    body = b'{"plaintext":"YQ=="}'
    for enc in ["gzip", "GZIP", "x-gzip"]:
        assert_ok(api.call("POST", st.path + "/encrypt", raw=gzip.compress(body), headers={"Content-Encoding": enc}))
    # Several gzip members are one stream.
    two = gzip.compress(body[:7]) + gzip.compress(body[7:])
    assert_ok(api.call("POST", st.path + "/encrypt", raw=two, headers={"Content-Encoding": "gzip"}))
    assert_ok(api.call("POST", st.path + "/encrypt", raw=body, headers={"Content-Encoding": "identity"}))


@pytest.mark.parametrize("enc", ["br", "deflate", "compress", "zstd", "gzip, gzip", "gzip, br", "bogus"])
def test_unsupported_content_encoding_is_415(api, busy, enc):
    st, upd, _ = busy
    body = gzip.compress(b'{"plaintext":"YQ=="}')
    assert_error(api.call("POST", st.path + "/encrypt", raw=body, headers={"Content-Encoding": enc}), 415)
    assert_error(api.call("PATCH", upd.path + "/checkpoint", raw=body, headers={"Content-Encoding": enc},
                          update=upd), 415)


BAD_NAMES = ["a" * 101, "x%20y", "a$b", "a'b", 'a"b', "a;b", "..", ".", "%2E%2E", "%2e", "a%2Fb", "%2F", "a%00b", "%00",
             "%C3%A9", "a%5Cb", "%25", "a%20", "%0a", "a*b", "a%3Fb", "a%23b"]
BAD_ORGS = BAD_NAMES + ["ab", "a" * 41, "-abc", "abc-", "_abc", "a.b.c"]


def _stack_count(pg):
    return int(pg.psql("SELECT count(*) FROM extension_pulumi_state_stacks")[0][0])


def _bad(r):
    assert r.status in (400, 404), (r.status, r.raw[:300])


def test_invalid_names_in_paths(api, pg, busy):
    st, _, _ = busy
    n0 = _stack_count(pg)
    cases = [("/api/stacks/%s/%s/%s" % (o, st.project, st.name)) for o in BAD_ORGS]
    cases += [("/api/stacks/%s/%s/%s" % (st.org, p, st.name)) for p in BAD_NAMES]
    cases += [("/api/stacks/%s/%s/%s" % (st.org, st.project, s)) for s in BAD_NAMES]
    for path in cases:
        _bad(api.get(path))
        _bad(api.get(path + "/export"))
        _bad(api.call("DELETE", path + "?force=true"))
        _bad(api.patch(path + "/tags", {"a": "b"}))
        _bad(api.post(path + "/encrypt", {"plaintext": "YQ=="}))
        _bad(api.post(path + "/update", {}))
        _bad(api.post(path + "/import", {"version": 3, "deployment": {}}))
        _bad(api.post(path + "/rename", {"newName": uid("n")}))
    for o in BAD_ORGS:
        _bad(api.post("/api/stacks/%s/%s" % (o, st.project), {"stackName": uid("s")}))
        _bad(api.call("HEAD", "/api/stacks/%s/%s" % (o, st.project)))
    for p in BAD_NAMES:
        _bad(api.post("/api/stacks/%s/%s" % (st.org, p), {"stackName": uid("s")}))
    assert _stack_count(pg) == n0


def test_invalid_names_in_bodies(api, pg, busy):
    st, _, _ = busy
    n0 = _stack_count(pg)
    for name in ["a" * 101, "x y", "a/b", "..", ".", "a\u0000b", "\u00e9", "a'b", ""]:
        assert_error(api.post("/api/stacks/%s/%s" % (st.org, st.project), {"stackName": name}), 400)
        assert_error(api.post(st.path + "/rename", {"newName": name, "newProject": st.project}), 400)
        if name:
            assert_error(api.post(st.path + "/rename", {"newName": "ok", "newProject": name}), 400)
    assert _stack_count(pg) == n0


@pytest.mark.parametrize("path,status", [
    ("/api/stacks/o1x/p/../x", 400), ("/api/stacks/o1x/p/./x", 400), ("//api/user", 400), ("/api//user", 400),
    ("/api/stacks//p/s", 400), ("/api/stacks/o1x/p/s//export", 400), ("/api/stacks/o1x/p/s%2F..%2F..", 400),
    ("/api/stacks/o1x/p/%2e%2e/x", 400), ("/api/%2e%2e/api/user", 400), ("/api/stacks/o1x/p/s/%zz", 400),
    ("/api/stacks/o1x/p/s/%", 400), ("/api/nothing", 404), ("/api/stacks", 404), ("/api/stacks/o1x", 404),
    ("/api/stacks/o1x/p/s/unknown", 404), ("/api/stacks/o1x/p/s/update/u/nope", 404), ("/api/user/other", 404),
    ("/api/stacks/o1x/p/s/export/1/2", 404), ("/api/" + "a/" * 40, 400), ("/", 404), ("/api", 404),
    ("/api/USER", 404), ("/api/stacks/o1x/p/s/Export", 404),
])
def test_path_tricks(api, path, status):
    r = api.get(path)
    assert r.status == status, (path, r.status, r.raw[:200])


def test_trailing_slash_is_tolerated(api):
    st = api.new_stack()
    assert assert_ok(api.get(st.path + "/"))["stackName"] == st.name
    assert_ok(api.get("/api/user/"))


@pytest.mark.parametrize("method,suffix", [
    ("PUT", "/api/user"), ("POST", "/api/user"), ("DELETE", "/api/user/stacks"), ("POST", "/api/capabilities"),
    ("GET", "{project}"), ("DELETE", "{project}"), ("PUT", "{stack}"), ("POST", "{stack}"), ("PATCH", "{stack}"),
    ("GET", "{stack}/tags"), ("PUT", "{stack}/tags"), ("GET", "{stack}/rename"), ("GET", "{stack}/import"),
    ("POST", "{stack}/export"), ("DELETE", "{stack}/export/1"), ("GET", "{stack}/encrypt"),
    ("GET", "{stack}/batch-decrypt"), ("GET", "{stack}/decrypt/log-decryption"), ("GET", "{stack}/update"),
    ("GET", "{stack}/preview"), ("POST", "{stack}/updates"), ("DELETE", "{stack}/updates/latest"),
    ("DELETE", "{update}"), ("PUT", "{update}"), ("GET", "{update}/cancel"), ("POST", "{update}/events"),
    ("GET", "{update}/renew_lease"), ("GET", "{update}/complete"), ("POST", "{update}/checkpoint"),
    ("GET", "{update}/checkpointverbatim"), ("PUT", "{update}/checkpointdelta"), ("POST", "{update}/journalentries"),
    ("GET", "{update}/events/batch"),
])
def test_wrong_method_is_405(api, method, suffix):
    st = api.new_stack()
    path = suffix.format(project="/api/stacks/%s/%s" % (st.org, st.project), stack=st.path,
                         update="%s/update/%s" % (st.path, "0" * 8 + "-0000-0000-0000-" + "0" * 12))
    before = api.snapshot(st)
    assert_error(api.call(method, path), 405)
    assert api.snapshot(st) == before


def test_no_5xx_for_odd_query_strings(api, busy):
    st, upd, _ = busy
    for q in ["force", "force=", "force=maybe", "force=true&force=false", "%zz", "a=%", "=", "&&&", "x=" + "y" * 5000]:
        r = api.call("DELETE", "%s/%s?%s" % (st.path.rsplit("/", 1)[0], uid("nostack"), q))
        assert r.status in (400, 404), (q, r.status)
        r = api.get(st.path + "/updates?" + q)
        assert r.status in (200, 400), (q, r.status)
        r = api.get(upd.path + "/events?" + q)
        assert r.status in (200, 400), (q, r.status)
    # Only force=true forces: anything else refuses to delete a stack with an update running.
    for q in ["force", "force=", "force=TRUE", "force=1", "force=yes"]:
        assert_error(api.call("DELETE", "%s?%s" % (st.path, q)), 409)


def test_big_but_valid_checkpoint(api, server):
    """A 20 MB state (well under the limits) goes through the whole path and back."""
    st = api.new_stack()
    upd = api.begin(st)
    d = small_state(st, server, n=1)
    d["resources"][2]["outputs"]["blob"] = b64(os.urandom(15 * 1024 * 1024))
    assert_ok(api.checkpoint(upd, d, gzip_body=True))
    assert_ok(api.complete(upd))
    # Each big answer makes the worker thread swap its PostgreSQL connection for a fresh one (to
    # give libpq's buffers back); every thread must go on serving, including the hot statements.
    for _ in range(12):
        assert api.export(st, 1)["deployment"] == d
    upd = api.begin(st)
    d["resources"][2]["outputs"]["blob"] = "small now"
    assert_ok(api.checkpoint(upd, d))
    assert_ok(api.complete(upd))
    assert api.export(st, 2)["deployment"] == d


def test_errors_keep_a_persistent_connection_usable(api, server, busy, gzip_bomb):
    """The CLI reuses connections: error answers (even ones given without reading the body) must leave the
    connection in step."""
    st, _, _ = busy
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    h = {"Authorization": "token " + server.token, "Content-Type": "application/json",
         "Accept": "application/vnd.pulumi+9"}
    try:
        for method, path, body, extra, status in [
                ("GET", "/api/user", None, {}, 200),
                ("POST", st.path + "/encrypt", b"{bad", {}, 400),
                ("POST", st.path + "/import", gzip_bomb, {"Content-Encoding": "gzip"}, 413),
                ("POST", st.path + "/encrypt", b"{}", {"Content-Encoding": "br"}, 415),
                ("GET", st.path + "/nope", None, {}, 404),
                ("PUT", "/api/user", b"{}", {}, 405),
                ("POST", st.path + "/encrypt", b'{"plaintext":"YQ=="}', {}, 200),
                ("GET", "/api/user", None, {}, 200)]:
            conn.request(method, server.base_path + path, body=body, headers=dict(h, **extra))
            resp = conn.getresponse()
            raw = resp.read()
            assert resp.status == status, (method, path, resp.status, raw[:200])
            if status >= 400:
                assert json.loads(raw)["code"] == status
    finally:
        conn.close()


def test_chunked_request_body(api, server, busy):
    """A body sent with Transfer-Encoding: chunked (no Content-Length) is read like any other."""
    st, _, _ = busy
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("POST", server.base_path + st.path + "/encrypt", body=iter([b'{"plaintext":', b'"YQ=="}']),
                     headers={"Authorization": "token " + server.token, "Content-Type": "application/json"},
                     encode_chunked=True)
        resp = conn.getresponse()
        raw = resp.read()
        assert resp.status == 200, raw[:300]
        assert json.loads(raw)["ciphertext"]
    finally:
        conn.close()
