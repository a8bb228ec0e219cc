"""Access control: API tokens with roles and scopes, expiry and revocation, the audit trail,
master-key rotation."""
import base64
import os
import subprocess
import threading
import uuid

import harness

ORG = "itlusions"


def admin(server_or_pg, *args, env=None, check=True):
    pg = getattr(server_or_pg, "pg", server_or_pg)
    bindir = getattr(server_or_pg, "bindir", os.environ.get("PULUMI_STATE_BINDIR") or os.path.join(harness.ROOT, "build"))
    e = dict(os.environ, PULUMI_STATE_DATABASE=pg.conninfo, **(env or {}))
    return subprocess.run([os.path.join(bindir, "pulumi-state-admin")] + list(args), env=e, capture_output=True,
                          text=True, check=check)


def make_token(server, role, scope=None, expires=None):
    name = "%s-%s" % (role, uuid.uuid4().hex[:8])
    args = ["token", "create", "--name", name, "--role", role]
    if scope:
        args += ["--scope", scope]
    if expires:
        args += ["--expires", expires]
    token = admin(server, *args).stdout.strip()
    assert token.startswith("pst_")
    return name, token


def new_stack(server, project="acl", name=None):
    name = name or "s-" + uuid.uuid4().hex[:10]
    st, body, _, _ = server.request("POST", "/api/stacks/%s/%s" % (ORG, project), {"stackName": name})
    assert st == 200, body
    return "/api/stacks/%s/%s/%s" % (ORG, project, name)


def is_error(resp, status):
    st, body, _, _ = resp
    assert st == status, (st, body)
    assert body["code"] == status and isinstance(body["message"], str)
    return body["message"]


def test_token_login_name_and_listing(server):
    name, token = make_token(server, "read")
    st, body, _, _ = server.request("GET", "/api/user", token=token)
    assert st == 200 and body["githubLogin"] == name
    out = admin(server, "token", "list").stdout
    line = [l for l in out.splitlines() if l.startswith(name)][0]
    assert " read " in line and "active" in line
    assert token not in out
    rows = server.pg.psql("SELECT token_hash FROM extension_pulumi_state_tokens WHERE name = '%s'" % name)
    assert rows[0][0] != token and len(rows[0][0]) == 64


def test_read_role(server):
    path = new_stack(server)
    _, token = make_token(server, "read")
    assert server.request("GET", path, token=token)[0] == 200
    assert server.request("GET", path + "/export", token=token)[0] == 200
    assert server.request("GET", path + "/updates", token=token)[0] == 200
    assert server.request("GET", "/api/user/stacks", token=token)[0] == 200
    before = server.request("GET", path)[1]
    assert "role read" in is_error(server.request("PATCH", path + "/tags", {"a": "b"}, token=token), 403)
    is_error(server.request("POST", path + "/encrypt", {"plaintext": "YQ=="}, token=token), 403)
    is_error(server.request("POST", path + "/batch-decrypt", {"ciphertexts": []}, token=token), 403)
    is_error(server.request("POST", path + "/update", {"options": {"dryRun": False}}, token=token), 403)
    is_error(server.request("POST", path + "/import", {"version": 3, "deployment": {}}, token=token), 403)
    is_error(server.request("POST", "/api/stacks/%s/acl" % ORG, {"stackName": "x" + uuid.uuid4().hex[:6]},
                            token=token), 403)
    is_error(server.request("DELETE", path + "?force=true", token=token), 403)
    assert server.request("GET", path)[1] == before


def test_write_role(server):
    path = new_stack(server)
    _, token = make_token(server, "write")
    assert server.request("PATCH", path + "/tags", {"team": "a"}, token=token)[0] == 200
    st, body, _, _ = server.request("POST", path + "/encrypt", {"plaintext": "YQ=="}, token=token)
    assert st == 200
    assert server.request("POST", path + "/decrypt", {"ciphertext": body["ciphertext"]}, token=token)[1] == \
        {"plaintext": "YQ=="}
    st, _, _, _ = server.request("POST", "/api/stacks/%s/acl" % ORG, {"stackName": "w" + uuid.uuid4().hex[:6]},
                                 token=token)
    assert st == 200
    is_error(server.request("DELETE", path + "?force=true", token=token), 403)
    is_error(server.request("POST", path + "/rename", {"newName": "zz", "newProject": "acl"}, token=token), 403)
    assert server.request("GET", path)[0] == 200


