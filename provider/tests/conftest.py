"""Fixtures of the client tests: a real pulumi-state server (tests/lib/harness.py) and throwaway EK certificates."""
import itertools
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import harness  # noqa: E402

from pulumi_itl_attestation import AttestationClient  # noqa: E402


@pytest.fixture(scope="session")
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
    reports = c.server.sanitizer_reports()
    c.stop()
    assert not reports, "sanitizer reports from the workers:\n" + "\n".join(reports)[:20000]
    assert not bad, "5xx answers no test asked for:\n" + "".join(bad[:50])


@pytest.fixture(scope="session")
def client(cluster):
    with AttestationClient(cluster.server.url, cluster.server.token, timeout=30, retries=2, backoff=0.05) as c:
        yield c


@pytest.fixture(scope="session")
def make_token(cluster):
    """make_token(name, role): an API token made with pulumi-state-admin (printed once)."""
    def make(name, role):
        env = dict(os.environ, PULUMI_STATE_DATABASE=cluster.pg.conninfo)
        return subprocess.run([os.path.join(cluster.bindir, "pulumi-state-admin"), "token", "create", "--name", name,
                               "--role", role], env=env, check=True, capture_output=True, text=True).stdout.strip()
    return make


class EkFactory:
    """Throwaway EK certificates made with the openssl CLI (self-signed P-384; the key is thrown away)."""

    def __init__(self, base):
        self.base = base
        self.n = itertools.count(1)

    def __call__(self):
        i = next(self.n)
        key, pem = os.path.join(self.base, "ek%d.key" % i), os.path.join(self.base, "ek%d.pem" % i)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes",
                        "-keyout", key, "-days", "30", "-subj", "/O=Test TPM/CN=EK %d" % i, "-out", pem],
                       check=True, capture_output=True)
        os.unlink(key)
        der = subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"], check=True, capture_output=True).stdout
        fp = subprocess.run(["openssl", "dgst", "-sha384", "-r"], input=der, check=True,
                            capture_output=True).stdout.split()[0].decode()
        with open(pem) as f:
            return f.read(), fp


@pytest.fixture(scope="session")
def ek(tmp_path_factory):
    return EkFactory(str(tmp_path_factory.mktemp("ek")))


class Facts:
    """Unique hardware facts, hostnames and addresses per test (the server keeps them unique among live machines)."""

    def __init__(self):
        self.n = itertools.count(1)

    def mac(self):
        i = next(self.n)
        return "52-54-00-%02X-%02X-%02X" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)

    def host(self, prefix="node"):
        return "%s%d.lab.example.net" % (prefix, next(self.n))

    def ip(self):
        i = next(self.n)
        return "10.20.%d.%d" % ((i >> 8) & 255, i & 255)


@pytest.fixture(scope="session")
def facts():
    return Facts()


@pytest.fixture
def register(client, ek, facts):
    """Register a fresh machine: register(role="worker-app", **overrides) -> Registration."""
    def reg(desired_role="worker-app", **kw):
        pem, fp = ek()
        args = dict(ek_fingerprint=fp, ek_cert_pem=pem, hw_serial="SN-%s" % fp[:8], hw_product="ThinkCentre M75q",
                    hw_mac=facts.mac(), desired_role=desired_role)
        args.update(kw)
        return client.register(**args)
    return reg
