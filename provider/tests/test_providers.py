"""The dynamic providers' create/read/diff/update/delete called directly (no engine) against the real server."""
import pytest

from pulumi_itl_attestation import (EnrollmentTokenProvider, MachineApprovalProvider, MachineStatus,
                                    RegisteredMachineProvider)

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


@pytest.fixture
def inputs(cluster, ek, facts):
    def make(role="worker-app"):
        pem, fp = ek()
        return {"endpoint": cluster.server.url, "token": cluster.server.token, "ek_fingerprint": fp,
                "ek_cert_pem": pem, "hw_serial": "SN-" + fp[:6], "hw_product": "NUC 13", "hw_mac": facts.mac(),
                "desired_role": role}
    return make


def approve(cluster, machine_id, facts, keep=False):
    ins = {"endpoint": cluster.server.url, "token": cluster.server.token, "machine_id": machine_id,
           "role": "worker-app", "hostname": facts.host(), "assigned_ip": facts.ip(), "keep_on_delete": keep}
    ins = MachineApprovalProvider().check({}, ins).inputs
    return ins, MachineApprovalProvider().create(ins)


def test_registered_machine_lifecycle(client, inputs):
    p = RegisteredMachineProvider()
    ins = inputs()
    assert p.check({}, ins).failures == []
    assert [f.property for f in p.check({}, dict(ins, hw_mac="")).failures] == ["hw_mac"]
    made = p.create(ins)
    outs = made.outs
    assert outs["machine_id"] == made.id and outs["status"] == "pending" and outs["config_token"]
    assert outs["hw_mac"] == ins["hw_mac"]  # the input as given; the server's form is registered_mac
    assert outs["registered_mac"] == ins["hw_mac"].lower().replace("-", ":")

    same = p.diff(made.id, outs, ins)
    assert same.changes is False and same.replaces == []
    assert p.diff(made.id, outs, dict(ins, token="other")).changes is True
    assert p.diff(made.id, outs, dict(ins, token="other")).replaces == []
    moved = p.diff(made.id, outs, dict(ins, hw_mac="52:54:00:ff:ff:ff", ek_fingerprint=UNKNOWN))
    assert moved.changes and set(moved.replaces) == {"hw_mac", "ek_fingerprint"} and moved.delete_before_replace

    client.revoke(made.id)
    read = p.read(made.id, outs)
    assert read.id == made.id and read.outs["status"] == "revoked" and read.outs["config_token"] == outs["config_token"]
    drift = p.diff(made.id, read.outs, ins)
    assert drift.replaces == ["status"] and drift.delete_before_replace is True
    p.delete(made.id, read.outs)  # already revoked: nothing to do
    assert client.get_machine(made.id).status is MachineStatus.REVOKED


def test_read_of_a_machine_the_server_does_not_know_drops_it(inputs):
    p = RegisteredMachineProvider()
    outs = dict(inputs(), machine_id="00000000-0000-0000-0000-000000000000", status="approved")
    assert p.read("00000000-0000-0000-0000-000000000000", outs).id == ""
    p.delete("00000000-0000-0000-0000-000000000000", outs)  # gone already: fine


def test_delete_revokes_unless_retained_but_always_when_recorded_locked(client, cluster, inputs, facts):
    p = RegisteredMachineProvider()
    plain = p.create(inputs())
    p.delete(plain.id, plain.outs)
    assert client.get_machine(plain.id).status is MachineStatus.REVOKED

    kept = p.create(inputs())
    approve(cluster, kept.id, facts, keep=True)
    assert client.get_machine(kept.id).retain is True
    p.delete(kept.id, kept.outs)
    assert client.get_machine(kept.id).status is MachineStatus.APPROVED

    client.lock(kept.id)
    recorded = p.read(kept.id, kept.outs).outs
    assert recorded["status"] == "locked"
    p.delete(kept.id, recorded)  # the first half of a re-registration: the EK must be freed
    assert client.get_machine(kept.id).status is MachineStatus.REVOKED


def test_machine_approval_lifecycle(client, cluster, inputs, facts):
    m = RegisteredMachineProvider().create(inputs())
    a = MachineApprovalProvider()
    ins, made = approve(cluster, m.id, facts)
    outs = made.outs
    assert made.id == m.id and outs["status"] == "approved" and outs["retain"] is False
    assert a.diff(made.id, outs, ins).changes is False

    # keep_on_delete changes in place, and the server records it.
    keep = dict(ins, keep_on_delete=True)
    d = a.diff(made.id, outs, keep)
    assert d.changes is True and d.replaces == []
    outs = a.update(made.id, outs, keep).outs
    assert outs["keep_on_delete"] is True and outs["retain"] is True and client.get_machine(m.id).retain is True

    # The hostname cannot change while approved: the update says how to re-register.
    with pytest.raises(Exception) as ei:
        a.update(made.id, outs, dict(keep, hostname=facts.host()))
    assert "pulumi up --replace" in str(ei.value) and m.id in str(ei.value)

    assert a.diff(made.id, outs, dict(keep, machine_id=UNKNOWN)).replaces == ["machine_id"]
    client.lock(m.id)
    read = a.read(made.id, outs)
    assert read.outs["status"] == "locked"
    assert a.diff(made.id, read.outs, keep).replaces == ["status"]

    a.delete(made.id, read.outs)  # keep_on_delete: left as it is
    assert client.get_machine(m.id).status is MachineStatus.LOCKED
    a.delete(made.id, dict(read.outs, keep_on_delete=False))
    assert client.get_machine(m.id).status is MachineStatus.REVOKED


def test_enrollment_token_is_random_and_stable_until_its_keepers_change():
    p = EnrollmentTokenProvider()
    ins = p.check({}, {"keepers": None}).inputs
    one, two = p.create(ins), p.create(ins)
    assert len(one.outs["token"]) == 64 and int(one.outs["token"], 16) >= 0
    assert one.outs["token"] != two.outs["token"] and one.id != two.id
    assert p.diff(one.id, one.outs, ins).changes is False
    d = p.diff(one.id, one.outs, {"keepers": {"endpoint": "x"}})
    assert d.changes is True and d.replaces == ["keepers"]
