"""The demo program (examples/pulumi-demo) run by the real Pulumi CLI through the Automation API (inline
mode: there is no Python language host here), with its state in this backend and its machines in this
server's attestation API. Each stack here has its own EKs, hostnames and addresses.

Needs the venv of scripts/test-provider.sh (pulumi==3.259.0 and pulumi-itl-attestation installed).
"""
import json
import os
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEMO = os.path.join(ROOT, "examples", "pulumi-demo")
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, DEMO)
sys.path.insert(0, HERE)

from pulumi import automation as auto  # noqa: E402
import harness  # noqa: E402
import pytools  # noqa: E402
import demo  # noqa: E402
from pulumi_itl_attestation import AttestationClient, AttestationError  # noqa: E402

ORG = "itlusions"
PROJECT = "attestation-demo"


def project_name():
    import yaml
    with open(os.path.join(DEMO, "Pulumi.yaml")) as f:
        return yaml.safe_load(f)["name"]


@pytest.fixture(scope="module")
def cluster():
    c = harness.Cluster(procs=1, threads=4)
    try:
        c.start()
    except Exception:
        if c.server:
            print(c.server.logs(), file=sys.stderr)
        c.stop(keep=True)
        raise
    yield c
    c.server.stop()
    bad = c.server.unexplained_5xx()
    c.stop()
    assert not bad, "5xx answers no test asked for:\n" + "".join(bad[:50])


@pytest.fixture(scope="module")
def tools():
    return pytools.ensure(os.environ.get("PULUMI_CLI_DIR"))


@pytest.fixture(scope="module")
def api(cluster):
    with AttestationClient(cluster.server.url, cluster.server.token, retries=0) as c:
        yield c


class Ek:
    """EK certificates made by the example's own make-test-ek.sh."""

    def __init__(self, base):
        self.base = base
        self.n = 0

    def __call__(self):
        self.n += 1
        name = "m%d" % self.n
        fp = subprocess.run(["bash", os.path.join(DEMO, "make-test-ek.sh"), name, self.base], check=True,
                            capture_output=True, text=True).stdout.strip()
        with open(os.path.join(self.base, name + "-ek.pem")) as f:
            return f.read(), fp


@pytest.fixture(scope="module")
def ek(tmp_path_factory):
    return Ek(str(tmp_path_factory.mktemp("ek")))


class Demo:
    """One stack of the demo program: its config, the CLI operations, its state."""

    counter = 0

    def __init__(self, cluster, tools, ek, stack):
        Demo.counter += 1
        n = Demo.counter
        self.cluster = cluster
        self.home = tempfile.mkdtemp(prefix="pulumi-home-")
        self.work = tempfile.mkdtemp(prefix="pulumi-work-")
        self.stack_name = "%s/%s/%s" % (ORG, PROJECT, stack)
        bindir = os.path.join(tools, "bin")
        env = {
            "PULUMI_BACKEND_URL": cluster.server.url,
            "PULUMI_ACCESS_TOKEN": cluster.server.token,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_CREDENTIAL_STORE": "plaintext",
            "NO_COLOR": "true",
            "PULUMI_PYTHON_CMD": sys.executable,
            "PATH": os.pathsep.join([bindir, os.path.dirname(sys.executable), os.environ["PATH"]]),
        }
        self.env = env
        opts = auto.LocalWorkspaceOptions(
            work_dir=self.work, pulumi_home=self.home, env_vars=env,
            pulumi_command=auto.PulumiCommand(root=tools),
            project_settings=auto.ProjectSettings(name=project_name(), runtime="python"))
        self.stack = auto.create_or_select_stack(self.stack_name, project_name=PROJECT, program=demo.program,
                                                 opts=opts)
        self.machines = {}
        for i, name in enumerate(("controlplane", "worker")):
            pem, fp = ek()
            self.machines[name] = {
                "pem": pem,
                "facts": {"hostname": "%s%d.lab.example.net" % (name, n), "assignedIp": "10.77.%d.%d" % (n, i + 1),
                          "hwSerial": "SN-%d-%s" % (n, name), "hwProduct": "ThinkCentre M75q Gen 2",
                          "hwMac": "52:54:00:%02x:00:%02x" % (n, i + 1), "ekFingerprint": fp},
            }
        self.stack.set_all_config({
            "attestation:endpoint": auto.ConfigValue(cluster.server.url),
            "attestation:token": auto.ConfigValue(cluster.server.token, secret=True),
        })
        self.configure()

    def configure(self, **changes):
        """Write the machines' config; changes: name -> facts to merge (None deletes a key)."""
        for name, facts in changes.items():
            for k, v in facts.items():
                if v is None:
                    self.machines[name]["facts"].pop(k, None)
                else:
                    self.machines[name]["facts"][k] = v
        cfg = {}
        for name, m in self.machines.items():
            cfg[name] = auto.ConfigValue(json.dumps(m["facts"]))
            cfg[name + "EkCert"] = auto.ConfigValue(m["pem"], secret=True)
        self.stack.set_all_config(cfg)

    def up(self):
        return self.stack.up(color="never")

    def outputs(self):
        return self.stack.outputs()

    def export(self):
        """`pulumi stack export` (without --show-secrets, which the Automation API's export_stack adds)."""
        env = dict(os.environ, PULUMI_HOME=self.home, **self.env)
        r = subprocess.run(["pulumi", "stack", "export", "--stack", self.stack_name], cwd=self.work, env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["deployment"]

    def resources(self, kind):
        return {r["urn"].rsplit("::", 1)[1]: r for r in self.export().get("resources", []) if
                r["type"].endswith(":" + kind)}

    def ids(self):
        return dict(self.outputs()["machine_ids"].value)

    def cleanup(self):
        import shutil
        self.stack.workspace.remove_stack(self.stack_name, force=True)
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)


