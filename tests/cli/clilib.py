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
