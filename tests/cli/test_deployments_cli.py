"""Server-side deployments end to end: the real agent (pulumi-state-agent) clones local bare git repositories
(file://) and runs the real Pulumi CLI against this same backend; queued over the API with curl's body (the
original design's flow) and with `pulumi deployment run` from the real CLI."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import harness
from clilib import Cli, cli_dir, make_repo

ORG = "itlusions"

GOOD = """name: %(project)s
runtime: yaml
resources:
  first:
    type: pulumi:Stash
    properties:
      input: hello
  second:
    type: pulumi:Stash
    properties:
      input: ${first.output}
outputs:
  out: ${second.output}
"""

BAD = """name: %(project)s
runtime: yaml
resources:
  broken:
    type: pulumi:NoSuchThing
"""


@pytest.fixture(scope="module")
def env():
    if not shutil.which("git"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "git"], check=True)
    c = harness.Cluster(procs=1, threads=4, settings={"PULUMI_STATE_DEPLOY_ALLOW_FILE_URLS": "true"})
    c.start()
    repos = tempfile.mkdtemp(prefix="pulumi-state-repos-")
    agent = harness.Agent(c.server, path_dirs=[cli_dir()]).start()
    yield c, agent, repos
    agent.stop()
    shutil.rmtree(repos, ignore_errors=True)
    c.stop()


def api(c, method, path, body=None, headers=None):
    return c.server.request(method, path, body=body, token=c.server.token, headers=headers)


def new_stack(c, project, name="dev"):
    status, _, raw, _ = api(c, "POST", "/api/stacks/%s/%s" % (ORG, project), {"stackName": name})
    assert status == 200, raw
    return "/api/stacks/%s/%s/%s" % (ORG, project, name)


def wait_terminal(c, stack, did, timeout=300):
    """Follow the deployment until it ends (bounded; the agent is woken by NOTIFY)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, d, _, _ = api(c, "GET", stack + "/deployments/" + did)
        if d["status"] not in ("queued", "running"):
            return d
        time.sleep(0.2)
    raise AssertionError("deployment %s did not end" % did)


def assert_succeeded(c, stack, did, timeout=300):
    d = wait_terminal(c, stack, did, timeout)
    if d["status"] != "succeeded":
        raise AssertionError("deployment %s %s (%s):\n%s" % (did, d["status"], d.get("reason"), "".join(
            l["line"] for l in read_logs(c, stack, did))[-4000:]))
    return d


def read_logs(c, stack, did):
    lines, token = [], ""
    while True:
        _, page, _, _ = api(c, "GET", stack + "/deployments/%s/logs?continuationToken=%s" % (did, token))
        lines += page["lines"]
        if page["nextToken"] == "":
            return lines
        token = page["nextToken"]