@pytest.fixture(scope="module")
def dev(cluster, tools, ek):
    d = Demo(cluster, tools, ek, "dev")
    yield d
    d.cleanup()


def summary(result):
    return dict(result.summary.resource_changes or {})


def status_of(api, machine_id):
    return str(api.get_machine(machine_id).status)


def assert_consistent(d, api):
    """The stack's state and the server agree: no pending operations, every machine in the state is live on
    the server, and no other live machine has one of this stack's EKs."""
    dep = d.export()
    assert not dep.get("pending_operations"), dep.get("pending_operations")
    in_state = {r["id"] for r in d.resources("RegisteredMachine").values()}
    for mid in in_state:
        assert api.get_machine(mid).live, mid
    fps = {m["facts"]["ekFingerprint"] for m in d.machines.values()}
    live = set()
    for status in ("pending", "approved", "locked"):
        live |= {m.machine_id for m in api.iter_machines(status=status)
                 if m.ek_fingerprint in fps}
    assert live == in_state


# ---- the main lifecycle, on stack dev (in order) ----

def test_up_registers_and_approves_both_machines(dev, api, cluster):
    r = dev.up()
    assert summary(r).get("create") == 6, summary(r)  # the stack, 2 machines, 2 approvals, the token
    out = r.outputs
    ids = out["machine_ids"].value
    assert set(ids) == {"controlplane", "worker"} and ids["controlplane"] != ids["worker"]
    assert out["statuses"].value == {"controlplane": "approved", "worker": "approved"}
    assert out["machine_ids"].secret is False and out["iso_urls"].secret is False
    for name, mid in ids.items():
        m = api.get_machine(mid)
        facts = dev.machines[name]["facts"]
        assert str(m.status) == "approved" and m.hostname == facts["hostname"]
        assert m.assigned_ip == facts["assignedIp"] and m.ek_fingerprint == facts["ekFingerprint"]
        assert str(m.role) == ("controlplane" if name == "controlplane" else "worker-app")
        assert out["iso_urls"].value[name] == m.iso_url and api.verify_iso(m.iso_url).valid
        assert out["config_urls"].value[name] == m.config_url

    bundle = out["bootstrap_bundle"]
    assert bundle.secret is True
    b = json.loads(bundle.value)
    assert len(b["enrollment_token"]) == 64 and int(b["enrollment_token"], 16) >= 0
    assert set(b["machines"]) == {"controlplane", "worker"}
    # The worker's config token is its own: the configuration comes once.
    w = b["machines"]["worker"]
    doc = api.fetch_config(w["config_url"], w["config_token"])
    assert doc["machine_id"] == ids["worker"] and doc["hostname"] == dev.machines["worker"]["facts"]["hostname"]
    with pytest.raises(AttestationError) as ei:
        api.fetch_config(w["config_url"], w["config_token"])
    assert ei.value.status == 410

    # Secrets are secret in the state: neither the CLI's export nor the server's raw export holds the API
    # token, an EK certificate, a config token or the enrollment token in plaintext.
    plain = [cluster.server.token, b["enrollment_token"]] + [m["config_token"] for m in b["machines"].values()]
    for m in dev.machines.values():
        body = m["pem"].strip().splitlines()[1:-1]
        plain += [max(body, key=len), "".join(body)[:120]]
    cli_export = json.dumps(dev.export())
    st, _, raw, _ = cluster.server.request("GET", "/api/stacks/%s/export" % dev.stack_name)
    assert st == 200
    for text, what in ((cli_export, "pulumi stack export"), (raw.decode(), "the server's export")):
        leaked = [p[:12] + "..." for p in plain if p in text]
        assert not leaked, "%s holds plaintext secrets: %s" % (what, leaked)
    sig = "4dabf18193072939515e22adb298388d"
    for name, res in dev.resources("RegisteredMachine").items():
        for key in ("token", "ek_cert_pem", "config_token"):
            assert sig in json.dumps(res["outputs"][key]), (name, key)
        for key in ("token", "ek_cert_pem"):
            assert sig in json.dumps(res["inputs"][key]), (name, key)
    for res in dev.resources("EnrollmentToken").values():
        assert sig in json.dumps(res["outputs"]["token"])
    assert_consistent(dev, api)


