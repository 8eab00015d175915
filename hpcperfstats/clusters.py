"""The clusters one deployment serves, and each one's own settings.

One place declares them: the YAML file ``HPCPERF_CLUSTERS_FILE``
([docs/operations.md](../docs/operations.md#several-clusters)). Without one
the deployment serves a single cluster, ``HPCPERF_CLUSTER``, with today's
settings (queue named after it, ``HPCPERF_ARCHIVE_DIR`` and friends), so a
one-cluster site changes nothing. The format::

    clusters:
      stampede3:                     # the name: rows, queue and Dagster asset prefix
        queue: stampede3             # default: the name
        archive_dir: /srv/s3/archive # defaults: see ``ClusterConfig``
        quarantine_dir: /srv/s3/quarantine
        accounting_dir: /srv/s3/accounting
        partitions: [skx, spr, h100] # Slurm partitions (empty: all)
        sampling_interval_s: 300     # the monitor's interval there
        partition_start: 2026-01-01  # first Dagster partition (default HPCPERF_PARTITION_START)
        flag_thresholds:             # flag rule name -> threshold for this cluster
          low_cpu_efficiency: 0.4
        node:                        # one node's peaks, for the roofline
          peak_flops: 6.4e12         # FLOP/s
          mem_bandwidth: 3.0e11      # bytes/s
        partition_nodes:             # a partition whose nodes differ
          h100: {peak_flops: 2.6e14, mem_bandwidth: 1.3e12}

``cluster_config(name)`` is the one lookup; ``node_peak(cluster, partition)``
is what the roofline asks for a node's peaks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from hpcperfstats.config import env, home_dir, utc

#: a cluster name becomes a queue name, a Dagster asset key prefix and a folder
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
#: the monitor's default sampling interval (``hpcperf-monitor --interval``)
DEFAULT_INTERVAL_S = 300.0

_KEYS = {"queue", "archive_dir", "quarantine_dir", "accounting_dir", "partitions",
         "sampling_interval_s", "partition_start", "flag_thresholds", "node",
         "partition_nodes"}
_PEAK_KEYS = {"peak_flops", "mem_bandwidth"}


@dataclass(frozen=True)
class NodePeak:
    """One node's peak floating-point rate (FLOP/s) and memory bandwidth (bytes/s);
    None where the site has not said (the roofline then draws no roof)."""

    peak_flops: float | None = None
    mem_bandwidth: float | None = None


@dataclass(frozen=True)
class ClusterConfig:
    """One cluster's settings.

    Folders default to today's settings (``HPCPERF_ARCHIVE_DIR``, ...) for the
    first cluster the file declares (or the one cluster without a file), so a
    site that adds a second cluster keeps its layout, and to
    ``HPCPERF_HOME/clusters/<name>/{archive,quarantine,accounting}`` for the
    others, so two clusters never share an archive by accident. Every process
    (each cluster's code location, the dashboards) sees the same folders.
    """

    name: str
    queue: str
    archive_dir: Path
    quarantine_dir: Path
    accounting_dir: Path
    partitions: tuple[str, ...] = ()
    sampling_interval_s: float = DEFAULT_INTERVAL_S
    partition_start: datetime | None = None
    flag_thresholds: dict[str, float] = field(default_factory=dict)
    node: NodePeak = NodePeak()
    partition_nodes: dict[str, NodePeak] = field(default_factory=dict)


def clusters_file() -> Path | None:
    value = env("CLUSTERS_FILE")
    return Path(value) if value else None


def _number(value: Any) -> float | None:
    """A number from YAML, or None. PyYAML reads ``6.4e12`` (no sign after the ``e``,
    YAML 1.1) as text, so a numeric string counts too."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _positive(value: Any, where: str, key: str) -> float:
    number = _number(value)
    if number is None or not number > 0 or number == float("inf"):
        raise ValueError(f"{where}: {key} must be a positive number, not {value!r}")
    return number


def _peak(raw: Any, where: str) -> NodePeak:
    if not isinstance(raw, dict) or set(raw) - _PEAK_KEYS:
        raise ValueError(f"{where}: expected a mapping of {sorted(_PEAK_KEYS)}, not {raw!r}")
    return NodePeak(**{key: None if raw.get(key) is None else _positive(raw[key], where, key)
                       for key in _PEAK_KEYS})


def _one(name: str, raw: dict[str, Any], source: str, first: bool) -> ClusterConfig:
    """A cluster's settings from its mapping in the file (ValueError naming the key)."""
    where = f"{source}: cluster {name!r}"
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"{where}: a name is a letter, then letters, digits, '-' or '_' "
                         "(it names the queue and the Dagster asset prefix)")
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping, not {raw!r}")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    base = home_dir() if first else home_dir() / "clusters" / name

    def folder(key: str, setting: str, sub: str) -> Path:
        if raw.get(key):
            return Path(str(raw[key]))
        return Path((env(setting) if first else None) or base / sub)

    interval = _positive(raw.get("sampling_interval_s", DEFAULT_INTERVAL_S), where,
                         "sampling_interval_s")
    thresholds = raw.get("flag_thresholds") or {}
    if not isinstance(thresholds, dict) or any(_number(v) is None for v in thresholds.values()):
        raise ValueError(f"{where}: flag_thresholds maps a flag rule name to a number")
    partitions = raw.get("partitions") or []
    if not isinstance(partitions, list) or not all(isinstance(p, str) for p in partitions):
        raise ValueError(f"{where}: partitions is a list of Slurm partition names")
    start = raw.get("partition_start")
    try:
        start = utc(str(start)) if start is not None else None
    except ValueError:
        raise ValueError(f"{where}: partition_start is an ISO date, not {start!r}") from None
    by_partition = raw.get("partition_nodes") or {}
    if not isinstance(by_partition, dict):
        raise ValueError(f"{where}: partition_nodes maps a partition to its node peaks")
    queue = raw.get("queue") or name
    if not isinstance(queue, str):
        raise ValueError(f"{where}: queue is a name")
    return ClusterConfig(
        name=name, queue=queue,
        archive_dir=folder("archive_dir", "ARCHIVE_DIR", "archive"),
        quarantine_dir=folder("quarantine_dir", "QUARANTINE_DIR", "quarantine"),
        accounting_dir=folder("accounting_dir", "ACCOUNTING_DIR", "accounting"),
        partitions=tuple(partitions), sampling_interval_s=interval,
        partition_start=start,
        flag_thresholds={str(k): _number(v) for k, v in thresholds.items()},
        node=_peak(raw.get("node") or {}, f"{where} node"),
        partition_nodes={str(p): _peak(v, f"{where} partition_nodes {p!r}")
                         for p, v in by_partition.items()},
    )


