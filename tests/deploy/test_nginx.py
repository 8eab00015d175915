"""deploy/nginx.conf passes ``nginx -t`` and proxies as intended (Debian's nginx).

The config's container paths (certificates, pid file) are pointed into a
temporary directory and a test-made self-signed certificate; for the running
test the service names and ports become loopback ones, nothing else changes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from hpcperfstats.config import cluster_name
from hpcperfstats.ports import free_port

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "deploy" / "nginx.conf"
SECRET_TEMPLATE = REPO / "deploy" / "nginx-proxy-secret.conf.template"
#: What the nginx image's entrypoint renders the template with, in these tests.
PROXY_SECRET = "proxy-secret-rendered-for-nginx-tests-0123456789"
SECRET_INCLUDE = "/etc/nginx/conf.d/hpcperf-proxy-secret.conf"
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
    # the image renders the secret's template at start (envsubst); so do we
    rendered = tmp_path / "hpcperf-proxy-secret.conf"
    rendered.write_text(SECRET_TEMPLATE.read_text()
                        .replace("${HPCPERF_PROXY_SECRET_HEADER}", "X-HPCPerf-Proxy-Secret")
                        .replace("${HPCPERF_PROXY_SECRET}", PROXY_SECRET))
    text = text.replace(SECRET_INCLUDE, str(rendered))
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
        self.send_header("Set-Cookie", "user=signed-value; Path=/; HttpOnly")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def _nginx(tmp_path: Path, panel_port: int, dagster_port: int,
           sso_user: str | None = None) -> Iterator[tuple[int, int]]:
    """The real config on loopback ports in front of the given upstreams.

    ``sso_user``: stand in for a site's SSO module, which sets the user header
    where the shipped config clears it.
    """
    http_port, https_port = free_port(), free_port()
    text = NGINX_CONF.read_text()
    if sso_user:
        text = text.replace('proxy_set_header X-Forwarded-User "";',
                            f'proxy_set_header X-Forwarded-User "{sso_user}";')
    text = text.replace("http://web:5006", f"http://127.0.0.1:{panel_port}")
    text = text.replace("http://pipeline-web:3000", f"http://127.0.0.1:{dagster_port}")
    text = text.replace("listen 80 ", f"listen 127.0.0.1:{http_port} ")
    text = text.replace("listen 443 ", f"listen 127.0.0.1:{https_port} ")
    text = "\n".join(line for line in text.splitlines() if "listen [::]" not in line)
    checked = _test_config(tmp_path, text)
    assert checked.returncode == 0, checked.stderr
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


@pytest.fixture
def running_proxy(tmp_path):
    """The real config on loopback ports, in front of two echo upstreams."""
    servers = []
    for _ in ("panel", "dagster"):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    try:
        with _nginx(tmp_path, *(s.server_address[1] for s in servers)) as ports:
            yield ports
    finally:
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
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    cookie = headers["Set-Cookie"].lower()  # the upstream's sign-in cookie, hardened
    assert "; secure" in cookie and "samesite=lax" in cookie and "httponly" in cookie
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


@needs_nginx
def test_clients_cannot_claim_an_identity(running_proxy):
    """HPCPERF_AUTH=header trusts X-Forwarded-User: only the proxy may set it."""
    _, https_port = running_proxy
    forged = {"X-Forwarded-User": "root", "X-Forwarded-Groups": "staff",
              "X-HPCPerf-Proxy-Secret": "a client's guess"}
    _, _, body = _get(https_port, "/jobs", tls=True, headers=forged)
    headers = json.loads(body)["headers"]
    seen = {k.lower() for k in headers}
    assert "x-forwarded-user" not in seen and "x-forwarded-groups" not in seen
    # the proxy's own secret replaces whatever the client sent
    assert [v for k, v in headers.items() if k.lower() == "x-hpcperf-proxy-secret"] == [
        PROXY_SECRET]


# --- a real `panel serve` of our dashboards behind the proxy --------------------------

JOBID, USER = "7700123", "proxy_probe_user"


def _wait_for(port: int, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"panel serve exited:\n{log.read_text()}"
        try:
            if _get(port, "/jobs", tls=False)[0] in (200, 403):  # 403: header mode, no proxy
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"panel serve did not answer in {timeout}s:\n{log.read_text()}")


@pytest.fixture
def dashboards_behind_proxy(tmp_path, pg_url, request) -> Iterator[tuple[int, int, int]]:
    """``python -m dashboards.serve`` on the test database, behind the real nginx config.

    Parametrised with the auth mode (default ``none``); in ``header`` mode
    nginx plays the site's SSO and names ``USER``.
    """
    mode = getattr(request, "param", "none")
    end = datetime.now(UTC) - timedelta(hours=1)
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "INSERT INTO job_data (jobid, username, account, partition, jobname, state,"
            " start_time, end_time, nnodes, ncpus, hosts, elapsed_s, cluster)"
            " VALUES (%s, %s, 'A-proxy', 'normal', 'probe', 'COMPLETED', %s, %s, 1, 8,"
            " ARRAY['c001'], 3600, %s)",
            (JOBID, USER, end - timedelta(hours=1), end, cluster_name()),
        )
    panel_port = free_port()
    log = tmp_path / "panel.log"
    with contextlib.ExitStack() as stack:
        closed = free_port()  # nothing listens: the Dagster UI is not under test here
        http_port, https_port = stack.enter_context(
            _nginx(tmp_path, panel_port, closed, sso_user=USER if mode == "header" else None))
        env = dict(
            os.environ,
            HPCPERF_DATABASE_URL=pg_url,
            HPCPERF_WEB_PORT=str(panel_port),
            # the name the browser uses, as compose.yaml passes HPCPERF_SERVER_NAME
            HPCPERF_WEB_ORIGINS=f"127.0.0.1:{https_port}",
            HPCPERF_AUTH=mode,
            HPCPERF_PROXY_SECRET=PROXY_SECRET,
            HPCPERF_HOME=str(tmp_path / "home"),
        )
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "dashboards.serve", "--use-xheaders"],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        try:
            _wait_for(panel_port, proc, log)
            yield http_port, https_port, panel_port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


class _WebSocket:
    """Just enough of RFC 6455 over TLS to speak Bokeh's protocol through nginx."""

    def __init__(self, port: int, path: str, headers: dict[str, str]):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), 10))
        self.key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {self.key}",
                 "Sec-WebSocket-Version: 13", *(f"{k}: {v}" for k, v in headers.items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = self.sock.recv(4096)
            assert chunk, f"connection closed during the handshake: {raw!r}"
            raw += chunk
        head, _, self.buffer = raw.partition(b"\r\n\r\n")
        status, *fields = head.decode().split("\r\n")
        self.status = int(status.split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in
                        (f.partition(":") for f in fields)}

    def accept_is_valid(self) -> bool:
        magic = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        digest = hashlib.sha1((self.key + magic).encode()).digest()
        return self.headers.get("sec-websocket-accept") == base64.b64encode(digest).decode()

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def receive(self) -> str:
        """One whole text message (server frames are unmasked)."""
        parts = []
        while True:
            b0, b1 = self._read(2)
            length = b1 & 0x7F
            if length == 126:
                length = int.from_bytes(self._read(2), "big")
            elif length == 127:
                length = int.from_bytes(self._read(8), "big")
            parts.append(self._read(length))
            if b0 & 0x80:
                return b"".join(parts).decode()

    def send(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)
        assert len(data) < 126
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(bytes([0x81, 0x80 | len(data)]) + mask + masked)

    def bokeh_message(self) -> tuple[dict, dict]:
        """Bokeh sends header, metadata and content as three text frames."""
        header, _metadata, content = (json.loads(self.receive()) for _ in range(3))
        return header, content

    def pull_document(self) -> str:
        """The page's document as JSON: Bokeh's ACK, then a PULL-DOC request; closes."""
        try:
            assert self.status == 101, self.headers
            assert self.bokeh_message()[0]["msgtype"] == "ACK"
            self.send(json.dumps({"msgid": "1", "msgtype": "PULL-DOC-REQ"}))
            self.send("{}")
            self.send("{}")
            return json.dumps(self.bokeh_message()[1])
        finally:
            self.close()

    def close(self) -> None:
        self.sock.close()


@needs_nginx
@pytest.mark.integration
def test_dashboards_through_tls_with_their_websocket(dashboards_behind_proxy):
    http_port, https_port, _ = dashboards_behind_proxy

    status, headers, _ = _get(http_port, "/jobs?user=x", tls=False)
    assert status == 301
    assert headers["Location"] == "https://127.0.0.1/jobs?user=x"

    status, headers, body = _get(https_port, "/jobs", tls=True)
    assert status == 200
    assert "max-age=" in headers["Strict-Transport-Security"]
    page = body.decode()
    assert "bokeh" in page.lower()
    (token,) = re.findall(r'"token":"([^"]+)"', page)  # the session this page opened

    origin = f"https://127.0.0.1:{https_port}"
    ws = _WebSocket(https_port, "/jobs/ws",
                    {"Origin": origin, "Sec-WebSocket-Protocol": f"bokeh, {token}"})
    try:
        assert ws.status == 101, ws.headers
        assert ws.accept_is_valid()
        assert ws.headers["sec-websocket-protocol"] == "bokeh"
        header, _ = ws.bokeh_message()
        assert header["msgtype"] == "ACK"
        ws.send(json.dumps({"msgid": "1", "msgtype": "PULL-DOC-REQ"}))
        ws.send("{}")
        ws.send("{}")
        header, content = ws.bokeh_message()
        assert header["msgtype"] == "PULL-DOC-REPLY"
        doc = json.dumps(content)
        assert JOBID in doc and USER in doc  # the job list, read from the test database
    finally:
        ws.close()

    # Bokeh refuses a WebSocket from a page served under another name
    other = _WebSocket(https_port, "/jobs/ws",
                       {"Origin": "https://evil.example", "Sec-WebSocket-Protocol": "bokeh, x"})
    try:
        assert other.status == 403
    finally:
        other.close()


def _pull_jobs(https_port: int) -> str:
    """The job list's document, as a browser gets it through the proxy."""
    status, _, body = _get(https_port, "/jobs", tls=True)
    assert status == 200, body[:300]
    (token,) = re.findall(r'"token":"([^"]+)"', body.decode())
    return _WebSocket(https_port, "/jobs/ws", {"Origin": f"https://127.0.0.1:{https_port}",
                                               "Sec-WebSocket-Protocol": f"bokeh, {token}"}
                      ).pull_document()


@needs_nginx
@pytest.mark.integration
@pytest.mark.parametrize("dashboards_behind_proxy", ["header"], indirect=True)
def test_header_mode_trusts_the_proxy_and_refuses_going_around_it(dashboards_behind_proxy):
    _, https_port, panel_port = dashboards_behind_proxy
    doc = _pull_jobs(https_port)  # nginx adds the secret and (as the SSO) the user
    assert JOBID in doc and f"Signed in as {USER}" in doc
    direct = {"X-Forwarded-User": USER}
    assert _get(panel_port, "/jobs", tls=False, headers=direct)[0] == 403
    wrong = direct | {"X-HPCPerf-Proxy-Secret": PROXY_SECRET[:-1] + "x"}
    assert _get(panel_port, "/jobs", tls=False, headers=wrong)[0] == 403


@needs_nginx
@pytest.mark.integration
@pytest.mark.parametrize("dashboards_behind_proxy", ["header"], indirect=True)
def test_the_data_api_behind_the_proxy_in_header_mode(dashboards_behind_proxy, pg_url):
    """/api/ through the shipped nginx: the proxy's sign-in (nginx as the SSO names USER
    and adds its secret) and API tokens both work; a client's own identity headers do
    not, through the proxy or around it."""
    from dashboards import tokens

    _, https_port, panel_port = dashboards_behind_proxy

    def api(port: int, path: str, headers: dict | None = None, tls: bool = True):
        status, _, body = _get(port, f"/api/v1/{path}", tls=tls, headers=headers)
        return status, json.loads(body)

    # /me also names the cluster served and the deployment's clusters (one here)
    me = {"staff": False, "cluster": cluster_name(), "clusters": [cluster_name()]}
    assert api(https_port, "me") == (200, {"user": USER, **me})
    status, job = api(https_port, f"jobs/{JOBID}")
    assert status == 200 and job["job"]["username"] == USER and job["job"]["jobid"] == JOBID
    status, page = api(https_port, "jobs")
    assert status == 200 and [j["jobid"] for j in page["jobs"]] == [JOBID]
    # what a client claims is replaced by the proxy's user
    claimed = {"X-Forwarded-User": "root", "X-Forwarded-Groups": "staff",
               "X-HPCPerf-Proxy-Secret": "a client's guess"}
    assert api(https_port, "me", claimed) == (200, {"user": USER, **me})
    # a token names its own user, through the proxy too
    with psycopg.connect(pg_url) as conn:
        other = tokens.create(conn, "someone_else", "portal")
    bearer = {"Authorization": f"Bearer {other}"}
    assert api(https_port, "me", bearer) == (200, {"user": "someone_else", **me})
    assert api(https_port, f"jobs/{JOBID}", bearer)[0] == 404  # not theirs
    assert api(https_port, "me", {"Authorization": f"Bearer {other[:-2]}xx"})[0] == 401
    # around the proxy: the user header without the proxy's secret, or with a wrong one
    forged = {"X-Forwarded-User": USER}
    assert api(panel_port, "me", forged, tls=False)[0] == 403
    assert api(panel_port, f"jobs/{JOBID}", forged | {
        "X-HPCPerf-Proxy-Secret": PROXY_SECRET[:-1] + "x"}, tls=False)[0] == 403
