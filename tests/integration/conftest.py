"""Fixtures of the HTTP integration tests (the cluster itself comes from tests/conftest.py)."""
import pytest

import psapi


@pytest.fixture(scope="session")
def api(server, pg):
    return psapi.Api(server, pg)


@pytest.fixture(scope="session")
def jserver(cluster):
    """A second front end on the same database with journaling accepted (PULUMI_STATE_JOURNALING=true)."""
    import os
    import harness
    s = harness.Server(os.path.join(cluster.base, "journal"), cluster.pg, cluster.bindir, procs=1, threads=2,
                       settings={"PULUMI_STATE_JOURNALING": "true"})
    s.token = cluster.server.token
    s.master_key = cluster.server.master_key
    s.start()
    yield s
    s.stop()
    reports = s.sanitizer_reports()
    assert not reports, "sanitizer reports from the journaling workers:\n" + "\n".join(reports)[:20000]
    assert "runtime error" not in s.logs()
    assert not s.unexplained_5xx(), "".join(s.unexplained_5xx()[:50])


@pytest.fixture(scope="session")
def japi(jserver, pg):
    return psapi.Api(jserver, pg)
