"""The real Pulumi CLI's whole state workflow against pulumi-state (lighttpd + workers +
PostgreSQL), in each of the CLI's state modes (journal, the default; verbatim/delta checkpoints;
full checkpoints) and with a scoped write token; admin-only commands (rename, rm) with an admin
token."""
import json
import os
import re
import shutil
import subprocess
import uuid

import pytest

from clilib import Cli, hold_lease, make_token, write_program

ORG = "itlusions"
PROJECT = "wf"

PROGRAM = """name: wf
runtime: yaml
config:
  greeting:
    type: string
    default: hello
resources:
  a:
    type: pulumi:Stash
    properties:
      input: ${greeting}
  b:
    type: pulumi:Stash
    properties:
      input:
        n: %(n)d
  c:
    type: pulumi:Stash
    properties:
      input: %(c)s
    options:
      replaceOnChanges: [input]
%(extra)s
outputs:
  aout: ${a.output}
  secretOut:
    fn::secret: ${dbPassword}
  names: [a, b, c]
"""


def program(n=1, c="c1", extra="", password_ref=True):
    text = PROGRAM % {"n": n, "c": c, "extra": extra}
    if not password_ref:
        text = text.replace("    fn::secret: ${dbPassword}", "    fn::secret: plain")
    return text


@pytest.fixture(scope="module")
def tokens(cluster):
    return {"write": make_token(cluster, "wf-pipeline", "write", "%s/%s/*" % (ORG, PROJECT)),
            "admin": make_token(cluster, "wf-admin", "admin")}


MODES = {
    "journal": {},
    "checkpoint": {"PULUMI_DISABLE_JOURNALING": "true"},
    "full": {"PULUMI_DISABLE_JOURNALING": "true", "PULUMI_OPTIMIZED_CHECKPOINT_PATCH": "false"},
}


@pytest.fixture(params=list(MODES))
def cli(request, server, tokens):
    """Every scenario in each of the CLI's three ways of sending state (journal is its default)."""
    c = Cli(server.url, tokens["write"], MODES[request.param])
    yield c
    c.cleanup()


def new_stack(cli, pg=None, config_password=True):
    name = "s" + uuid.uuid4().hex[:8]
    write_program(cli, program())
    cli.run("stack", "init", "%s/%s/%s" % (ORG, PROJECT, name))
    cli.run("config", "set", "--secret", "dbPassword", "s3cr3t-" + name)
    return name


def resources(state):
    return {r["urn"].rsplit("::", 1)[1]: r for r in state["deployment"].get("resources") or []
            if r["type"] == "pulumi:index:Stash"}


def test_login_and_whoami(server, tokens, cli):
    r = cli.run("login", server.url)
    assert "Logged in" in r.stdout + r.stderr
    assert cli.run("whoami").stdout.strip() == "wf-pipeline"
    assert "Organizations: itlusions" in cli.run("whoami", "-v").stdout


def test_stack_init_ls_select_tags(cli):
    name = new_stack(cli)
    other = "o" + uuid.uuid4().hex[:8]
    cli.run("stack", "init", "%s/%s/%s" % (ORG, PROJECT, other))
    listed = cli.run("stack", "ls").stdout
    assert name in listed and other in listed
    cli.run("stack", "select", "%s/%s/%s" % (ORG, PROJECT, name))
    cli.run("stack", "tag", "set", "team", "platform")
    tags = cli.run("stack", "tag", "ls").stdout
    assert re.search(r"team\s+platform", tags)
    cli.run("stack", "tag", "rm", "team")
    assert "team" not in cli.run("stack", "tag", "ls").stdout
    r = cli.run("stack", "init", "%s/%s/%s" % (ORG, PROJECT, name), check=False)
    assert r.returncode != 0 and "already exists" in r.stderr


def test_secret_config_and_outputs(cli):
    name = new_stack(cli)
    conf = open(os.path.join(cli.project, "Pulumi.%s.yaml" % name)).read()
    assert "secure:" in conf and "s3cr3t" not in conf
    assert cli.run("config", "get", "dbPassword").stdout.strip() == "s3cr3t-" + name
    cli.run("up", "--yes")
    assert cli.run("stack", "output", "secretOut").stdout.strip() == "[secret]"
    shown = json.loads(cli.run("stack", "output", "--json", "--show-secrets").stdout)
    assert shown["secretOut"] == "s3cr3t-" + name and shown["aout"] == "hello"
    state = cli.export()
    assert "s3cr3t" not in json.dumps(state)