def test_curl_flow_update_then_destroy(env):
    c, agent, repos = env
    url = make_repo(repos, "curl", GOOD % {"project": "dcurl"})
    stack = new_stack(c, "dcurl")
    status, d, raw, _ = api(c, "POST", stack + "/deployments",
                            {"operation": "update", "source": {"repoURL": url, "branch": "main"},
                             "environmentVariables": {"HIDDEN": {"secret": "do-not-show-7d1e"}}})
    assert status == 202, raw
    done = wait_terminal(c, stack, d["id"])
    lines = read_logs(c, stack, d["id"])
    text = "".join(l["line"] for l in lines)
    assert done["status"] == "succeeded", text
    assert done["exitCode"] == 0
    assert any(l.get("header") == "pulumi update" for l in lines)
    assert all(l["line"] == "" or l["line"].endswith("\n") for l in lines)
    assert "first" in text and "second" in text
    _, st, _, _ = api(c, "GET", stack + "/export")
    urns = [r["urn"] for r in st["deployment"]["resources"]]
    assert any(u.endswith("::first") for u in urns) and any(u.endswith("::second") for u in urns)
    # Step mode: the step whose header is "pulumi update", a page at a time.
    steps = [l["header"] for l in lines if l.get("header")]
    k = steps.index("pulumi update")
    _, page, _, _ = api(c, "GET", stack + "/deployments/%s/logs?job=0&step=%d&offset=0&count=2" % (d["id"], k))
    assert page["name"] == "pulumi update" and len(page["lines"]) == 2 and page["nextOffset"] == 2
    assert api(c, "GET", stack + "/deployments/%s/logs?job=0&step=%d&count=500" % (d["id"], k))[0] == 400
    assert api(c, "GET", stack + "/deployments/%s/logs?job=0&step=99" % d["id"])[0] == 404
    _, ups, _, _ = api(c, "GET", stack + "/deployments/%s/updates" % d["id"])
    assert len(ups) == 1 and ups[0]["version"] == 1
    # The secret value is in no response, no log line, no audit row.
    assert "do-not-show-7d1e" not in text
    assert "do-not-show-7d1e" not in api(c, "GET", stack + "/deployments")[2].decode()
    assert not c.pg.psql("SELECT 1 FROM extension_pulumi_state_audit WHERE detail LIKE '%do-not-show%'")
    status, d2, raw, _ = api(c, "POST", stack + "/deployments",
                             {"operation": "destroy", "source": {"repoURL": url, "branch": "main"}})
    assert status == 202, raw
    done = wait_terminal(c, stack, d2["id"])
    assert done["status"] == "succeeded", "".join(l["line"] for l in read_logs(c, stack, d2["id"]))
    _, st, _, _ = api(c, "GET", stack + "/export")
    assert not st["deployment"].get("resources")
    # The deployment's token ended with it.
    assert c.pg.psql("SELECT revoked_at IS NOT NULL FROM extension_pulumi_state_tokens WHERE name = 'deploy-%s'"
                     % d2["id"]) == [["t"]]


def test_preview_and_refresh_operations(env):
    """The two operations besides update and destroy: a preview changes nothing; a refresh after an update
    runs `pulumi refresh`, makes the next version and is linked to it."""
    c, agent, repos = env
    url = make_repo(repos, "ops", GOOD % {"project": "dops"})
    stack = new_stack(c, "dops")

    def run(op):
        status, d, raw, _ = api(c, "POST", stack + "/deployments", {"operation": op, "source": {"repoURL": url}})
        assert status == 202, raw
        done = assert_succeeded(c, stack, d["id"])
        assert done["operation"] == op
        lines = read_logs(c, stack, d["id"])
        assert any(l.get("header") == "pulumi " + op for l in lines), lines
        return d["id"], "".join(l["line"] for l in lines)

    _, text = run("preview")
    assert "first" in text and "create" in text
    assert api(c, "GET", stack)[1]["version"] == 0  # no version made
    run("update")
    _, before, _, _ = api(c, "GET", stack + "/export")
    rid, _ = run("refresh")
    _, ups, _, _ = api(c, "GET", stack + "/deployments/%s/updates" % rid)
    assert [u["version"] for u in ups] == [2], ups
    assert api(c, "GET", stack)[1]["version"] == 2
    _, after, _, _ = api(c, "GET", stack + "/export")
    assert [r["urn"] for r in after["deployment"]["resources"]] == [r["urn"] for r in before["deployment"]["resources"]]
    _, hist, _, _ = api(c, "GET", stack + "/updates?pageSize=10&page=1")
    kinds = sorted(u["kind"] for u in hist["updates"])
    assert kinds == ["refresh", "update"], kinds


def test_failing_program_and_unclonable_repository(env):
    c, agent, repos = env
    url = make_repo(repos, "bad", BAD % {"project": "dbad"})
    stack = new_stack(c, "dbad")
    _, d, _, _ = api(c, "POST", stack + "/deployments", {"operation": "update", "source": {"repoURL": url}})
    done = wait_terminal(c, stack, d["id"])
    assert done["status"] == "failed" and done["exitCode"] != 0
    _, d, _, _ = api(c, "POST", stack + "/deployments",
                     {"operation": "update", "source": {"repoURL": "file://" + repos + "/missing.git"}})
    done = wait_terminal(c, stack, d["id"])
    assert done["status"] == "failed"
    assert "could not be cloned" in "".join(l["line"] for l in read_logs(c, stack, d["id"]))


