"""``hpcperf backfill ASSETS FROM TO``: a real Dagster backfill, from one command.

Submits an asset backfill to the running Dagster webserver (its GraphQL API,
what the UI's *Materialize -> Launch backfill* does), so the daemon runs it
under the assets' backfill policies (hours in runs of ``HPCPERF_HOURS_PER_RUN``,
job days one per run, side by side up to the run queue's limit) and the UI
shows its progress under *Overview -> Backfills*. ``--wait`` prints the
progress here until it ends.

    hpcperf backfill host_data 2026-01-01T00 2026-01-07T23 --wait
    hpcperf backfill job_metrics 2026-01-01 2026-01-07
    hpcperf backfill host_data 2026-01-01T00 2026-01-01T05 --cluster frontera

With a clusters file each cluster is its own code location and the backfill
targets one: ``--cluster`` (default ``HPCPERF_CLUSTER``) names it, the assets
are that cluster's (``frontera/host_data``), and no other cluster's
partitions are touched.

Ranges are inclusive; hours as ``YYYY-MM-DDTHH`` (or the partition key
``YYYY-MM-DD-HH:00``), days as ``YYYY-MM-DD``. ``host_data`` brings its
``host_aggregates`` along, as ``host_data_job`` does; ``job_metrics`` alone
rebuilds that table only (the job tables are a subsettable multi-asset).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from datetime import datetime

from hpcperfstats.config import cluster_name, env

#: assets that bring others with them (the same run rebuilds both)
WITH = {"host_data": ["host_aggregates"]}
DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

LAUNCH = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams:
  $params) { __typename ... on LaunchBackfillSuccess { backfillId }
  ... on PythonError { message } ... on InvalidSubsetError { message }
  ... on UnauthorizedError { message } } }"""
PROGRESS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status numPartitions assetBackfillData { assetBackfillStatuses {
  ... on AssetPartitionsStatusCounts { assetKey { path } numPartitionsTargeted
  numPartitionsInProgress numPartitionsMaterialized numPartitionsFailed } } } } } }"""


class BackfillError(Exception):
    """The webserver refused or failed the backfill; the message says why."""


def graphql(url: str, query: str, variables: dict) -> dict:
    request = urllib.request.Request(
        f"{url.rstrip('/')}/graphql", headers={"Content-Type": "application/json"},
        data=json.dumps({"query": query, "variables": variables}).encode())
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    if answer.get("errors"):
        raise BackfillError(answer["errors"][0].get("message", str(answer["errors"])))
    return answer["data"]


def partition_key(text: str, hourly: bool) -> str:
    """``2026-01-01T05`` / ``2026-01-01-05:00`` / ``2026-01-01`` as the asset's key."""
    for fmt in ("%Y-%m-%dT%H", "%Y-%m-%dT%H:%M", "%Y-%m-%d-%H:%M", "%Y-%m-%d"):
        try:
            moment = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return moment.strftime("%Y-%m-%d-%H:00" if hourly else "%Y-%m-%d")
    raise BackfillError(f"{text!r} is not an hour (YYYY-MM-DDTHH) or a day (YYYY-MM-DD)")


def selection(assets: list[str], cluster: str | None = None) -> list[tuple[str, bool]]:
    """(asset, hourly) for each asset named and those it brings along, in ``cluster``'s
    code location (default ``HPCPERF_CLUSTER``'s)."""
    from hpcperf_dagster.location import key_prefix
    from hpcperf_dagster.locations import definitions_of

    defs = definitions_of(cluster_name(cluster))
    from hpcperf_dagster.partitions import hourly

    graph = defs.resolve_asset_graph()
    prefix = len(key_prefix())
    known = {"/".join(key.path[prefix:]): key for key in graph.get_all_asset_keys()}
    out: list[tuple[str, bool]] = []
    for name in [n for a in assets for n in [a, *WITH.get(a, [])]]:
        if name not in known:
            raise BackfillError(f"no asset {name!r}; assets: {', '.join(sorted(known))}")
        if name not in [n for n, _ in out]:
            out.append((name, graph.get(known[name]).partitions_def == hourly))
    return out