def test_admin_role(server):
    path = new_stack(server)
    _, token = make_token(server, "admin")
    new = "r-" + uuid.uuid4().hex[:8]
    assert server.request("POST", path + "/rename", {"newName": new, "newProject": "acl"}, token=token)[0] == 200
    assert server.request("DELETE", "/api/stacks/%s/acl/%s?force=false" % (ORG, new), token=token)[0] == 200


def start_update(server, path, token):
    st, body, _, _ = server.request("POST", path + "/update", {"options": {"dryRun": False}, "config": {},
                                                                "metadata": {}}, token=token)
    assert st == 200, body
    uid = body["updateID"]
    st, body, _, _ = server.request("POST", "%s/update/%s" % (path, uid), {}, token=token)
    assert st == 200, body
    return uid, body["token"]


def test_cancelling_someone_elses_update_needs_admin(server):
    path = new_stack(server)
    _, alice = make_token(server, "write")
    _, bob = make_token(server, "write")
    _, root = make_token(server, "admin")
    uid, _ = start_update(server, path, alice)
    assert "admin" in is_error(server.request("POST", "%s/update/%s/cancel" % (path, uid), token=bob), 403)
    assert server.request("GET", path)[1]["activeUpdate"] == uid
    assert server.request("POST", "%s/update/%s/cancel" % (path, uid), token=root)[0] == 200
    uid2, _ = start_update(server, path, alice)
    assert server.request("POST", "%s/update/%s/cancel" % (path, uid2), token=alice)[0] == 200


def test_scope_globs(server):
    proj_a, proj_b = "sa" + uuid.uuid4().hex[:6], "sb" + uuid.uuid4().hex[:6]
    in_a = new_stack(server, proj_a)
    in_b = new_stack(server, proj_b)
    _, token = make_token(server, "write", scope="%s/%s/*" % (ORG, proj_a))
    assert server.request("GET", in_a, token=token)[0] == 200
    assert "scope" in is_error(server.request("GET", in_b, token=token), 403)
    is_error(server.request("GET", in_b + "/export", token=token), 403)
    is_error(server.request("POST", in_b + "/encrypt", {"plaintext": "YQ=="}, token=token), 403)
    is_error(server.request("POST", "/api/stacks/%s/%s" % (ORG, proj_b), {"stackName": "nope"}, token=token), 403)
    assert server.request("POST", "/api/stacks/%s/%s" % (ORG, proj_a), {"stackName": "yes"}, token=token)[0] == 200
    st, body, _, _ = server.request("GET", "/api/user/stacks", token=token)
    projects = {s["projectName"] for s in body["stacks"]}
    assert projects == {proj_a}
    is_error(server.request("POST", in_a + "/rename", {"newName": "x", "newProject": proj_b}, token=token), 403)
    _, one = make_token(server, "read", scope="%s/%s/y?s" % (ORG, proj_a))
    assert server.request("GET", "/api/stacks/%s/%s/yes" % (ORG, proj_a), token=one)[0] == 200
    assert server.request("GET", in_a, token=one)[0] == 403


def test_expired_token_refused(server, pg):
    name, token = make_token(server, "read", expires="30d")
    assert server.request("GET", "/api/user", token=token)[0] == 200
    pg.psql("UPDATE extension_pulumi_state_tokens SET expires_at = now() - interval '1 second' WHERE name = '%s'"
            % name)
    assert "expired" in is_error(server.request("GET", "/api/user", token=token), 401)


