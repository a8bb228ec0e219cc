"""The real CLI in all three state modes (journal, verbatim+delta, full checkpoints) against
pulumi-state, compared after every `up` with what the same program gives on the CLI's own
file:// backend, resource for resource; and switching modes on one stack."""
import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

import harness
from clilib import Cli

ORG = "itlusions"
MODES = {
    "journal": {},
    "delta": {"PULUMI_DISABLE_JOURNALING": "true"},
    "full": {"PULUMI_DISABLE_JOURNALING": "true", "PULUMI_OPTIMIZED_CHECKPOINT_PATCH": "false"},
}
# Fields that differ between any two runs of the same program.
VOLATILE = ("created", "modified", "id", "sourcePosition", "stackTrace")


@pytest.fixture(scope="module")
def mode_cluster():
    # Journaling accepted and a small delta cutoff, so every mode is really exercised.
    c = harness.Cluster(procs=2, threads=4, settings={"PULUMI_STATE_JOURNALING": "true",
                                                      "PULUMI_STATE_CHECKPOINT_CUTOFF_BYTES": "1024"})
    c.start()
    # The CLI runs with a scoped write token, as a team's pipeline would, not the operator token.
    env = dict(os.environ, PULUMI_STATE_DATABASE=c.pg.conninfo)
    c.cli_token = subprocess.run([os.path.join(c.bindir, "pulumi-state-admin"), "token", "create", "--name",
                                  "modes-ci", "--role", "write", "--scope", "%s/modes/*" % ORG], env=env, check=True,
                                 capture_output=True, text=True).stdout.strip()
    yield c
    bad = c.server.unexplained_5xx()
    c.stop()
    assert not bad, "5xx answers no test asked for:\n" + "".join(bad[:50])


def normalise(state):
    """Resources without run-specific fields, URNs made independent of the stack name."""
    out = []
    for r in state["deployment"].get("resources") or []:
        r = {k: v for k, v in r.items() if k not in VOLATILE}
        if "provider" in r:
            r["provider"] = r["provider"].rsplit("::", 1)[0]
        out.append(r)
    # The engine registers resources concurrently, so order may differ between two runs.
    out.sort(key=lambda r: r["urn"])
    text = json.dumps(out, sort_keys=True)
    return json.loads(text.replace("::modes::", "::P::"))


def rename_stack(state, stack):
    return json.loads(json.dumps(state).replace("urn:pulumi:%s::" % stack, "urn:pulumi:S::").replace(
        "modes-%s" % stack, "modes-S"))


STEPS = [
    # create
    {"a": ("one", None), "b": ({"x": 1, "y": [1, 2]}, None), "c": ("keep", None)},
    # in-place update and an addition
    {"a": ("two", None), "b": ({"x": 2, "y": [1, 2, 3]}, None), "c": ("keep", None), "d": ("new", None)},
    # replace (replaceOnChanges) and delete-before-replace
    {"a": ("three", {"replaceOnChanges": ["input"]}), "b": ({"x": 2, "y": [1, 2, 3]}, None),
     "c": ("keep-2", {"replaceOnChanges": ["input"], "deleteBeforeReplace": True}), "d": ("new", None)},
    # delete
    {"a": ("three", {"replaceOnChanges": ["input"]}), "d": ("new", None)},
]


def converge(server_cli, diy_cli, server_stack, diy_stack, resources):
    server_cli.program(resources)
    diy_cli.program(resources)
    server_cli.run("up", "--yes", "--skip-preview", "-s", server_stack)
    diy_cli.run("up", "--yes", "--skip-preview", "-s", diy_stack)
    ours = rename_stack(normalise(server_cli.export_for(server_stack)), server_stack.split("/")[-1])
    theirs = rename_stack(normalise(diy_cli.export_for(diy_stack)), diy_stack)
    assert ours == theirs


@pytest.mark.parametrize("mode", list(MODES))
def test_mode_matches_diy_backend(mode_cluster, mode):
    s = mode_cluster.server
    name = "m-%s-%s" % (mode, uuid.uuid4().hex[:6])
    diydir = tempfile.mkdtemp(prefix="diy-")
    ours = Cli(s.url, mode_cluster.cli_token, MODES[mode])
    theirs = Cli("file://" + diydir, None, MODES[mode])
    try:
        full = "%s/modes/%s" % (ORG, name)
        ours.program(STEPS[0])
        theirs.program(STEPS[0])
        ours.run("stack", "init", full)
        theirs.run("stack", "init", name)
        for step in STEPS:
            converge(ours, theirs, full, name, step)
        # The mode really was used.
        rows = mode_cluster.pg.psql(
            "SELECT u.journal_version, coalesce(u.checkpoint_mode, '') FROM extension_pulumi_state_updates u "
            "JOIN extension_pulumi_state_stacks s ON s.id = u.stack_id WHERE s.name = '%s' AND NOT u.dry_run" % name)
        if mode == "journal":
            assert all(r[0] == "1" for r in rows)
        else:
            assert all(r[0] == "0" for r in rows)
        ours.run("destroy", "--yes", "--skip-preview", "-s", full)
        assert normalise(ours.export_for(full)) == []
    finally:
        ours.cleanup()
        theirs.cleanup()
        shutil.rmtree(diydir, ignore_errors=True)