def test_cancel_queued_and_running(env):
    c, agent, repos = env
    url = make_repo(repos, "slow", GOOD % {"project": "dslow"})
    stack = new_stack(c, "dslow")
    gate = os.path.join(repos, "never")
    # The first waits in a pre-run command (the workload, not the test, waits); the second queues behind it.
    _, first, _, _ = api(c, "POST", stack + "/deployments",
                         {"operation": "update", "sourceContext": {"git": {"repoUrl": url, "branch": "main"}},
                          "operationContext": {"preRunCommands": ["echo waiting; while [ ! -e %s ]; do sleep 0.1; "
                                                                  "done" % gate], "operation": ""}})
    _, second, _, _ = api(c, "POST", stack + "/deployments", {"operation": "update", "source": {"repoURL": url}})
    harness.wait_until(lambda: any("waiting" in l["line"] for l in api(c, "GET", stack + "/deployments/%s/logs"
                                                                       % first["id"])[1]["lines"]),
                       "the first deployment to run", timeout=120)
    assert api(c, "GET", stack + "/deployments/" + second["id"])[1]["status"] == "queued"
    assert api(c, "POST", stack + "/deployments/%s/cancel" % second["id"])[0] == 200
    assert api(c, "GET", stack + "/deployments/" + second["id"])[1]["status"] == "cancelled"
    assert api(c, "POST", stack + "/deployments/%s/cancel" % first["id"])[0] == 200
    done = wait_terminal(c, stack, first["id"])
    assert done["status"] == "cancelled"
    # The stack is free: the real CLI updates it.
    cli = Cli(c.server.url, token=c.server.token)
    try:
        with open(os.path.join(cli.project, "Pulumi.yaml"), "w") as f:
            f.write(GOOD % {"project": "dslow"})
        cli.run("stack", "select", "%s/dslow/dev" % ORG)
        cli.run("up", "--yes", "--skip-preview")
    finally:
        cli.cleanup()


