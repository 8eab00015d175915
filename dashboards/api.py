"""The data API: read-only JSON (CSV, Parquet) under ``/api/v1/``, in the dashboards' server.

Routes are Tornado handlers added to the Panel/Bokeh server's own route
table (``dashboards.server`` mounts ``patterns()``), so the API shares the
dashboards' port, proxy, identity and access rule. ``ENDPOINTS`` is the one
list: the Tornado patterns and the OpenAPI document (``/api/v1/openapi.json``)
are both made from it.

Who is asking: an ``Authorization: Bearer`` API token (``dashboards.tokens``;
a malformed, unknown or revoked one is refused with 401, never passed on to
another method), else the dashboards' sign-in (``auth.identify`` on the live
request: proxy header, signed cookie, OIDC). What they may see is decided
by ``data.scope_clause`` inside every query, as on the pages: another
user's job is answered exactly like a job that does not exist (404).

Every parameter is checked (``data.valid_text``: no NUL or control
characters) before it reaches SQL. Database work runs off the event loop.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
from tornado.ioloop import IOLoop
from tornado.web import HTTPError, RequestHandler

from dashboards import auth, cluster, data, export, timeseries, tokens
from hpcperfstats.clusters import cluster_names
from hpcperfstats.jobs.metrics import METRICS
from hpcperfstats.report.presentation import script_entry
from hpcperfstats.report.terminal import load_report

log = logging.getLogger("hpcperf.api")

PREFIX = "/api/v1"
MAX_LIMIT = 1000
MAX_POINTS = 5000
#: rows one series answer holds at most (hosts x series x points)
SERIES_ROW_BUDGET = 20_000


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Param:
    name: str
    kind: str = "string"  # string, integer, number, date-time, boolean
    doc: str = ""
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    path: str  # OpenAPI form: /api/v1/jobs/{jobid}
    summary: str
    run: Callable[[Any, auth.Viewer, dict[str, str], dict[str, str]], Any]
    params: tuple[Param, ...] = ()
    formats: tuple[str, ...] = ("json",)
    staff_only: bool = False
    description: str = ""
    path_params: tuple[str, ...] = field(default=())

    @property
    def pattern(self) -> str:
        return re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path) + "$"


# --- values in and out --------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):  # numeric SQL (sums of bigint)
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def frame_json(frame: pl.DataFrame) -> str:
    """A frame's rows as a JSON array of objects, serialised by polars: a 128-node job's
    16,000 series points in milliseconds, where Python dicts took most of a second.
    Times ISO 8601 in UTC, NaN and infinities null (as ``_jsonable``)."""
    cols = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            col = col.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.f+00:00")
        elif dtype.is_float():
            col = pl.when(col.is_finite()).then(col)
        cols.append(col.alias(name))
    return frame.select(cols).write_json()


def dump_json(body: Any) -> str:
    """The answer's JSON; frames among a dict's values are written by :func:`frame_json`."""
    if isinstance(body, pl.DataFrame):
        body = {"rows": body}
    if isinstance(body, dict) and any(isinstance(v, pl.DataFrame) for v in body.values()):
        return "{" + ",".join(
            f"{json.dumps(k)}:"
            f"{frame_json(v) if isinstance(v, pl.DataFrame) else json.dumps(_jsonable(v))}"
            for k, v in body.items()) + "}"
    return json.dumps(_jsonable(body))


def _int(args: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = args.get(name)
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value


def _float(args: dict[str, str], name: str) -> float | None:
    text = args.get(name)
    if text in (None, ""):
        return None
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, f"{name} must be a number") from None
    if not math.isfinite(value):
        raise ApiError(400, f"{name} must be a finite number")
    return value


def _time(args: dict[str, str], name: str) -> datetime | None:
    text = args.get(name)
    if text in (None, ""):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 date or time") from None
    return when.replace(tzinfo=when.tzinfo or UTC)


# --- endpoints ----------------------------------------------------------------

#: the search page's filters, as API parameters (``data.JobFilter`` fields)
FILTERS = (
    Param("user", doc="user name (prefix)"), Param("account", doc="account (prefix)"),
    Param("partition"), Param("state"), Param("name", doc="job name contains"),
    Param("since", "date-time", "ended at or after"), Param("until", "date-time",
                                                           "started before"),
    Param("min_nodes", "integer"), Param("max_nodes", "integer"),
    Param("min_runtime_s", "number"), Param("max_runtime_s", "number"),
    Param("metric", doc="metric name for metric_min/metric_max", enum=tuple(sorted(METRICS))),
    Param("metric_min", "number"), Param("metric_max", "number"),
    Param("flag", doc="jobs with this flag"),
    Param("application", doc="jobs that ran this application (its name as the rules give "
          "it, e.g. from /api/v1/applications)"),
)
PAGING = (
    Param("sort", doc="column to sort by", enum=tuple(data.SORT_KEYS)),
    Param("order", doc="asc or desc (default desc)", enum=("asc", "desc")),
    Param("limit", "integer", f"jobs per page, 1..{MAX_LIMIT} (default 50)"),
    Param("offset", "integer", "jobs to skip (default 0); deep pages: use cursor"),
    Param("cursor", doc="the next_cursor of the previous page (seek paging: every page "
          "as fast as the first; same sort and order; no total)"),
)


def job_filter(args: dict[str, str]) -> data.JobFilter:
    """The search page's filter from API arguments (same fields, same meaning)."""
    return data.JobFilter(
        user=args.get("user") or None, account=args.get("account") or None,
        partition=args.get("partition") or None, state=args.get("state") or None,
        name=args.get("name") or None, since=_time(args, "since"), until=_time(args, "until"),
        min_nodes=_int(args, "min_nodes", None, 0, 10**7) if args.get("min_nodes") else None,
        max_nodes=_int(args, "max_nodes", None, 0, 10**7) if args.get("max_nodes") else None,
        min_runtime_s=_float(args, "min_runtime_s"), max_runtime_s=_float(args, "max_runtime_s"),
        metric=args.get("metric") or None, metric_min=_float(args, "metric_min"),
        metric_max=_float(args, "metric_max"), flag=args.get("flag") or None,
        application=args.get("application") or None)