def test_switching_modes_on_one_stack(mode_cluster):
    s = mode_cluster.server
    name = "switch-" + uuid.uuid4().hex[:6]
    diydir = tempfile.mkdtemp(prefix="diy-")
    theirs = Cli("file://" + diydir)
    clis = {m: Cli(s.url, mode_cluster.cli_token, env) for m, env in MODES.items()}
    try:
        full = "%s/modes/%s" % (ORG, name)
        order = ["full", "delta", "journal", "full", "journal", "delta"]
        clis[order[0]].program(STEPS[0])
        clis[order[0]].run("stack", "init", full)
        theirs.program(STEPS[0])
        theirs.run("stack", "init", name)
        programs = STEPS + [STEPS[1], STEPS[0]]
        for mode, resources in zip(order, programs):
            converge(clis[mode], theirs, full, name, resources)
        versions = mode_cluster.pg.psql(
            "SELECT version FROM extension_pulumi_state_stacks WHERE name = '%s'" % name)
        assert versions == [[str(len(order))]]
    finally:
        for c in clis.values():
            c.cleanup()
        theirs.cleanup()
        shutil.rmtree(diydir, ignore_errors=True)


def test_killed_cli_mid_up_keeps_what_it_did(mode_cluster):
    """Journal mode: kill -9 the CLI in the middle of an `up`; `pulumi cancel` ends the update and
    the state holds every resource it created plus the operations it left in flight; a refresh
    clearing those and a new `up` converge."""
    s, pg = mode_cluster.server, mode_cluster.pg
    name = "killed-" + uuid.uuid4().hex[:6]
    full = "%s/modes/%s" % (ORG, name)
    cli = Cli(s.url, mode_cluster.cli_token)
    resources = {"r%03d" % i: ("value-%d" % i, None) for i in range(150)}
    try:
        cli.program(resources)
        cli.run("stack", "init", full)
        proc = subprocess.Popen(["pulumi", "--non-interactive", "up", "--yes", "--skip-preview", "-s", full],
                                cwd=cli.project, env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        count_sql = ("SELECT count(*) FROM extension_pulumi_state_journal j JOIN extension_pulumi_state_updates u "
                     "ON u.id = j.update_id JOIN extension_pulumi_state_stacks st ON st.id = u.stack_id "
                     "WHERE st.name = '%s' AND u.status = 'running'" % name)
        try:
            harness.wait_until(lambda: proc.poll() is not None or int(pg.psql(count_sql)[0][0]) >= 60,
                               "journal entries of the running update", timeout=300)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)  # the CLI and its language host: the group we started
            proc.wait()
        running = pg.psql("SELECT u.id FROM extension_pulumi_state_updates u JOIN extension_pulumi_state_stacks st "
                          "ON st.id = u.stack_id WHERE st.name = '%s' AND u.status = 'running' AND NOT u.dry_run"
                          % name)
        assert running, "the CLI finished before it could be killed"
        entries = [json.loads(r[0]) for r in pg.psql(
            "SELECT convert_from(entry, 'UTF8') FROM extension_pulumi_state_journal WHERE update_id = '%s' "
            "ORDER BY sequence_id" % running[0][0])]
        created = {e["state"]["urn"] for e in entries if e["kind"] == 1 and e.get("state")}
        begun = {e["operationID"] for e in entries if e["kind"] == 0 and e.get("operation")}
        ended = {e["operationID"] for e in entries if e["kind"] in (1, 2)}
        in_flight = begun - ended

        # The stack is held by the dead CLI's lease until cancelled.
        r = cli.run("up", "--yes", "--skip-preview", "-s", full, check=False)
        assert r.returncode != 0 and "Another update is currently in progress" in r.stderr + r.stdout
        cli.run("cancel", "--yes", "-s", full)
        state = cli.export_for(full)["deployment"]
        have = {res["urn"] for res in state.get("resources") or []}
        assert created <= have and len(created) > 0
        assert len(state.get("pending_operations") or []) == len(in_flight)

        cli.run("refresh", "--yes", "--clear-pending-creates", "-s", full)
        cli.run("up", "--yes", "--skip-preview", "-s", full)
        state = cli.export_for(full)["deployment"]
        stashes = [res for res in state["resources"] if res["type"] == "pulumi:index:Stash"]
        assert len(stashes) == len(resources)
        assert not state.get("pending_operations")
        assert "no changes" in cli.run("preview", "-s", full).stdout.lower() or \
            "unchanged" in cli.run("preview", "-s", full).stdout
    finally:
        cli.cleanup()
