"""clilib.py - drive the real Pulumi CLI offline against a backend, in a throwaway home and project."""
import json
import os
import shutil
import subprocess
import tempfile

import harness


def cli_dir():
    d = os.environ.get("PULUMI_CLI_DIR")
    if not d:
        d = subprocess.run(["bash", os.path.join(harness.ROOT, "tests", "cli", "install-pulumi.sh")], check=True,
                           capture_output=True, text=True).stdout.strip()
    return d


class Cli:
    def __init__(self, backend, token=None, mode_env=None):
        self.home = tempfile.mkdtemp(prefix="pulumi-home-")
        self.project = tempfile.mkdtemp(prefix="pulumi-proj-")
        self.env = dict(os.environ, PULUMI_HOME=self.home, PULUMI_SKIP_UPDATE_CHECK="true",
                        PULUMI_CREDENTIAL_STORE="plaintext", PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
                        NO_COLOR="true", PULUMI_BACKEND_URL=backend, PULUMI_CONFIG_PASSPHRASE="modes",
                        PATH=cli_dir() + os.pathsep + os.environ["PATH"])
        if token:
            self.env["PULUMI_ACCESS_TOKEN"] = token
        self.env.update(mode_env or {})

    def run(self, *args, check=True):
        r = subprocess.run(["pulumi", "--non-interactive"] + list(args), cwd=self.project, env=self.env,
                           capture_output=True, text=True, timeout=600)
        if check and r.returncode != 0:
            raise AssertionError("pulumi %s failed:\n%s\n%s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def program(self, resources):
        lines = ["name: modes", "runtime: yaml", "resources:"]
        for name, (value, opts) in resources.items():
            lines += ["  %s:" % name, "    type: pulumi:Stash", "    properties:", "      input: %s" % json.dumps(value)]
            if opts:
                lines += ["    options:"] + ["      %s: %s" % (k, json.dumps(v)) for k, v in opts.items()]
        lines += ["outputs:", "  names: %s" % json.dumps(sorted(resources))]
        with open(os.path.join(self.project, "Pulumi.yaml"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def export(self, stack=None):
        return json.loads(self.run("stack", "export", *(["-s", stack] if stack else [])).stdout)

    def export_for(self, stack):
        return self.export(stack)

    def cleanup(self):
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.project, ignore_errors=True)




def write_program(cli, text):
    """Write Pulumi.yaml of cli's project from YAML text."""
    with open(os.path.join(cli.project, "Pulumi.yaml"), "w") as f:
        f.write(text)


def make_token(cluster, name, role, scope=None):
    env = dict(os.environ, PULUMI_STATE_DATABASE=cluster.pg.conninfo)
    args = [os.path.join(cluster.bindir, "pulumi-state-admin"), "token", "create", "--name", name, "--role", role]
    if scope:
        args += ["--scope", scope]
    return subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(base, name, program):
    """A bare repository with one commit on main holding Pulumi.yaml; its file:// URL (the bare
    repository is base/name.git)."""
    work = os.path.join(base, name + "-work")
    bare = os.path.join(base, name + ".git")
    os.makedirs(work)
    with open(os.path.join(work, "Pulumi.yaml"), "w") as f:
        f.write(program)
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com")
    for args in (["init", "-q", "-b", "main"], ["add", "Pulumi.yaml"], ["commit", "-q", "-m", "program"]):
        subprocess.run(["git"] + args, cwd=work, env=env, check=True)
    subprocess.run(["git", "clone", "-q", "--bare", work, bare], check=True)
    return "file://" + bare


def hold_lease(server, stack_path):
    """Start a real (non-preview) update of the stack at stack_path ("/api/stacks/o/p/s") through the HTTP
    API so the stack is held; (update id, lease token)."""
    st, body, _, _ = server.request("POST", stack_path + "/update", {"options": {"dryRun": False}, "config": {},
                                                                     "metadata": {}})
    assert st == 200, body
    uid = body["updateID"]
    st, body, _, _ = server.request("POST", "%s/update/%s" % (stack_path, uid), {})
    assert st == 200, body
    return uid, body["token"]
