"""Which cluster a code location serves, and how its Dagster names carry it.

One set of definitions serves every cluster: each cluster is its own code
location (its own process, as Dagster runs every location), loaded with
``HPCPERF_CLUSTER`` set to the cluster's name, so its partitions, resources
and sensors read that cluster's settings (``cluster_config``: queue, folders,
partition start). ``hpcperf_dagster.locations`` sets it for a workspace's
``python_module`` entries (``attribute: <cluster>``); a code server started
with the variable set needs nothing more.

Names: with a clusters file (``HPCPERF_CLUSTERS_FILE``) every asset key is
prefixed by the cluster (``stampede3/host_data``) and every job, sensor and
schedule name too (``stampede3_host_data_job``), so one Dagster instance
keeps each cluster's lineage, partition status, cursors and runs apart.
Without one (a single-cluster site) the names are unprefixed, as they always
were: upgrading such a site changes nothing in its Dagster storage.
"""

from __future__ import annotations

from dagster import AssetKey

from hpcperfstats.clusters import clusters_file
from hpcperfstats.config import cluster_name


def prefixed() -> bool:
    """Whether names carry the cluster: whenever a clusters file declares the clusters."""
    return clusters_file() is not None


def dagster_name(cluster: str) -> str:
    """A cluster's name as Dagster accepts it in keys and names (``-`` becomes ``_``)."""
    return cluster.replace("-", "_")


def key_prefix(cluster: str | None = None) -> list[str]:
    """The asset key prefix of ``cluster``'s location (default: this process's cluster)."""
    return [dagster_name(cluster_name(cluster))] if prefixed() else []


def asset_key(name: str, cluster: str | None = None) -> AssetKey:
    """The key of asset ``name`` in ``cluster``'s location (``stampede3/host_data``)."""
    return AssetKey([*key_prefix(cluster), name])


def named(name: str, cluster: str | None = None) -> str:
    """A job, sensor or schedule name in ``cluster``'s location
    (``stampede3_drain_job``)."""
    return "_".join([*key_prefix(cluster), name])