def make_cursor(sort: str, order: str, key: tuple[Any, str]) -> str:
    """The opaque ``cursor`` of the page after ``key`` (``data.page_key``)."""
    value, jobid = key
    text = json.dumps([sort, order, _jsonable(value), jobid], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def read_cursor(text: str, sort: str, order: str) -> tuple[Any, str]:
    """``make_cursor``'s key back; 400 for a cursor of another sort or order, or no cursor."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        c_sort, c_order, value, jobid = json.loads(raw)
    except (ValueError, TypeError):
        raise ApiError(400, "cursor is not one this API gave") from None
    if (c_sort, c_order) != (sort, order) or not isinstance(jobid, str):
        raise ApiError(400, "cursor belongs to another sort or order")
    if value is not None and sort in ("start", "end"):
        try:
            value = datetime.fromisoformat(value)
        except (ValueError, TypeError):
            raise ApiError(400, "cursor is not one this API gave") from None
    numeric = sort in ("nodes", "runtime", "cpu_eff")
    kind_ok = (value is None or isinstance(value, datetime)
               or (numeric and isinstance(value, (int, float)) and not isinstance(value, bool))
               or (not numeric and isinstance(value, str) and data.valid_text(value)))
    if not kind_ok or not data.valid_text(jobid):
        raise ApiError(400, "cursor is not one this API gave")
    return value, jobid


def search(conn, viewer: auth.Viewer, path: dict[str, str], args: dict[str, str]):
    limit = _int(args, "limit", 50, 1, MAX_LIMIT)
    offset = _int(args, "offset", 0, 0, 10**9)
    sort = args.get("sort") or "end"
    if sort not in data.SORT_KEYS:
        raise ApiError(400, f"sort must be one of {', '.join(data.SORT_KEYS)}")
    order = (args.get("order") or "desc").lower()
    if order not in ("asc", "desc"):
        raise ApiError(400, "order must be asc or desc")
    after = read_cursor(args["cursor"], sort, order) if args.get("cursor") else None
    if after is not None and offset:
        raise ApiError(400, "give cursor or offset, not both")
    # one row more than the page: whether there is a next page, without counting
    frame, total = data.list_jobs(conn, job_filter(args), viewer, sort=sort,
                                  descending=order == "desc", limit=limit + 1, offset=offset,
                                  count=after is None, after=after)
    more, frame = frame.height > limit, frame.head(limit)
    if args.get("format") in ("csv", "parquet"):  # bulk export: the page as a table
        return frame
    last = frame.row(-1, named=True) if more else None
    counted = after is None
    return {"total": total if counted and total <= data.COUNT_LIMIT else None,
            "total_at_least": total if counted else None, "offset": offset, "limit": limit,
            "next_offset": offset + frame.height if more and counted else None,
            "next_cursor": make_cursor(sort, order, data.page_key(last, sort)) if last
            else None,
            "jobs": frame}


def _visible_job(conn, viewer: auth.Viewer, jobid: str) -> dict:
    job = data.job_record(conn, jobid, viewer)  # the access rule: scope_clause
    if job is None:
        raise ApiError(404, "job not found")  # the same whether it exists or not
    return job


def one_job(conn, viewer: auth.Viewer, path: dict[str, str], args: dict[str, str]):
    """The job's report (``hpcperf job --json``) with its ``script`` as the job page
    shows it: the text for its owner and staff only (``data.job_script``, the rule
    in Python and in SQL), else only the page's sentence why not."""
    job = _visible_job(conn, viewer, path["jobid"])
    report = load_report(conn, job["jobid"], job["cluster"])
    report["script"] = script_entry(data.job_script(conn, job, viewer),
                                    data.may_read_script(job, viewer))
    return report


def series_points(requested: int, hosts: int, series: int) -> int:
    """Points per host and series: as asked, but the whole answer stays under
    ``SERIES_ROW_BUDGET`` rows (a 128-node job gets coarser buckets, not 300,000 rows)."""
    return max(2, min(requested, SERIES_ROW_BUDGET // max(1, hosts * series)))


def job_series(conn, viewer: auth.Viewer, path: dict[str, str], args: dict[str, str]):
    job = _visible_job(conn, viewer, path["jobid"])
    names = [n for n in (args.get("series") or "").split(",") if n] or None
    host = args.get("host")
    if host and host not in (job.get("hosts") or []):
        raise ApiError(404, "no such host in this job")
    hosts = 1 if host else len(job.get("hosts") or [])  # one host: the whole budget
    points = series_points(_int(args, "points", 240, 2, MAX_POINTS), hosts,
                           len(names or timeseries.PLOTTED_SERIES))
    frame = timeseries.job_series(conn, job, names, points, [host] if host else None)
    if args.get("aggregate") == "hosts":  # mean, min, max over the hosts per time
        frame = timeseries.with_mean(frame)
    elif args.get("aggregate"):
        raise ApiError(400, "aggregate must be 'hosts'")
    if args.get("format") in ("csv", "parquet"):
        return frame
    return {"jobid": job["jobid"], "points_per_series": points, "points": frame}


def user_summary(conn, viewer: auth.Viewer, path: dict[str, str], args: dict[str, str]):
    row = data.user_summary(conn, viewer, user=path["user"], account=None,
                            since=_time(args, "since"), until=_time(args, "until"))
    if not row or not row["jobs"]:
        raise ApiError(404, "no jobs of this user to show")
    return {"user": path["user"], **row}


def account_summary(conn, viewer: auth.Viewer, path: dict[str, str], args: dict[str, str]):
    row = data.user_summary(conn, viewer, user=None, account=path["account"],
                            since=_time(args, "since"), until=_time(args, "until"))
    if not row or not row["jobs"]:
        raise ApiError(404, "no jobs of this account to show")
    return {"account": path["account"], **row}


#: the applications summary's default range, as on the applications page
APPLICATIONS_RANGE = timedelta(days=30)


def applications(conn, viewer: auth.Viewer, path: dict[str, str], args: dict[str, str]):
    """Per application: jobs, users, core- and GPU-hours, median CPU efficiency, top flags.

    Staff: every job. Researchers: their own jobs, or with ``scope=cluster``
    everyone's, for the applications that pass the privacy rule (at least
    ``data.MIN_POOL_JOBS`` jobs of ``data.MIN_POOL_USERS`` users)."""
    until = _time(args, "until") or datetime.now(UTC)
    since = _time(args, "since") or until - APPLICATIONS_RANGE
    scope = args.get("scope") or "mine"
    if scope not in ("mine", "cluster"):
        raise ApiError(400, "scope must be mine or cluster")
    frame = data.application_summary(conn, viewer, since, until,
                                     args.get("application") or None,
                                     pooled=scope == "cluster" and not viewer.staff)
    if args.get("format") == "csv":
        return frame
    return {"since": since, "until": until,
            "scope": "all" if viewer.staff else scope, "applications": frame}


def hosts(conn, viewer: auth.Viewer, path: dict[str, str], args: dict[str, str]):
    frame = cluster.freshness(conn, cluster=viewer.cluster)
    if args.get("format") == "csv":
        return frame
    return {"hosts": frame}


def whoami(conn, viewer: auth.Viewer, path: dict[str, str], args: dict[str, str]):
    return {"user": viewer.user, "staff": viewer.staff, "cluster": data.viewer_cluster(viewer),
            "clusters": cluster_names()}


def openapi_doc(conn, viewer: auth.Viewer, path: dict[str, str], args: dict[str, str]):
    return openapi()


RANGE = (Param("since", "date-time", "jobs that ended at or after"),
         Param("until", "date-time", "jobs that started before"))
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(f"{PREFIX}/me", "Who the server takes you for", whoami),
    Endpoint(f"{PREFIX}/jobs", "Job search (the search page's filters, paging, sorting)",
             search, FILTERS + PAGING, ("json", "csv", "parquet")),
    Endpoint(f"{PREFIX}/jobs/{{jobid}}", "One job: accounting, metrics, flags, coverage, "
             "advice, applications, GPUs and GPU-hours, the job script (its owner and "
             "staff)", one_job, path_params=("jobid",)),
    Endpoint(f"{PREFIX}/jobs/{{jobid}}/series", "A job's time series, per host and series, "
             "downsampled", job_series,
             (Param("series", doc="comma-separated series names (default: the plotted ones)"),
              Param("host", doc="one host only"),
              Param("points", "integer", f"points per host and series at most, "
                    f"2..{MAX_POINTS} (default 240; fewer when hosts x series x points would "
                    f"pass {SERIES_ROW_BUDGET:,})"),
              Param("aggregate", doc="'hosts': mean, min and max over the hosts per time",
                    enum=("hosts",))),
             ("json", "csv", "parquet"), path_params=("jobid",)),
    Endpoint(f"{PREFIX}/users/{{user}}/summary", "A user's jobs in a range: counts, "
             "core-hours, efficiency", user_summary, RANGE, path_params=("user",)),
    Endpoint(f"{PREFIX}/accounts/{{account}}/summary", "An account's jobs in a range",
             account_summary, RANGE, path_params=("account",)),
    Endpoint(f"{PREFIX}/applications", "Per application: jobs, users, core- and GPU-hours, "
             "CPU efficiency, common flags (researchers: their own jobs, or pooled)",
             applications,
             (Param("since", "date-time", "jobs that ended at or after (default: 30 days "
                    "before until)"),
              Param("until", "date-time", "jobs that ended before (default: now)"),
              Param("application", doc="one application only"),
              Param("scope", doc="researchers: 'mine' (default) or 'cluster' (only "
                    "applications with enough jobs of enough users); staff see all",
                    enum=("mine", "cluster"))),
             ("json", "csv")),
    Endpoint(f"{PREFIX}/hosts", "Hosts and their latest sample (staff)", hosts, (),
             ("json", "csv"), staff_only=True),
    Endpoint(f"{PREFIX}/openapi.json", "This description", openapi_doc),
)


def openapi() -> dict:
    """The OpenAPI 3.1 document of ``ENDPOINTS``."""
    kinds = {"string": {"type": "string"}, "integer": {"type": "integer"},
             "number": {"type": "number"}, "boolean": {"type": "boolean"},
             "date-time": {"type": "string", "format": "date-time"}}
    media = {"json": "application/json", "csv": "text/csv",
             "parquet": "application/vnd.apache.parquet"}
    paths: dict[str, Any] = {}
    for ep in ENDPOINTS:
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                  for p in ep.path_params]
        for p in ep.params:
            schema = dict(kinds[p.kind])
            if p.enum:
                schema["enum"] = list(p.enum)
            params.append({"name": p.name, "in": "query", "required": False,
                           "description": p.doc or p.name, "schema": schema})
        params.append({"name": "cluster", "in": "query", "required": False,
                       "description": "the cluster to read (default: the deployment's own; "
                       "one of /me's clusters)", "schema": {"type": "string"}})
        if len(ep.formats) > 1:
            params.append({"name": "format", "in": "query", "required": False,
                           "schema": {"type": "string", "enum": list(ep.formats)}})
        responses = {
            "200": {"description": "OK",
                    "content": {media[f]: {"schema": {}} for f in ep.formats}},
            "400": {"description": "a parameter is malformed"},
            "401": {"description": "no identity, or a forged or revoked token"},
            "403": {"description": "staff only"},
            "404": {"description": "not found, or not yours"},
        }
        paths[ep.path] = {"get": {"summary": ep.summary, "operationId": ep.run.__name__,
                                  "parameters": params, "responses": responses}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "hpcperfstats data API", "version": "1",
                 "description": "Read-only job performance data. Researchers see their own "
                 "jobs, staff all. Authenticate with `Authorization: Bearer <token>` "
                 "(`hpcperf api-token create`) or the dashboards' sign-in."},
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}, {}],
        "paths": paths,
    }