def test_revoke_is_seen_by_every_worker_at_once(server):
    name, token = make_token(server, "write")
    # Warm every worker thread with the token first.
    assert all(server.request("GET", "/api/user", token=token)[0] == 200 for _ in range(16))
    admin(server, "token", "revoke", name)
    results = []
    threads = [threading.Thread(target=lambda: results.append(server.request("GET", "/api/user", token=token)[0]))
               for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [401] * 16
    assert "revoked" in admin(server, "token", "list").stdout


def test_token_admin_errors(server):
    assert admin(server, "token", "create", "--name", "x", "--role", "root", check=False).returncode == 2
    assert admin(server, "token", "create", "--name", "operator", "--role", "read", check=False).returncode == 2
    assert admin(server, "token", "create", "--name", "x", "--role", "read", "--scope", "a/[b]/c",
                 check=False).returncode == 2
    assert admin(server, "token", "create", "--name", "x", "--role", "read", "--expires", "soon",
                 check=False).returncode == 2
    assert admin(server, "token", "revoke", "no-such-token", check=False).returncode == 1
    name, _ = make_token(server, "read")
    r = admin(server, "token", "create", "--name", name, "--role", "read", check=False)
    assert r.returncode == 1 and "exists" in r.stderr


def audit_rows(pg, request_id):
    return pg.psql("SELECT actor, action, coalesce(org, ''), coalesce(project, ''), coalesce(stack, ''), status, "
                   "client_addr FROM extension_pulumi_state_audit WHERE request_id = '%s'" % request_id)


def test_audit_rows(server, pg):
    name, token = make_token(server, "write")
    stack = "a-" + uuid.uuid4().hex[:8]
    path = "/api/stacks/%s/acl/%s" % (ORG, stack)

    def call(method, p, body=None, status=200, action=None, tok=token):
        st, b, _, h = server.request(method, p, body, token=tok)
        assert st == status, b
        rows = audit_rows(pg, h["X-Pulumi-Request-ID"])
        if action is None:
            assert rows == []
        else:
            assert rows == [[name if tok == token else "operator", action, ORG, "acl", stack, str(status),
                             "127.0.0.1"]]
        return b

    call("POST", "/api/stacks/%s/acl" % ORG, {"stackName": stack}, action="stack.create")
    call("PATCH", path + "/tags", {"k": "v"}, action="stack.tags")
    ct = call("POST", path + "/encrypt", {"plaintext": base64.b64encode(b"audit-secret").decode()},
              action="secrets.encrypt")["ciphertext"]
    call("POST", path + "/decrypt", {"ciphertext": ct}, action="secrets.decrypt")
    call("POST", path + "/batch-decrypt", {"ciphertexts": [ct]}, action="secrets.batch-decrypt")
    call("POST", path + "/decrypt/log-decryption", {"secretName": "x"}, action="secrets.log-decryption")
    call("POST", path + "/decrypt/log-batch-decryption", {"commandName": "x"}, action="secrets.log-batch-decryption")
    call("GET", path, action=None)
    uid = call("POST", path + "/update", {"options": {"dryRun": False}}, action=None)["updateID"]
    lease = call("POST", "%s/update/%s" % (path, uid), {}, action="update.start")["token"]
    st, _, _, h = server.request("POST", "%s/update/%s/renew_lease" % (path, uid), {"duration": 300},
                                 auth="update-token " + lease)
    assert st == 200 and audit_rows(pg, h["X-Pulumi-Request-ID"]) == []
    st, _, _, h = server.request("PATCH", "%s/update/%s/checkpoint" % (path, uid),
                                 {"version": 3, "deployment": {"manifest": {}, "resources": []}},
                                 auth="update-token " + lease)
    assert st == 200 and audit_rows(pg, h["X-Pulumi-Request-ID"]) == []
    call("POST", "%s/update/%s/cancel" % (path, uid), action="update.cancel")
    call("POST", path + "/import", {"version": 3, "deployment": {"manifest": {}}}, action="stack.import")
    call("POST", path + "/rename", {"newName": "x", "newProject": "acl"}, status=403, action="stack.rename")
    call("DELETE", path + "?force=true", status=403, action="stack.delete")
    call("DELETE", path + "?force=true", action="stack.delete", tok=server.token)
    # Secrets and tokens never reach the audit trail or the logs.
    dump = "\n".join("\t".join(r) for r in pg.psql("SELECT * FROM extension_pulumi_state_audit"))
    assert token not in dump and "audit-secret" not in dump and ct not in dump
    logs = server.logs()
    assert token not in logs and base64.b64encode(b"audit-secret").decode() not in logs
    out = admin(server, "audit", "--stack", "%s/acl/%s" % (ORG, stack)).stdout
    assert "stack.create" in out and "update.start" in out and "stack.delete" in out
    assert "token.create" not in out
    assert "token.create" in admin(server, "audit", "--limit", "100000").stdout


def test_master_key_rotation_while_serving():
    """Rotate with a worker pool that holds both keys and keeps serving; afterwards a worker
    with only the new key decrypts every secret and one with only the old key is refused."""
    c = harness.Cluster(procs=1, threads=4)
    c.start()
    try:
        s1 = c.server
        old, new = s1.master_key, os.urandom(32).hex()
        paths, cts = [], {}
        for i in range(5):
            path = new_stack(s1, "rot")
            paths.append(path)
            ct = s1.request("POST", path + "/encrypt", {"plaintext": base64.b64encode(b"v%d" % i).decode()})[1]
            cts[path] = (ct["ciphertext"], base64.b64encode(b"v%d" % i).decode())
        # Workers holding the new key and the old one, as the runbook says.
        s2 = harness.Server(c.base + "/both", c.pg, c.bindir, procs=1, threads=4,
                            settings={"PULUMI_STATE_OLD_MASTER_KEY": old})
        s2.token, s2.master_key = s1.token, new
        s2.start()
        created_during = new_stack(s2, "rot")
        errors, stop = [], threading.Event()

        def load():
            while not stop.is_set():
                for p, (ct, pt) in cts.items():
                    st, body, _, _ = s2.request("POST", p + "/decrypt", {"ciphertext": ct})
                    if st != 200 or body["plaintext"] != pt:
                        errors.append((st, body))
        workers = [threading.Thread(target=load) for _ in range(3)]
        for w in workers:
            w.start()
        kdir = os.path.join(c.base, "keys")
        os.makedirs(kdir)
        open(os.path.join(kdir, "old"), "w").write(old + "\n")
        open(os.path.join(kdir, "new"), "w").write(new + "\n")
        out = admin(c.pg, "rotate-master-key", "--old-key-file", os.path.join(kdir, "old"), "--new-key-file",
                    os.path.join(kdir, "new"), env={"PULUMI_STATE_BINDIR": c.bindir}).stdout
        stop.set()
        for w in workers:
            w.join()
        assert errors == []
        assert "re-wrapped 5 stack keys (1 were already under the new key)" in out
        s2.stop()
        s1.stop()
        # Only the new key now.
        s3 = harness.Server(c.base + "/new", c.pg, c.bindir, procs=1, threads=2)
        s3.token, s3.master_key = s1.token, new
        s3.start()
        for p, (ct, pt) in cts.items():
            assert s3.request("POST", p + "/decrypt", {"ciphertext": ct})[1] == {"plaintext": pt}
        assert s3.request("POST", created_during + "/encrypt", {"plaintext": "YQ=="})[0] == 200
        s3.stop()
        env = dict(os.environ, **s1.env())
        r = subprocess.run([os.path.join(c.bindir, "pulumi-state-fcgi")], env=env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        assert r.returncode != 0 and "master key does not match" in r.stderr
        # A rotation from a key the database does not know is refused, changing nothing.
        open(os.path.join(kdir, "stranger"), "w").write(os.urandom(32).hex())
        before = c.pg.psql("SELECT id, secrets_key FROM extension_pulumi_state_stacks ORDER BY id")
        r = admin(c.pg, "rotate-master-key", "--old-key-file", os.path.join(kdir, "stranger"), "--new-key-file",
                  os.path.join(kdir, "stranger"), check=False)
        assert r.returncode == 1 and "neither key matches" in r.stderr
        assert c.pg.psql("SELECT id, secrets_key FROM extension_pulumi_state_stacks ORDER BY id") == before
    finally:
        c.stop()
