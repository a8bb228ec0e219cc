"""The smoke set (smoke.py) against each CLI release of tests/matrix/releases: the pinned and the newest on
every run (built from their Go modules when not cached), the others when their builds are cached
(scripts/cli-matrix.sh builds them all and regenerates the README's table)."""
import os
import re
import subprocess

import pytest

import harness
import smoke

RELEASES = smoke.releases()
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
    c = harness.Cluster(procs=2, threads=4, settings=smoke.SETTINGS)
    c.start()
    yield c.server
    bad = c.server.unexplained_5xx()
    c.stop()
    assert not bad, "".join(bad[:20])


@pytest.mark.parametrize("label,release,when,env", RELEASES, ids=[r[0] for r in RELEASES])
def test_release_smoke(server, label, release, when, env):
    d = cli_for(release, when)
    got = smoke.run_smoke(server, d, "m" + re.sub(r"[^0-9a-z]", "", label.lower())[:40], env)
    assert got["version"] == release
    failed = {k: v[1] for k, v in got["features"].items() if v[0] is False}
    assert not failed, "%s: %s" % (label, failed)
    if env.get("PULUMI_ENABLE_JOURNALING") == "true" or release >= "v3.259":
        assert got["modes"] == ["journal"], got["modes"]
    assert set(got["features"]) == set(smoke.FEATURES)
