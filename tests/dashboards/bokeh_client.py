"""A bare Bokeh client for attack tests: fetch a page, open its WebSocket with any
token and headers, and pull the document the server built (no browser)."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect


@dataclass
class Answer:
    status: int
    body: str


def get(url: str, headers: dict[str, str] | None = None) -> Answer:
    """A GET that returns the status instead of raising (redirects not followed)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=60) as resp:
            return Answer(resp.status, resp.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read().decode("utf-8", "replace"))


def token_of(page: str) -> str:
    (token,) = set(re.findall(r'"token":"([^"]+)"', page))
    return token


async def _pull(url: str, origin: str, headers: dict[str, str], token: str) -> str:
    request = HTTPRequest(url, headers={"Origin": origin, **headers}, request_timeout=60)
    conn = await websocket_connect(request, subprotocols=["bokeh", token])
    try:
        frames = [await conn.read_message() for _ in range(3)]  # ACK
        assert json.loads(frames[0])["msgtype"] == "ACK", frames
        for part in ({"msgid": "1", "msgtype": "PULL-DOC-REQ"}, {}, {}):
            await conn.write_message(json.dumps(part))
        header = json.loads(await conn.read_message())
        _metadata, content = await conn.read_message(), await conn.read_message()
        assert header["msgtype"] == "PULL-DOC-REPLY", header
        # Binary arrays travel base64-encoded; their letters are noise that a
        # test's "this host name is absent" check could match by chance.
        return re.sub(r'"__ndarray__":"[A-Za-z0-9+/=]*"', '"__ndarray__":""', content)
    finally:
        conn.close()


def pull_document(base: str, page: str, headers: dict[str, str], token: str) -> tuple[int, str]:
    """(101, document JSON) when the WebSocket opens, else (HTTP status, '')."""
    ws_url = base.replace("http://", "ws://") + f"/{page}/ws"
    try:
        # its own thread: Playwright's sync API may hold this thread's event loop
        with ThreadPoolExecutor(1) as pool:
            return 101, pool.submit(asyncio.run, _pull(ws_url, base, headers, token)).result()
    except HTTPClientError as exc:
        return exc.code, ""


def page_document(base: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """Load ``path`` (``job?jobid=1``) as a browser would and return the built document."""
    answer = get(f"{base}/{path}", headers)
    if answer.status != 200:
        return answer.status, answer.body
    return pull_document(base, path.split("?")[0], headers, token_of(answer.body))
