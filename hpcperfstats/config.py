"""Settings from ``HPCPERF_*`` environment variables, with one-machine defaults.

``REGISTRY`` is the one table of every setting (name, type, default, meaning);
``env`` is the one place that reads them from the environment, so a setting
nobody registered cannot be read, and the README's table
(``python -m hpcperfstats.config``) and the deployment's ``.env.example`` are
checked against it by the tests. Values are read each time they are asked
for (not cached at import), so a test or the demo can point a process at
another directory or database by setting the environment before it calls in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hpcperf_monitor.rawformat import EPOCH_EARLIEST, EPOCH_MAX_AHEAD_S

#: default of HPCPERF_CHUNK_MAX_BYTES (and of HPCPERF_MESSAGE_MAX_BYTES): 16 MiB
CHUNK_DEFAULT = str(16 * 1024 * 1024)


@dataclass(frozen=True)
class Setting:
    """One ``HPCPERF_<name>`` setting.

    ``default`` is the value used when the variable is unset or empty (None:
    no value, or one computed from other settings, which ``shown`` says in
    words); ``kind`` names how it is parsed; ``scope`` says who reads it:
    ``server`` (the pipeline, CLI and dashboards processes), ``setup``
    (``scripts/setup`` and the compose stage of ``scripts/test``) or ``deploy``
    (only ``deploy/compose.yaml``).
    """

    name: str
    kind: str
    default: str | None
    meaning: str
    shown: str | None = None
    scope: str = "server"

    @property
    def variable(self) -> str:
        return f"HPCPERF_{self.name}"

    @property
    def default_text(self) -> str:
        """The default as the README shows it."""
        if self.shown is not None:
            return self.shown
        return "none" if self.default is None else f"`{self.default}`"


_S = Setting
REGISTRY: tuple[Setting, ...] = (
    # --- where things are
    _S("HOME", "path", None, "archive, quarantine, accounting drop, state, embedded database",
       "`./data`"),
    _S("DATABASE_URL", "url", None, "PostgreSQL/TimescaleDB",
       "embedded PostgreSQL on 127.0.0.1:`HPCPERF_EMBEDDED_PORT` (if another server holds "
       "it, a free port, printed and kept in `HPCPERF_HOME/embedded-postgres.port`)"),
    _S("EMBEDDED_PORT", "int", "54329", "port of the embedded PostgreSQL"),
    _S("AMQP_URL", "url", "amqp://guest:guest@127.0.0.1:5672/%2F",
       "RabbitMQ (the demo without it: its own private node)"),
    _S("CLUSTER", "str", "demo",
       "cluster name = queue name; in every table's key (rows are written and read "
       "under it); with a clusters file, the cluster this process serves"),
    _S("CLUSTERS_FILE", "path", None,
       "YAML file declaring every cluster one deployment serves, each with its own queue, "
       "folders, partitions, sampling interval, flag thresholds and node peaks "
       "([docs/operations.md](docs/operations.md#several-clusters))",
       "none: the one cluster `HPCPERF_CLUSTER`"),
    _S("ARCHIVE_DIR", "path", None, "raw stats archive", "`HPCPERF_HOME/archive`"),
    _S("QUARANTINE_DIR", "path", None, "messages and lines set aside",
       "`HPCPERF_HOME/quarantine`"),
    _S("ACCOUNTING_DIR", "path", None, "accounting drop (sacct dumps)",
       "`HPCPERF_HOME/accounting`"),
    # --- the pipeline
    _S("DRAIN_MAX_MESSAGES", "int", "50000", "messages one drain run takes at most"),
    _S("DRAIN_MAX_SECONDS", "float", "120", "seconds one drain run takes at most"),
    _S("SENSOR_INTERVAL", "int", "30", "seconds between sensor ticks", "`30` (demo: `5`)"),
    _S("AUTOMATION_INTERVAL", "int", "120",
       "seconds between ticks of Dagster's automation: the live hour is rebuilt at most this "
       "often, the drains in between share one host_data run", "`120` (demo: `5`)"),
    _S("CHUNK_MAX_BYTES", "int", CHUNK_DEFAULT,
       "raw text parsed at once by the drain, the import and each piece of a host_data "
       "build: bounds their memory ([docs/ingest.md](docs/ingest.md))",
       "16 MiB"),
    _S("MESSAGE_MAX_BYTES", "int", None, "largest message archived (larger: quarantined)",
       "`HPCPERF_CHUNK_MAX_BYTES`"),
    _S("PARTITION_START", "datetime", "2026-01-01", "first hourly/daily partition (UTC)"),
    _S("RATE_LOOKBACK_S", "float", "3600",
       "how far back a partition reads for the previous sample"),
    _S("RETRY_AFTER_S", "float", "600",
       "seconds before Dagster's automation asks again for a partition whose run failed "
       "(whole minutes)"),
    _S("DAGSTER_URL", "url", "http://127.0.0.1:3000",
       "the Dagster webserver `hpcperf backfill` submits to (compose: "
       "`http://pipeline-web:3000/dagster`)"),
    _S("HOURS_PER_RUN", "int", "6",
       "most hours one host_data run builds: a catch-up or backfill is split into runs "
       "this size, run side by side"),
    _S("EPOCH_EARLIEST", "datetime", "2000-01-01",
       "a live sample's epoch is not before this ([docs/raw-format.md](docs/raw-format.md))"),
    _S("EPOCH_MAX_AHEAD_S", "float", str(EPOCH_MAX_AHEAD_S),
       "nor more than this many seconds past its receipt"),
    _S("APP_RULES", "path", None, "application rules staff edit ([docs/applications.md]"
       "(docs/applications.md))", "`hpcperfstats/apps/app_rules.yaml`"),
    _S("FLAG_RULES", "path", None, "job flag rules staff edit ([docs/metrics.md](docs/metrics.md))",
       "`hpcperfstats/flags/job_flags.yaml`"),
    _S("JOB_SCRIPT_MAX_BYTES", "int", "1048576",
       "longest job script stored whole (`hpcperf-sacct-dump --scripts`); a longer one keeps "
       "its first this many bytes, marked truncated ([docs/operations.md](docs/operations.md"
       "#job-scripts))", "1 MiB"),
    _S("JOB_CHUNK_HOSTS", "int", "256", "hosts per chunk when building a job day (bounds memory)"),
    _S("NODE_PEAK_FLOPS", "float", None,
       "a compute node's peak FLOP/s (cores x clock x FLOPs per cycle): the roofline's "
       "compute roof ([docs/dashboards.md](docs/dashboards.md)); unset: not drawn"),
    _S("NODE_PEAK_MEM_BW", "float", None,
       "a compute node's peak memory bandwidth, bytes/s (channels x transfer rate x 8 B): "
       "the roofline's bandwidth roof; unset: not drawn"),
    # --- the raw archive off site ([docs/operations.md](docs/operations.md))
    _S("EXPORT_TARGET", "str", None,
       "off-site archive of closed days: a mounted path or `[user@]host:/path` (rsync over "
       "SSH); unset: closed days are only compressed"),
    _S("EXPORT_SSH", "str", "ssh", "remote shell for rsync, e.g. `ssh -i /etc/hpcperf/key`"),
    _S("EXPORT_REMOVE_AFTER_DAYS", "float", None,
       "remove a verified exported day locally once this many days old (unset: keep)"),
    # --- TimescaleDB
    _S("CHUNK_INTERVAL", "interval", "6 hours", "TimescaleDB only: chunk size"),
    _S("COMPRESS_AFTER", "interval", "7 days", "TimescaleDB only: compression age"),
    _S("COMPRESSED_CHUNK_INTERVAL", "interval", "1 day",
       "TimescaleDB only: compressing merges chunks up to this span (longer runs per "
       "series, fewer chunks; [docs/operations.md](docs/operations.md))"),
    _S("RETENTION", "interval", None, "TimescaleDB only: optional retention"),
    _S("TIMESCALEDB_SOURCE", "path", None,
       "TimescaleDB source tarball that `scripts/setup` builds into the embedded PostgreSQL "
       "(without one the embedded server is plain PostgreSQL)",
       "a `vendor/timescaledb-*.tar.gz` beside the checkout, if there", "setup"),
    _S("BUILD_CACHE", "path", None, "where slow builds (TimescaleDB) are cached between clones",
       "`~/.cache/hpcperfstats`", "setup"),
    # --- the compose stage of scripts/test (deploy/ci/, deploy/README.md)
    _S("TEST_COMPOSE", "bool", None,
       "`1`: `scripts/test` ends with the compose stage (deploy/README.md)", "off", "setup"),
    _S("CI_STATE", "path", None, "the compose stage's per-run files (stack .env, certificate)",
       "`/tmp/hpcperf-compose-ci`", "setup"),
    _S("DEBIAN_MIRROR", "url", None, "Debian mirror for the base images",
       "the host's apt sources", "setup"),
    _S("EXTRA_CA_DIR", "path", None,
       "CA certificates (`*.crt`) of a TLS-intercepting proxy, trusted by the app image's "
       "build stage only", "`/usr/local/share/ca-certificates`", "setup"),
    _S("DOCKER_DATA_ROOT", "path", None,
       "data root of the dockerd the compose stage starts: the image cache between runs",
       "`/var/lib/docker`", "setup"),
    # --- dashboards
    _S("WEB_PORT", "int", "5006", "dashboards port"),
    _S("WEB_ADDRESS", "str", "127.0.0.1", "interface the dashboards listen on"),
    _S("WEB_ORIGINS", "csv", None,
       "extra WebSocket origins (`host[:port]`, comma-separated): the public name behind a proxy"),
    _S("AUTH", "str", "none",
       "dashboards sign-in: `none` (everyone staff), `basic`, `oauth`, `header`; see "
       "[docs/security.md](docs/security.md)"),
    _S("BASIC_AUTH_FILE", "path", None, "basic mode: the users file (`hpcperf user add`)"),
    _S("WEB_SECRET", "secret", None,
       "signs dashboard sessions and sign-in cookies; every web process must share it",
       "made on first start in `$HPCPERF_HOME/web-secret` (0600)"),
    _S("STAFF", "csv", None, "user names who see every job"),
    _S("STAFF_GROUP", "str", None, "group whose members see every job"),
    _S("SHARE_ACCOUNTS", "bool", "0", "1: researchers also see their accounts' jobs"),
    _S("PROXY_SECRET", "secret", None,
       "header mode: the proxy's proof that a request came through it"),
    _S("PROXY_SECRET_HEADER", "str", "X-HPCPerf-Proxy-Secret", "header mode: header carrying it"),
    _S("AUTH_HEADER", "str", "X-Forwarded-User", "header mode: header carrying the user name"),
    _S("GROUPS_HEADER", "str", "X-Forwarded-Groups", "header mode: header carrying the groups"),
    _S("OAUTH_PROVIDER", "str", "generic", "oauth mode: Panel's provider name"),
    _S("OAUTH_ISSUER", "url", None, "oauth mode: the provider's issuer URL"),
    _S("OAUTH_USER_CLAIM", "str", "preferred_username", "oauth mode: claim giving the user name"),
    _S("OAUTH_GROUPS_CLAIM", "str", "groups", "oauth mode: claim giving the groups"),
    # --- alerts to researchers ([docs/alerts.md](docs/alerts.md))
    _S("ALERT_RULES", "path", None, "alert rules staff edit",
       "`hpcperfstats/alerts/job_alerts.yaml`"),
    _S("ALERT_MODE", "str", "dry-run",
       "`dry-run`: digests are written to `HPCPERF_HOME/alerts/dry-run/<day>/`, nothing is "
       "sent; `send`: mailed (and posted to the webhook)"),
    _S("ALERT_DIGEST", "str", "daily", "`daily`, or `weekly` (the digest of each Sunday)"),
    _S("ALERT_CAP", "int", "10", "alerts per researcher and digest; the rest wait for the next"),
    _S("ALERT_OPT_OUT", "path", None,
       "file of user names (one a line, `#` comments) who get no alerts"),
    _S("ALERT_MAIL_DOMAIN", "str", None, "a researcher's address is `<user>@<this>`"),
    _S("ALERT_FROM", "str", "hpcperfstats@localhost", "sender of the digests"),
    _S("ALERT_STAFF", "csv", None, "addresses copied on digests with a severe alert"),
    _S("ALERT_CONTACT", "str", None,
       "last line of every digest: who to ask, how to opt out"),
    _S("ALERT_WEBHOOK_URL", "url", None,
       "Slack/Mattermost incoming webhook that also receives each digest"),
    _S("PUBLIC_URL", "url", "http://127.0.0.1:5006",
       "the dashboards' address as people reach it (links in digests)"),
    _S("API_TOKEN", "secret", None,
       "client side: the data API token `hpcperf job --url` sends (`hpcperf api-token`)"),
    _S("SMTP_HOST", "str", "127.0.0.1", "mail server"),
    _S("SMTP_PORT", "int", "25", "mail server port"),
    _S("SMTP_USER", "str", None, "mail server login (unset: none)"),
    _S("SMTP_PASSWORD", "secret", None, "mail server password"),
    _S("SMTP_STARTTLS", "bool", "0", "1: STARTTLS before sending"),
    _S("SMTP_TIMEOUT_S", "float", "30", "seconds one SMTP conversation may take"),
    _S("SMTP_RETRIES", "int", "3", "retries of a failed delivery (mail or webhook)"),
    _S("SMTP_RETRY_WAIT_S", "float", "10", "wait before the first retry (doubles each time)"),
    # --- deploy/compose.yaml only (documented in deploy/.env.example)
    *(_S(name, "str", None, "compose.yaml: see deploy/.env.example", scope="deploy")
      for name in ("SERVER_NAME", "HTTP_PORT", "HTTPS_PORT", "TLS_DIR", "SITE_DIR",
                   "ACCOUNTING_DROP", "DB_USER", "DB_PASSWORD", "DB_NAME", "DB_SHM_SIZE",
                   "AMQP_USER", "AMQP_PASSWORD", "AMQP_PORT", "RABBITMQ_MGMT_PORT", "IMAGE",
                   "DB_IMAGE", "RABBITMQ_IMAGE", "PROXY_IMAGE", "WEB_PROCS")),
    *(_S(name, "str", None, "compose.second-cluster.yaml: see deploy/.env.example",
         scope="deploy") for name in ("SECOND_CLUSTER", "SECOND_ACCOUNTING_DROP")),
)
SETTINGS: dict[str, Setting] = {s.name: s for s in REGISTRY}


def env(name: str) -> str | None:
    """``HPCPERF_<name>`` stripped, else the registry's default (empty counts as unset).

    The one reader of the environment: an unregistered name is a KeyError.
    """
    setting = SETTINGS[name]
    value = (os.environ.get(setting.variable) or "").strip()
    return value or setting.default


def is_set(name: str) -> bool:
    """Whether ``HPCPERF_<name>`` was given (not just defaulted)."""
    return bool((os.environ.get(SETTINGS[name].variable) or "").strip())


def markdown_table(scopes: tuple[str, ...] = ("server", "setup")) -> str:
    """The README's settings table, made from the registry."""
    rows = ["| variable | type | default | meaning |", "| --- | --- | --- | --- |"]
    rows += [f"| `{s.variable}` | {s.kind} | {s.default_text} | {s.meaning} |"
             for s in REGISTRY if s.scope in scopes]
    return "\n".join(rows) + "\n"


