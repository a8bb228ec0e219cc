"""The CLI release smoke set: one real Pulumi CLI release (a directory holding `pulumi` and
`pulumi-language-yaml`) against a running server, feature by feature, each recorded as passed or failed
with its reason; the checkpoint protocol the release used is read from the database.

As a script: python3 tests/matrix/smoke.py RELEASE=CLI_DIR... prints one JSON object per line of
tests/matrix/releases it has a CLI for (each on a throwaway cluster of its own, built binaries from
PULUMI_STATE_BINDIR)."""
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
import harness  # noqa: E402
from clilib import Cli, hold_lease  # noqa: E402

ORG = "itlusions"
# Deltas from the first byte, so releases that checkpoint send checkpointdelta even for small states.
SETTINGS = {"PULUMI_STATE_CHECKPOINT_CUTOFF_BYTES": "1"}
FEATURES = ["login", "whoami", "stack init", "stack ls", "config set --secret", "up: create", "up: update",
            "up: replace", "up: delete", "preview", "refresh", "stack export/import", "history", "cancel",
            "stack rename", "destroy + stack rm"]


def cli_version(cli_dir):
    out = subprocess.run([os.path.join(cli_dir, "pulumi"), "version"], capture_output=True, text=True,
                         env=dict(os.environ, PULUMI_SKIP_UPDATE_CHECK="true")).stdout.strip()
    return out


def has_stash(version):
    m = re.match(r"v?(\d+)\.(\d+)\.(\d+)", version)
    return m and (int(m.group(1)), int(m.group(2))) >= (3, 208)


def program(project, step, stash):
    """The program at each step: create, update (a value changes), replace, delete."""
    lines = ["name: %s" % project, "runtime: yaml", "config:", "  pw:", "    type: string", "    secret: true"]
    if stash or step != "delete":
        lines.append("resources:")
    if stash:
        a = "one" if step == "create" else "two"
        b = "keep2" if step in ("replace", "delete") else "keep"
        lines += ["  a:", "    type: pulumi:Stash", "    properties:", "      input: %s" % a,
                  "  b:", "    type: pulumi:Stash", "    properties:", "      input: %s" % b,
                  "    options:", "      replaceOnChanges: [input]"]
        if step != "delete":
            lines += ["  c:", "    type: pulumi:Stash", "    properties:", "      input: doomed"]
        lines += ["outputs:", "  a: ${a.input}", "  secret: ${pw}"]
    else:
        # Before pulumi:Stash (v3.208) YAML programs have no built-in resource to create; a stack
        # reference (a read of another stack through this backend) stands in, and outputs change.
        if step != "delete":
            lines += ["  ref:", "    type: pulumi:pulumi:StackReference", "    properties:",
                      "      name: %s/%s/other" % (ORG, project)]
        lines += ["outputs:", "  a: %s" % ("one" if step == "create" else "two"), "  secret: ${pw}"]
    return "\n".join(lines) + "\n"


def resources(export):
    return {r["urn"].split("::")[-1]: r for r in export["deployment"].get("resources") or []
            if not r["type"].startswith("pulumi:providers:") and r["type"] != "pulumi:pulumi:Stack"}


