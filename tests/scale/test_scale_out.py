"""Scale-out: two web servers at once (lighttpd and Apache 2.4), three worker processes each, on one PostgreSQL
reached through PgBouncer in transaction-pooling mode (prepared_statements=false), and two deploy agents
(one on a direct connection with LISTEN, one through the pooler polling: agent_listen=false). Eight real
CLIs run up/up/refresh/destroy on eight stacks, alternating front ends, while two CLIs race on one shared
stack through different front ends and deployments run: every stack ends as a sequential run leaves it,
every lost race is a clean 409, no answer is a 5xx."""
import json
import os
import re
import shutil
import sys
import tempfile
import threading

import pytest

import harness

sys.path.insert(0, os.path.join(harness.ROOT, "tests", "cli"))
from clilib import Cli, cli_dir, make_repo  # noqa: E402

ORG = "itlusions"


def program(project, stage):
    """Stage 1: a, b, c; stage 2: a changed, b kept, c deleted, d added (a Stash resource each)."""
    values = {1: {"a": "one", "b": "same", "c": "gone-later"}, 2: {"a": "two", "b": "same", "d": "new"}}[stage]
    lines = ["name: %s" % project, "runtime: yaml", "resources:"]
    for name, value in values.items():
        lines += ["  %s:" % name, "    type: pulumi:Stash", "    properties:", "      input: %s" % json.dumps(value)]
    lines += ["outputs:", "  names: %s" % json.dumps(sorted(values)), "  a: ${a.input}"]
    return "\n".join(lines) + "\n"


def normalized(export, project, stack):
    """The state without what differs between any two runs (ids, times, names of the stack)."""
    out = []
    for r in export["deployment"].get("resources") or []:
        urn = r["urn"].replace("%s::%s" % (stack, project), "S::P").replace("%s-%s" % (project, stack), "P-S")
        out.append({"urn": urn, "type": r["type"],
                    "inputs": r.get("inputs"), "outputs": r.get("outputs")})
    assert not export["deployment"].get("pending_operations"), export["deployment"]["pending_operations"]
    return sorted(out, key=lambda r: r["urn"])


def lifecycle(url, token, project, stack="dev"):
    """up (stage 1), up (stage 2), refresh: the state then; destroy: nothing left."""
    cli = Cli(url, token=token)
    try:
        with open(os.path.join(cli.project, "Pulumi.yaml"), "w") as f:
            f.write(program(project, 1))
        cli.run("login", url)
        full = "%s/%s/%s" % (ORG, project, stack)
        cli.run("stack", "init", full)
        cli.run("config", "set", "--secret", "pw", "s3cret-%s" % project)
        cli.run("up", "--yes", "--skip-preview")
        with open(os.path.join(cli.project, "Pulumi.yaml"), "w") as f:
            f.write(program(project, 2))
        cli.run("up", "--yes", "--skip-preview")
        cli.run("refresh", "--yes", "--skip-preview")
        exported = cli.export()
        assert "s3cret-%s" % project not in json.dumps(exported)
        state = normalized(exported, project, stack)
        cli.run("destroy", "--yes", "--skip-preview")
        assert not cli.export()["deployment"].get("resources")
        return state
    finally:
        cli.cleanup()


def up_once(url, token, project, stack="dev"):
    """One up of stage 2 on a new stack: the state then (what each of the racers' runs should leave)."""
    cli = Cli(url, token=token)
    try:
        with open(os.path.join(cli.project, "Pulumi.yaml"), "w") as f:
            f.write(program(project, 2))
        cli.run("login", url)
        cli.run("stack", "init", "%s/%s/%s" % (ORG, project, stack))
        cli.run("up", "--yes", "--skip-preview")
        return normalized(cli.export(), project, stack)
    finally:
        cli.cleanup()


