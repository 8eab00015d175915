"""``deploy/compose.second-cluster.yaml``: a second cluster added to the stack, checked
without Docker.

The override follows the Compose specification's schema; merged over
``compose.yaml`` as ``docker compose -f compose.yaml -f compose.second-cluster.yaml``
merges it (``extends`` resolved, mappings merged, volumes by target, a
command replaced), the daemon and the UI load a workspace listing both code
servers under the clusters' names, each code server serves its cluster, and
the second cluster's queue and folders (``cluster_config`` over the example
clusters file) are its own, on volumes of their own.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from test_compose import (
    DEPLOY,
    SECRETS,
    _is_named,
    _mounts,
    env_example,
    interpolate,
    raw_compose,
    schema_errors,
    variables_used,
)

OVERRIDE = DEPLOY / "compose.second-cluster.yaml"
WORKSPACE = DEPLOY / "workspace.second-cluster.yaml"
EXAMPLE = DEPLOY / "clusters.example.yaml"


def _env() -> dict[str, str]:
    return env_example() | {name: f"test-{name.lower()}" for name in SECRETS}


def override() -> dict:
    return interpolate(yaml.safe_load(OVERRIDE.read_text()), _env())


def _merge(base, over, key: str = ""):
    """Compose's merge of one file over another (the rules the override relies on)."""
    if key == "volumes" and isinstance(base, list):  # by container path
        merged = {target: v for v, (_, target) in zip(base, _mounts({"volumes": base}),
                                                       strict=True)}
        merged.update({t: v for v, (_, t) in zip(over, _mounts({"volumes": over}),
                                                 strict=True)})
        return list(merged.values())
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v, k) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)  # scalars and sequences (command): replaced


def merged() -> dict:
    """compose.yaml with the override over it, ``extends`` resolved."""
    base = interpolate(raw_compose(), _env())
    over = override()
    services = over["services"]
    for name, service in services.items():
        ref = service.pop("extends", None)
        if ref:
            assert ref["file"] == "compose.yaml"
            services[name] = _merge(copy.deepcopy(base["services"][ref["service"]]), service)
    return _merge(base, over)


def test_override_follows_the_compose_specification():
    assert schema_errors(override()) == []
    assert schema_errors(merged()) == []


def test_every_variable_of_the_override_is_documented():
    documented = env_example()
    assert variables_used(OVERRIDE.read_text()) - set(documented) == set()


def test_daemon_and_ui_load_both_locations_each_served_by_its_cluster():
    doc = merged()
    services = doc["services"]
    env = _env()
    first, second = env["HPCPERF_CLUSTER"], env["HPCPERF_SECOND_CLUSTER"]
    assert first != second
    spec = yaml.safe_load(WORKSPACE.read_text())["load_from"]
    for name in ("pipeline-daemon", "pipeline-web"):
        service = services[name]
        # the workspace the command names is this file
        assert ("./workspace.second-cluster.yaml", "/app/deploy/workspace.yaml") in \
            _mounts(service)
        assert "/app/deploy/workspace.yaml" in " ".join(service["command"])
        assert service["depends_on"]["pipeline-code-second"]["condition"] == "service_healthy"
        assert service["depends_on"]["pipeline-code"]["condition"] == "service_healthy"
        senv = service["environment"]

        def value(v, senv=senv):
            return senv[v["env"]] if isinstance(v, dict) else v

        locations = [(value(e["grpc_server"]["host"]), str(value(e["grpc_server"]["port"])),
                      value(e["grpc_server"]["location_name"])) for e in spec]
        assert locations == [("pipeline-code", "4000", first),
                             ("pipeline-code-second", "4000", second)]
        for host, port, location in locations:
            code = services[host]
            command = code["command"]
            # the code server answers on that port, under that location name, for that cluster
            assert command[command.index("-p") + 1] == port
            assert command[command.index("--location-name") + 1] == location
            assert command[command.index("-m") + 1] == "hpcperf_dagster.definitions"
            assert code["environment"]["HPCPERF_CLUSTER"] == location
    # every process of the stack reads the same clusters file from the site folder
    for name in ("pipeline-code", "pipeline-code-second", "pipeline-daemon", "pipeline-web",
                 "web"):
        assert services[name]["environment"]["HPCPERF_CLUSTERS_FILE"] == \
            "/etc/hpcperf/clusters.yaml"
        assert ("./site", "/etc/hpcperf") in _mounts(services[name])
    second_code = services["pipeline-code-second"]
    assert second_code["healthcheck"] == services["pipeline-code"]["healthcheck"]
    assert second_code["image"] == services["pipeline-code"]["image"]


def test_second_cluster_has_its_own_queue_and_folders_on_its_own_volumes(monkeypatch):
    from hpcperfstats.clusters import clusters

    doc = merged()
    env = _env()
    first, second = env["HPCPERF_CLUSTER"], env["HPCPERF_SECOND_CLUSTER"]
    code = doc["services"]["pipeline-code-second"]
    # the example clusters file, read with the second code server's settings
    for name, value in code["environment"].items():
        if name.startswith("HPCPERF_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("HPCPERF_CLUSTERS_FILE", str(EXAMPLE))
    declared = clusters()
    assert list(declared) == [first, second]  # the names .env.example gives
    one, two = declared[first], declared[second]
    assert one.queue != two.queue
    mounts = {target: source for source, target in _mounts(code)}
    assert mounts[str(two.archive_dir)] == "archive-second"
    assert mounts[str(two.quarantine_dir)] == "quarantine-second"
    assert mounts[str(two.accounting_dir)] == env["HPCPERF_SECOND_ACCOUNTING_DROP"]
    # the first cluster keeps the stack's folders and volumes
    assert mounts[str(one.archive_dir)] == "archive"
    assert one.archive_dir != two.archive_dir
    # named volumes: declared, and each used
    declared_volumes = set(doc["volumes"])
    used = {s for svc in doc["services"].values() for s, _ in _mounts(svc) if _is_named(s)}
    assert used == declared_volumes
    assert {"archive-second", "quarantine-second"} <= declared_volumes


def test_bind_mounted_files_of_the_override_exist():
    for service in override()["services"].values():
        for source, _ in _mounts(service):
            if source.startswith("./") and source not in ("./accounting-second",):
                assert (DEPLOY / source).exists(), f"{source} is mounted but missing"
    assert Path(EXAMPLE).exists()
