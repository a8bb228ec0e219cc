"""The real CLI's side of the reliability defects: numbers beyond 64 bits in every state mode (1), rename of
a stack whose resources refer to each other (5), and the CLI's version on a journaled state (9), each
compared with what the same program gives on the CLI's own file:// backend."""
import json
import os
import re
import shutil
import tempfile
import uuid

import pytest

import harness
from clilib import Cli, write_program
from test_modes import MODES, ORG, normalise, rename_stack

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# YAML floats the Go engine writes as 100000000000000000000, -0, 0.1, 1.5e-10, 1e+300 ...
NUMBERS_PROGRAM = """name: modes
runtime: yaml
resources:
  big:
    type: pulumi:Stash
    properties:
      input: {VALUE}
  many:
    type: pulumi:Stash
    properties:
      input:
        big: 1e20
        neg: -1e20
        zero: -0.0
        frac: 0.1
        tiny: 1.5e-10
        huge: 1.0e300
        exact: 9007199254740993
        list: [1e21, 123456789.125, -3.25e-7]
outputs:
  big: ${big.output}
"""

REFS_PROGRAM = """name: modes
runtime: yaml
resources:
  a:
    type: pulumi:Stash
    properties:
      input: first
  b:
    type: pulumi:Stash
    properties:
      input: ${a}
    options:
      dependsOn: ["${a}"]
  c:
    type: pulumi:Stash
    properties:
      input:
        ref: ${b}
        list: ["${a}", "${b}"]
    options:
      parent: ${a}
      deletedWith: ${b}
outputs:
  a: ${a.output}
"""


@pytest.fixture(scope="module")
def rcluster():
    c = harness.Cluster(procs=2, threads=4, settings={"PULUMI_STATE_JOURNALING": "true",
                                                      "PULUMI_STATE_CHECKPOINT_CUTOFF_BYTES": "1024"})
    c.start()
    yield c
    bad = c.server.unexplained_5xx()
    c.stop()
    assert not bad, "5xx answers no test asked for:\n" + "".join(bad[:50])


def pair(cluster, mode):
    diydir = tempfile.mkdtemp(prefix="diy-")
    ours = Cli(cluster.server.url, cluster.server.token, MODES[mode])
    theirs = Cli("file://" + diydir, None, MODES[mode])
    return ours, theirs, diydir


@pytest.mark.parametrize("mode", list(MODES))
def test_numbers_beyond_64_bits_in_every_mode(rcluster, mode):
    ours, theirs, diydir = pair(rcluster, mode)
    name = "num-%s-%s" % (mode, uuid.uuid4().hex[:6])
    full = "%s/modes/%s" % (ORG, name)
    try:
        for cli, stack in ((ours, full), (theirs, name)):
            write_program(cli, NUMBERS_PROGRAM.replace("{VALUE}", "1e20"))
            cli.run("stack", "init", stack)
            cli.run("up", "--yes", "--skip-preview", "-s", stack)
        raw = ours.run("stack", "export", "-s", full).stdout
        assert "100000000000000000000" in raw
        assert rename_stack(normalise(ours.export_for(full)), name) == rename_stack(normalise(theirs.export_for(name)),
                                                                                 name)
        # A second up on top of that state, a no-change preview, a rename, and an up after the rename.
        for cli, stack in ((ours, full), (theirs, name)):
            write_program(cli, NUMBERS_PROGRAM.replace("{VALUE}", "1e21"))
            cli.run("up", "--yes", "--skip-preview", "-s", stack)
            cli.run("preview", "--expect-no-changes", "-s", stack)
        assert rename_stack(normalise(ours.export_for(full)), name) == rename_stack(normalise(theirs.export_for(name)),
                                                                                 name)
        renamed = name + "-r"
        ours.run("stack", "rename", "%s/modes/%s" % (ORG, renamed), "-s", full)
        full = "%s/modes/%s" % (ORG, renamed)
        ours.run("preview", "--expect-no-changes", "-s", full)
        write_program(ours, NUMBERS_PROGRAM.replace("{VALUE}", "1e22"))
        ours.run("up", "--yes", "--skip-preview", "-s", full)
        # export / import round trip keeps the numbers.
        path = os.path.join(ours.project, "state.json")
        with open(path, "w") as f:
            f.write(ours.run("stack", "export", "-s", full).stdout)
        ours.run("stack", "import", "--file", path, "-s", full)
        assert "1e+22" in ours.run("stack", "export", "-s", full).stdout  # Go writes 1e22 so
        ours.run("destroy", "--yes", "--skip-preview", "-s", full)
    finally:
        ours.cleanup()
        theirs.cleanup()
        shutil.rmtree(diydir, ignore_errors=True)


