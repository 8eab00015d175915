"""Load the default demo cluster into the test database once per session.

Messages go through ``store_messages`` (the archive), ``build_host_data``
(rates), accounting through the parser and upsert, and the job days through
``build_job_days``: the same code the Dagster assets call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg
from hpcperf_demo.cluster import DemoConfig, DemoPlan, make_plan
from hpcperf_demo.generate import accounting_files, iter_messages, script_files

from hpcperfstats.config import cluster_name
from hpcperfstats.db.load import upsert_job_data
from hpcperfstats.flags.load import build_job_flags
from hpcperfstats.flags.rules import load_rules
from hpcperfstats.hostdata.load import build_host_data
from hpcperfstats.ingest.drain import store_messages
from hpcperfstats.jobs.accounting import parse_accounting
from hpcperfstats.jobs.load import JobDayResult, build_job_days
from hpcperfstats.jobs.scripts import load_job_scripts, scripts_path


@dataclass
class DemoDB:
    cfg: DemoConfig
    plan: DemoPlan
    url: str
    jobs: JobDayResult
    #: where the archive lies (``root / "archive"``)
    root: Path | None = None


def load_demo(url: str, root: Path, cfg: DemoConfig | None = None) -> DemoDB:
    cfg = cfg or DemoConfig()
    plan = make_plan(cfg)
    store_messages((m.text.encode() for m in iter_messages(cfg, plan)), root / "archive",
                   root / "quarantine")
    start = cfg.start.replace(minute=0, second=0, microsecond=0)
    with psycopg.connect(url) as conn:
        build_host_data(conn, root / "archive", start, cfg.end + timedelta(hours=1), 3600)
        scripts = script_files(cfg, plan)
        for day, text in accounting_files(cfg, plan).items():
            jobs, issues = parse_accounting(text, source=day)
            assert not issues
            upsert_job_data(conn, jobs, date.fromisoformat(day), cluster=cluster_name())
            # the job scripts, as slurm_jobs loads them beside the dump
            dump = root / "accounting" / f"{day}.txt"
            dump.parent.mkdir(parents=True, exist_ok=True)
            scripts_path(dump).write_text(scripts[day])
            load_job_scripts(conn, scripts_path(dump), date.fromisoformat(day),
                             cluster_name(), root / "quarantine")
        first = start.replace(hour=0)
        last = first + timedelta(days=(cfg.end - first).days + 1)
        result = build_job_days(conn, first, last)
        build_job_flags(conn, first, last, load_rules())
    return DemoDB(cfg, plan, url, result, root)