def _epoch(text: str) -> float:
    """An epoch given as seconds or as an ISO date/time (UTC unless it says)."""
    try:
        return float(text)
    except ValueError:
        return utc(text).timestamp()


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    embedded_port: int
    amqp_url: str
    cluster: str
    drain_max_messages: int
    drain_max_seconds: float
    sensor_interval: int
    automation_interval: int
    partition_start: datetime
    rate_lookback_s: float
    message_max_bytes: int
    retry_after_s: float
    hours_per_run: int
    #: bytes of raw text parsed at once (a message, an archive slice, a piece
    #: of an imported or damaged file): bounds memory per chunk
    chunk_max_bytes: int
    #: sane window of a live sample's epoch (``rawformat.epoch_in_window``):
    #: not before this epoch, not more than ``epoch_max_ahead_s`` past receipt
    epoch_earliest: float = EPOCH_EARLIEST
    epoch_max_ahead_s: float = EPOCH_MAX_AHEAD_S

    def cluster_config(self):
        """This process's cluster's own settings (``hpcperfstats.clusters``)."""
        from hpcperfstats.clusters import cluster_config

        return cluster_config(self.cluster)

    @property
    def archive_dir(self) -> Path:
        return self.cluster_config().archive_dir

    @property
    def quarantine_dir(self) -> Path:
        return self.cluster_config().quarantine_dir

    @property
    def accounting_dir(self) -> Path:
        return self.cluster_config().accounting_dir

    @property
    def pgdata_dir(self) -> Path:
        return self.home / "pgdata"

    @property
    def export_target(self) -> str | None:
        """Off-site archive: a mounted path or ``[user@]host:/path`` (rsync over SSH)."""
        return env("EXPORT_TARGET")

    @property
    def export_ssh(self) -> str:
        """Remote shell for rsync, e.g. ``ssh -i /etc/hpcperf/key -p 22``."""
        return env("EXPORT_SSH")

    @property
    def export_remove_after_days(self) -> float | None:
        """Remove a verified exported day locally once this many days old (unset: keep)."""
        value = env("EXPORT_REMOVE_AFTER_DAYS")
        return float(value) if value else None

    @property
    def queue(self) -> str:
        """The RabbitMQ queue: one per cluster (named after it unless its config says)."""
        return self.cluster_config().queue


