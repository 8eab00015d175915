"""How partitions follow their upstream: declarative automation and run sizes.

- ``follows_upstream``: Dagster's ``eager()`` on every partition, not only the
  latest time window (a late sample makes an old hour's archive partition
  newer than its ``host_data``); and, unlike ``eager()``, a partition never
  built whose upstream exists is built whenever it is found (``eager()``
  looks only at what changed since its previous tick, so hours archived
  before the daemon's first tick would wait forever); plus a retry of
  partitions whose last run failed, once per ``HPCPERF_RETRY_AFTER_S``
  (rounded to whole minutes: a cron tick), so a database outage heals itself
  without a person.
- ``retries_failed``: only the retry, for assets a sensor requests.
- Backfill policies: a catch-up or backfill of many hours is split into runs
  of at most ``HPCPERF_HOURS_PER_RUN`` hours (bounded work per run, runs side
  by side up to the run queue's limit); job days one per run.

Settings are read when the definitions are built (at import of the code
location), like the partitions' start.
"""

from __future__ import annotations

from dagster import AutomationCondition, BackfillPolicy

from hpcperfstats.config import settings


def retry_cron(retry_after_s: float) -> str:
    """A cron ticking about every ``retry_after_s`` seconds (whole minutes, at most hourly)."""
    minutes = min(60, max(1, round(retry_after_s / 60)))
    return "0 * * * *" if minutes == 60 else f"*/{minutes} * * * *"


def retries_failed(retry_after_s: float) -> AutomationCondition:
    """True for a partition whose latest run failed, once per retry tick."""
    return (AutomationCondition.execution_failed()
            & AutomationCondition.cron_tick_passed(retry_cron(retry_after_s))
            & ~AutomationCondition.in_progress()).with_label("failed: retry")


def follows_upstream(retry_after_s: float) -> AutomationCondition:
    """Build any partition (not only the newest) whose upstream was updated or that
    was never built; retry failed ones."""
    A = AutomationCondition
    updated = A.any_deps_updated().since_last_handled().with_label("upstream updated")
    never_built = (A.missing() & ~A.execution_failed()).with_label("never built")
    ready = ~A.any_deps_missing() & ~A.any_deps_in_progress() & ~A.in_progress()
    return (((updated | never_built) & ready) | retries_failed(retry_after_s)).with_label(
        "upstream updated or never built (any partition), or failed: retry")


_cfg = settings()
FOLLOWS_UPSTREAM = follows_upstream(_cfg.retry_after_s)
RETRIES_FAILED = retries_failed(_cfg.retry_after_s)
HOURLY_RUNS = BackfillPolicy.multi_run(max_partitions_per_run=_cfg.hours_per_run)
DAILY_RUNS = BackfillPolicy.multi_run(max_partitions_per_run=1)
