"""``hpcperf db``: manage the embedded server and the schema."""

from __future__ import annotations

import argparse

from hpcperfstats.config import settings
from hpcperfstats.db import embedded
from hpcperfstats.db.connect import connect, database_url
from hpcperfstats.db.schema import ensure_schema


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hpcperf db")
    parser.add_argument("action", choices=["start", "stop", "url", "migrate"])
    args = parser.parse_args(argv)
    cfg = settings()
    if args.action == "stop":
        if cfg.database_url:
            print("HPCPERF_DATABASE_URL is set: not stopping an external database")
            return 1
        embedded.stop(cfg.pgdata_dir)
        return 0
    url = database_url(cfg)
    if args.action in ("start", "migrate"):
        with connect(url) as conn:
            info = ensure_schema(conn)
        applied = ", ".join(map(str, info["applied"])) or "none"
        print(f"schema version {info['version']} (applied now: {applied}), "
              f"timescaledb: {info['timescale']}, "
              f"job name index (pg_trgm): {info['name_index']}")
    print(url)
    return 0