def test_up_preview_update_replace_delete_refresh_destroy(cli, pg):
    name = new_stack(cli)
    cli.run("up", "--yes")
    state = cli.export()
    assert set(resources(state)) == {"a", "b", "c"}
    version = int(pg.psql("SELECT version FROM extension_pulumi_state_stacks WHERE name = '%s'" % name)[0][0])

    # preview changes nothing
    write_program(cli, program(n=2))
    out = cli.run("preview").stdout
    assert "~ 1 to update" in out or "1 to update" in out
    assert resources(cli.export()) == resources(state)
    assert int(pg.psql("SELECT version FROM extension_pulumi_state_stacks WHERE name = '%s'" % name)[0][0]) == version

    # in-place update
    out = cli.run("up", "--yes").stdout
    assert "1 updated" in out
    after = resources(cli.export())
    assert after["b"]["outputs"]["input"] == {"n": 2} and after["b"]["id"] == resources(state)["b"]["id"]

    # replace
    write_program(cli, program(n=2, c="c2"))
    out = cli.run("up", "--yes").stdout
    assert "1 replaced" in out
    replaced = resources(cli.export())
    assert replaced["c"]["outputs"]["input"] == "c2" and replaced["c"]["id"] != after["c"]["id"]

    # delete (b and c removed from the program)
    write_program(cli, program(n=2, c="c2").replace("  b:\n    type: pulumi:Stash\n    properties:\n      input:\n"
                                                    "        n: 2\n", "").replace(
        "  c:\n    type: pulumi:Stash\n    properties:\n      input: c2\n    options:\n      replaceOnChanges: [input]\n",
        ""))
    out = cli.run("up", "--yes").stdout
    assert "2 deleted" in out
    assert set(resources(cli.export())) == {"a"}

    # refresh, then a no-op up
    out = cli.run("refresh", "--yes").stdout
    assert "error" not in out.lower()
    out = cli.run("up", "--yes").stdout
    assert "unchanged" in out and "created" not in out and "deleted" not in out

    # destroy
    cli.run("destroy", "--yes")
    assert resources(cli.export()) == {}
    history = cli.run("stack", "history", "--json").stdout
    kinds = [h["kind"] for h in json.loads(history)]
    assert kinds[0] == "destroy" and kinds.count("update") >= 5 and "refresh" in kinds


def test_export_import_and_versions(cli, pg):
    name = new_stack(cli)
    cli.run("up", "--yes")
    original = cli.export()
    v1 = int(pg.psql("SELECT version FROM extension_pulumi_state_stacks WHERE name = '%s'" % name)[0][0])
    write_program(cli, program(n=5))
    cli.run("up", "--yes")
    assert resources(cli.export())["b"]["outputs"]["input"] == {"n": 5}
    # export --version gives the older state
    old = json.loads(cli.run("stack", "export", "--version", str(v1)).stdout)
    assert resources(old) == resources(original)
    # import the original back; export equals it (but for the manifest time)
    path = os.path.join(cli.project, "orig.json")
    with open(path, "w") as f:
        json.dump(original, f)
    cli.run("stack", "import", "--file", path)
    back = cli.export()
    assert resources(back) == resources(original)
    assert back["deployment"]["secrets_providers"] == original["deployment"]["secrets_providers"]
    history = json.loads(cli.run("stack", "history", "--json").stdout)
    assert history[0]["kind"] == "import"


def test_rename_keeps_state_and_secrets(server, tokens, cli):
    name = new_stack(cli)
    cli.run("up", "--yes")
    admin = Cli(server.url, tokens["admin"])
    try:
        shutil.rmtree(admin.project)
        shutil.copytree(cli.project, admin.project)
        new = name + "-renamed"
        admin.run("stack", "rename", "%s/%s/%s" % (ORG, PROJECT, new), "-s", "%s/%s/%s" % (ORG, PROJECT, name))
        out = admin.run("up", "--yes", "-s", "%s/%s/%s" % (ORG, PROJECT, new)).stdout
        assert "unchanged" in out and "create" not in out and "delete" not in out
        shown = json.loads(admin.run("stack", "output", "--json", "--show-secrets", "-s",
                                     "%s/%s/%s" % (ORG, PROJECT, new)).stdout)
        assert shown["secretOut"] == "s3cr3t-" + name
        r = admin.run("stack", "select", "%s/%s/%s" % (ORG, PROJECT, name), check=False)
        assert r.returncode != 0
    finally:
        admin.cleanup()


