"""The client's retry policy against a tiny loopback HTTP server (a transport test, not a model of the API):
503 and failed connections are retried with backoff, every other answer is final."""
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pulumi_itl_attestation import AttestationClient, AttestationError


class Script:
    """Answers to give, in order (the last one repeats), and what was asked."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.seen = []
        self.lock = threading.Lock()

    def next(self, method, path, headers, body):
        with self.lock:
            self.seen.append((method, path, headers, body))
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def http():
    servers = []

    def start(*answers):
        script = Script(answers)

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                status, payload, extra = script.next(self.command, self.path, dict(self.headers), body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *a):
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return "http://127.0.0.1:%d" % srv.server_address[1], script

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


BUSY = (503, {"code": 503, "message": "Service Unavailable: the database is away"}, None)
MACHINE = {"machine_id": "m-1", "status": "pending", "desired_role": "worker-app"}


def test_503_is_retried_until_an_answer(http):
    url, script = http(BUSY, BUSY, (201, dict(MACHINE, config_token="ct-1"), None))
    c = AttestationClient(url, "tok-1", retries=3, backoff=0.001)
    reg = c.register("ab" * 48, "pem", "sn", "prod", "52:54:00:00:00:01", "worker-app")
    assert reg.machine.machine_id == "m-1" and reg.config_token == "ct-1"
    assert len(script.seen) == 3
    bodies = {body for _, _, _, body in script.seen}
    assert len(bodies) == 1 and json.loads(bodies.pop())["hw_mac"] == "52:54:00:00:00:01"  # the same request
    assert all(h["Authorization"] == "token tok-1" for _, _, h, _ in script.seen)


def test_retries_run_out_with_the_servers_message(http):
    url, script = http(BUSY)
    c = AttestationClient(url, "tok", retries=2, backoff=0.001)
    with pytest.raises(AttestationError) as ei:
        c.get_machine("m-1")
    assert ei.value.status == 503 and "database is away" in ei.value.message
    assert len(script.seen) == 3  # one attempt and two retries


def test_a_retry_after_header_is_capped_by_max_backoff(http):
    url, script = http((503, {"message": "busy"}, {"Retry-After": "3600"}), (200, MACHINE, None))
    c = AttestationClient(url, "tok", retries=1, backoff=0.001, max_backoff=0.01)
    assert c.get_machine("m-1").machine_id == "m-1"
    assert len(script.seen) == 2


@pytest.mark.parametrize("status", [500, 502, 400, 409, 429])
def test_other_errors_are_not_retried(http, status):
    url, script = http((status, {"code": status, "message": "Nope: said the server"}, None), (200, MACHINE, None))
    c = AttestationClient(url, "tok", retries=3, backoff=0.001)
    with pytest.raises(AttestationError) as ei:
        c.get_machine("m-1")
    assert ei.value.status == status and ei.value.message == "Nope: said the server"
    assert len(script.seen) == 1


def test_an_error_without_json_keeps_its_text(http):
    url, _ = http((502, b"<html>Bad Gateway</html>", None))
    with pytest.raises(AttestationError) as ei:
        AttestationClient(url, "tok", retries=0).get_machine("m-1")
    assert ei.value.status == 502 and "Bad Gateway" in ei.value.message


def test_a_refused_connection_is_retried_then_reported():
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        c = AttestationClient("http://127.0.0.1:%d" % port, "tok", retries=2, backoff=0.001, timeout=5)
        with pytest.raises(AttestationError) as ei:
            c.get_machine("m-1")
    assert ei.value.status is None and "cannot reach" in ei.value.message


def test_config_fetch_sends_the_config_token_not_the_api_token(http):
    url, script = http((200, {"machine_id": "m-1", "role": "worker-app"}, None))
    c = AttestationClient(url, "api-token", retries=0)
    assert c.fetch_config(url + "/api/v1/machines/m-1/config", "ct-9")["machine_id"] == "m-1"
    method, path, headers, _ = script.seen[0]
    assert method == "GET" and path == "/api/v1/machines/m-1/config"
    assert headers["Authorization"] == "Bearer ct-9"


def test_the_token_is_not_in_the_clients_repr():
    assert "sekrit" not in repr(AttestationClient("http://127.0.0.1:1", "sekrit"))