def chunk_max_bytes() -> int:
    """``HPCPERF_CHUNK_MAX_BYTES`` alone, without building every setting: the drain
    asks for it once per host file it opens, and ``settings()`` there was 30 % of
    the CPU of a drain's first message per host."""
    return int(env("CHUNK_MAX_BYTES"))


def settings() -> Settings:
    """Current settings from the environment."""
    chunk_bytes = chunk_max_bytes()
    return Settings(
        home=home_dir(),
        database_url=env("DATABASE_URL"),
        embedded_port=int(env("EMBEDDED_PORT")),
        amqp_url=env("AMQP_URL"),
        cluster=env("CLUSTER"),
        drain_max_messages=int(env("DRAIN_MAX_MESSAGES")),
        drain_max_seconds=float(env("DRAIN_MAX_SECONDS")),
        sensor_interval=int(env("SENSOR_INTERVAL")),
        automation_interval=int(env("AUTOMATION_INTERVAL")),
        partition_start=_partition_start(),
        rate_lookback_s=float(env("RATE_LOOKBACK_S")),
        message_max_bytes=int(env("MESSAGE_MAX_BYTES") or chunk_bytes),
        retry_after_s=float(env("RETRY_AFTER_S")),
        hours_per_run=int(env("HOURS_PER_RUN")),
        chunk_max_bytes=chunk_bytes,
        epoch_earliest=_epoch(env("EPOCH_EARLIEST")),
        epoch_max_ahead_s=float(env("EPOCH_MAX_AHEAD_S")),
    )


def home_dir() -> Path:
    """``HPCPERF_HOME``, else ``./data``, absolute."""
    return Path(env("HOME") or Path.cwd() / "data").resolve()


def _partition_start() -> datetime:
    """The first partition: the cluster's own ``partition_start``, else the setting."""
    from hpcperfstats.clusters import cluster_config

    return cluster_config().partition_start or utc(env("PARTITION_START"))


def cluster_name(given: str | None = None) -> str:
    """The cluster rows are written under and read for: ``given``, else ``HPCPERF_CLUSTER``.

    The one default for every table writer and reader that takes a cluster:
    the pipeline serves the configured cluster (one queue, one name).
    """
    return given or env("CLUSTER")


def utc(text: str) -> datetime:
    """An ISO date or time; UTC unless it names its own offset."""
    when = datetime.fromisoformat(text)
    return when.replace(tzinfo=when.tzinfo or UTC)


if __name__ == "__main__":
    print(markdown_table(), end="")
