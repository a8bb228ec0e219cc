"""The machine attestation API: register (EK certificate checked with OpenSSL, its SHA-384 fingerprint,
MAC and role), the one-time config token, signed image URLs, approve/lock/unlock/revoke and every illegal
transition, listing, roles and the audit trail. Test EK certificates are made here with the openssl CLI."""
import base64
import hashlib
import random
import subprocess
import urllib.parse

import pytest

from psapi import assert_error, assert_ok
from test_access import make_token

ROLES = ("controlplane", "worker-infra", "worker-app")


def ek_cert():
    """A throwaway self-signed certificate standing in for a TPM EK certificate, and its fingerprint."""
    pem = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                          "-nodes", "-keyout", "/dev/null", "-subj", "/CN=tpm-ek-test", "-days", "2"],
                         capture_output=True, check=True, text=True).stdout
    der = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
    return pem, hashlib.sha384(der).hexdigest()


def corrupt(pem):
    """The same armour around a body that is no longer a certificate."""
    lines = pem.splitlines()
    lines[2] = lines[2][::-1]
    return "\n".join(lines) + "\n"


def mac():
    return "52:54:00:%02x:%02x:%02x" % tuple(random.randrange(256) for _ in range(3))


def reg_body(role="worker-app", **over):
    pem, fp = ek_cert()
    body = {"ek_fingerprint": fp, "ek_cert_pem": pem, "hw_serial": "SN-%06d" % random.randrange(10 ** 6),
            "hw_product": "ProLiant DL360 Gen11", "hw_mac": mac(), "desired_role": role}
    body.update(over)
    return body


def register(api, **over):
    r = api.post("/api/v1/register", reg_body(**over))
    return assert_ok(r, 201)


def host():
    return "node-%06d.dc1.example.com" % random.randrange(10 ** 6)


def test_register_returns_the_machine_and_a_one_time_token(api):
    body = reg_body("controlplane", hw_mac="52-54-00-AB-CD-EF")
    m = assert_ok(api.post("/api/v1/register", body), 201)
    assert m["status"] == "pending" and m["desired_role"] == "controlplane" and m["role"] is None
    assert m["hw_mac"] == "52:54:00:ab:cd:ef" and m["ek_fingerprint"] == body["ek_fingerprint"]
    assert len(m["config_token"]) >= 64 and m["config_url"].endswith("/api/v1/machines/%s/config" % m["machine_id"])
    g = assert_ok(api.get("/api/v1/machines/" + m["machine_id"]))
    assert "config_token" not in g and g["iso_url"] == m["iso_url"]
    # Only the token's hash is kept.
    rows = api.pg.psql("SELECT config_token_hash FROM extension_pulumi_state_machines WHERE id = '%s'" % m["machine_id"])
    assert rows[0][0] == hashlib.sha256(m["config_token"].encode()).hexdigest()
    assert m["config_token"] not in str(api.pg.psql("SELECT * FROM extension_pulumi_state_audit"))


def test_register_validation(api):
    pem, fp = ek_cert()
    other_pem, _ = ek_cert()
    cases = [
        ({"ek_fingerprint": "ab" * 48, "ek_cert_pem": pem}, "does not match"),
        ({"ek_fingerprint": fp[:-2]}, "96 hex digits"),
        ({"ek_fingerprint": fp, "ek_cert_pem": "not a certificate"}, "PEM X.509"),
        ({"ek_fingerprint": fp, "ek_cert_pem": corrupt(pem)}, "does not parse"),
        ({"ek_fingerprint": fp, "ek_cert_pem": other_pem}, "does not match"),
        ({"hw_mac": "52:54:00:12:34"}, "hw_mac"),
        ({"hw_mac": "00:00:00:00:00:00"}, "hw_mac"),
        ({"hw_mac": "zz:54:00:12:34:56"}, "hw_mac"),
        ({"desired_role": "database"}, "desired_role"),
        ({"hw_serial": ""}, "hw_serial"),
        ({"hw_product": "x" * 200}, "hw_product"),
        ({"hw_serial": "a\nb"}, "control character"),
    ]
    before = api.pg.psql("SELECT count(*) FROM extension_pulumi_state_machines")
    for over, words in cases:
        body = reg_body()
        if "ek_cert_pem" not in over:
            body.update({"ek_fingerprint": fp, "ek_cert_pem": pem})
        body.update(over)
        assert words in assert_error(api.post("/api/v1/register", body), 400), over
    assert_error(api.post("/api/v1/register", raw=b"{nope"), 400)
    assert api.pg.psql("SELECT count(*) FROM extension_pulumi_state_machines") == before


def test_a_live_ek_registers_once(api):
    body = reg_body()
    m = assert_ok(api.post("/api/v1/register", body), 201)
    again = dict(body, hw_mac=mac())
    msg = assert_error(api.post("/api/v1/register", again), 409)
    assert m["machine_id"] in msg and "pending" in msg
    # Fingerprints compare case-insensitively, with or without colons.
    colons = ":".join(body["ek_fingerprint"][i:i + 2] for i in range(0, 96, 2)).upper()
    assert_error(api.post("/api/v1/register", dict(body, ek_fingerprint=colons)), 409)
    assert_ok(api.post("/api/v1/machines/%s/revoke" % m["machine_id"]))
    n = assert_ok(api.post("/api/v1/register", again), 201)
    assert n["machine_id"] != m["machine_id"]


