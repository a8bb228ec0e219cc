"""AttestationClient against a real pulumi-state server: every call of the machine attestation API."""
import pytest

from pulumi_itl_attestation import (AttestationClient, AttestationError, Machine, MachineStatus, NodeRole,
                                    Registration)


def test_register_returns_a_pending_machine_and_its_config_token(client, register, cluster):
    reg = register(NodeRole.CONTROLPLANE, hw_mac="AA-BB-CC-00-11-FE")
    assert isinstance(reg, Registration)
    m = reg.machine
    assert isinstance(m, Machine)
    assert m.status is MachineStatus.PENDING
    assert m.desired_role is NodeRole.CONTROLPLANE
    assert m.role is None and m.hostname is None and m.assigned_ip is None
    assert m.approved_at is None and m.revoked_at is None
    assert m.hw_mac == "aa:bb:cc:00:11:fe"  # stored normalised
    assert m.config_url == "%s/api/v1/machines/%s/config" % (cluster.server.url, m.machine_id)
    assert m.config_fetched is False and m.retain is False
    assert m.iso_url and m.iso_expires_at and m.created_at
    assert len(reg.config_token) >= 32
    assert reg.config_token not in repr(reg)

    got = client.get_machine(m.machine_id)
    assert got.machine_id == m.machine_id and got.status is MachineStatus.PENDING
    assert got.iso_url == m.iso_url  # stable
    assert client.get_machine(m.machine_id).iso_url == m.iso_url
    assert reg.config_token not in str(got.to_json())
    assert "config_token" not in got.to_json()


def test_register_accepts_an_uppercase_fingerprint(register, ek):
    pem, fp = ek()
    reg = register(ek_fingerprint=fp.upper(), ek_cert_pem=pem)
    assert reg.machine.ek_fingerprint.lower() == fp


@pytest.mark.parametrize("field, value, words", [
    ("ek_fingerprint", "ab" * 48, "does not match"),
    ("ek_fingerprint", "abc", "96 hex"),
    ("ek_cert_pem", "not a certificate", "PEM"),
    ("hw_mac", "52:54:00:12:34", "hw_mac"),
    ("hw_mac", "zz:zz:zz:zz:zz:zz", "hw_mac"),
    ("desired_role", "boss", "desired_role"),
])
def test_register_refuses_bad_input_with_the_servers_message(register, field, value, words):
    with pytest.raises(AttestationError) as ei:
        register(**{field: value})
    e = ei.value
    assert e.status == 400 and e.code == 400
    assert words in e.message
    assert e.message in str(e) and "POST /api/v1/register" in str(e)


def test_register_refuses_an_ek_with_a_live_machine_naming_it(client, register, ek):
    pem, fp = ek()
    first = register(ek_fingerprint=fp, ek_cert_pem=pem).machine
    with pytest.raises(AttestationError) as ei:
        register(ek_fingerprint=fp, ek_cert_pem=pem)
    assert ei.value.status == 409 and ei.value.conflict
    assert first.machine_id in ei.value.message
    # Once revoked, the same EK registers again as a new machine.
    client.revoke(first.machine_id)
    again = register(ek_fingerprint=fp, ek_cert_pem=pem).machine
    assert again.machine_id != first.machine_id and again.status is MachineStatus.PENDING


def test_get_unknown_machine_is_404(client):
    with pytest.raises(AttestationError) as ei:
        client.get_machine("00000000-0000-0000-0000-000000000000")
    assert ei.value.status == 404 and ei.value.not_found and ei.value.message


