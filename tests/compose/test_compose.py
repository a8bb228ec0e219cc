"""The docker compose deployment, built and run for real: the Docker engine (installed and started here when
the machine has none), a base image made offline (debootstrap + docker import), the images from
docker/Dockerfile, docker/docker-compose.yml brought up; the real CLI logs in, runs up and destroy through a
web replica; web is scaled to 2 and both replicas serve the same state; a deployment is queued and the
agent container runs it; the database container is recreated and nothing committed is lost."""
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request

import sys

import pytest

import harness

sys.path.insert(0, os.path.join(harness.ROOT, "tests", "cli"))
from clilib import Cli, cli_dir, make_repo  # noqa: E402

ROOT = harness.ROOT
COMPOSE_FILE = os.path.join(ROOT, "docker", "docker-compose.yml")
DOCKER = "/usr/bin/docker"  # the engine's own client (a newer one elsewhere on PATH may not match it)
PROGRAM = """name: composed
runtime: yaml
config:
  greeting:
    type: string
resources:
  first:
    type: pulumi:Stash
    properties:
      input: ${greeting}
outputs:
  out: ${first.input}
"""


def sh(args, check=True, timeout=1800, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(args), r.returncode, r.stdout[-4000:],
                                                          r.stderr[-4000:]))
    return r


def ensure_packages():
    need = [p for p, exe in (("docker.io", "/usr/sbin/dockerd"), ("docker-compose", "/usr/bin/docker-compose"),
                             ("debootstrap", "/usr/sbin/debootstrap")) if not os.path.exists(exe)]
    if need:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        sh(["apt-get", "update", "-qq"], env=env)
        sh(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + need, env=env)


