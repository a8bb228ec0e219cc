"""pulumi-state-admin check-config: every problem of a config file and environment at once, before a deploy."""
import os
import subprocess

import harness


def check(server, conf=None, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_STATE_", "ITL_PULUMI_"))}
    e.update(env)
    args = [os.path.join(server.bindir, "pulumi-state-admin")] + (["-c", conf] if conf else []) + ["check-config"]
    return subprocess.run(args, env=e, capture_output=True, text=True)


def test_a_good_configuration(server):
    r = check(server, PULUMI_STATE_DATABASE=server.pg.conninfo, ITL_PULUMI_TOKEN=server.token,
              PULUMI_STATE_MASTER_KEY=server.master_key, PULUMI_STATE_PUBLIC_URL=server.url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok: the schema is current" in r.stdout and "ok: the master key matches the database" in r.stdout
    assert r.stdout.rstrip().endswith("the configuration is good")


def test_every_problem_at_once(server, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("threads = 4\nthraeds = 8\nmax_body_bytes = lots\nlog_format = xml\n"
                    "master_key_file = %s\npublic_url = state.example.com\n" % (tmp_path / "missing.key"))
    r = check(server, str(conf), PULUMI_STATE_DATABASE=server.pg.conninfo, PULUMI_STATE_LEASE_TTL="abc",
              PULUMI_STATE_TRHEADS="3")
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    for words in ("unknown setting 'thraeds'", "invalid value for max_body_bytes", "PULUMI_STATE_LEASE_TTL",
                  "PULUMI_STATE_TRHEADS: no such setting", "no operator token", "missing.key cannot be read"):
        assert words in out, (words, out)
    # The rules between settings report the first broken one.
    assert "log_format must be text or json" in out
    assert out.rstrip().endswith("problems")


def test_wrong_key_and_unreachable_database(server):
    r = check(server, PULUMI_STATE_DATABASE=server.pg.conninfo, ITL_PULUMI_TOKEN="x",
              PULUMI_STATE_MASTER_KEY="ab" * 32)
    assert r.returncode == 1 and "does not match this database" in r.stdout
    r = check(server, PULUMI_STATE_DATABASE="host=127.0.0.1 port=%d connect_timeout=5" % harness.free_port(),
              ITL_PULUMI_TOKEN="x", PULUMI_STATE_MASTER_KEY="ab" * 32)
    assert r.returncode == 1 and "the database is unreachable" in r.stdout