def test_pulumi_deployment_run(env):
    c, agent, repos = env
    url = make_repo(repos, "cli", GOOD % {"project": "dcli"})
    new_stack(c, "dcli")
    cli = Cli(c.server.url, token=c.server.token)
    try:
        r = cli.run("deployment", "run", "update", url, "--git-branch", "main", "--stack", "%s/dcli/dev" % ORG,
                    "--suppress-stream-logs=false", "--env-secret", "SEKRIT=hush-91f2", check=False)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out
        assert "hush-91f2" not in out
        _, lst, _, _ = api(c, "GET", "/api/stacks/%s/dcli/dev/deployments" % ORG)
        assert lst["deployments"][0]["status"] == "succeeded"
        assert lst["deployments"][0]["initiator"] == "automation-api"
        r = cli.run("deployment", "list", "--stack", "%s/dcli/dev" % ORG, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        did = lst["deployments"][0]["id"]
        for args in (["get", did], ["log", did], ["log", "1", "--job", "0", "--step", "0"]):
            r = cli.run("deployment", *args, "--stack", "%s/dcli/dev" % ORG, check=False)
            assert r.returncode == 0, (args, r.stdout + r.stderr)
        assert "pulumi:pulumi:Stack" in cli.run("deployment", "log", did, "--stack", "%s/dcli/dev" % ORG).stdout
    finally:
        cli.cleanup()


def test_each_run_has_its_own_pulumi_home(env):
    """The CLI finds ~/.pulumi through the password database, not $HOME: concurrent runs on one host would
    share one credentials.json (one run's token in another's requests) unless each gets its PULUMI_HOME."""
    c, agent, repos = env
    url = make_repo(repos, "home", GOOD % {"project": "dhome"})
    stack = new_stack(c, "dhome")
    check = 'case "$PULUMI_HOME" in "$HOME"/*) echo "own home ok";; *) echo "shared home: $PULUMI_HOME"; exit 3;; esac'
    status, d, raw, _ = api(c, "POST", stack + "/deployments",
                            {"operation": "update", "sourceContext": {"git": {"repoUrl": url, "branch": "main"}},
                             "operationContext": {"operation": "", "preRunCommands": [check]}})
    assert status == 202, raw
    assert_succeeded(c, stack, d["id"])
    assert "own home ok" in "".join(l["line"] for l in read_logs(c, stack, d["id"]))


def test_two_agents_ten_deployments_three_stacks(env):
    c, agent, repos = env
    second = harness.Agent(c.server, path_dirs=[cli_dir()]).start()
    try:
        stacks = []
        for i in range(3):
            url = make_repo(repos, "many%d" % i, GOOD % {"project": "dmany%d" % i})
            stacks.append((new_stack(c, "dmany%d" % i), url))
        ids = []
        for k in range(10):
            stack, url = stacks[k % 3]
            _, d, _, _ = api(c, "POST", stack + "/deployments", {"operation": "update", "source": {"repoURL": url}})
            ids.append((stack, d["id"]))
        for stack, did in ids:
            assert_succeeded(c, stack, did)
        rows = c.pg.psql("SELECT stack_id, started_at, ended_at, agent FROM extension_pulumi_state_deployments d "
                         "JOIN extension_pulumi_state_stacks s ON s.id = d.stack_id WHERE s.project LIKE 'dmany%'")
        assert len(rows) == 10
        # Never two at once on a stack: per stack, the runs do not overlap.
        by_stack = {}
        for sid, start, end, _ in rows:
            by_stack.setdefault(sid, []).append((start, end))
        for runs in by_stack.values():
            runs.sort()
            for (s1, e1), (s2, e2) in zip(runs, runs[1:]):
                assert e1 <= s2
        # Each ran exactly once: one log header "pulumi update" per deployment.
        counts = c.pg.psql("SELECT count(*) FROM extension_pulumi_state_deployment_logs l JOIN "
                           "extension_pulumi_state_deployments d ON d.id = l.deployment_id JOIN "
                           "extension_pulumi_state_stacks s ON s.id = d.stack_id WHERE s.project LIKE 'dmany%' "
                           "AND l.header = 'pulumi update' GROUP BY d.id")
        assert len(counts) == 10 and all(n == ["1"] for n in counts)
    finally:
        second.stop()


def test_agent_killed_mid_deployment_is_failed_by_another(env):
    c, agent, repos = env
    url = make_repo(repos, "crash", GOOD % {"project": "dcrash"})
    stack = new_stack(c, "dcrash")
    gate = os.path.join(repos, "crash-never")
    victim = harness.Agent(c.server, path_dirs=[cli_dir()], extra={"PULUMI_STATE_AGENT_JOBS": "1"})
    # Only the victim runs for now: stop the module's agent, restart it afterwards.
    agent.stop()
    victim.start()
    try:
        _, d, _, _ = api(c, "POST", stack + "/deployments",
                         {"operation": "update", "source": {"repoURL": url},
                          "operationContext": {"preRunCommands": ["echo hold; while [ ! -e %s ]; do sleep 0.1; done"
                                                                  % gate]}})
        harness.wait_until(lambda: any("hold" in l["line"] for l in api(c, "GET", stack + "/deployments/%s/logs"
                                                                        % d["id"])[1]["lines"]),
                           "the deployment to run", timeout=120)
        victim.kill()
    finally:
        agent.start()
    done = wait_terminal(c, stack, d["id"], timeout=120)
    assert done["status"] == "failed" and "stopped sending heartbeats" in done.get("reason", "")
    open(gate, "w").close()
    _, d, _, _ = api(c, "POST", stack + "/deployments", {"operation": "update", "source": {"repoURL": url}})
    assert wait_terminal(c, stack, d["id"])["status"] == "succeeded"


def test_settings_edit_get_inherit_and_destroy_from_the_cli(env):
    c, agent, repos = env
    url = make_repo(repos, "settings", GOOD % {"project": "dset"})
    stack = new_stack(c, "dset")
    full = "%s/dset/dev" % ORG
    cli = Cli(c.server.url, token=c.server.token)
    try:
        r = cli.run("deployment", "settings", "edit", "--stack", full, "--git-url", url, "--branch", "main",
                    "--env", "PLAIN=visible-7a", "--secret-env", "SEKRIT=hush-c41d", "--pre-run-command",
                    'test "${#SEKRIT}" = 9 && echo "pre $PLAIN secret-ok"', check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "hush-c41d" not in r.stdout + r.stderr
        r = cli.run("deployment", "settings", "get", "--stack", full, "--output", "json", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        got = json.loads(r.stdout)  # the CLI's own summary of what the server holds
        assert got["source"]["repository"] == url and got["source"]["branch"] == "main"
        assert sorted(got["environmentVariables"]) == ["PLAIN", "SEKRIT"]
        assert "hush-c41d" not in r.stdout
        raw = api(c, "GET", stack + "/deployments/settings")[1]
        assert raw["operationContext"]["environmentVariables"]["PLAIN"] == "visible-7a"
        assert "ciphertext" in raw["operationContext"]["environmentVariables"]["SEKRIT"]
        # No URL, no branch: `deployment run` inherits the saved settings (its nulls keep them).
        r = cli.run("deployment", "run", "update", "--stack", full, "--suppress-stream-logs=false", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "hush-c41d" not in r.stdout + r.stderr
        _, lst, _, _ = api(c, "GET", stack + "/deployments")
        did = lst["deployments"][0]["id"]
        assert lst["deployments"][0]["status"] == "succeeded"
        logs = read_logs(c, stack, did)
        assert any("pre visible-7a secret-ok" in l["line"] for l in logs), "".join(
            (l.get("header", "") + "| " + l["line"]) for l in logs)
        r = cli.run("deployment", "settings", "edit", "--stack", full, "--remove-env", "PLAIN", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        _, got, _, _ = api(c, "GET", stack + "/deployments/settings")
        assert "PLAIN" not in got["operationContext"]["environmentVariables"]
        assert "SEKRIT" in got["operationContext"]["environmentVariables"]
        for table in ("deployment_settings", "audit", "deployment_logs", "deployments"):
            rows = c.pg.psql("SELECT count(*) FROM extension_pulumi_state_%s t WHERE t::text LIKE '%%hush-c41d%%'"
                             % table)
            assert rows == [["0"]], table
        r = cli.run("deployment", "settings", "destroy", "--stack", full, "--yes", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert api(c, "GET", stack + "/deployments/settings")[0] == 404
    finally:
        cli.cleanup()


def cmdlines():
    """Every process's command line on this machine (what `ps` shows)."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    out.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return out


def test_secrets_stay_off_command_lines_and_cli_cancel_of_a_running_deployment(env):
    c, agent, repos = env
    url = make_repo(repos, "pscheck", GOOD % {"project": "dps"})
    stack = new_stack(c, "dps")
    gate = os.path.join(repos, "pscheck-never")
    secrets = ("env-secret-5be1", "git-token-08d3")
    _, d, raw, _ = api(c, "POST", stack + "/deployments", {
        "operation": "update",
        "sourceContext": {"git": {"repoUrl": url, "branch": "main",
                                  "gitAuth": {"accessToken": {"secret": secrets[1]}}}},
        "operationContext": {"environmentVariables": {"TOKEN": {"secret": secrets[0]}},
                             "preRunCommands": ["echo hold; while [ ! -e %s ]; do sleep 0.1; done" % gate]}})
    assert not any(s in raw.decode() for s in secrets)
    harness.wait_until(lambda: any("hold" in l["line"] for l in read_logs_now(c, stack, d["id"])),
                       "the deployment to run", timeout=120)
    lines = cmdlines()
    assert any(gate in l for l in lines)  # the pre-run command is there to be seen
    assert not [l for l in lines if any(s in l for s in secrets)]
    cli = Cli(c.server.url, token=c.server.token)
    try:
        r = cli.run("deployment", "cancel", d["id"], "--yes", "--stack", "%s/dps/dev" % ORG, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        done = wait_terminal(c, stack, d["id"])
        assert done["status"] == "cancelled"
        logs = read_logs(c, stack, d["id"])
        assert not any(s in l["line"] for l in logs for s in secrets)
        for path in ("", "/" + d["id"], "/" + d["id"] + "/updates"):
            assert not any(s in api(c, "GET", stack + "/deployments" + path)[2].decode() for s in secrets)
        for table in ("audit", "deployment_logs", "deployments"):
            rows = c.pg.psql("SELECT count(*) FROM extension_pulumi_state_%s t WHERE t::text LIKE '%%%s%%' OR "
                             "t::text LIKE '%%%s%%'" % ((table,) + secrets))
            assert rows == [["0"]], table
        # The stack is free: the next deployment runs.
        _, d, _, _ = api(c, "POST", stack + "/deployments", {"operation": "update", "source": {"repoURL": url}})
        assert wait_terminal(c, stack, d["id"])["status"] == "succeeded"
    finally:
        cli.cleanup()


def read_logs_now(c, stack, did):
    return api(c, "GET", stack + "/deployments/%s/logs" % did)[1]["lines"]


def test_sigterm_lets_running_finish_stops_claiming_then_cancels_past_the_grace(env):
    c, agent, repos = env
    url = make_repo(repos, "grace", GOOD % {"project": "dgrace"})
    stack = new_stack(c, "dgrace")
    gate = os.path.join(repos, "grace-open")
    hold = {"preRunCommands": ["echo hold; while [ ! -e %s ]; do sleep 0.1; done" % gate]}
    agent.stop()
    patient = harness.Agent(c.server, path_dirs=[cli_dir()], jobs=1,
                            extra={"PULUMI_STATE_AGENT_STOP_GRACE": "600"}).start()
    try:
        _, first, _, _ = api(c, "POST", stack + "/deployments",
                             {"operation": "update", "source": {"repoURL": url}, "operationContext": hold})
        harness.wait_until(lambda: any("hold" in l["line"] for l in read_logs_now(c, stack, first["id"])),
                           "the deployment to run", timeout=120)
        patient.proc.send_signal(signal.SIGTERM)
        harness.wait_until(lambda: "stopping: 1 deployments may run" in patient.logs(), "the agent to stop claiming")
        _, second, _, _ = api(c, "POST", stack + "/deployments", {"operation": "update", "source": {"repoURL": url}})
        open(gate, "w").close()
        assert patient.proc.wait(timeout=300) == 0
        assert api(c, "GET", stack + "/deployments/" + first["id"])[1]["status"] == "succeeded"
        assert api(c, "GET", stack + "/deployments/" + second["id"])[1]["status"] == "queued"
        os.unlink(gate)
        hasty = harness.Agent(c.server, path_dirs=[cli_dir()], jobs=1,
                              extra={"PULUMI_STATE_AGENT_STOP_GRACE": "1"}).start()
        assert wait_terminal(c, stack, second["id"])["status"] == "succeeded"
        _, third, _, _ = api(c, "POST", stack + "/deployments",
                             {"operation": "update", "source": {"repoURL": url}, "operationContext": hold})
        harness.wait_until(lambda: any("hold" in l["line"] for l in read_logs_now(c, stack, third["id"])),
                           "the deployment to run", timeout=120)
        hasty.proc.send_signal(signal.SIGTERM)
        assert hasty.proc.wait(timeout=300) == 0
        assert api(c, "GET", stack + "/deployments/" + third["id"])[1]["status"] == "cancelled"
    finally:
        agent.start()
    _, d, _, _ = api(c, "POST", stack + "/deployments", {"operation": "update", "source": {"repoURL": url}})
    assert wait_terminal(c, stack, d["id"])["status"] == "succeeded"


def test_queued_for_more_than_seven_days_is_skipped(env):
    c, agent, repos = env
    stack = new_stack(c, "dstale")
    # A queue entry from before an outage: its stack has a running deployment, so it waits.
    url = make_repo(repos, "stale", GOOD % {"project": "dstale"})
    c.pg.psql("INSERT INTO extension_pulumi_state_deployments (id, stack_id, version, operation, status, source, "
              "created_at, heartbeat_at, started_at, agent) SELECT gen_random_uuid(), s.id, 1, 'update', 'running', "
              "'{}'::jsonb, now(), now() + interval '1 day', now(), 'elsewhere' FROM extension_pulumi_state_stacks s "
              "WHERE s.project = 'dstale'")
    _, d, _, _ = api(c, "POST", stack + "/deployments", {"operation": "update", "source": {"repoURL": url}})
    c.pg.psql("UPDATE extension_pulumi_state_deployments SET created_at = now() - interval '8 days' WHERE id = '%s'"
              % d["id"])
    done = wait_terminal(c, stack, d["id"])
    assert done["status"] == "skipped" and "never ran" in done["reason"]
    assert done["jobs"][0]["status"] == "skipped"
    read_logs(c, stack, d["id"])  # ends: a skipped deployment is terminal for log readers too