def test_approve_lock_unlock_revoke_and_illegal_transitions(api):
    m = register(api)
    mid = m["machine_id"]
    path = "/api/v1/machines/" + mid
    for action in ("lock", "unlock"):
        assert "pending" in assert_error(api.post(path + "/" + action), 409)
    h = host()
    a = assert_ok(api.post(path + "/approve", {"role": "worker-infra", "hostname": h.upper() + ".",
                                               "assigned_ip": "10.0.0.%d" % random.randrange(2, 250)}))
    assert a["status"] == "approved" and a["role"] == "worker-infra" and a["hostname"] == h
    assert a["approved_at"] and a["revoked_at"] is None
    # The same approval again is a no-op; a different one is refused.
    same = {"role": "worker-infra", "hostname": h, "assigned_ip": a["assigned_ip"]}
    assert assert_ok(api.post(path + "/approve", same))["status"] == "approved"
    assert "already approved" in assert_error(api.post(path + "/approve", dict(same, hostname=host())), 409)
    assert assert_ok(api.post(path + "/unlock"))["status"] == "approved"  # unlocking an unlocked one: no-op
    assert assert_ok(api.post(path + "/lock"))["status"] == "locked"
    assert assert_ok(api.post(path + "/lock"))["status"] == "locked"
    assert "locked" in assert_error(api.post(path + "/approve", same), 409)
    assert assert_ok(api.post(path + "/unlock"))["status"] == "approved"
    r = assert_ok(api.post(path + "/revoke"))
    assert r["status"] == "revoked" and r["revoked_at"]
    assert assert_ok(api.post(path + "/revoke"))["status"] == "revoked"
    for action, body in (("approve", same), ("lock", None), ("unlock", None)):
        assert "revoked" in assert_error(api.post(path + "/" + action, body), 409)
    assert_error(api.post("/api/v1/machines/00000000-0000-4000-8000-000000000000/revoke"), 404)
    assert_error(api.get("/api/v1/machines/not-a-uuid"), 404)


def test_approve_validation_and_unique_names(api):
    one, two = register(api), register(api)
    p1, p2 = ["/api/v1/machines/%s/approve" % m["machine_id"] for m in (one, two)]
    for body, words in (({"role": "boss", "hostname": host()}, "role"),
                        ({"role": "worker-app", "hostname": "localhost"}, "fully qualified"),
                        ({"role": "worker-app", "hostname": "-bad.example.com"}, "fully qualified"),
                        ({"role": "worker-app", "hostname": "a..example.com"}, "fully qualified"),
                        ({"role": "worker-app", "hostname": "10.0.0.1"}, "fully qualified"),
                        ({"role": "worker-app", "hostname": host(), "assigned_ip": "10.0.0.300"}, "assigned_ip"),
                        ({"role": "worker-app", "hostname": host(), "retain": "yes"}, "retain")):
        assert words in assert_error(api.post(p1, body), 400), body
    h, ip = host(), "fd00::%x" % random.randrange(1, 65535)
    assert_ok(api.post(p1, {"role": "worker-app", "hostname": h, "assigned_ip": ip}))
    msg = assert_error(api.post(p2, {"role": "worker-app", "hostname": h.upper()}), 409)
    assert "hostname" in msg and one["machine_id"] in msg
    msg = assert_error(api.post(p2, {"role": "worker-app", "hostname": host(), "assigned_ip": ip}), 409)
    assert "address" in msg and one["machine_id"] in msg
    assert assert_ok(api.get("/api/v1/machines/" + two["machine_id"]))["status"] == "pending"
    # Once the first is revoked, its name is free again.
    assert_ok(api.post("/api/v1/machines/%s/revoke" % one["machine_id"]))
    assert assert_ok(api.post(p2, {"role": "worker-app", "hostname": h, "assigned_ip": ip}))["hostname"] == h


def test_config_document_once(api):
    m = register(api, desired_role="controlplane")
    url = "/api/v1/machines/%s/config" % m["machine_id"]
    bearer = "Bearer " + m["config_token"]
    assert_error(api.get(url, token=False), 401)
    assert_error(api.get(url, auth="Bearer " + "0" * 64), 403)
    assert "approved" in assert_error(api.get(url, auth=bearer), 409)  # pending: not consumed
    h = host()
    assert_ok(api.post("/api/v1/machines/%s/approve" % m["machine_id"], {"role": "controlplane", "hostname": h}))
    doc = assert_ok(api.get(url, auth=bearer))
    assert doc == {"machine_id": m["machine_id"], "role": "controlplane", "hostname": h,
                   "ek_fingerprint": m["ek_fingerprint"], "hw_mac": m["hw_mac"], "hw_serial": m["hw_serial"],
                   "assigned_ip": None}
    assert "fetched already" in assert_error(api.get(url, auth=bearer), 410)
    assert assert_ok(api.get("/api/v1/machines/" + m["machine_id"]))["config_fetched"] is True
    # ?token= works too; a revoked machine's configuration is gone.
    n = register(api)
    assert_ok(api.post("/api/v1/machines/%s/revoke" % n["machine_id"]))
    q = "/api/v1/machines/%s/config?token=%s" % (n["machine_id"], n["config_token"])
    assert "revoked" in assert_error(api.get(q, token=False), 410)