@pytest.fixture(scope="module")
def farm():
    base = tempfile.mkdtemp(prefix="pulumi-state-scale-")
    os.chmod(base, 0o755)
    bindir = os.environ.get("PULUMI_STATE_BINDIR") or os.path.join(harness.ROOT, "build")
    pg = harness.Postgres(base)
    pg.start()
    bouncer = harness.PgBouncer(base, pg).start()
    pooled = {"PULUMI_STATE_DATABASE": bouncer.conninfo, "PULUMI_STATE_PREPARED_STATEMENTS": "false",
              "PULUMI_STATE_DEPLOY_ALLOW_FILE_URLS": "true"}
    servers, agents = [], []
    try:
        for fe in ("lighttpd", "apache"):
            d = os.path.join(base, fe)
            os.makedirs(d)
            servers.append(harness.Server(d, pg, bindir, procs=3, threads=4, settings=pooled, frontend=fe,
                                          base_path=""))
        servers[0].migrate()  # on a direct connection: it holds a session advisory lock
        for s in servers[1:]:
            s.token, s.master_key = servers[0].token, servers[0].master_key
        for s in servers:
            s.start()
        # Both agents give their runs one URL (the CLI records it in each stack's secrets manager).
        direct = harness.Agent(servers[0], path_dirs=[cli_dir()])
        polled = harness.Agent(servers[1], path_dirs=[cli_dir()], extra=dict(
            pooled, PULUMI_STATE_AGENT_LISTEN="false", PULUMI_STATE_PRUNE_INTERVAL="0",
            PULUMI_STATE_PUBLIC_URL=servers[0].url))
        agents = [direct.start(), polled.start()]
        yield servers, agents, bouncer
    finally:
        for a in agents:
            a.stop()
        for s in servers:
            s.stop()
        bouncer.stop()
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_two_front_ends_pooler_eight_clis_a_race_and_agents(farm):
    servers, agents, bouncer = farm
    token = servers[0].token
    # What a run alone leaves: the reference.
    reference = lifecycle(servers[0].url, token, "alone")
    assert [r["type"] for r in reference].count("pulumi:index:Stash") == 3

    results, errors = {}, []

    def worker(i):
        try:
            results[i] = lifecycle(servers[i % 2].url, token, "scale%d" % i)
        except BaseException as e:  # reported below, with the others
            errors.append("stack %d: %s" % (i, e))

    # The shared stack: made first, then raced by two CLIs on different front ends.
    shared = "%s/shared/race" % ORG
    racers = []
    for s in servers:
        cli = Cli(s.url, token=token)
        with open(os.path.join(cli.project, "Pulumi.yaml"), "w") as f:
            f.write(program("shared", 2))
        for other in servers:  # credentials for both URLs (see test_compose)
            cli.run("login", other.url)
        cli.run("login", s.url)
        racers.append(cli)
    racers[0].run("stack", "init", shared)
    for cli in racers:
        cli.run("stack", "select", shared)
    race_runs = []

    def racer(cli):
        for _ in range(3):
            r = cli.run("up", "--yes", "--skip-preview", check=False)
            race_runs.append(r)

    # Deployments at the same time, queued through both front ends, run by both agents.
    repos = tempfile.mkdtemp(prefix="pulumi-state-scale-repos-")
    queued, url_of = [], {}
    for k in range(2):
        api = servers[k].request
        status, _, raw, _ = api("POST", "/api/stacks/%s/deployed%d" % (ORG, k), body={"stackName": "dev"},
                                token=token)
        assert status == 200, raw
        url = url_of[k] = make_repo(repos, "deployed%d" % k, program("deployed%d" % k, 2))
        for n in range(2):
            status, d, raw, _ = servers[n].request("POST", "/api/stacks/%s/deployed%d/dev/deployments" % (ORG, k),
                                                   body={"operation": "update", "source": {"repoURL": url}},
                                                   token=token)
            assert status == 202, raw
            queued.append((k, d["id"]))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    threads += [threading.Thread(target=racer, args=(cli,)) for cli in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=1200)
    assert not errors, "\n\n".join(errors)
    for i in range(8):
        assert results[i] == reference, "stack %d differs from the sequential run" % i

    # The race: each run either succeeded or lost cleanly with the 409 the CLI shows.
    assert len(race_runs) == 6
    for r in race_runs:
        if r.returncode != 0:
            assert "[409] Conflict: Another update is currently in progress." in r.stdout + r.stderr, \
                r.stdout + r.stderr
    assert any(r.returncode == 0 for r in race_runs)
    assert normalized(racers[0].export(), "shared", "race") == up_once(servers[1].url, token, "shared", "race2")
    assert servers[0].pg.psql("SELECT count(*) FROM extension_pulumi_state_stacks WHERE active_update IS NOT NULL")[0][0] == "0"
    for cli in racers:
        cli.cleanup()

    # The deployments: all succeeded, each once, by either agent.
    for k, did in queued:
        path = "/api/stacks/%s/deployed%d/dev/deployments/%s" % (ORG, k, did)
        harness.wait_until(lambda: servers[0].request("GET", path, token=token)[1]["status"]
                           not in ("queued", "running"), "deployment %s to end" % did, timeout=300)
        d = servers[1].request("GET", path, token=token)[1]
        assert d["status"] == "succeeded", d
    rows = servers[0].pg.psql("SELECT count(*), count(DISTINCT agent) FROM extension_pulumi_state_deployments")
    assert int(rows[0][0]) == 4

    # The pooled agent alone (the direct one stopped): it polls through PgBouncer, claims and runs.
    agents[0].stop()
    status, d, raw, _ = servers[1].request("POST", "/api/stacks/%s/deployed0/dev/deployments" % ORG,
                                           body={"operation": "update", "source": {"repoURL": url_of[0]}},
                                           token=token)
    assert status == 202, raw
    path = "/api/stacks/%s/deployed0/dev/deployments/%s" % (ORG, d["id"])
    harness.wait_until(lambda: servers[1].request("GET", path, token=token)[1]["status"] not in ("queued", "running"),
                       "the pooled agent's deployment to end", timeout=300)
    assert servers[1].request("GET", path, token=token)[1]["status"] == "succeeded"
    ran_by = servers[0].pg.psql("SELECT agent FROM extension_pulumi_state_deployments WHERE id = :'p1'", d["id"])
    assert ran_by[0][0].endswith(":%d" % agents[1].proc.pid), ran_by
    shutil.rmtree(repos, ignore_errors=True)

    # No 5xx from any worker of either front end; the pooler really pooled (fewer server connections).
    for s in servers:
        assert not s.unexplained_5xx(), "".join(s.unexplained_5xx()[:20])
        assert not s.sanitizer_reports()
    assert re.search(r"pool_mode\s*=\s*transaction", open(os.path.join(bouncer.dir, "pgbouncer.ini")).read())
