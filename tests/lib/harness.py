"""harness.py - a throwaway PostgreSQL, lighttpd and pulumi-state workers on loopback.

Used by the integration and CLI tests (as a pytest fixture) and by `scripts/run-local.sh`
(`python3 tests/lib/harness.py serve`). Everything it starts it stops itself, by pid.
"""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG_BIN = "/usr/lib/postgresql/15/bin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, what, timeout=60.0):
    """Poll a readiness condition (bounded); raise with `what` if it never holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


def stop_process(proc, timeout=30):
    """SIGTERM to a process this suite started, SIGKILL if it has not exited within timeout seconds."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Postgres:
    def __init__(self, base):
        self.dir = os.path.join(base, "pg")
        self.port = free_port()
        os.makedirs(self.dir)
        shutil.chown(base, "postgres")
        shutil.chown(self.dir, "postgres")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.started = False

    def _as_pg(self, *args, **kw):
        return subprocess.run(["runuser", "-u", "postgres", "--"] + list(args), check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)

    def start(self):
        """Create the cluster (the first time) and start it; after stop() it starts again as it was."""
        if not os.path.exists(os.path.join(self.data, "PG_VERSION")):
            self._as_pg(PG_BIN + "/initdb", "-D", self.data, "-A", "trust", "--nosync", "-U", "postgres", "-E",
                        "UTF8")
        opts = ("-k %s -p %d -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=200" % (self.dir, self.port))
        try:
            self._as_pg(PG_BIN + "/pg_ctl", "-D", self.data, "-l", self.log, "-o", opts, "-w", "start")
        except subprocess.CalledProcessError:
            print(open(self.log).read(), file=sys.stderr)
            raise
        self.started = True

    @property
    def conninfo(self):
        return "host=%s port=%d dbname=postgres user=postgres" % (self.dir, self.port)

    def psql(self, sql, *params):
        """Run one SQL statement with psql; returns rows as lists of strings."""
        cmd = ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", self.conninfo]
        for i, p in enumerate(params):
            cmd += ["-v", "p%d=%s" % (i + 1, p)]
        out = subprocess.run(cmd, input=sql, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def restart(self):
        """A fast restart (a fault the suites inject): every connection to it dies."""
        subprocess.run(["runuser", "-u", "postgres", "--", PG_BIN + "/pg_ctl", "-D", self.data, "-l", self.log, "-m",
                        "fast", "-w", "restart"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        if self.started:
            subprocess.run(["runuser", "-u", "postgres", "--", PG_BIN + "/pg_ctl", "-D", self.data, "-m", "fast",
                            "-w", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.started = False


class PgBouncer:
    """Debian's PgBouncer in front of pg, in transaction-pooling mode (the pooler large installations use),
    on a loopback port; it runs as the postgres user (it refuses root) and is stopped by its pid."""

    def __init__(self, base, pg, pool_mode="transaction", pool_size=20):
        self.pg = pg
        self.dir = os.path.join(base, "pgbouncer")
        os.makedirs(self.dir)
        self.port = free_port()
        self.log = os.path.join(self.dir, "pgbouncer.log")
        with open(os.path.join(self.dir, "userlist.txt"), "w") as f:
            f.write('"postgres" ""\n')
        with open(os.path.join(self.dir, "pgbouncer.ini"), "w") as f:
            f.write("[databases]\npostgres = host=%s port=%d dbname=postgres\n\n[pgbouncer]\n"
                    "listen_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\nauth_type = trust\n"
                    "auth_file = %s/userlist.txt\npool_mode = %s\ndefault_pool_size = %d\n"
                    "max_client_conn = 1000\nlogfile = %s\nignore_startup_parameters = extra_float_digits\n"
                    % (pg.dir, pg.port, self.port, self.dir, pool_mode, pool_size, self.log))
        for name in os.listdir(self.dir):
            shutil.chown(os.path.join(self.dir, name), "postgres")
        shutil.chown(self.dir, "postgres")
        self.proc = None

    @property
    def conninfo(self):
        return "host=127.0.0.1 port=%d dbname=postgres user=postgres" % self.port

    def start(self):
        if not shutil.which("pgbouncer"):
            subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "pgbouncer"], check=True,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)
        self.proc = subprocess.Popen(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "pgbouncer",
                                      os.path.join(self.dir, "pgbouncer.ini")], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr.log"), "ab"))

        def accepting():
            if self.proc.poll() is not None:
                return True
            return subprocess.run(["psql", "-X", "-q", "-A", "-t", "-d", self.conninfo, "-c", "SELECT 1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        wait_until(accepting, "pgbouncer to accept connections")
        if self.proc.poll() is not None:
            raise RuntimeError("pgbouncer exited: " + open(os.path.join(self.dir, "stderr.log")).read())
        return self

    def stop(self):
        stop_process(self.proc)
        self.proc = None


# The README's Reliability table is made from what the suites record here (scripts/reliability-table.py).
FIGURES = os.environ.get("PULUMI_STATE_FIGURES") or os.path.join(ROOT, "build", "test-results", "reliability.jsonl")


def record(kind, what, n=1):
    """One line of the reliability figures: a fault survived, or n malformed inputs of a class refused."""
    os.makedirs(os.path.dirname(FIGURES), exist_ok=True)
    with open(FIGURES, "a") as f:
        f.write(json.dumps({"kind": kind, "what": what, "n": n}) + "\n")


def record_call(method, path, status):
    """Every call the integration suite makes through its API helper, for the table's input classes."""
    os.makedirs(os.path.dirname(FIGURES), exist_ok=True)
    with open(os.path.join(os.path.dirname(FIGURES), "calls.jsonl"), "a") as f:
        f.write(json.dumps({"method": method, "path": path, "status": status}) + "\n")


FRONTEND = os.environ.get("PULUMI_STATE_TEST_FRONTEND", "lighttpd")
PREFIX = os.environ.get("PULUMI_STATE_TEST_PREFIX", "")


class Server:
    """A front end (lighttpd spawning pulumi-state-fcgi workers, or Apache with mod_proxy_fcgi to workers run by
    spawn-fcgi), all settings passed as environment. PULUMI_STATE_TEST_FRONTEND picks the front end and
    PULUMI_STATE_TEST_PREFIX a path prefix for every server of a run."""

    def __init__(self, base, pg, bindir, procs=2, threads=4, settings=None, base_path=None, frontend=None):
        self.frontend = frontend or FRONTEND
        if base_path is None:
            base_path = PREFIX
        self.worker_pids = []
        self.base = base
        self.pg = pg
        self.bindir = bindir
        self.procs = procs
        self.threads = threads
        self.port = free_port()
        self.token = "op-" + secrets.token_hex(16)
        self.master_key = secrets.token_hex(32)
        self.base_path = base_path
        self.metrics_shm = "/pulumi-state-test-%d" % self.port  # removed by stop()
        self.settings = dict(settings or {})
        self.proc = None
        self.dir = os.path.join(base, "web")
        os.makedirs(self.dir, exist_ok=True)
        # The workers' log: lighttpd's error log (it spawns them), or spawn-fcgi's output under Apache.
        self.errlog = os.path.join(self.dir, "error.log" if self.frontend == "lighttpd" else "workers.log")
        self.asan_dir = os.path.join(self.dir, "asan")
        os.makedirs(self.asan_dir, exist_ok=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d%s" % (self.port, self.base_path)

    def env(self):
        e = {
            "PULUMI_STATE_DATABASE": self.pg.conninfo,
            "ITL_PULUMI_TOKEN": self.token,
            "PULUMI_STATE_MASTER_KEY": self.master_key,
            "PULUMI_STATE_THREADS": str(self.threads),
            "PULUMI_STATE_BASE_PATH": self.base_path,
            "PULUMI_STATE_PUBLIC_URL": self.url,
            "PULUMI_STATE_METRICS_SHM": self.metrics_shm,
            "ASAN_OPTIONS": "log_path=%s/asan:detect_leaks=1:abort_on_error=0" % self.asan_dir,
            "UBSAN_OPTIONS": "print_stacktrace=1:log_path=%s/ubsan" % self.asan_dir,
            "TSAN_OPTIONS": "log_path=%s/tsan:halt_on_error=0:second_deadlock_stack=1" % self.asan_dir,
        }
        e.update(self.settings)
        return e

    def migrate(self):
        env = dict(os.environ, PULUMI_STATE_DATABASE=self.pg.conninfo)
        subprocess.run([os.path.join(self.bindir, "pulumi-state-admin"), "migrate"], env=env, check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def write_config(self):
        env = ",\n".join('      "%s" => "%s"' % (k, str(v).replace('"', '\\"')) for k, v in self.env().items())
        conf = open(os.path.join(ROOT, "conf", "lighttpd.conf.in")).read()
        conf = (conf.replace("@PORT@", str(self.port)).replace("@DIR@", self.dir)
                .replace("@FCGI_BIN@", os.path.join(self.bindir, "pulumi-state-fcgi"))
                .replace("@PROCS@", str(self.procs)).replace("@PREFIX@", (self.base_path or "") + "/")
                .replace("@ENV@", env))
        path = os.path.join(self.dir, "lighttpd.conf")
        with open(path, "w") as f:
            f.write(conf)
        return path

    def write_apache_config(self):
        conf = open(os.path.join(ROOT, "conf", "apache.conf.in")).read()
        conf = (conf.replace("@PORT@", str(self.port)).replace("@DIR@", self.dir)
                .replace("@PREFIX@", (self.base_path or "") + "/"))
        path = os.path.join(self.dir, "apache.conf")
        with open(path, "w") as f:
            f.write(conf)
        return path

    def start_workers(self):
        """procs workers on one Unix socket, by spawn-fcgi; their pids are kept to stop them by."""
        sock = os.path.join(self.dir, "fcgi.sock")
        if os.path.exists(sock):
            os.unlink(sock)
        env = dict(os.environ)
        env.update(self.env())
        env["PULUMI_STATE_LOG_FILE"] = self.errlog  # spawn-fcgi gives its children no stderr
        out = subprocess.run(["spawn-fcgi", "-s", sock, "-M", "0666", "-F", str(self.procs), "--",
                              os.path.join(self.bindir, "pulumi-state-fcgi")], env=env, check=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=open(self.errlog, "ab"),
                             text=True).stdout
        import re
        self.worker_pids = [int(p) for p in re.findall(r"PID: (\d+)", out + open(self.errlog).read())]
        self.worker_pids = sorted(set(self.worker_pids))

    def stop_workers(self):
        for pid in self.worker_pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

        def gone():
            for pid in self.worker_pids:
                try:
                    os.kill(pid, 0)
                    return False
                except ProcessLookupError:
                    pass
            return True
        try:
            wait_until(gone, "the workers to stop", timeout=30)
        except RuntimeError:
            for pid in self.worker_pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.worker_pids = []

    def start(self):
        if self.frontend == "apache":
            self.start_workers()
            conf = self.write_apache_config()
            self.proc = subprocess.Popen(["apache2", "-f", conf, "-DFOREGROUND"], stdout=subprocess.DEVNULL,
                                         stderr=open(os.path.join(self.dir, "apache.stderr"), "w"))
        else:
            conf = self.write_config()
            self.proc = subprocess.Popen(["lighttpd", "-D", "-f", conf], stdout=subprocess.DEVNULL,
                                         stderr=open(os.path.join(self.dir, "lighttpd.stderr"), "w"))

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("the front end exited: " + self.logs())
            try:
                return self.request("GET", "/api/capabilities")[0] == 200
            except OSError:
                return False
        wait_until(ready, "the front end and the workers")

    def logs(self):
        out = []
        for name in ("lighttpd.stderr", "apache.stderr", "error.log", "workers.log"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                out.append(open(p, errors="replace").read()[-20000:])
        return "\n".join(out)

    def unexplained_5xx(self):
        """Worker log lines of answers 5xx other than 503 (the database away, or the API disabled: what a test
        causes on purpose). The suites fail on any."""
        import re
        p = self.errlog
        if not os.path.exists(p):
            return []
        return [line for line in open(p, errors="replace") if re.search(r" -> 5(?!03)\d\d ", line)]

    def sanitizer_reports(self):
        reports = []
        for name in sorted(os.listdir(self.asan_dir)):
            reports.append(open(os.path.join(self.asan_dir, name), errors="replace").read())
        return reports

    def stop(self):
        stop_process(self.proc)
        self.proc = None
        if self.worker_pids:
            self.stop_workers()
        try:
            os.unlink("/dev/shm" + self.metrics_shm)
        except OSError:
            pass

    def request(self, method, path, body=None, token=None, headers=None, raw=None, auth=None):
        """One HTTP call; returns (status, parsed JSON or None, raw bytes, headers)."""
        h = {"Accept": "application/vnd.pulumi+9", "Content-Type": "application/json"}
        if auth is not None:
            h["Authorization"] = auth
        elif token is not False:
            h["Authorization"] = "token " + (token or self.token)
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request("http://127.0.0.1:%d%s%s" % (self.port, self.base_path, path), data=data,
                                     headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                status, payload, rh = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as e:
            status, payload, rh = e.code, e.read(), e.headers
        parsed = None
        if rh.get("Content-Encoding") == "gzip":
            import gzip
            payload = gzip.decompress(payload)
        if payload:
            try:
                parsed = json.loads(payload)
            except ValueError:
                parsed = None
        return status, parsed, payload, rh


class Agent:
    """A pulumi-state-agent of server's, its settings as environment, stopped by its pid."""

    def __init__(self, server, path_dirs=(), jobs=2, heartbeat=1, dead_after=10, extra=None):
        self.server = server
        n = len([f for f in os.listdir(server.dir) if f.startswith("agent-")])
        self.log = os.path.join(server.dir, "agent-%d.log" % n)
        self.env = {
            "PATH": os.pathsep.join(list(path_dirs) + [os.environ["PATH"]]),
            "LANG": "C.UTF-8",
            "PULUMI_STATE_DATABASE": server.pg.conninfo,
            "PULUMI_STATE_MASTER_KEY": server.master_key,
            "PULUMI_STATE_PUBLIC_URL": server.url,
            "PULUMI_STATE_DEPLOY_ALLOW_FILE_URLS": "true",
            "PULUMI_STATE_AGENT_JOBS": str(jobs),
            "PULUMI_STATE_AGENT_HEARTBEAT": str(heartbeat),
            "PULUMI_STATE_AGENT_DEAD_AFTER": str(dead_after),
            "PULUMI_STATE_AGENT_PASS_ENV": "PATH LANG PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION NO_COLOR",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "NO_COLOR": "true",
            "ASAN_OPTIONS": "log_path=%s/asan:detect_leaks=0" % server.asan_dir,
        }
        self.env.update(extra or {})
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([os.path.join(self.server.bindir, "pulumi-state-agent")], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        wait_until(lambda: "started as" in self.logs() or self.proc.poll() is not None, "the agent to start")
        if self.proc.poll() is not None:
            raise RuntimeError("the agent exited: " + self.logs())
        return self

    def logs(self):
        return open(self.log, errors="replace").read() if os.path.exists(self.log) else ""

    def kill(self):
        """SIGKILL, as a crash would: its runners keep going until they notice nothing."""
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        stop_process(self.proc, timeout=120)
        self.proc = None


class Cluster:
    """PostgreSQL + lighttpd + workers in one temporary directory."""

    def __init__(self, bindir=None, **server_kw):
        self.base = tempfile.mkdtemp(prefix="pulumi-state-")
        os.chmod(self.base, 0o755)
        self.bindir = bindir or os.environ.get("PULUMI_STATE_BINDIR") or os.path.join(ROOT, "build")
        self.pg = Postgres(self.base)
        self.server_kw = server_kw
        self.server = None

    def start(self):
        self.pg.start()
        self.server = Server(self.base, self.pg, self.bindir, **self.server_kw)
        self.server.migrate()
        self.server.start()
        return self

    def stop(self, keep=False):
        if self.server:
            self.server.stop()
        self.pg.stop()
        if not keep:
            shutil.rmtree(self.base, ignore_errors=True)


def serve():
    c = Cluster(procs=int(os.environ.get("PULUMI_STATE_PROCS", "2")),
                settings={"PULUMI_STATE_DEPLOY_ALLOW_FILE_URLS": "true"})
    c.start()
    s = c.server
    # The deploy agent too, so that queued deployments run (it finds `pulumi` and `git` on PATH).
    agent = Agent(s).start()
    print("pulumi-state is running (PostgreSQL in %s, lighttpd on 127.0.0.1:%d, deploy agent pid %d; file:// "
          "repositories allowed)." % (c.base, s.port, agent.proc.pid))
    print("Log in from another shell with:\n")
    print("    PULUMI_ACCESS_TOKEN=%s pulumi login %s\n" % (s.token, s.url), flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    try:
        while not stop and s.proc.poll() is None:
            signal.pause() if hasattr(signal, "pause") else time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        agent.stop()
        c.stop()


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    else:
        print("usage: harness.py serve", file=sys.stderr)
        sys.exit(2)