@pytest.mark.parametrize("mode", ["journal", "delta"])
def test_rename_of_resources_referring_to_each_other(rcluster, mode):
    """After `pulumi stack rename`, a preview proposes what it proposes on file:// (nothing), and the renamed
    state equals file://'s renamed state."""
    ours, theirs, diydir = pair(rcluster, mode)
    name = "ren-%s-%s" % (mode, uuid.uuid4().hex[:6])
    full = "%s/modes/%s" % (ORG, name)
    try:
        for cli, stack in ((ours, full), (theirs, name)):
            write_program(cli, REFS_PROGRAM)
            cli.run("stack", "init", stack)
            cli.run("up", "--yes", "--skip-preview", "-s", stack)
        ours.run("stack", "rename", "%s/modes/%s-r" % (ORG, name), "-s", full)
        theirs.run("stack", "rename", name + "-r", "-s", name)
        full = "%s/modes/%s-r" % (ORG, name)
        r_ours = ours.run("preview", "--expect-no-changes", "-s", full, check=False)
        r_theirs = theirs.run("preview", "--expect-no-changes", "-s", name + "-r", check=False)
        assert r_ours.returncode == r_theirs.returncode, (r_ours.stdout, r_theirs.stdout)
        assert r_theirs.returncode == 0, r_theirs.stdout + r_theirs.stderr
        # Resource references carry the (random) ids of the resources they name; the engine lists
        # dependencies in the order they resolved.
        def ids(st):
            out = json.loads(UUID.sub("ID", json.dumps(normalise(st))))
            for r in out:
                r["dependencies"] = sorted(r.get("dependencies") or [])
                r["propertyDependencies"] = {k: sorted(v) for k, v in (r.get("propertyDependencies") or {}).items()}
            return out
        ours_state = ids(ours.export_for(full))
        theirs_state = ids(theirs.export_for(name + "-r"))
        assert ours_state == theirs_state
        assert name + "::" not in json.dumps(ours_state).replace(name + "-r::", "")
    finally:
        ours.cleanup()
        theirs.cleanup()
        shutil.rmtree(diydir, ignore_errors=True)


def test_journaled_state_has_the_cli_version(rcluster):
    ours, theirs, diydir = pair(rcluster, "journal")
    name = "ver-" + uuid.uuid4().hex[:6]
    full = "%s/modes/%s" % (ORG, name)
    try:
        for cli, stack in ((ours, full), (theirs, name)):
            write_program(cli, REFS_PROGRAM)
            cli.run("stack", "init", stack)
            cli.run("up", "--yes", "--skip-preview", "-s", stack)
        version = ours.run("version").stdout.strip()
        assert ours.export_for(full)["deployment"]["manifest"]["version"] == version
        assert theirs.export_for(name)["deployment"]["manifest"]["version"] == version
        assert "Pulumi version used: %s" % version in ours.run("stack", "-s", full).stdout
    finally:
        ours.cleanup()
        theirs.cleanup()
        shutil.rmtree(diydir, ignore_errors=True)


@pytest.mark.parametrize("mode", ["journal", "delta"])
def test_up_across_a_postgres_restart(rcluster, mode):
    """PostgreSQL restarts in the middle of a real `pulumi up`: the CLI's retries carry it through (503 +
    Retry-After while the database is away), the up succeeds, and the state equals an undisturbed run on
    file://."""
    import subprocess
    ours, theirs, diydir = pair(rcluster, mode)
    name = "pgr-%s-%s" % (mode, uuid.uuid4().hex[:6])
    full = "%s/modes/%s" % (ORG, name)
    resources = {"r%03d" % i: ("value-%d" % i, None) for i in range(80)}
    pg = rcluster.pg
    try:
        for cli, stack in ((ours, full), (theirs, name)):
            cli.program(resources)
            cli.run("stack", "init", stack)
        theirs.run("up", "--yes", "--skip-preview", "-s", name)
        proc = subprocess.Popen(["pulumi", "--non-interactive", "up", "--yes", "--skip-preview", "-s", full],
                                cwd=ours.project, env=ours.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        table = "journal" if mode == "journal" else "events"
        count_sql = ("SELECT count(*) FROM extension_pulumi_state_%s j JOIN extension_pulumi_state_updates u "
                     "ON u.id = j.update_id JOIN extension_pulumi_state_stacks st ON st.id = u.stack_id "
                     "WHERE st.name = '%s'" % (table, name))
        harness.wait_until(lambda: proc.poll() is not None or int(pg.psql(count_sql)[0][0]) >= 20,
                           "the up under way", timeout=300)
        assert proc.poll() is None, "the up finished before the restart: " + proc.stdout.read()
        pg.restart()
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
        assert normalise(ours.export_for(full)) == rename_stack(normalise(theirs.export_for(name)), name) or \
            rename_stack(normalise(ours.export_for(full)), name) == rename_stack(normalise(theirs.export_for(name)),
                                                                                 name)
        ours.run("preview", "--expect-no-changes", "-s", full)
        harness.record("fault", "postgres restart during a real `pulumi up` (%s mode)" % mode)
    finally:
        ours.cleanup()
        theirs.cleanup()
        shutil.rmtree(diydir, ignore_errors=True)