def run_smoke(server, cli_dir, project, env=None):
    """{feature: [passed, detail]} plus the checkpoint mode(s) the release used; env: more variables for
    the CLI (PULUMI_ENABLE_JOURNALING=true for the releases where journaling is opt-in)."""
    version = cli_version(cli_dir)
    stash = has_stash(version)
    results = {}
    cli = Cli(server.url, token=server.token)
    cli.env["PATH"] = cli_dir + os.pathsep + os.environ["PATH"]
    cli.env.update(env or {})
    full = "%s/%s/dev" % (ORG, project)

    def step(feature, fn):
        try:
            detail = fn()
            results[feature] = [True, detail or ""]
        except Exception as e:  # recorded, and the next feature runs
            results[feature] = [False, str(e).strip()[-600:]]

    def write(stepname):
        with open(os.path.join(cli.project, "Pulumi.yaml"), "w") as f:
            f.write(program(project, stepname, stash))

    def login():
        write("create")
        cli.run("login", server.url)

    def whoami():
        out = cli.run("whoami").stdout.strip()
        assert out == "operator", out

    def init():
        cli.run("stack", "init", "%s/%s/other" % (ORG, project))
        cli.run("stack", "init", full)

    def ls():
        out = cli.run("stack", "ls", "--all").stdout
        assert "dev" in out and "other" in out, out

    def secret():
        cli.run("config", "set", "--secret", "pw", "matrix-s3cret")
        assert cli.run("config", "get", "pw").stdout.strip() == "matrix-s3cret"
        assert "matrix-s3cret" not in open(os.path.join(cli.project, "Pulumi.dev.yaml")).read()

    def up(stepname, check):
        def fn():
            write(stepname)
            cli.run("up", "--yes", "--skip-preview")
            exported = cli.export()
            assert "matrix-s3cret" not in json.dumps(exported)
            check(resources(exported), exported)
        return fn

    def check_create(res, exported):
        assert set(res) == ({"a", "b", "c"} if stash else {"ref"}), sorted(res)

    def check_update(res, exported):
        outs = [r for r in exported["deployment"]["resources"] if r["type"] == "pulumi:pulumi:Stack"][0]["outputs"]
        assert outs["a"] == "two", outs

    def check_replace(res, exported):
        if not stash:
            raise SkipFeature("no built-in resource to replace before v3.208")
        assert res["b"]["inputs"]["input"] == "keep2"

    def check_delete(res, exported):
        assert set(res) == ({"a", "b"} if stash else set()), sorted(res)

    def preview():
        out = cli.run("preview", "--expect-no-changes").stdout
        return out.strip().splitlines()[-1] if out.strip() else ""

    def refresh():
        cli.run("refresh", "--yes", "--skip-preview")

    def export_import():
        before = cli.export()
        path = os.path.join(cli.home, "state.json")
        with open(path, "w") as f:
            json.dump(before, f)
        cli.run("stack", "import", "--file", path)
        after = cli.export()
        assert resources(after) == resources(before)

    def history():
        h = json.loads(cli.run("stack", "history", "--json").stdout)
        kinds = [e.get("kind") for e in h]
        assert kinds.count("update") >= 4 and "refresh" in kinds, kinds

    def cancel():
        uid, lease = hold_lease(server, "/api/stacks/%s/%s/dev" % (ORG, project))
        r = cli.run("up", "--yes", "--skip-preview", check=False)
        assert r.returncode != 0 and "[409] Conflict: Another update is currently in progress." in r.stdout + \
            r.stderr, r.stdout + r.stderr
        cli.run("cancel", "--yes", "-s", full)
        st, _, _, _ = server.request("POST", "/api/stacks/%s/%s/dev/update/%s/renew_lease" % (ORG, project, uid),
                                     {"duration": 300}, auth="update-token " + lease)
        assert st == 403, st
        cli.run("up", "--yes", "--skip-preview")

    def rename():
        cli.run("stack", "rename", "%s/%s/renamed" % (ORG, project))
        assert "renamed" in cli.run("stack", "ls", "--all").stdout
        cli.run("preview", "--expect-no-changes")

    def destroy_rm():
        cli.run("destroy", "--yes", "--skip-preview")
        assert not resources(cli.export())
        cli.run("stack", "rm", "--yes")
        cli.run("stack", "rm", "--yes", "%s/%s/other" % (ORG, project))
        out = cli.run("stack", "ls", "--all").stdout
        assert "renamed" not in out and "other" not in out, out

    try:
        for feature, fn in [("login", login), ("whoami", whoami), ("stack init", init), ("stack ls", ls),
                            ("config set --secret", secret), ("up: create", up("create", check_create)),
                            ("up: update", up("update", check_update)), ("up: replace", up("replace", check_replace)),
                            ("up: delete", up("delete", check_delete)), ("preview", preview), ("refresh", refresh),
                            ("stack export/import", export_import), ("history", history), ("cancel", cancel),
                            ("stack rename", rename)]:
            step(feature, fn)
        # Which protocol the release spoke (before the stacks, and their updates, are removed).
        modes = server.pg.psql("SELECT DISTINCT u.checkpoint_mode FROM extension_pulumi_state_updates u "
                               "JOIN extension_pulumi_state_stacks s ON s.id = u.stack_id WHERE s.project = :'p1' "
                               "AND u.checkpoint_mode IS NOT NULL", project)
        step("destroy + stack rm", destroy_rm)
        for feature in list(results):
            if not results[feature][0] and results[feature][1].startswith("n/a"):
                results[feature] = [None, results[feature][1]]
        return {"version": version, "features": results, "modes": sorted(m[0] for m in modes if m[0])}
    finally:
        shutil.rmtree(cli.home, ignore_errors=True)
        shutil.rmtree(cli.project, ignore_errors=True)


class SkipFeature(Exception):
    def __str__(self):
        return "n/a: " + (self.args[0] if self.args else "")


def releases():
    """(label, release, when CI runs it, env) of tests/matrix/releases."""
    out = []
    for line in open(os.path.join(HERE, "releases")):
        if line.strip() and not line.startswith("#"):
            f = line.split("#")[0].split()
            env = dict(kv.split("=", 1) for kv in f[2:] if "=" in kv)
            out.append((f[0] + (" + " + " ".join(f[2:]) if env else ""), f[0], f[1], env))
    return out


def main(dirs):
    """dirs: RELEASE=CLI_DIR for each release to run (every line of the releases file with it)."""
    bindir = os.environ.get("PULUMI_STATE_BINDIR") or os.path.join(harness.ROOT, "build")
    given = dict(d.split("=", 1) for d in dirs)
    for label, release, _, env in releases():
        if release not in given:
            continue
        c = harness.Cluster(bindir=bindir, procs=1, threads=4, settings=SETTINGS)
        c.start()
        try:
            got = run_smoke(c.server, given[release], "m" + re.sub(r"[^0-9a-z]", "", label.lower())[:40], env)
            print(json.dumps(dict(got, label=label)), flush=True)
        finally:
            c.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