# --- the handler ----------------------------------------------------------------


class ApiHandler(RequestHandler):
    """One endpoint: identity, parameter checks, the query off the loop, the answer."""

    endpoint: Endpoint

    def initialize(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def check_xsrf_cookie(self) -> None:  # read-only API: GET only, no forms
        return

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = kwargs.get("reason") or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": reason, "status": status_code}))

    def _fail(self, status: int, message: str) -> None:
        self.set_status(status)
        self.write_error(status, reason=message)

    def _viewer(self, conn) -> auth.Viewer | None:
        header = self.request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not data.valid_text(token.strip()):
                raise ApiError(401, "Authorization must be 'Bearer <token>'")
            user = tokens.user_of(conn, token.strip())
            if user is None:
                log.warning("refused API token from %s", self.request.remote_ip)
                raise ApiError(401, "token unknown or revoked")
            return auth.resolve(user)
        try:
            identity = auth.identify(self.request.headers, auth.cookies_of(self.request),
                                     live=True)
        except auth.Refused as exc:
            log.warning("refused API %s from %s: %s", self.request.path,
                        self.request.remote_ip, exc)
            raise ApiError(403, "Forbidden") from None
        viewer = auth.viewer_of(identity)
        if viewer.user is None and not viewer.staff:
            raise ApiError(401, "sign in or send an API token")
        return viewer

    def _answer(self, path: dict[str, str], args: dict[str, str]) -> tuple[int, Any]:
        with data.connection() as conn:
            # ?cluster= (else the selector's cookie, else the default): every query of
            # the endpoint sees that cluster only (data.scope_clause)
            viewer = auth.on_cluster(self._viewer(conn), args.get("cluster") or (
                auth.cookies_of(self.request).get(auth.CLUSTER_COOKIE)))
            if self.endpoint.staff_only and not viewer.staff:
                raise ApiError(403, "staff only")
            return 200, self.endpoint.run(conn, viewer, path, args)

    async def get(self, **path: str) -> None:
        # raw values: get_argument would silently drop control characters (NUL), and a
        # request carrying them is refused, not quietly rewritten into another one
        args = {k: v[-1].decode("utf-8", "replace")
                for k, v in self.request.query_arguments.items()}
        # tornado hands path groups over still %-encoded
        from urllib.parse import unquote

        path = {k: unquote(v) for k, v in path.items()}
        bad = [k for k, v in [*args.items(), *path.items()]
               if not data.valid_text(k) or not data.valid_text(v)]
        if bad:
            self._fail(400, f"parameter {bad[0][:40]!r} has control characters or is too long")
            return
        fmt = args.get("format") or "json"
        if fmt not in self.endpoint.formats:
            self._fail(400, f"format must be one of {', '.join(self.endpoint.formats)}")
            return
        try:
            _, body = await IOLoop.current().run_in_executor(None, self._answer, path, args)
        except ApiError as exc:
            self._fail(exc.status, str(exc))
            return
        except HTTPError:
            raise
        except Exception:
            log.exception("API %s failed", self.request.path)
            self._fail(500, "internal error (logged)")
            return
        self._write(body, fmt)

    def _write(self, body: Any, fmt: str) -> None:
        if isinstance(body, pl.DataFrame):
            name = self.endpoint.run.__name__
            if fmt == "parquet":
                out = io.BytesIO()
                body.write_parquet(out)
                self.set_header("Content-Type", "application/vnd.apache.parquet")
                self.set_header("Content-Disposition", f'attachment; filename="{name}.parquet"')
                self.finish(out.getvalue())
                return
            if fmt == "csv":
                self.set_header("Content-Type", "text/csv; charset=utf-8")
                self.set_header("Content-Disposition", f'attachment; filename="{name}.csv"')
                self.finish(export.csv(body).getvalue())
                return
        self.set_header("Content-Type", "application/json")
        self.finish(dump_json(body))


def patterns() -> list[tuple[str, type, dict]]:
    """Tornado routes of every endpoint (``extra_patterns`` of the Bokeh server)."""
    return [(ep.pattern, ApiHandler, {"endpoint": ep}) for ep in ENDPOINTS]
