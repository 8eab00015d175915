"""Rows written per row kept, and WAL, when an hour is built while it is drained.

``python -m benchmarks.incremental [--nodes 100] [--interval 60] [--late 0.02]``

The live-hour pattern of the soak: ``--nodes`` demo hosts sample every
``--interval`` seconds; the hour is drained in 12 pieces (one per 5
minutes of samples), and ``host_data`` of the hour is built after each
piece. A share ``--late`` of the samples arrives one to three pieces late
(a node's spool replayed). Two builds are measured on the same pieces, in
the same run, each on its own empty table:

- ``incremental``: the default build (appends new samples, rebuilds a
  host's hour when a late sample arrived, skips unchanged hosts);
- ``full``: every build replaces the whole hour (the behaviour before
  issue 17, and the ``hpcperf/rebuild=full`` tag now).

Reported per mode: rows written (COPY) / rows kept at the end, rows deleted,
WAL bytes (``pg_current_wal_lsn`` before and after), seconds in the builds;
and whether both end with the same table (they must).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import psycopg
from hpcperf_demo.cluster import DemoConfig
from hpcperf_demo.generate import iter_messages

from hpcperfstats.db import embedded
from hpcperfstats.db.schema import ensure_schema
from hpcperfstats.hostdata.load import build_host_data
from hpcperfstats.ingest.drain import store_messages

PIECES = 12


def drain_pieces(cfg: DemoConfig, late: float, seed: int = 1) -> list[list[bytes]]:
    """The hour's messages in 12 drains by arrival; ``late`` of them 1-3 drains late.

    A host's first message (its header) is never late: the archive needs it first.
    """
    rng = random.Random(seed)
    pieces: list[list[bytes]] = [[] for _ in range(PIECES)]
    seen: set[str] = set()
    for m in iter_messages(cfg):
        k = int((m.time - cfg.start.timestamp()) // (3600 / PIECES))
        if m.host in seen and rng.random() < late:
            k = min(PIECES - 1, k + rng.randint(1, 3))
        seen.add(m.host)
        pieces[min(k, PIECES - 1)].append(m.text.encode())
    return pieces


def wal_lsn(conn: psycopg.Connection) -> str:
    return conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]


def run_mode(url: str, pieces: list[list[bytes]], cfg: DemoConfig, full: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="hpcperf-incr-") as tmp:
        root = Path(tmp)
        written = deleted = 0
        seconds = 0.0
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE host_data")
            conn.execute("CHECKPOINT")
            lsn0 = wal_lsn(conn)
            for piece in pieces:
                store_messages(piece, root / "archive", root / "quarantine")
                res = build_host_data(conn, root / "archive", cfg.start, cfg.end, 3600,
                                      full=full)
                written, deleted, seconds = (written + res.rows, deleted + res.rows_deleted,
                                             seconds + res.seconds)
            wal = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)",
                               (lsn0,)).fetchone()[0]
            kept = conn.execute("SELECT count(*) FROM host_data").fetchone()[0]
            digest = conn.execute(
                "SELECT md5(string_agg(t::text, ',' ORDER BY host, time, type, device, event)) "
                "FROM host_data t").fetchone()[0]
    return {"mode": "full" if full else "incremental", "rows_written": written,
            "rows_kept": kept, "written_per_kept": round(written / kept, 3),
            "rows_deleted": deleted, "wal_mb": round(float(wal) / 1e6, 1),
            "build_seconds": round(seconds, 1), "digest": digest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--interval", type=int, default=60)
    parser.add_argument("--late", type=float, default=0.02)
    args = parser.parse_args()
    cfg = DemoConfig(gpu_nodes=0, nodes=args.nodes, hours=1, interval=args.interval)
    pieces = drain_pieces(cfg, args.late)
    print(json.dumps({"nodes": args.nodes, "interval_s": args.interval, "late": args.late,
                      "messages": sum(map(len, pieces)), "drains": PIECES}), flush=True)
    with tempfile.TemporaryDirectory(prefix="hpcperf-incr-pg-") as pgtmp, \
            embedded.running(Path(pgtmp) / "pgdata") as url:
        with psycopg.connect(url) as conn:
            ensure_schema(conn)
        started = time.monotonic()
        results = [run_mode(url, pieces, cfg, full) for full in (False, True)]
    for r in results:
        print(json.dumps({k: v for k, v in r.items() if k != "digest"}), flush=True)
    print(json.dumps({"same_table": results[0]["digest"] == results[1]["digest"],
                      "wall_s": round(time.monotonic() - started, 1)}))


if __name__ == "__main__":
    main()
