"""deploy/nginx.conf passes ``nginx -t`` and proxies as intended (Debian's nginx).

The config's container paths (certificates, pid file) are pointed into a
temporary directory and a test-made self-signed certificate; for the running
test the service names and ports become loopback ones, nothing else changes.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx not installed (Debian package nginx-light or nginx)"
)


def _self_signed(tls: Path) -> None:
    tls.mkdir()
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=hpcperf.test",
            "-keyout", str(tls / "privkey.pem"), "-out", str(tls / "fullchain.pem"),
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def _test_config(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    tls = tmp_path / "tls"
    if not tls.exists():
        _self_signed(tls)
    text = text.replace("/etc/nginx/tls/", f"{tls}/").replace("/tmp/nginx.pid", f"{tmp_path}/pid")
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    return subprocess.run(
        [NGINX, "-t", "-q", "-p", str(tmp_path), "-e", "stderr", "-c", str(conf)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@needs_nginx
def test_nginx_conf_passes_nginx_t(tmp_path):
    result = _test_config(tmp_path, NGINX_CONF.read_text())
    assert result.returncode == 0, result.stderr


@needs_nginx
def test_nginx_t_rejects_a_broken_conf(tmp_path):
    broken = NGINX_CONF.read_text().replace("proxy_pass $panel_upstream;", "proxy_pass;")
    result = _test_config(tmp_path, broken)
    assert result.returncode != 0
    assert "proxy_pass" in result.stderr


def test_proxy_terminates_tls_redirects_and_upgrades_websockets():
    text = NGINX_CONF.read_text()
    assert "listen 443 ssl" in text
    assert "return 301 https://$host$request_uri;" in text
    assert "proxy_set_header Upgrade $http_upgrade;" in text
    assert "proxy_set_header Connection $connection_upgrade;" in text
    dagster = text.split("location /dagster/ {", 1)[1].split("}", 1)[0]
    assert "deny all;" in dagster  # the Dagster UI has no login of its own


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with the path and headers it received, as JSON."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def running_proxy(tmp_path):
    """The real config on loopback ports, in front of two echo upstreams."""
    upstreams = {}
    servers = []
    for name in ("panel", "dagster"):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        upstreams[name] = server.server_address[1]
    http_port, https_port = _free_port(), _free_port()
    text = NGINX_CONF.read_text()
    text = text.replace("http://web:5006", f"http://127.0.0.1:{upstreams['panel']}")
    text = text.replace("http://pipeline-web:3000", f"http://127.0.0.1:{upstreams['dagster']}")
    text = text.replace("listen 80 ", f"listen 127.0.0.1:{http_port} ")
    text = text.replace("listen 443 ", f"listen 127.0.0.1:{https_port} ")
    text = "\n".join(line for line in text.splitlines() if "listen [::]" not in line)
    assert _test_config(tmp_path, text).returncode == 0
    proc = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-e", "stderr", "-c", str(tmp_path / "nginx.conf"),
         "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", https_port)) == 0:
                    break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        yield http_port, https_port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for server in servers:
            server.shutdown()
            server.server_close()


def _get(port: int, path: str, tls: bool, headers: dict | None = None):
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@needs_nginx
def test_proxy_routes_requests_as_deployed(running_proxy):
    http_port, https_port = running_proxy
    status, headers, _ = _get(http_port, "/job?jobid=123", tls=False)
    assert status == 301
    assert headers["Location"] == "https://127.0.0.1/job?jobid=123"
    assert _get(http_port, "/healthz", tls=False)[0] == 200

    status, headers, body = _get(https_port, "/job?jobid=123", tls=True)
    assert status == 200
    assert "Strict-Transport-Security" in headers
    seen = json.loads(body)
    assert seen["path"] == "/job?jobid=123"
    assert seen["headers"]["X-Forwarded-Proto"] == "https"

    status, _, body = _get(https_port, "/dagster/runs?tab=queued", tls=True)
    assert status == 200
    assert json.loads(body)["path"] == "/dagster/runs?tab=queued"  # prefix kept
    assert _get(https_port, "/dagster", tls=True)[1]["Location"].endswith("/dagster/")

    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}
    status, _, body = _get(https_port, "/jobs/ws", tls=True, headers=upgrade)
    seen = json.loads(body)["headers"]
    assert seen["Upgrade"] == "websocket"
    assert seen["Connection"].lower() == "upgrade"
