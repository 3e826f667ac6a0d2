"""Integration tests for demo_client against a loopback ThreadingHTTPServer."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from demo_client import NotFound, RepoClient, RequestTimeout


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    route = None  # callable(attempt, path) -> (status, headers, body)
    attempts = 0

    def handle_error(self, request, client_address):
        pass  # e.g. the client hung up during test_timeout; keep output clean


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.attempts += 1
        status, headers, body = server.route(server.attempts, self.path)
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.route = lambda attempt, path: (200, {}, {})
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.url = "http://127.0.0.1:%d" % srv.server_address[1]
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _repo(name, default_branch="main"):
    return {"id": 1, "name": name, "full_name": "octo/" + name, "default_branch": default_branch}


@pytest.mark.integration
def test_get_repo(server):
    server.route = lambda attempt, path: (200, {}, _repo(path.rsplit("/", 1)[-1]))
    repo = RepoClient(server.url, token="t").get_repo("octo", "demo")
    assert repo["full_name"] == "octo/demo"


@pytest.mark.integration
def test_not_found(server):
    server.route = lambda attempt, path: (404, {}, {"message": "Not Found"})
    with pytest.raises(NotFound):
        RepoClient(server.url).get_repo("octo", "missing")


@pytest.mark.integration
def test_retry_after_503(server):
    server.route = lambda attempt, path: (503, {}, {}) if attempt <= 2 else (200, {}, _repo("demo"))
    repo = RepoClient(server.url, backoff=0.01).get_repo("octo", "demo")
    assert repo["name"] == "demo"
    assert server.attempts == 3


@pytest.mark.integration
def test_timeout(server):
    def slow(attempt, path):
        time.sleep(1.0)
        return 200, {}, _repo("slow")

    server.route = slow
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        RepoClient(server.url, timeout=0.2).get_repo("octo", "slow")
    assert time.monotonic() - start < 0.9


@pytest.mark.integration
def test_rate_limit_retry_after(server):
    server.route = lambda attempt, path: (
        (429, {"Retry-After": "1"}, {"message": "slow down"}) if attempt == 1 else (200, {}, _repo("demo"))
    )
    start = time.monotonic()
    repo = RepoClient(server.url).get_repo("octo", "demo")
    assert time.monotonic() - start >= 1.0
    assert repo["name"] == "demo"
    assert server.attempts == 2


@pytest.mark.integration
def test_default_branch_is_main(server):
    # FAILS ON PURPOSE: the server reports "master", the test expects "main".
    server.route = lambda attempt, path: (200, {}, _repo("legacy", default_branch="master"))
    repo = RepoClient(server.url).get_repo("octo", "legacy")
    assert repo["default_branch"] == "main"
