"""The clusters file: one place declaring each cluster's own settings.

Pure logic (no services): defaults that leave a one-cluster site as it was,
each cluster's own folders, queue, peaks and flag thresholds, and a clear
error naming the cluster and key for every mistake.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hpcperfstats.clusters import (
    DEFAULT_INTERVAL_S,
    NodePeak,
    cluster_config,
    cluster_names,
    node_peak,
    parse_clusters,
)
from hpcperfstats.config import settings
from hpcperfstats.flags.rules import cluster_rules, load_rules, with_thresholds

FILE = """
clusters:
  stampede3:
    partitions: [skx, h100]
    sampling_interval_s: 600
    flag_thresholds: {low_cpu_efficiency: 0.4}
    node: {peak_flops: 6.4e12, mem_bandwidth: 3.0e11}
    partition_nodes:
      h100: {peak_flops: 2.6e14}
  frontera:
    queue: frontera-stats
    archive_dir: /srv/frontera/archive
    partition_start: 2037-01-01
"""


@pytest.fixture
def two(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "clusters.yaml"
    path.write_text(FILE)
    monkeypatch.setenv("HPCPERF_CLUSTERS_FILE", str(path))
    monkeypatch.setenv("HPCPERF_CLUSTER", "stampede3")
    monkeypatch.setenv("HPCPERF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HPCPERF_ARCHIVE_DIR", str(tmp_path / "s3-archive"))
    return tmp_path


def test_without_a_file_one_cluster_with_todays_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("HPCPERF_CLUSTERS_FILE", raising=False)
    monkeypatch.setenv("HPCPERF_CLUSTER", "ls6")
    monkeypatch.setenv("HPCPERF_HOME", str(tmp_path))
    assert cluster_names() == ["ls6"]
    config = cluster_config()
    assert (config.queue, config.archive_dir, config.accounting_dir) == (
        "ls6", tmp_path / "archive", tmp_path / "accounting")
    assert config.sampling_interval_s == DEFAULT_INTERVAL_S
    assert node_peak() == NodePeak(None, None)  # no roof until the site says
    assert settings().archive_dir == tmp_path / "archive" and settings().queue == "ls6"


def test_each_cluster_has_its_own_settings(two):
    assert cluster_names() == ["stampede3", "frontera"]
    s3, fr = cluster_config("stampede3"), cluster_config("frontera")
    # the first declared keeps HPCPERF_ARCHIVE_DIR and friends; the other has its own
    assert s3.archive_dir == two / "s3-archive" and s3.queue == "stampede3"
    assert s3.accounting_dir == two / "home" / "accounting"
    assert fr.archive_dir == Path("/srv/frontera/archive") and fr.queue == "frontera-stats"
    assert fr.accounting_dir == two / "home" / "clusters" / "frontera" / "accounting"
    assert (s3.partitions, s3.sampling_interval_s) == (("skx", "h100"), 600.0)
    assert fr.partition_start == datetime(2037, 1, 1, tzinfo=UTC)
    assert s3.partition_start is None
    with pytest.raises(KeyError, match="'ls6' is not declared"):
        cluster_config("ls6")


def test_settings_follow_the_served_cluster(two, monkeypatch):
    monkeypatch.setenv("HPCPERF_CLUSTER", "frontera")
    cfg = settings()
    assert cfg.queue == "frontera-stats" and cfg.archive_dir == Path("/srv/frontera/archive")
    assert cfg.partition_start == datetime(2037, 1, 1, tzinfo=UTC)  # its own start


def test_node_peaks_per_partition_fall_back_to_the_clusters(two):
    assert node_peak("stampede3") == NodePeak(6.4e12, 3.0e11)
    assert node_peak("stampede3", "skx") == NodePeak(6.4e12, 3.0e11)
    # h100 names its own FLOP/s and keeps the cluster's bandwidth
    assert node_peak("stampede3", "h100") == NodePeak(2.6e14, 3.0e11)
    assert node_peak("frontera", "normal") == NodePeak(None, None)


def test_flag_thresholds_differ_by_cluster(two):
    shared = {r.name: r for r in load_rules()}
    mine = {r.name: r for r in cluster_rules("stampede3")}
    theirs = {r.name: r for r in cluster_rules("frontera")}
    assert shared["low_cpu_efficiency"].when.threshold == 0.5
    assert mine["low_cpu_efficiency"].when.threshold == 0.4
    assert theirs["low_cpu_efficiency"] == shared["low_cpu_efficiency"]
    # a changed rule is a new version (its rows say which threshold made them)
    assert mine["low_cpu_efficiency"].version != shared["low_cpu_efficiency"].version
    assert mine["idle_nodes"] == shared["idle_nodes"]
    with pytest.raises(ValueError, match="name no rule.*low_cpu_eff"):
        with_thresholds(list(shared.values()), {"low_cpu_eff": 0.3})


@pytest.mark.parametrize(("text", "message"), [
    ("clusters: {}", "maps each cluster's name"),
    ("clusters:\n  9lives: {}", "a name is a letter"),
    ("clusters:\n  a: {archive: /x}", r"cluster 'a': unknown key\(s\) \['archive'\]"),
    ("clusters:\n  a: {sampling_interval_s: 0}", "sampling_interval_s must be a positive"),
    ("clusters:\n  a: {node: {peak_flops: -1}}", "peak_flops must be a positive number"),
    ("clusters:\n  a: {node: {flops: 1}}", "cluster 'a' node: expected a mapping"),
    ("clusters:\n  a: {partition_start: soon}", "partition_start is an ISO date"),
    ("clusters:\n  a: {}\n  b: {queue: a}", "two clusters share a queue"),
    ("clusters:\n  a-b: {}\n  a_b: {}", "differ only by .-. and ._."),
    ("clusters:\n  a: {flag_thresholds: {x: high}}", "flag_thresholds maps"),
    ("other: 1", "one top-level key"),
])
def test_mistakes_name_the_cluster_and_key(text, message):
    with pytest.raises(ValueError, match=message):
        parse_clusters(text, "clusters.yaml")