def test_stack_rm(server, tokens, cli):
    name = new_stack(cli)
    cli.run("up", "--yes")
    full = "%s/%s/%s" % (ORG, PROJECT, name)
    # a write token may not delete stacks
    r = cli.run("stack", "rm", "--yes", full, check=False)
    assert r.returncode != 0 and "403" in r.stderr
    admin = Cli(server.url, tokens["admin"])
    try:
        r = admin.run("stack", "rm", "--yes", full, check=False)
        assert r.returncode != 0 and "still has resources" in r.stderr
        admin.run("stack", "rm", "--yes", "--force", full)
        write_program(admin, program())
        empty = "e" + uuid.uuid4().hex[:8]
        admin.run("stack", "init", "%s/%s/%s" % (ORG, PROJECT, empty))
        admin.run("stack", "rm", "--yes", "%s/%s/%s" % (ORG, PROJECT, empty))
        assert empty not in admin.run("stack", "ls", "--all").stdout
    finally:
        admin.cleanup()


def test_conflicting_up_and_cancel(server, cli):
    name = new_stack(cli)
    cli.run("up", "--yes")
    before = cli.export()
    uid, lease = hold_lease(server, "/api/stacks/%s/%s/%s" % (ORG, PROJECT, name))
    r = cli.run("up", "--yes", "--skip-preview", check=False)
    assert r.returncode != 0
    assert "[409] Conflict: Another update is currently in progress." in r.stderr + r.stdout
    assert resources(cli.export()) == resources(before)
    # the holder is another token's (the operator's) update: an admin can cancel it; here the operator
    # token's own CLI does, as `pulumi cancel` would
    admin = Cli(server.url, server.token)
    try:
        shutil.rmtree(admin.project)
        shutil.copytree(cli.project, admin.project)
        admin.run("cancel", "--yes", "-s", "%s/%s/%s" % (ORG, PROJECT, name))
    finally:
        admin.cleanup()
    st, body, _, _ = server.request("POST", "/api/stacks/%s/%s/%s/update/%s/renew_lease" % (ORG, PROJECT, name, uid),
                                    {"duration": 300}, auth="update-token " + lease)
    assert st == 403
    write_program(cli, program(n=7))
    cli.run("up", "--yes")
    assert resources(cli.export())["b"]["outputs"]["input"] == {"n": 7}


def test_two_concurrent_ups(cli):
    name = new_stack(cli)
    cli.run("up", "--yes")
    write_program(cli, program(n=3, extra="\n".join(
        "  x%02d:\n    type: pulumi:Stash\n    properties:\n      input: %d" % (i, i) for i in range(40))))
    procs = [subprocess.Popen(["pulumi", "--non-interactive", "up", "--yes", "--skip-preview"], cwd=cli.project,
                              env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    codes = [p.returncode for p in procs]
    # Either both ran one after the other, or one got the conflict; never both at once.
    if 0 in codes and codes != [0, 0]:
        loser = outs[codes.index(1)] if 1 in codes else outs[1 - codes.index(0)]
        assert "Another update is currently in progress" in loser
    state = resources(cli.export())
    assert len(state) == 43 and state["b"]["outputs"]["input"] == {"n": 3}
    assert "unchanged" in cli.run("up", "--yes").stdout


def test_failing_up_keeps_last_good_state(cli):
    name = new_stack(cli)
    cli.run("up", "--yes")
    good = resources(cli.export())
    write_program(cli, program(n=9).replace("input: ${greeting}", "input: ${undefinedVariable}"))
    r = cli.run("up", "--yes", "--skip-preview", check=False)
    assert r.returncode != 0
    assert resources(cli.export()) == good
    write_program(cli, program(n=9))
    cli.run("up", "--yes")
    assert resources(cli.export())["b"]["outputs"]["input"] == {"n": 9}
