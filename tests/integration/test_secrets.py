"""The service secrets manager: encrypt/decrypt, batches, per-stack keys, rename, delete + recreate."""
import base64
import os

import pytest

from psapi import Stack, assert_error, assert_ok, b64, gz, uid

PLAINTEXTS = [b"", b"s3cr3t", b'"\\"quoted json\\""', os.urandom(32), bytes(range(256)), "h\u00e9llo \u2603".encode(),
              b"x" * 100000]


def enc(api, st, pt):
    ct = assert_ok(api.post(st.path + "/encrypt", {"plaintext": b64(pt)}))["ciphertext"]
    assert isinstance(ct, str) and ct
    base64.b64decode(ct, validate=True)  # standard base64 with padding
    return ct


def dec(api, st, ct):
    return base64.b64decode(assert_ok(api.post(st.path + "/decrypt", {"ciphertext": ct}))["plaintext"])


def test_round_trip(api):
    st = api.new_stack()
    for pt in PLAINTEXTS:
        ct = enc(api, st, pt)
        assert base64.b64decode(ct) != pt
        assert dec(api, st, ct) == pt
    # Fresh ciphertexts each time are fine; both decrypt.
    a, b = enc(api, st, b"same"), enc(api, st, b"same")
    assert dec(api, st, a) == dec(api, st, b) == b"same"


def test_batch_round_trip(api):
    st = api.new_stack()
    r = assert_ok(api.post(st.path + "/batch-encrypt", {"plaintexts": [b64(p) for p in PLAINTEXTS]}))
    cts = r["ciphertexts"]
    assert isinstance(cts, list) and len(cts) == len(PLAINTEXTS)
    # gzip, as the CLI sends batches; the answer maps each exact ciphertext string to its plaintext.
    r = assert_ok(api.call("POST", st.path + "/batch-decrypt", raw=gz({"ciphertexts": cts}),
                           headers={"Content-Encoding": "gzip"}))
    m = r["plaintexts"]
    assert set(m) == set(cts)
    for ct, pt in zip(cts, PLAINTEXTS):
        assert base64.b64decode(m[ct]) == pt
    # Batch and single calls interoperate.
    assert dec(api, st, cts[1]) == PLAINTEXTS[1]
    single = enc(api, st, b"one")
    m = assert_ok(api.post(st.path + "/batch-decrypt", {"ciphertexts": [single, single]}))["plaintexts"]
    assert m == {single: b64(b"one")}
    r = assert_ok(api.call("POST", st.path + "/batch-encrypt", raw=gz({"plaintexts": [b64(b"z")]}),
                           headers={"Content-Encoding": "gzip"}))
    assert dec(api, st, r["ciphertexts"][0]) == b"z"


def test_empty_batches(api):
    st = api.new_stack()
    assert assert_ok(api.post(st.path + "/batch-encrypt", {"plaintexts": []})) == {"ciphertexts": []}
    assert assert_ok(api.post(st.path + "/batch-decrypt", {"ciphertexts": []})) == {"plaintexts": {}}


def test_ciphertext_of_another_stack_is_refused(api):
    a, b = api.new_stack(), api.new_stack()
    ct = enc(api, a, b"for a only")
    assert_error(api.post(b.path + "/decrypt", {"ciphertext": ct}), 400)
    assert_error(api.post(b.path + "/batch-decrypt", {"ciphertexts": [enc(api, b, b"ok"), ct]}), 400)
    # Same name in another project is another stack too.
    c = api.new_stack(project=uid("proj"), name=a.name)
    assert_error(api.post(c.path + "/decrypt", {"ciphertext": ct}), 400)
    assert dec(api, a, ct) == b"for a only"