def launch(url: str, assets: list[tuple[str, bool]], first: str, last: str,
           full: bool = False, cluster: str | None = None) -> str:
    """Submit the backfill of ``cluster``'s assets; its id. ``full``: its runs replace
    every host_data row of their hours (the run tag ``hpcperf/rebuild=full``), not only
    what changed."""
    from hpcperf_assets.host_data import REBUILD_TAG

    from hpcperf_dagster.location import key_prefix

    by_asset = [{"assetKey": {"path": [*key_prefix(cluster), name]},
                 "partitions": {"range": {"start": partition_key(first, hourly),
                                          "end": partition_key(last, hourly)}}}
                for name, hourly in assets]
    params = {"partitionsByAssets": by_asset,
              "title": f"hpcperf backfill {first} .. {last} ({cluster_name(cluster)})",
              "tags": [{"key": "hpcperf/backfill", "value": "cli"},
                       *([{"key": REBUILD_TAG, "value": "full"}] if full else [])]}
    result = graphql(url, LAUNCH, {"params": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise BackfillError(f"{result['__typename']}: {result.get('message', '')}")
    return result["backfillId"]


def progress(url: str, backfill_id: str) -> dict:
    """Status and per-asset counts of a backfill, as the UI shows them."""
    found = graphql(url, PROGRESS, {"id": backfill_id})["partitionBackfillOrError"]
    statuses = (found.get("assetBackfillData") or {}).get("assetBackfillStatuses") or []
    return {"status": found["status"], "assets": {
        "/".join(s["assetKey"]["path"]): {k: s[k] for k in (
            "numPartitionsTargeted", "numPartitionsMaterialized", "numPartitionsInProgress",
            "numPartitionsFailed")} for s in statuses if "assetKey" in s}}


def _line(state: dict) -> str:
    parts = [f"{name} {c['numPartitionsMaterialized']}/{c['numPartitionsTargeted']} done, "
             f"{c['numPartitionsInProgress']} running, {c['numPartitionsFailed']} failed"
             for name, c in sorted(state["assets"].items())]
    return f"{state['status']}: " + "; ".join(parts)


def wait(url: str, backfill_id: str, timeout: float, every: float = 5.0) -> dict:
    """Print progress until the backfill ends (or ``timeout``); its last state."""
    deadline, last = time.monotonic() + timeout, ""
    while True:
        state = progress(url, backfill_id)
        line = _line(state)
        if line != last:
            print(line, flush=True)
            last = line
        if state["status"] in DONE or time.monotonic() > deadline:
            return state
        time.sleep(every)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hpcperf backfill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("assets", help="asset names, comma-separated (host_data, job_metrics...)")
    parser.add_argument("first", help="first hour or day (inclusive)")
    parser.add_argument("last", help="last hour or day (inclusive)")
    parser.add_argument("--url", default=env("DAGSTER_URL"),
                        help="the Dagster webserver (HPCPERF_DAGSTER_URL)")
    parser.add_argument("--cluster", default=None,
                        help="the cluster whose assets to rebuild (default HPCPERF_CLUSTER)")
    parser.add_argument("--wait", action="store_true", help="print progress until it ends")
    parser.add_argument("--full", action="store_true",
                        help="replace every host_data row of the hours (after a rate rule "
                        "changed), not only what changed in the archive")
    parser.add_argument("--timeout", type=float, default=24 * 3600,
                        help="seconds --wait waits at most")
    args = parser.parse_args(argv)
    try:
        assets = selection(args.assets.split(","), args.cluster)
        backfill_id = launch(args.url, assets, args.first, args.last, args.full, args.cluster)
        print(f"backfill {backfill_id} submitted: {', '.join(n for n, _ in assets)} "
              f"{args.first} .. {args.last}; progress: {args.url.rstrip('/')}"
              f"/runs/b/{backfill_id}", flush=True)
        if not args.wait:
            return 0
        state = wait(args.url, backfill_id, args.timeout)
    except (BackfillError, OSError, KeyError, RuntimeError) as exc:
        print(f"hpcperf backfill: {exc}", file=sys.stderr)
        return 1
    return 0 if state["status"] in ("COMPLETED", "COMPLETED_SUCCESS") else 1
