"""The worker process itself: refusing to start, SIGTERM, PostgreSQL restarts, the API switch, base paths."""
import os
import signal
import subprocess
import tempfile

import harness


def worker_env(server, **overrides):
    env = dict(os.environ)
    env.update(server.env())
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def run_worker(server, **overrides):
    return subprocess.run([os.path.join(server.bindir, "pulumi-state-fcgi")], env=worker_env(server, **overrides),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def test_refuses_to_start_without_operator_token(server):
    env = worker_env(server)
    env.pop("ITL_PULUMI_TOKEN")
    r = subprocess.run([os.path.join(server.bindir, "pulumi-state-fcgi")], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    assert "ITL_PULUMI_TOKEN is required" in r.stderr


def test_refuses_a_wrong_master_key(server):
    r = run_worker(server, PULUMI_STATE_MASTER_KEY="11" * 32)
    assert r.returncode != 0
    assert "master key does not match" in r.stderr


def test_refuses_a_malformed_master_key(server):
    r = run_worker(server, PULUMI_STATE_MASTER_KEY="not-a-key")
    assert r.returncode != 0
    assert "master key is required" in r.stderr


def test_refuses_an_unmigrated_database(server, pg):
    pg.psql("DROP DATABASE IF EXISTS unmigrated")
    pg.psql("CREATE DATABASE unmigrated")
    conninfo = pg.conninfo.replace("dbname=postgres", "dbname=unmigrated")
    r = run_worker(server, PULUMI_STATE_DATABASE=conninfo)
    assert r.returncode != 0
    assert "pulumi-state-admin migrate" in r.stderr


def test_migrate_is_idempotent(server, pg):
    env = dict(os.environ, PULUMI_STATE_DATABASE=pg.conninfo)
    out = subprocess.run([os.path.join(server.bindir, "pulumi-state-admin"), "migrate"], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert "0 applied now" in out


def test_concurrent_migrations_apply_once(server, pg):
    pg.psql("DROP DATABASE IF EXISTS migrate_race")
    pg.psql("CREATE DATABASE migrate_race")
    conninfo = pg.conninfo.replace("dbname=postgres", "dbname=migrate_race")
    env = dict(os.environ, PULUMI_STATE_DATABASE=conninfo)
    admin = os.path.join(server.bindir, "pulumi-state-admin")
    procs = [subprocess.Popen([admin, "migrate"], env=env, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    migrations = len([f for f in os.listdir(os.path.join(harness.ROOT, "sql")) if f.endswith(".sql")])
    assert sum("(%d applied now)" % migrations in o for o in outs) == 1
    assert sum("(0 applied now)" in o for o in outs) == 3
    check = subprocess.run(["psql", "-X", "-A", "-t", "-d", conninfo, "-c",
                            "SELECT count(*) FROM extension_pulumi_state_schema WHERE name LIKE 'migration:%'"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert check == str(migrations)


def test_sigterm_stops_a_standalone_worker_cleanly(server):
    sock = os.path.join(tempfile.mkdtemp(dir=server.dir), "w.sock")
    p = subprocess.Popen([os.path.join(server.bindir, "pulumi-state-fcgi")],
                         env=worker_env(server, PULUMI_STATE_SOCKET=sock), stdin=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        harness.wait_until(lambda: os.path.exists(sock) or p.poll() is not None, "the worker socket")
        assert p.poll() is None
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        assert "shutting down" in err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_disabled_api_answers_503(cluster):
    s = harness.Server(cluster.base + "/disabled", cluster.pg, cluster.bindir, procs=1, threads=1,
                       settings={"ITL_PULUMI_ENABLED": "false"})
    s.token = cluster.server.token
    s.master_key = cluster.server.master_key
    s.port = harness.free_port()
    try:
        s.proc = subprocess.Popen(["lighttpd", "-D", "-f", s.write_config()], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        harness.wait_until(lambda: _answers(s), "the disabled server")
        status, body, _, _ = s.request("GET", "/api/user")
        assert status == 503
        assert body["code"] == 503 and "ITL_PULUMI_ENABLED" in body["message"]
    finally:
        s.stop()


def _answers(s):
    try:
        return s.request("GET", "/api/user")[0] != 0
    except OSError:
        return False


def test_base_path(cluster):
    s = harness.Server(cluster.base + "/prefixed", cluster.pg, cluster.bindir, procs=1, threads=1,
                       base_path="/pulumi")
    s.token = cluster.server.token
    s.master_key = cluster.server.master_key
    try:
        s.start()
        assert s.request("GET", "/api/user")[0] == 200
        s.base_path = ""
        status, body, _, _ = s.request("GET", "/api/user")
        assert status == 404
    finally:
        s.stop()


def test_workers_reconnect_after_postgres_restarts(server, pg):
    assert server.request("GET", "/api/user/stacks")[0] == 200
    subprocess.run(["runuser", "-u", "postgres", "--", harness.PG_BIN + "/pg_ctl", "-D", pg.data, "-m", "fast", "-w",
                    "restart", "-l", pg.log], check=True, capture_output=True)
    # Every worker thread's connection died; each must reconnect on its own, so no call fails.
    statuses = [server.request("GET", "/api/user/stacks")[0] for _ in range(20)]
    assert statuses == [200] * 20