def test_tampered_or_foreign_ciphertexts(api):
    st = api.new_stack()
    ct = enc(api, st, b"payload")
    raw = bytearray(base64.b64decode(ct))
    for i in (0, len(raw) // 2, len(raw) - 1):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        r = api.post(st.path + "/decrypt", {"ciphertext": base64.b64encode(bytes(bad)).decode()})
        assert_error(r, 400)
    for junk in ["", b64(b"x"), b64(os.urandom(64)), b64(b"v1:abc:def")]:
        assert_error(api.post(st.path + "/decrypt", {"ciphertext": junk}), 400)


def test_still_decrypts_after_rename(api):
    st = api.new_stack()
    cts = [enc(api, st, b"before rename %d" % i) for i in range(3)]
    new = Stack(st.org, uid("newproj"), uid("renamed"))
    assert_ok(api.post(st.path + "/rename", {"newName": new.name, "newProject": new.project}))
    for i, ct in enumerate(cts):
        assert dec(api, new, ct) == b"before rename %d" % i
    m = assert_ok(api.post(new.path + "/batch-decrypt", {"ciphertexts": cts}))["plaintexts"]
    assert [base64.b64decode(m[c]) for c in cts] == [b"before rename %d" % i for i in range(3)]
    assert_error(api.post(st.path + "/decrypt", {"ciphertext": cts[0]}), 404)


def test_delete_and_recreate_forgets_the_key(api):
    st = api.new_stack()
    ct = enc(api, st, b"old secret")
    assert_ok(api.call("DELETE", st.path + "?force=true"))
    assert_error(api.post(st.path + "/decrypt", {"ciphertext": ct}), 404)
    api.new_stack(st.project, st.org, st.name)
    assert_error(api.post(st.path + "/decrypt", {"ciphertext": ct}), 400)
    assert_error(api.post(st.path + "/batch-decrypt", {"ciphertexts": [ct]}), 400)
    # The new stack has a working key of its own.
    assert dec(api, st, enc(api, st, b"new secret")) == b"new secret"


def test_log_decryption(api):
    st = api.new_stack()
    assert api.post(st.path + "/decrypt/log-decryption", {"secretName": "proj:apiKey"}).status == 200
    assert api.post(st.path + "/decrypt/log-batch-decryption", {"commandName": "pulumi stack output"}).status == 200
    assert api.call("POST", st.path + "/decrypt/log-decryption", raw=b"").status == 200
    assert_error(api.post("/api/stacks/%s/%s/%s/decrypt/log-decryption" % (st.org, st.project, uid("no")),
                          {"secretName": "x"}), 404)
    assert_error(api.call("POST", st.path + "/decrypt/log-batch-decryption", raw=b"{"), 400)


@pytest.mark.parametrize("route,body", [
    ("/encrypt", {}), ("/encrypt", {"plaintext": None}), ("/encrypt", {"plaintext": 5}),
    ("/encrypt", {"plaintext": "not base64!"}), ("/encrypt", {"plaintext": "abc"}), ("/encrypt", {"plaintext": "a==="}),
    ("/decrypt", {}), ("/decrypt", {"ciphertext": 1}), ("/decrypt", {"ciphertext": "%%%"}),
    ("/batch-encrypt", {}), ("/batch-encrypt", {"plaintexts": "x"}), ("/batch-encrypt", {"plaintexts": [1]}),
    ("/batch-encrypt", {"plaintexts": ["YQ==", "!!"]}),
    ("/batch-decrypt", {}), ("/batch-decrypt", {"ciphertexts": {}}), ("/batch-decrypt", {"ciphertexts": [None]}),
    ("/batch-decrypt", {"ciphertexts": ["@@@"]}),
])
def test_secrets_bad_input(api, route, body):
    st = api.new_stack()
    before = api.snapshot(st)
    assert_error(api.post(st.path + route, body), 400)
    for raw in [b"", b"[]", b"{"]:
        assert_error(api.call("POST", st.path + route, raw=raw), 400)
    assert api.snapshot(st) == before


def test_secrets_of_unknown_stack(api):
    path = "/api/stacks/%s/%s/%s" % (api.org, uid("p"), uid("s"))
    assert_error(api.post(path + "/encrypt", {"plaintext": b64(b"x")}), 404)
    assert_error(api.post(path + "/decrypt", {"ciphertext": b64(b"x")}), 404)
    assert_error(api.post(path + "/batch-encrypt", {"plaintexts": []}), 404)
    assert_error(api.post(path + "/batch-decrypt", {"ciphertexts": []}), 404)