def test_signed_image_urls(api):
    m = register(api)
    ok = assert_ok(api.post("/api/v1/iso/verify", {"iso_url": m["iso_url"]}))
    assert ok["valid"] is True and ok["machine_id"] == m["machine_id"] and ok["expires_at"] == m["iso_expires_at"][:19] + "Z"
    u = urllib.parse.urlsplit(m["iso_url"])
    q = dict(urllib.parse.parse_qsl(u.query))
    tampered = m["iso_url"].replace("expires=" + q["expires"], "expires=%d" % (int(q["expires"]) + 3600))
    bad = assert_ok(api.post("/api/v1/iso/verify", {"iso_url": tampered}))
    assert bad["valid"] is False and "signature" in bad["reason"]
    other = register(api)
    swapped = m["iso_url"].replace(m["machine_id"], other["machine_id"])
    assert assert_ok(api.post("/api/v1/iso/verify", {"iso_url": swapped}))["valid"] is False
    assert assert_ok(api.post("/api/v1/iso/verify", {"iso_url": "https://x/y"}))["valid"] is False
    assert_error(api.post("/api/v1/iso/verify", {"iso_url": 5}), 400)
    # An expired one: the signature holds, the time does not.
    api.pg.psql("UPDATE extension_pulumi_state_machines SET iso_expires_at = now() - interval '1 minute' "
                "WHERE id = '%s'" % m["machine_id"])
    old = assert_ok(api.get("/api/v1/machines/" + m["machine_id"]))["iso_url"]
    exp = assert_ok(api.post("/api/v1/iso/verify", {"iso_url": old}))
    assert exp["valid"] is False and "expired" in exp["reason"]


def test_list_filters_and_pages(api):
    role = "worker-infra"
    mine = [register(api, desired_role=role) for _ in range(3)]
    assert_ok(api.post("/api/v1/machines/%s/approve" % mine[0]["machine_id"], {"role": role, "hostname": host()}))
    page = assert_ok(api.get("/api/v1/machines?pageSize=2&page=1"))
    assert len(page["machines"]) == 2 and page["total"] >= 3 and page["pageSize"] == 2
    assert page["machines"][0]["created_at"] >= page["machines"][1]["created_at"]
    approved = assert_ok(api.get("/api/v1/machines?status=approved&role=" + role))["machines"]
    assert mine[0]["machine_id"] in [m["machine_id"] for m in approved]
    assert all(m["status"] == "approved" for m in approved)
    far = assert_ok(api.get("/api/v1/machines?page=100000"))
    assert far["machines"] == [] and far["total"] >= 3
    assert_error(api.get("/api/v1/machines?status=sleeping"), 400)
    assert_error(api.get("/api/v1/machines?role=boss"), 400)
    assert_error(api.get("/api/v1/machines?pageSize=0"), 400)


def test_roles_scopes_and_audit(api):
    server = api.server
    _, read = make_token(server, "read")
    _, write = make_token(server, "write")
    _, admin = make_token(server, "admin")
    _, scoped = make_token(server, "admin", scope="itlusions/*/*")
    assert_error(api.post("/api/v1/register", reg_body(), token=read), 403)
    m = assert_ok(api.post("/api/v1/register", reg_body(), token=write), 201)
    path = "/api/v1/machines/" + m["machine_id"]
    assert_ok(api.get(path, token=read))
    assert_ok(api.post(path + "/approve", {"role": "worker-app", "hostname": host()}, token=write))
    assert "needs admin" in assert_error(api.post(path + "/lock", token=write), 403)
    assert "scoped" in assert_error(api.get(path, token=scoped), 403)
    assert_ok(api.post(path + "/lock", token=admin))
    assert_ok(api.post(path + "/revoke", token=admin))
    assert_error(api.get(path, token=False), 401)
    rows = api.pg.psql("SELECT action, status, detail, org FROM extension_pulumi_state_audit WHERE detail = '%s' "
                       "ORDER BY id" % m["machine_id"])
    actions = [(r[0], r[1]) for r in rows]
    assert ("machine.approve", "200") in actions and ("machine.lock", "403") in actions
    assert ("machine.lock", "200") in actions and ("machine.revoke", "200") in actions
    assert all(r[3] == "" for r in rows)
    assert api.pg.psql("SELECT status FROM extension_pulumi_state_audit WHERE action = 'machine.register' "
                       "AND detail = '%s'" % m["machine_id"]) == [["201"]]  # the row says what the reply said
