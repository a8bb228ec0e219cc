"""The smoke set (smoke.py) against each CLI release of tests/matrix/releases: the pinned and the newest on
every run (built from their Go modules when not cached), the others when their builds are cached
(scripts/cli-matrix.sh builds them all and regenerates the README's table)."""
import os
import re
import subprocess

import pytest

import harness
import smoke

RELEASES = [line.split()[:2] for line in open(os.path.join(os.path.dirname(__file__), "releases"))
            if line.strip() and not line.startswith("#")]
YAML = "v1.32.0"


def cli_for(release, when):
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pulumi-state", "cli",
                         "%s-yaml%s" % (release, YAML))
    if os.access(os.path.join(cache, "pulumi"), os.X_OK) and os.access(os.path.join(cache, "pulumi-language-yaml"),
                                                                      os.X_OK):
        return cache
    if when != "always":
        pytest.skip("%s is not built here (scripts/cli-matrix.sh builds it)" % release)
    return subprocess.run(["bash", os.path.join(harness.ROOT, "tests", "cli", "install-pulumi.sh")], check=True,
                          capture_output=True, text=True,
                          env=dict(os.environ, PULUMI_VERSION=release, PULUMI_YAML_VERSION=YAML)).stdout.strip()


@pytest.fixture(scope="module")
def server():
    c = harness.Cluster(procs=2, threads=4)
    c.start()
    yield c.server
    bad = c.server.unexplained_5xx()
    c.stop()
    assert not bad, "".join(bad[:20])


@pytest.mark.parametrize("release,when", RELEASES, ids=[r for r, _ in RELEASES])
def test_release_smoke(server, release, when):
    d = cli_for(release, when)
    got = smoke.run_smoke(server, d, "m" + re.sub(r"[^0-9]", "", release))
    assert got["version"] == release
    failed = {k: v[1] for k, v in got["features"].items() if v[0] is False}
    assert not failed, "%s: %s" % (release, failed)
    assert set(got["features"]) == set(smoke.FEATURES)
