"""``slurm_jobs``: the daily accounting dump parsed into ``job_data``.

Requested by ``accounting_sensor`` when a day's dump appears or changes. Each
materialisation names the days its jobs ended (``job_days`` metadata), which
``job_days_sensor`` turns into job-table runs.
"""

from collections import Counter
from datetime import date

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from hpcperf_dagster.location import asset_key, key_prefix
from hpcperf_dagster.partitions import daily
from hpcperf_dagster.resources import Database, Paths
from hpcperfstats.archive import quarantine
from hpcperfstats.config import settings
from hpcperfstats.db.load import upsert_job_data
from hpcperfstats.jobs.accounting import issues_by_line, parse_accounting
from hpcperfstats.jobs.scripts import load_job_scripts, scripts_path

#: bad lines listed in metadata (all of them are in the quarantine)
LISTED = 500
_TABLE = TableSchema(columns=[
    TableColumn("line", "int"), TableColumn("fields"), TableColumn("action"),
    TableColumn("reasons"),
])


def _bad_line_table(bad: list[dict]) -> MetadataValue:
    # a table of plain text cells: job names are user input, never markdown/HTML
    return MetadataValue.table(
        [TableRecord({"line": r["line"], "fields": r["fields"], "action": r["action"],
                      "reasons": " / ".join(r["reasons"])}) for r in bad[:LISTED]], _TABLE)


@asset(
    key_prefix=key_prefix(),
    group_name="jobs",
    partitions_def=daily,
    description="Slurm accounting: one row per job in job_data, from "
    "accounting/<YYYY-MM-DD>.txt dumps (newest dump of a job wins), and the jobs' "
    "scripts in job_scripts where the dump came with <YYYY-MM-DD>.scripts.jsonl.",
    check_specs=[AssetCheckSpec(
        "accounting_lines_all_loaded", asset=asset_key("slurm_jobs"),
        description="Every line of the day's dump loaded whole: none set aside, no field "
        "loaded as NULL, no End before Start, no NNodes unlike the NodeList")],
)
def slurm_jobs(context: AssetExecutionContext, db: Database, paths: Paths):
    day = context.partition_key
    path = paths.accounting / f"{day}.txt"
    if not path.exists():
        raise Failure(f"accounting dump {path} does not exist (has the login node run "
                      "hpcperf-sacct-dump for this day?)")
    jobs, issues = parse_accounting(path.read_bytes(), source=str(path))
    bad = issues_by_line(issues)
    for rec in bad:  # the line's own bytes, every reason with it
        quarantine.put(paths.quarantine, rec["text"].encode("utf-8", "surrogateescape"),
                       f"accounting ({rec['action']}): {' / '.join(rec['reasons'])[:300]}",
                       f"{rec['source']}:{rec['line']}", details=rec["reasons"])
    rejected = [r for r in bad if r["action"] == "file rejected"]
    if rejected:
        raise Failure(description=f"accounting dump {path} rejected: {rejected[0]['reasons'][0]} "
                      f"(line {rejected[0]['line']}); nothing of it was loaded",
                      metadata={"file": str(path), "quarantine": str(paths.quarantine)})
    with db.connect() as conn:
        upserted = upsert_job_data(conn, jobs, date.fromisoformat(day),
                                   cluster=settings().cluster)
        # a script that cannot be stored is quarantined; the rest of the day loads
        scripts = load_job_scripts(conn, scripts_path(path), date.fromisoformat(day),
                                   settings().cluster, paths.quarantine)
    ended = jobs.filter(jobs["end_time"].is_not_null())["end_time"].dt.strftime("%Y-%m-%d")
    days = set(ended.to_list())
    actions = Counter(r["action"] for r in bad)
    yield MaterializeResult(
        metadata={
            "jobs": jobs.height,
            "upserted": upserted,
            "bad_lines": len(bad),
            "bad_line_list": _bad_line_table(bad),
            "job_days": sorted(days),
            "file": str(path),
            "scripts_stored": scripts["stored"],
            "scripts_truncated": scripts["truncated"],
            "scripts_set_aside": scripts["set_aside"] + scripts["bad_lines"],
        }
    )
    yield AssetCheckResult(
        check_name="accounting_lines_all_loaded",
        passed=not bad,
        severity=AssetCheckSeverity.WARN,
        metadata={"bad_lines": len(bad), "set_aside": actions["set aside"],
                  "loaded_with_null": actions["loaded with NULL"],
                  "loaded_as_given": actions["loaded as given"],
                  "bad_line_list": _bad_line_table(bad), "quarantine": str(paths.quarantine)},
    )