def test_preview_after_up_shows_no_changes(dev):
    p = dev.stack.preview(color="never")
    assert set(p.change_summary) == {"same"}, p.change_summary


def test_a_revoked_machine_shows_on_refresh_and_up_registers_it_again(dev, api):
    old = dev.ids()
    api.revoke(old["worker"])
    r = dev.stack.refresh(color="never")
    assert summary(r).get("update", 0) >= 1, summary(r)
    worker = dev.resources("RegisteredMachine")["worker"]
    assert worker["id"] == old["worker"] and worker["outputs"]["status"] == "revoked"
    assert dev.resources("MachineApproval")["worker-approval"]["outputs"]["status"] == "revoked"
    p = dev.stack.preview(color="never")
    assert p.change_summary.get("replace") == 2, p.change_summary  # the worker and its approval
    r = dev.up()
    assert summary(r).get("replace") == 2, summary(r)
    new = r.outputs["machine_ids"].value
    assert new["worker"] != old["worker"] and new["controlplane"] == old["controlplane"]
    assert r.outputs["statuses"].value == {"controlplane": "approved", "worker": "approved"}
    assert status_of(api, new["worker"]) == "approved" and status_of(api, old["worker"]) == "revoked"
    assert_consistent(dev, api)


def test_a_locked_machine_shows_on_refresh_and_up_registers_it_again(dev, api):
    old = dev.ids()
    api.lock(old["controlplane"])
    dev.stack.refresh(color="never")
    assert dev.resources("RegisteredMachine")["controlplane"]["outputs"]["status"] == "locked"
    r = dev.up()
    assert summary(r).get("replace") == 2, summary(r)
    new = r.outputs["machine_ids"].value
    assert new["controlplane"] != old["controlplane"] and new["worker"] == old["worker"]
    assert r.outputs["statuses"].value["controlplane"] == "approved"
    # The old one was revoked first: a locked machine's EK is still live.
    assert status_of(api, old["controlplane"]) == "revoked"
    m = api.get_machine(new["controlplane"])
    assert str(m.status) == "approved" and m.hostname == dev.machines["controlplane"]["facts"]["hostname"]
    assert_consistent(dev, api)
    assert set(dev.stack.preview(color="never").change_summary) == {"same"}


def test_the_enrollment_token_is_stable_across_updates(dev):
    before = json.loads(dev.outputs()["bootstrap_bundle"].value)["enrollment_token"]
    dev.up()
    assert json.loads(dev.outputs()["bootstrap_bundle"].value)["enrollment_token"] == before


def test_destroy_revokes_both(dev, api):
    ids = dev.ids()
    r = dev.stack.destroy(color="never")
    assert summary(r).get("delete") == 6, summary(r)
    assert {n: status_of(api, i) for n, i in ids.items()} == {"controlplane": "revoked", "worker": "revoked"}
    assert not dev.export().get("resources")


