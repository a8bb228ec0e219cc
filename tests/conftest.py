"""Shared pytest fixtures: one throwaway cluster (PostgreSQL + lighttpd + workers) per session."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import harness  # noqa: E402


@pytest.fixture(scope="session")
def cluster():
    c = harness.Cluster(procs=2, threads=4)
    try:
        c.start()
    except Exception:
        if c.server:
            print(c.server.logs(), file=sys.stderr)
        c.stop(keep=True)
        raise
    yield c
    c.server.stop()
    reports = c.server.sanitizer_reports()
    logs = c.server.logs()
    bad = c.server.unexplained_5xx()
    c.stop()
    assert not reports, "sanitizer reports from the workers:\n" + "\n".join(reports)[:20000]
    assert "runtime error" not in logs, logs[-5000:]
    assert not bad, "5xx answers no test asked for:\n" + "".join(bad[:50])


@pytest.fixture(scope="session")
def server(cluster):
    return cluster.server


@pytest.fixture(scope="session")
def pg(cluster):
    return cluster.pg