class Engine:
    """The Docker engine: the running one, or one started here (and stopped by its pid)."""

    def __init__(self):
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="pulumi-state-dockerd-")

    def up(self):
        return sh([DOCKER, "info"], check=False).returncode == 0

    def start(self):
        if not self.up():
            self.proc = subprocess.Popen(["/usr/sbin/dockerd", "--pidfile", os.path.join(self.dir, "dockerd.pid")],
                                         stdout=subprocess.DEVNULL,
                                         stderr=open(os.path.join(self.dir, "dockerd.log"), "ab"))
            harness.wait_until(lambda: self.up() or self.proc.poll() is not None, "dockerd to start", timeout=120)
            if self.proc.poll() is not None:
                raise RuntimeError("dockerd exited:\n" + open(os.path.join(self.dir, "dockerd.log")).read())
        return self

    def stop(self):
        harness.stop_process(self.proc, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


class Compose:
    def __init__(self, project, env):
        self.project = project
        self.env = env

    def __call__(self, *args, check=True, timeout=1800):
        return sh(["/usr/bin/docker-compose", "-p", self.project, "-f", COMPOSE_FILE] + list(args), check=check,
                  timeout=timeout, env=self.env)

    def containers(self, service):
        out = self("ps", "-q", service).stdout.split()
        return [c for c in out if c]

    def health(self, container):
        r = sh([DOCKER, "inspect", "-f", "{{.State.Health.Status}}", container], check=False)
        return r.stdout.strip()

    def wait_healthy(self, service, n):
        def ok():
            cs = self.containers(service)
            return len(cs) == n and all(self.health(c) == "healthy" for c in cs)
        try:
            harness.wait_until(ok, "%d healthy %s container(s)" % (n, service), timeout=180)
        except Exception:
            print(self("logs", "--tail=50", check=False).stdout)
            raise

    def url(self, service, index):
        return "http://" + self("port", "--index=%d" % index, service, "8080").stdout.strip()


def http(method, url, token, body=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "token " + token, "Content-Type": "application/json",
                                          "Accept": "application/vnd.pulumi+8"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@pytest.fixture(scope="module")
def stack_up():
    ensure_packages()
    engine = Engine().start()
    base = sh(["bash", os.path.join(ROOT, "scripts", "docker-base.sh")], env=dict(os.environ, DOCKER=DOCKER),
              timeout=1200).stdout.strip()
    sh([DOCKER, "build", "-q", "--build-arg", "BASE=" + base, "-t", "pulumi-state-postgres:15",
        os.path.join(ROOT, "docker", "postgres")])
    sh(["bash", os.path.join(ROOT, "scripts", "docker-prepare.sh")], env=dict(os.environ, PULUMI_CLI_DIR=cli_dir()))
    env = dict(os.environ, BASE_IMAGE=base, POSTGRES_IMAGE="pulumi-state-postgres:15", PULUMI_STATE_TAG="test",
               PULUMI_STATE_LISTEN="127.0.0.1:", PULUMI_STATE_DEPLOY_ALLOW_FILE_URLS="true",
               DOCKER_HOST="unix:///var/run/docker.sock")
    compose = Compose("psci%d" % os.getpid(), env)
    token = open(os.path.join(ROOT, "docker", "secrets", "operator_token")).read().strip()
    try:
        compose("build")
        compose("up", "-d", "--scale", "web=1", "--scale", "agent=1")
        compose.wait_healthy("web", 1)
        yield compose, token
    finally:
        compose("down", "-v", "--remove-orphans", check=False)
        engine.stop()


def test_compose_login_up_destroy_scale_deploy_and_recreate(stack_up):
    compose, token = stack_up
    url1 = compose.url("web", 1)
    ready = urllib.request.urlopen(url1 + "/readyz", timeout=10)
    assert ready.status == 200 and json.loads(ready.read())["status"] == "ready"

    # The configuration the containers get passes the operators' check (the entrypoint, the secrets, the
    # database and the key as the services see them).
    checked = compose("run", "--rm", "-T", "--no-deps", "migrate", "pulumi-state-admin", "check-config", check=False)
    assert checked.returncode == 0 and "ok: the master key matches the database" in checked.stdout, (
        checked.stdout + checked.stderr)

    cli = Cli(url1, token=token)
    try:
        with open(os.path.join(cli.project, "Pulumi.yaml"), "w") as f:
            f.write(PROGRAM)
        cli.run("login", url1)
        assert cli.run("whoami").stdout.strip() == "operator"
        cli.run("stack", "init", "itlusions/composed/dev")
        cli.run("config", "set", "greeting", "hello from compose")
        cli.run("config", "set", "--secret", "password", "hunter2-compose")
        cli.run("up", "--yes", "--skip-preview")
        assert json.loads(cli.run("stack", "output", "--json").stdout)["out"] == "hello from compose"
        exported = cli.export()
        assert "hunter2-compose" not in json.dumps(exported)

        # Two web replicas and two agents on one PostgreSQL: the second web serves what the first wrote.
        compose("up", "-d", "--no-recreate", "--scale", "web=2", "--scale", "agent=2")
        compose.wait_healthy("web", 2)
        url2 = compose.url("web", 2)
        assert url2 != url1
        status, st = http("GET", url2 + "/api/stacks/itlusions/composed/dev", token)
        assert status == 200 and st["stackName"] == "dev" and st["version"] >= 1, st
        cli2 = Cli(url2, token=token)
        try:
            with open(os.path.join(cli2.project, "Pulumi.yaml"), "w") as f:
                f.write(PROGRAM.replace("${greeting}", "changed through web 2"))
            shutil.copy(os.path.join(cli.project, "Pulumi.dev.yaml"), cli2.project)
            # The state's secrets manager names the URL it was made under (users put one URL, the load
            # balancer's, in front of all replicas; here each has its own port): credentials for both.
            cli2.run("login", url1)
            cli2.run("login", url2)
            cli2.run("stack", "select", "itlusions/composed/dev")
            cli2.run("up", "--yes", "--skip-preview")
            assert json.loads(cli2.run("stack", "output", "--json").stdout)["out"] == "changed through web 2"
        finally:
            cli2.cleanup()
        # web 2's CLI wrote its URL into the state's secrets manager: this CLI needs credentials for it too.
        cli.run("login", url2)
        cli.run("login", url1)
        assert json.loads(cli.run("stack", "output", "--json").stdout)["out"] == "changed through web 2"

        # A deployment: queued on web 2, run by the agent container (its repository copied into it).
        repo = tempfile.mkdtemp(prefix="pulumi-state-compose-repo-")
        try:
            make_repo(repo, "prog", PROGRAM.replace("${greeting}", "deployed by the agent container").replace(
                "config:\n  greeting:\n    type: string\n", "").replace("name: composed", "name: deployed"))
            agents = compose.containers("agent")
            assert len(agents) == 2
            for agent in agents:  # either may claim it
                sh([DOCKER, "cp", os.path.join(repo, "prog.git"), agent + ":/var/lib/pulumi-state-agent/prog.git"])
                sh([DOCKER, "exec", "-u", "root", agent, "chown", "-R", "pulumi-state",
                    "/var/lib/pulumi-state-agent/prog.git"])
        finally:
            shutil.rmtree(repo, ignore_errors=True)
        # The CLI records the URL a stack's state was made under in its secrets manager, so the agent (which
        # reaches the backend as http://web:8080) deploys a stack of its own: created over the API, its state
        # written by the agent's CLI alone, read back through web 1's published port.
        assert http("POST", url2 + "/api/stacks/itlusions/deployed", token, {"stackName": "prod"})[0] == 200
        dstack = url2 + "/api/stacks/itlusions/deployed/prod"
        status, d = http("POST", dstack + "/deployments", token,
                         {"operation": "update", "source": {"repoURL": "file:///var/lib/pulumi-state-agent/prog.git"}})
        assert status == 202, d

        def ended():
            return http("GET", dstack + "/deployments/" + d["id"], token)[1]["status"] not in ("queued", "running")
        harness.wait_until(ended, "the deployment to end", timeout=300)
        _, dep = http("GET", dstack + "/deployments/" + d["id"], token)
        _, log = http("GET", dstack + "/deployments/%s/logs" % d["id"], token)
        assert dep["status"] == "succeeded", "".join(line["line"] for line in log["lines"])
        status, state = http("GET", url1 + "/api/stacks/itlusions/deployed/prod/export", token)
        assert status == 200
        stack_res = [r for r in state["deployment"]["resources"] if r["type"] == "pulumi:pulumi:Stack"]
        assert stack_res[0]["outputs"]["out"] == "deployed by the agent container"

        # The database container recreated on its volume: nothing committed is lost.
        before = cli.export()
        compose("up", "-d", "--force-recreate", "--no-deps", "postgres")
        compose.wait_healthy("web", 2)
        harness.wait_until(lambda: http("GET", url1 + "/readyz", token)[0] == 200, "web 1 to reconnect", timeout=120)
        assert cli.export() == before

        cli.run("destroy", "--yes", "--skip-preview")
        assert cli.export()["deployment"].get("resources") in (None, [])
        cli.run("stack", "rm", "--yes")
        assert http("GET", url2 + "/api/stacks/itlusions/composed/dev", token)[0] == 404
    finally:
        cli.cleanup()
