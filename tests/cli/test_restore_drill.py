"""The README's restore drill, run: stacks with secrets and history written by the real CLI, pg_dump of the
live database, pg_restore into a brand-new PostgreSQL cluster, the service started on it under the same
URL (a restore keeps the public URL: the CLI records it in each stack's secrets manager) and the same
master key; every `pulumi stack export`, secret output and history is as before, and the restored
service takes new updates."""
import json
import os
import shutil
import subprocess
import tempfile

import harness
from clilib import Cli, write_program

ORG = "itlusions"
PROGRAM = """name: drill
runtime: yaml
config:
  token:
    type: string
    secret: true
resources:
  kept:
    type: pulumi:Stash
    properties:
      input: ${token}
outputs:
  secret: ${kept.input}
"""


def test_dump_restore_into_a_fresh_cluster_keeps_every_stack():
    a = harness.Cluster(procs=1, threads=4)
    a.start()
    base_b = tempfile.mkdtemp(prefix="pulumi-state-restore-")
    os.chmod(base_b, 0o755)
    pg_b = harness.Postgres(base_b)
    server_b = None
    clis = []
    try:
        url = a.server.url
        before = {}
        for name in ("dev", "prod"):
            cli = Cli(url, token=a.server.token)
            clis.append(cli)
            write_program(cli, PROGRAM)
            cli.run("login", url)
            cli.run("stack", "init", "%s/drill/%s" % (ORG, name))
            cli.run("config", "set", "--secret", "token", "restore-me-%s" % name)
            cli.run("up", "--yes", "--skip-preview")
            cli.run("config", "set", "--secret", "token", "restore-me-%s-2" % name)
            cli.run("up", "--yes", "--skip-preview")
            before[name] = (cli.export(), json.loads(cli.run("stack", "history", "--json").stdout))

        dump = os.path.join(base_b, "pulumi-state.dump")
        subprocess.run(["pg_dump", "-Fc", "-d", a.pg.conninfo, "-f", dump], check=True)
        port = a.server.port
        a.server.stop()
        a.pg.stop()  # the old cluster is gone for good

        pg_b.start()
        subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "-d", pg_b.conninfo, dump], check=True)
        server_b = harness.Server(base_b, pg_b, a.bindir, procs=1, threads=4)
        server_b.port, server_b.token, server_b.master_key = port, a.server.token, a.server.master_key
        server_b.start()
        status, ready, raw, _ = server_b.request("GET", "/readyz")
        assert status == 200 and ready["checks"]["master_key"] == "ok", raw

        for cli, name in zip(clis, ("dev", "prod")):
            exported, history = before[name]
            assert cli.export() == exported
            assert json.loads(cli.run("stack", "history", "--json").stdout) == history
            out = json.loads(cli.run("stack", "output", "--json", "--show-secrets").stdout)
            assert out["secret"] == "restore-me-%s-2" % name
            cli.run("preview", "--expect-no-changes")
            cli.run("config", "set", "--secret", "token", "after-restore")
            cli.run("up", "--yes", "--skip-preview")
            assert json.loads(cli.run("stack", "output", "--json", "--show-secrets").stdout)["secret"] == \
                "after-restore"
    finally:
        for cli in clis:
            cli.cleanup()
        if server_b:
            server_b.stop()
        pg_b.stop()
        shutil.rmtree(base_b, ignore_errors=True)
        a.stop()