def test_list_is_newest_first_filtered_and_paged(client, register):
    a = register(NodeRole.WORKER_INFRA).machine
    b = register(NodeRole.WORKER_INFRA).machine
    c = register(NodeRole.WORKER_INFRA).machine
    client.revoke(b.machine_id)
    page = client.list_machines(page=1, page_size=2)
    assert page.page == 1 and page.page_size == 2 and len(page.machines) == 2
    assert page.total >= 3
    assert [m.machine_id for m in page.machines] == [c.machine_id, b.machine_id]
    page2 = client.list_machines(page=2, page_size=2)
    assert page2.machines[0].machine_id == a.machine_id

    revoked = client.list_machines(status=MachineStatus.REVOKED, role=NodeRole.WORKER_INFRA)
    ids = [m.machine_id for m in revoked.machines]
    assert b.machine_id in ids and a.machine_id not in ids
    assert all(m.status is MachineStatus.REVOKED for m in revoked.machines)
    pending = client.list_machines(status="pending", role="worker-infra", page_size=200)
    ids = [m.machine_id for m in pending.machines]
    assert a.machine_id in ids and c.machine_id in ids and b.machine_id not in ids

    every = [m.machine_id for m in client.iter_machines(role="worker-infra", page_size=1)]
    assert every[:3] == [c.machine_id, b.machine_id, a.machine_id] and len(every) == len(set(every))
    with pytest.raises(AttestationError) as ei:
        client.list_machines(status="bogus")
    assert ei.value.status == 400 and "status" in ei.value.message


def test_approve_is_idempotent_and_refuses_other_values(client, register, facts):
    m = register(NodeRole.WORKER_APP).machine
    host, ip = facts.host(), facts.ip()
    ok = client.approve(m.machine_id, NodeRole.WORKER_APP, host, ip)
    assert ok.status is MachineStatus.APPROVED and ok.role is NodeRole.WORKER_APP
    assert ok.hostname == host and ok.assigned_ip == ip and ok.approved_at and ok.retain is False
    again = client.approve(m.machine_id, "worker-app", host, ip)
    assert again.status is MachineStatus.APPROVED and again.approved_at == ok.approved_at
    kept = client.approve(m.machine_id, "worker-app", host, ip, retain=True)  # retain alone may change
    assert kept.retain is True and client.get_machine(m.machine_id).retain is True
    with pytest.raises(AttestationError) as ei:
        client.approve(m.machine_id, "worker-app", facts.host(), ip)
    assert ei.value.status == 409 and "approved" in ei.value.message


def test_approve_validates_hostname_and_address(client, register, facts):
    m = register().machine
    with pytest.raises(AttestationError) as ei:
        client.approve(m.machine_id, "worker-app", "justahost")
    assert ei.value.status == 400 and "hostname" in ei.value.message
    with pytest.raises(AttestationError) as ei:
        client.approve(m.machine_id, "worker-app", facts.host(), "10.1.2.300")
    assert ei.value.status == 400
    v6 = client.approve(m.machine_id, "worker-app", facts.host(), "fd00::%x" % next(facts.n))
    assert v6.status is MachineStatus.APPROVED and v6.assigned_ip.startswith("fd00::")


def test_approve_keeps_hostname_and_address_unique_among_live_machines(client, register, facts):
    first = register().machine
    host, ip = facts.host(), facts.ip()
    client.approve(first.machine_id, "worker-app", host, ip)
    second = register().machine
    with pytest.raises(AttestationError) as ei:
        client.approve(second.machine_id, "worker-app", host.upper(), facts.ip())
    assert ei.value.status == 409 and first.machine_id in ei.value.message
    with pytest.raises(AttestationError) as ei:
        client.approve(second.machine_id, "worker-app", facts.host(), ip)
    assert ei.value.status == 409 and first.machine_id in ei.value.message
    # Revoking the first frees both.
    client.revoke(first.machine_id)
    assert client.approve(second.machine_id, "worker-app", host, ip).status is MachineStatus.APPROVED


