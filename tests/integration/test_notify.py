"""The LISTEN/NOTIFY module (lib/notify.c), the migration runner and the one-round-trip COPY, tested in C
(tests/unit/test_notify.c) against a throwaway PostgreSQL that this test starts."""
import os
import shutil
import subprocess
import tempfile

from harness import Postgres


def test_notify_module_against_postgres():
    binary = os.path.join(os.environ.get("PULUMI_STATE_BINDIR", "build"), "tests", "unit", "test_notify")
    assert os.path.exists(binary), "build the unit tests first (make check builds tests/unit/test_notify)"
    base = tempfile.mkdtemp(prefix="pulumi-state-notify-")
    os.chmod(base, 0o755)
    pg = Postgres(base)
    pg.start()
    try:
        env = dict(os.environ, PS_TEST_CONNINFO=pg.conninfo, CK_FORK="no")
        run = subprocess.run([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=120)
        assert run.returncode == 0, run.stdout
        assert "100%: Checks: 5, Failures: 0, Errors: 0" in run.stdout, run.stdout
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
