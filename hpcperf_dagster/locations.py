"""One Dagster code location per cluster, from the same definitions.

A workspace lists each cluster the clusters file declares as its own
location (``hpcperf dagster-workspace`` writes the list)::

    - python_module:                       # Dagster starts the location's process
        module_name: hpcperf_dagster.locations
        attribute: stampede3               # the cluster
        location_name: stampede3
    - grpc_server: {host: ..., port: ..., location_name: stampede3}
                                           # production: a code server per cluster,
                                           # started with HPCPERF_CLUSTER=stampede3

Dagster loads every location in its own process; looking up the attribute
(a cluster's name) sets ``HPCPERF_CLUSTER`` in that process before the
definitions are imported, so everything they read at import (partitions from
the cluster's ``partition_start``) and at run time (queue, folders, the rows'
cluster, in the runs the location starts too) is that cluster's. One process
serves one cluster: asking it for a second is an error, not a mix.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml
from dagster import Definitions

from hpcperfstats.clusters import cluster_config, clusters, clusters_file
from hpcperfstats.config import cluster_name

#: the location of a single-cluster site (no clusters file), as it always was
SINGLE_LOCATION = "hpcperfstats"


def definitions_of(cluster: str) -> Definitions:
    """The definitions of ``cluster``'s location, built in this process for it."""
    name = cluster_config(cluster).name  # KeyError naming the declared clusters
    # the partitions are built at import, from the cluster set then
    if "hpcperf_dagster.partitions" in sys.modules and cluster_name() != name:
        raise RuntimeError(f"this process already serves cluster {cluster_name()!r}; each "
                           f"cluster's code location is its own process ({name!r} asked)")
    os.environ["HPCPERF_CLUSTER"] = name
    from hpcperf_dagster.definitions import defs

    return defs


def __getattr__(name: str) -> Definitions:
    """``attribute: <cluster>`` of a workspace entry: that cluster's definitions."""
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return definitions_of(name)
    except KeyError as exc:
        raise AttributeError(str(exc)) from None


def workspace(grpc_ports: dict[str, int] | None = None, grpc_host: str = "127.0.0.1",
              working_directory: str = ".") -> dict:
    """The workspace listing one location per declared cluster: ``python_module``
    entries (Dagster starts each location's process), or ``grpc_server`` entries
    at ``grpc_host`` and each cluster's port in ``grpc_ports``. Without a clusters
    file: the single location ``hpcperfstats``, unprefixed. ``working_directory`` is
    relative to the workspace file's folder."""
    if clusters_file() is None:
        (name,) = clusters()
        if grpc_ports is not None:
            entry = {"grpc_server": {"host": grpc_host, "port": grpc_ports[name],
                                     "location_name": SINGLE_LOCATION}}
        else:
            entry = {"python_module": {"module_name": "hpcperf_dagster.definitions",
                                       "working_directory": working_directory,
                                       "location_name": SINGLE_LOCATION}}
        return {"load_from": [entry]}
    entries = []
    for name in clusters():
        if grpc_ports is not None:
            entries.append({"grpc_server": {"host": grpc_host, "port": grpc_ports[name],
                                            "location_name": name}})
        else:
            entries.append({"python_module": {"module_name": "hpcperf_dagster.locations",
                                              "attribute": name,
                                              "working_directory": working_directory,
                                              "location_name": name}})
    return {"load_from": entries}


def main(argv: list[str] | None = None) -> int:
    """``hpcperf dagster-workspace``: print (or write) the workspace of the declared
    clusters."""
    parser = argparse.ArgumentParser(prog="hpcperf dagster-workspace", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, help="write here (default: print)")
    parser.add_argument("--grpc-host", default=None,
                        help="list code servers at this host instead of python modules")
    parser.add_argument("--grpc-port", type=int, default=4000,
                        help="the first cluster's code server port; the next cluster's is "
                        "one more, and so on")
    args = parser.parse_args(argv)
    ports = None
    if args.grpc_host:
        ports = {name: args.grpc_port + i for i, name in enumerate(clusters())}
    text = yaml.safe_dump(workspace(ports, args.grpc_host or "127.0.0.1"), sort_keys=False)
    if args.output:
        args.output.write_text(text)
    else:
        print(text, end="")
    return 0