def parse_clusters(text: str, source: str = "clusters") -> dict[str, ClusterConfig]:
    """Clusters from the file's YAML text, in file order; ValueError on any mistake."""
    doc = yaml.safe_load(text) or {}
    if not isinstance(doc, dict) or set(doc) - {"clusters"}:
        raise ValueError(f"{source}: expected one top-level key, 'clusters'")
    raw = doc.get("clusters") or {}
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{source}: 'clusters' maps each cluster's name to its settings")
    out = {str(name): _one(name, spec, source, i == 0)
           for i, (name, spec) in enumerate(raw.items())}
    queues = [c.queue for c in out.values()]
    if len(set(queues)) != len(queues):
        raise ValueError(f"{source}: two clusters share a queue ({queues})")
    # Dagster names allow no '-', so a cluster's asset prefix spells it with '_':
    # "a-b" and "a_b" would share every asset key, lineage and backfill.
    prefixes = [name.replace("-", "_") for name in out]
    if len(set(prefixes)) != len(prefixes):
        raise ValueError(f"{source}: two cluster names differ only by '-' and '_' "
                         f"({list(out)}); they would share one Dagster asset prefix")
    return out


def clusters() -> dict[str, ClusterConfig]:
    """Every cluster this deployment serves (read each time: the file may change).

    Without ``HPCPERF_CLUSTERS_FILE``: the one cluster ``HPCPERF_CLUSTER``.
    """
    path = clusters_file()
    if path is None:
        name = env("CLUSTER")
        return {name: _one(name, {}, "HPCPERF_CLUSTER", True)}
    return parse_clusters(path.read_text(), str(path))


def cluster_names() -> list[str]:
    """The served clusters' names, in declaration order (the dashboards' selector)."""
    return list(clusters())


def cluster_config(name: str | None = None) -> ClusterConfig:
    """The settings of cluster ``name`` (default ``HPCPERF_CLUSTER``); KeyError naming the
    declared ones when the deployment does not serve it."""
    name = name or env("CLUSTER")
    known = clusters()
    if name not in known:
        raise KeyError(f"cluster {name!r} is not declared (known: {', '.join(known)}; "
                       "HPCPERF_CLUSTERS_FILE declares them)")
    return known[name]


def node_peak(cluster: str | None = None, partition: str | None = None) -> NodePeak:
    """A node's peak FLOP/s and memory bandwidth on ``cluster`` (in ``partition`` when
    its nodes differ): the roofline's roofs. A partition without its own entry has the
    cluster's; what the partition leaves out, too."""
    config = cluster_config(cluster)
    own = config.partition_nodes.get(partition or "")
    if own is None:
        return config.node
    return NodePeak(own.peak_flops if own.peak_flops is not None else config.node.peak_flops,
                    own.mem_bandwidth if own.mem_bandwidth is not None
                    else config.node.mem_bandwidth)
