"""``alerts_to_send`` and ``alerts_sent``: researchers' digests on the daily job partitions.

Thin: the work is in ``hpcperfstats.alerts``. ``alerts_to_send`` records a
day's alerts in ``alert_history`` (re-running a day adds nothing already
there); ``alerts_sent`` delivers the digests for that day. A delivery that
fails after its retries fails the run (red in the UI, the reason in the
error) and the alerts stay pending for the next run or a re-run. The
schedule runs both for the previous UTC day after the job tables are built.
"""

from datetime import timedelta

from dagster import (
    AssetExecutionContext,
    AssetSelection,
    DefaultScheduleStatus,
    Failure,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    ScheduleEvaluationContext,
    asset,
    define_asset_job,
    schedule,
)

from hpcperf_dagster.location import asset_key, key_prefix, named
from hpcperf_dagster.partitions import daily
from hpcperf_dagster.resources import Database
from hpcperfstats.alerts.deliver import SmtpSettings
from hpcperfstats.alerts.rules import alert_rules_path, alert_rules_version, load_alert_rules
from hpcperfstats.alerts.send import AlertSettings, find_alerts, opted_out, send_digests
from hpcperfstats.config import settings


@asset(
    key_prefix=key_prefix(),
    group_name="alerts",
    partitions_def=daily,
    deps=[asset_key("job_flags")],
    code_version=alert_rules_version(),
    description="Alerts of the jobs that ended this day, from the rules in "
    "HPCPERF_ALERT_RULES, recorded once per job and rule in alert_history.",
)
def alerts_to_send(context: AssetExecutionContext, db: Database) -> MaterializeResult:
    window = context.partition_time_window
    rules = load_alert_rules()
    cfg = AlertSettings.from_env()
    with db.connect() as conn:
        counts = find_alerts(conn, settings().cluster, window.start, window.end, rules,
                             opted_out(cfg.opt_out_file))
    return MaterializeResult(metadata={
        **counts, "rules_file": str(alert_rules_path()),
        "rule_versions": ", ".join(f"{r.name}@{r.rule.version}" for r in rules),
    })


@asset(
    key_prefix=key_prefix(),
    group_name="alerts",
    partitions_def=daily,
    deps=[alerts_to_send],
    description="Each researcher's digest for this day (pending alerts, severe first, up to "
    "HPCPERF_ALERT_CAP; the rest held): mailed, or written to a folder in dry-run mode.",
)
def alerts_sent(context: AssetExecutionContext, db: Database) -> MaterializeResult:
    cfg = AlertSettings.from_env()
    day = context.partition_time_window.start.date()
    with db.connect() as conn:
        res = send_digests(conn, settings().cluster, day, cfg, SmtpSettings.from_env())
    if res.failed:
        raise Failure(
            description=f"{len(res.failed)} digest(s) not delivered; their alerts stay "
            "pending and go with the next run",
            metadata={"failed": MetadataValue.json(res.failed), "digests_sent": res.digests,
                      "alerts_sent": res.alerts})
    return MaterializeResult(metadata={
        "mode": cfg.mode, "digests": res.digests, "alerts": res.alerts, "held": res.held,
        "undeliverable": res.undeliverable,
        "skipped": res.skipped or "no",
        "dry_run_files": MetadataValue.json(res.dry_run_files),
    })


alerts_job = define_asset_job(named("alerts_job"),
                              AssetSelection.assets(alerts_to_send, alerts_sent))


@schedule(name=named("alerts_schedule"), job=alerts_job, cron_schedule="30 6 * * *",
          execution_timezone="UTC",
          default_status=DefaultScheduleStatus.RUNNING,
          description="Alerts and digests of the previous UTC day (after the job tables).")
def alerts_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
    return RunRequest(run_key=f"alerts:{day}", partition_key=day)