def test_lock_unlock_revoke_and_illegal_transitions(client, register, facts):
    m = register().machine
    with pytest.raises(AttestationError) as ei:
        client.lock(m.machine_id)
    assert ei.value.status == 409 and "pending" in ei.value.message
    host = facts.host()
    client.approve(m.machine_id, "worker-app", host)
    locked = client.lock(m.machine_id)
    assert locked.status is MachineStatus.LOCKED
    with pytest.raises(AttestationError) as ei:
        client.approve(m.machine_id, "worker-app", host)
    assert ei.value.status == 409 and "locked" in ei.value.message
    assert client.lock(m.machine_id).status is MachineStatus.LOCKED  # the same state again: idempotent
    assert client.unlock(m.machine_id).status is MachineStatus.APPROVED
    assert client.unlock(m.machine_id).status is MachineStatus.APPROVED
    revoked = client.revoke(m.machine_id)
    assert revoked.status is MachineStatus.REVOKED and revoked.revoked_at and not revoked.live
    assert client.revoke(m.machine_id).status is MachineStatus.REVOKED  # idempotent
    for act in (client.lock, client.unlock):
        with pytest.raises(AttestationError) as ei:
            act(m.machine_id)
        assert ei.value.status == 409 and "revoked" in ei.value.message
    with pytest.raises(AttestationError) as ei:
        client.approve(m.machine_id, "worker-app", host)
    assert ei.value.status == 409 and "revoked" in ei.value.message
    with pytest.raises(AttestationError) as ei:
        client.revoke("00000000-0000-0000-0000-000000000000")
    assert ei.value.status == 404


def test_config_is_fetched_once_with_its_token(client, register, facts):
    reg = register(NodeRole.CONTROLPLANE)
    m = reg.machine
    with pytest.raises(AttestationError) as ei:
        client.fetch_config(m.config_url, reg.config_token)
    assert ei.value.status == 409 and "pending" in ei.value.message  # not consumed
    host, ip = facts.host("cp"), facts.ip()
    client.approve(m.machine_id, NodeRole.CONTROLPLANE, host, ip)
    with pytest.raises(AttestationError) as ei:
        client.fetch_config(m.config_url, "x" * len(reg.config_token))
    assert ei.value.status == 403
    doc = client.fetch_config(m.config_url, reg.config_token)
    assert doc["machine_id"] == m.machine_id and doc["role"] == "controlplane"
    assert doc["hostname"] == host and doc["assigned_ip"] == ip
    assert client.get_machine(m.machine_id).config_fetched is True
    with pytest.raises(AttestationError) as ei:
        client.fetch_config(m.config_url, reg.config_token)
    assert ei.value.status == 410 and ei.value.message


def test_iso_url_verifies_and_a_tampered_one_does_not(client, register):
    m = register().machine
    v = client.verify_iso(m.iso_url)
    assert v.valid is True and v.machine_id == m.machine_id and v.expires_at
    bad = client.verify_iso(m.iso_url.replace("signature=", "signature=0"))
    assert bad.valid is False and bad.reason
    other = client.verify_iso(m.iso_url.replace(m.machine_id, "00000000-0000-0000-0000-000000000000"))
    assert other.valid is False


def test_roles_of_api_tokens(cluster, register, facts, make_token):
    m = register().machine
    url = cluster.server.url
    reader = AttestationClient(url, make_token("att-reader", "read"), retries=0)
    writer = AttestationClient(url, make_token("att-writer", "write"), retries=0)
    assert reader.get_machine(m.machine_id).machine_id == m.machine_id
    assert reader.list_machines().total >= 1
    with pytest.raises(AttestationError) as ei:
        reader.approve(m.machine_id, "worker-app", facts.host())
    assert ei.value.status == 403
    assert writer.approve(m.machine_id, "worker-app", facts.host()).status is MachineStatus.APPROVED
    with pytest.raises(AttestationError) as ei:
        writer.revoke(m.machine_id)
    assert ei.value.status == 403
    with pytest.raises(AttestationError) as ei:
        AttestationClient(url, "not-a-token", retries=0).get_machine(m.machine_id)
    assert ei.value.status == 401


def test_machine_keeps_fields_it_does_not_know_and_never_the_config_token():
    m = Machine.from_json({"machine_id": "m1", "status": "sleeping", "desired_role": "worker-app",
                           "future_field": 1, "config_token": "secret"})
    assert m.status == "sleeping"  # a state this client does not know yet stays text
    assert m.desired_role is NodeRole.WORKER_APP
    assert m.extra == {"future_field": 1}
    assert "secret" not in str(m.to_json())
