"""Helpers for the ingest guarantees: small demo clusters, publishing, reference rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hpcperf_demo.cluster import DemoConfig
from hpcperf_demo.generate import iter_messages
from hpcperf_monitor.rawformat import read_raw

from hpcperfstats.hostdata.frames import long_frame
from hpcperfstats.hostdata.rates import host_rows
from hpcperfstats.ingest.publish import publish_messages

START = datetime(2026, 11, 20, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


def demo_bodies(nodes: int = 3, hours: int = 1) -> list[bytes]:
    """One message per sample, headers first, as the monitor sends them."""
    cfg = DemoConfig(gpu_nodes=0, nodes=nodes, hours=hours, start=START)
    return [m.text.encode() for m in iter_messages(cfg)]


def reference_rows(bodies: list[bytes], start: datetime, end: datetime) -> pl.DataFrame:
    """host_data rows worked out by the reference reader, message by message."""
    samples, header = [], {}
    for body in bodies:
        text = body.decode()
        host = text.split("$hostname ", 1)[1].split()[0] if text.startswith("$") else None
        raw = read_raw(text, header=None if host else header[samples_host(text)])
        if host:
            header[host] = raw.headers[0]
        samples.extend(raw.samples)
    return host_rows(long_frame(samples), start.timestamp(), end.timestamp())


def samples_host(text: str) -> str:
    return next(line.split()[2] for line in text.splitlines() if line[:1].isdigit())


def publish(url: str, queue: str, bodies: list[bytes]) -> None:
    publish_messages(url, queue, bodies)


@pytest.fixture
def queue(tmp_path: Path) -> str:
    return "ingest" + tmp_path.name.replace("-", "")[-16:]


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    out = {k: tmp_path / k for k in ("archive", "quarantine")}
    for p in out.values():
        p.mkdir()
    return out