# ---- keep_on_delete ----

def test_keep_on_delete_keeps_the_machine_approved_after_destroy(cluster, tools, ek, api):
    d = Demo(cluster, tools, ek, "keep")
    try:
        d.up()
        ids = d.ids()
        assert api.get_machine(ids["worker"]).retain is False
        # Changing keep_on_delete is an in-place update that the server records.
        d.configure(worker={"keepOnDelete": True})
        r = d.up()
        assert summary(r).get("update") == 1 and not summary(r).get("replace"), summary(r)
        assert d.ids() == ids
        assert api.get_machine(ids["worker"]).retain is True
        d.stack.destroy(color="never")
        kept = api.get_machine(ids["worker"])
        assert str(kept.status) == "approved" and kept.retain is True
        assert status_of(api, ids["controlplane"]) == "revoked"
    finally:
        d.cleanup()


# ---- bad inputs fail with the server's message and leave the state consistent ----

def failing_up(d):
    with pytest.raises(auto.CommandError) as ei:
        d.up()
    return str(ei.value)


def test_bad_inputs_fail_with_the_servers_message_and_keep_the_state_consistent(cluster, tools, ek, api):
    d = Demo(cluster, tools, ek, "bad")
    try:
        good = dict(d.machines["worker"]["facts"])
        # A fingerprint that is not the certificate's: the control plane is made, the worker is not.
        d.configure(worker={"ekFingerprint": "ab" * 48})
        err = failing_up(d)
        assert "ek_fingerprint does not match the certificate" in err, err
        assert set(d.resources("RegisteredMachine")) == {"controlplane"}
        assert_consistent(d, api)
        # A MAC address that is none.
        d.configure(worker={"ekFingerprint": good["ekFingerprint"], "hwMac": "52:54:00:zz:00:01"})
        err = failing_up(d)
        assert "hw_mac must be a MAC address" in err, err
        assert set(d.resources("RegisteredMachine")) == {"controlplane"}
        assert_consistent(d, api)
        # The control plane's hostname: the worker registers, its approval is refused naming the other machine.
        cp_id = d.resources("RegisteredMachine")["controlplane"]["id"]
        d.configure(worker={"hwMac": good["hwMac"], "hostname": d.machines["controlplane"]["facts"]["hostname"]})
        err = failing_up(d)
        assert "the hostname is already assigned to machine %s" % cp_id in err, err
        assert set(d.resources("RegisteredMachine")) == {"controlplane", "worker"}
        assert set(d.resources("MachineApproval")) == {"controlplane-approval"}
        worker_id = d.resources("RegisteredMachine")["worker"]["id"]
        assert status_of(api, worker_id) == "pending"
        assert_consistent(d, api)
        # Good inputs again: the pending worker is approved, nothing else changes.
        d.configure(worker={"hostname": good["hostname"]})
        r = d.up()
        assert summary(r).get("create") == 1 and not summary(r).get("replace"), summary(r)
        assert r.outputs["statuses"].value == {"controlplane": "approved", "worker": "approved"}
        assert r.outputs["machine_ids"].value == {"controlplane": cp_id, "worker": worker_id}
        assert status_of(api, worker_id) == "approved"
        assert_consistent(d, api)
        assert set(d.stack.preview(color="never").change_summary) == {"same"}
        # An approved machine keeps its hostname: the update says how to re-register, and that works.
        old_host = d.machines["controlplane"]["facts"]["hostname"]
        d.configure(controlplane={"hostname": "renamed.lab.example.net"})
        err = failing_up(d)
        assert "pulumi up --replace" in err and cp_id in err, err
        m = api.get_machine(cp_id)
        assert m.hostname == old_host and str(m.status) == "approved"
        assert_consistent(d, api)
        urn = d.resources("RegisteredMachine")["controlplane"]["urn"]
        r = d.stack.up(color="never", replace=[urn])
        assert summary(r).get("replace") == 2, summary(r)
        new_cp = r.outputs["machine_ids"].value["controlplane"]
        assert new_cp != cp_id and status_of(api, cp_id) == "revoked"
        assert api.get_machine(new_cp).hostname == "renamed.lab.example.net"
        assert_consistent(d, api)
    finally:
        try:
            d.stack.destroy(color="never")
        finally:
            d.cleanup()
