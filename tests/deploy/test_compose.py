"""deploy/compose.yaml against the Compose specification, plus what it cannot check.

No Docker engine runs here, so the file is interpolated the way Compose does
it (with deploy/.env.example and test secrets) and validated with the Compose
specification's JSON schema, which the ``check-jsonschema`` package bundles.
The rest are facts the schema cannot see: references between services and
volumes, variables documented, files that are mounted or copied exist.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from hpcperfstats.config import REGISTRY

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
SECRETS = ("HPCPERF_DB_PASSWORD", "HPCPERF_AMQP_PASSWORD", "DAGSTER_PG_PASSWORD",
           "HPCPERF_WEB_SECRET", "HPCPERF_PROXY_SECRET")
SERVICES = {"web", "pipeline-code", "pipeline-daemon", "pipeline-web", "proxy", "db", "rabbitmq"}

_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    pass


def interpolate(value, env: dict[str, str]):
    """Compose's ``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``, ``${VAR:?e}``, ``${VAR:+a}``, ``$$``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        if m["escaped"]:
            return "$"
        name = m["braced"] or m["named"]
        op, arg = m["op"], m["arg"]
        current = env.get(name)
        present = current is not None and (current != "" or not (op or "").startswith(":"))
        if op in (":-", "-"):
            return current if present else arg
        if op in (":?", "?"):
            if not present:
                raise MissingVariable(f"{name}: {arg}")
            return current
        if op in (":+", "+"):
            return arg if present else ""
        return current or ""

    return _VAR.sub(one, value)


def variables_used(text: str) -> set[str]:
    return {m["braced"] or m["named"] for m in _VAR.finditer(text) if not m["escaped"]}


def env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=value: {line!r}"
            out[key.strip()] = value
    return out


def raw_compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def compose(extra: dict[str, str] | None = None) -> dict:
    env = env_example() | {name: f"test-{name.lower()}" for name in SECRETS} | (extra or {})
    return interpolate(raw_compose(), env)


def compose_schema() -> dict:
    path = (
        importlib.resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    )
    return json.loads(path.read_text())


def schema_errors(doc: dict) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def test_compose_file_follows_the_compose_specification():
    assert schema_errors(compose()) == []


def test_schema_check_catches_a_broken_file():
    broken = copy.deepcopy(compose())
    broken["services"]["web"]["restart"] = {"policy": "always"}
    broken["services"]["web"]["depends_on"]["db"]["condition"] = "service_happy"
    broken["services"]["proxy"]["portz"] = ["80:80"]
    errors = schema_errors(broken)
    assert any(e.startswith("services/web/restart") for e in errors)
    assert any(e.startswith("services/web/depends_on:") for e in errors)
    assert any("portz" in e for e in errors)


def test_the_services_we_agreed_on():
    services = compose()["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    app = {name: services[name] for name in ("web", "pipeline-daemon", "pipeline-web")}
    assert len({s["image"] for s in app.values()}) == 1, "web and pipeline share one image"
    assert all(s["build"]["dockerfile"] == "deploy/Dockerfile" for s in app.values())
    assert (DEPLOY / app["web"]["build"]["context"]).resolve() == REPO
    assert app["web"]["command"][:3] == ["python", "-m", "dashboards.serve"]
    assert app["pipeline-daemon"]["command"][:2] == ["dagster-daemon", "run"]
    assert app["pipeline-web"]["command"][0] == "dagster-webserver"
    # one long-lived code server both connect to (deploy/workspace.yaml): the
    # daemon's workspace reloads no longer replace code servers every 60 s
    assert services["pipeline-code"]["command"][:3] == ["dagster", "code-server", "start"]
    assert services["pipeline-code"]["image"] == app["web"]["image"]
    for name in ("pipeline-daemon", "pipeline-web"):
        assert app[name]["command"][-1] == "/app/deploy/workspace.yaml"
        assert app[name]["depends_on"]["pipeline-code"]["condition"] == "service_healthy"
    assert "timescale" in services["db"]["image"]
    assert "management" in services["rabbitmq"]["image"]
    assert "nginx" in services["proxy"]["image"]


def test_depends_on_names_existing_services_and_waits_for_health():
    services = compose()["services"]
    for name, service in services.items():
        deps = service.get("depends_on", {})
        deps = deps if isinstance(deps, dict) else {d: {} for d in deps}
        for dep, how in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert dep != name
            if how.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no health check to wait on"
    for name in ("pipeline-daemon", "pipeline-web"):
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"


def _mounts(service: dict) -> list[tuple[str, str]]:
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, _, target = volume.partition(":")
            out.append((source, target.split(":")[0]))
        else:
            out.append((volume.get("source", ""), volume["target"]))
    return out


def _is_named(source: str) -> bool:
    return bool(source) and not source.startswith(("/", ".", "~"))


def test_named_volumes_are_declared_and_used():
    doc = compose()
    declared = set(doc.get("volumes") or {})
    used = {s for svc in doc["services"].values() for s, _ in _mounts(svc) if _is_named(s)}
    assert used == declared
    assert {"db", "archive", "broker"} <= declared


def test_data_lives_on_named_volumes_and_accounting_is_mounted():
    services = compose()["services"]
    assert ("db", "/var/lib/postgresql/data") in _mounts(services["db"])
    assert ("broker", "/var/lib/rabbitmq") in _mounts(services["rabbitmq"])
    for name in ("pipeline-daemon", "pipeline-web"):
        mounts = dict((t, s) for s, t in _mounts(services[name]))
        env = services[name]["environment"]
        assert mounts[env["HPCPERF_ARCHIVE_DIR"]] == "archive"
        assert mounts[env["HPCPERF_ACCOUNTING_DIR"]] == "./accounting"  # the drop directory
        assert mounts["/var/lib/dagster"] == "dagster"


def test_bind_mounted_files_exist():
    for service in compose()["services"].values():
        for source, _ in _mounts(service):
            if source.startswith("./") and source not in ("./accounting", "./tls", "./site"):
                assert (DEPLOY / source).exists(), f"{source} is mounted but missing"


def test_every_variable_is_documented_in_env_example():
    documented = env_example()
    used = variables_used(COMPOSE.read_text())
    assert used - set(documented) == set(), "used in compose.yaml, missing in .env.example"
    # the second cluster's variables are the override's (compose.second-cluster.yaml)
    used |= variables_used((DEPLOY / "compose.second-cluster.yaml").read_text())
    assert set(documented) - used == set(), "in .env.example, unused by the compose files"
    for name in SECRETS:
        assert documented[name] == "", f"{name} must be left for the operator to set"


@pytest.mark.parametrize("secret", SECRETS)
def test_stack_refuses_to_start_without_a_secret(secret):
    with pytest.raises(MissingVariable, match=secret):
        compose({secret: ""})


def test_interpolation_follows_compose_rules():
    env = {"SET": "x", "EMPTY": ""}
    text = "$$HOME ${SET} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${SET:+alt} ${UNSET:+alt} $SET"
    assert interpolate(text, env) == "$HOME x d  d alt  x"
    with pytest.raises(MissingVariable):
        interpolate("${EMPTY:?needed}", env)
    assert interpolate("${EMPTY?needed}", env) == ""


def test_pipeline_gets_every_setting_its_dagster_yaml_reads():
    services = compose()["services"]
    wanted = variables_from_dagster_yaml()
    dockerfile_env = set(re.findall(r"^\s+(\w+)=", (DEPLOY / "Dockerfile").read_text(), re.M))
    for name in ("pipeline-daemon", "pipeline-web"):
        missing = wanted - set(services[name]["environment"]) - dockerfile_env
        assert missing == set(), f"{name} lacks {missing}"
    assert services["pipeline-daemon"]["environment"]["DAGSTER_PG_HOST"] == "db"


def variables_from_dagster_yaml() -> set[str]:
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if set(node) == {"env"}:
                found.add(node["env"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load((DEPLOY / "dagster.yaml").read_text()))
    assert {"DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"} <= found
    return found


def test_ports_and_paths_agree_with_nginx():
    services = compose()["services"]
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "http://web:5006" in nginx
    assert services["web"]["environment"]["HPCPERF_WEB_PORT"] == "5006"
    command = services["pipeline-web"]["command"]
    assert command[command.index("--port") + 1] == "3000"
    prefix = command[command.index("--path-prefix") + 1]
    assert f"location {prefix}/ " in nginx and "http://pipeline-web:3000;" in nginx
    assert services["proxy"]["ports"] == ["80:80", "443:443"]
    mounts = dict((t, s) for s, t in _mounts(services["proxy"]))
    assert mounts["/etc/nginx/nginx.conf"] == "./nginx.conf"


def test_broker_keeps_idle_connections_small():
    conf = {}
    for line in (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, line
            conf[key.strip()] = value.strip()
    assert conf["tcp_listen_options.sndbuf"] == "32768"
    assert conf["tcp_listen_options.recbuf"] == "32768"
    mounts = dict((t, s) for s, t in _mounts(compose()["services"]["rabbitmq"]))
    assert mounts["/etc/rabbitmq/conf.d/90-hpcperfstats.conf"] == "./rabbitmq/rabbitmq.conf"


def test_dockerfile_builds_one_image_of_both_distributions_on_debians_python():
    """The base and Python CI proves (deploy/ci builds this file) are the ones shipped."""
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE=debian:bookworm-\d{8}-slim$", text, re.M), "exact Debian"
    # one apt run for both: the image and the build stages stand on `runtime`;
    # the dependencies are a stage of their own (deploy/ci/images caches it)
    assert re.findall(r"^FROM (\S+)(?: AS (\w+))?$", text, re.M) == [
        ("${BASE}", "runtime"), ("runtime", "deps"), ("deps", "build"), ("runtime", "")]
    assert "pip install --no-build-isolation /app/monitor /app" in text
    for source in re.findall(r"^COPY (?!--)(\S+) ", text, re.M):
        assert (REPO / source).exists(), f"Dockerfile copies missing {source}"
    image = text[text.rindex("FROM "):]
    assert "extra-ca" not in image, "a proxy's CA certificates stay in the build stage"
    assert "COPY deploy/dagster.yaml /opt/dagster/home/dagster.yaml" in image
    assert "DAGSTER_HOME=/opt/dagster/home" in image


EXACT_TAG = re.compile(r":\d+\.\d+\.\d+(-[a-z0-9]+)?$")


def test_every_image_is_pinned_to_an_exact_version():
    """A restart or a new host must never pull another release (``latest``, ``4-...``)."""
    for name, service in compose()["services"].items():
        assert EXACT_TAG.search(service["image"]), f"{name}: {service['image']} is not exact"
    assert not EXACT_TAG.search("rabbitmq:4-management")
    assert not EXACT_TAG.search("timescale/timescaledb:latest-pg17")


def settings_read_by_the_code() -> set[str]:
    """Every HPCPERF_* name the server-side code reads: the registry's server settings."""
    return {s.variable for s in REGISTRY if s.scope == "server"}


# No meaning in the stack: the database is external there; the API token is a
# client's (``hpcperf job --url`` on a researcher's machine).
NOT_IN_STACK = {"HPCPERF_EMBEDDED_PORT", "HPCPERF_API_TOKEN"}


def test_every_setting_the_code_reads_is_reachable_from_the_stack():
    read = settings_read_by_the_code()
    assert {"HPCPERF_DATABASE_URL", "HPCPERF_RETRY_AFTER_S", "HPCPERF_WEB_ORIGINS"} <= read
    services = compose()["services"]
    raw = raw_compose()["services"]
    dockerfile_env = set(re.findall(r"^\s+(\w+)=", (DEPLOY / "Dockerfile").read_text(), re.M))
    given = set()
    for name in ("web", "pipeline-daemon", "pipeline-web"):
        given |= set(services[name]["environment"])
    assert read - NOT_IN_STACK - given - dockerfile_env == set()
    # site settings come from .env (a ${VAR} in compose.yaml), not fixed in the file
    documented = env_example()
    for key in ("HPCPERF_RETRY_AFTER_S", "HPCPERF_RATE_LOOKBACK_S", "HPCPERF_MESSAGE_MAX_BYTES",
                "HPCPERF_DRAIN_MAX_MESSAGES", "HPCPERF_SENSOR_INTERVAL", "HPCPERF_CLUSTER"):
        assert raw["pipeline-daemon"]["environment"][key] == f"${{{key}:-{documented[key]}}}"


def test_web_listens_for_the_proxy_and_accepts_the_public_name():
    web = compose({"HPCPERF_SERVER_NAME": "stats.example.edu"})["services"]["web"]
    assert web["environment"]["HPCPERF_WEB_ADDRESS"] == "0.0.0.0"
    assert web["environment"]["HPCPERF_WEB_ORIGINS"] == "stats.example.edu"
    with pytest.raises(MissingVariable, match="HPCPERF_SERVER_NAME"):
        compose({"HPCPERF_SERVER_NAME": ""})


def test_proxy_sends_the_secret_the_web_service_checks():
    """Header mode: nginx renders the proxy secret the dashboards require (same value)."""
    services = compose()
    web, proxy = services["services"]["web"], services["services"]["proxy"]
    for key in ("HPCPERF_PROXY_SECRET", "HPCPERF_PROXY_SECRET_HEADER"):
        assert proxy["environment"][key] == web["environment"][key]
    assert ("./nginx-proxy-secret.conf.template",
            "/etc/nginx/templates/hpcperf-proxy-secret.conf.template") in _mounts(proxy)
    assert "include /etc/nginx/conf.d/hpcperf-proxy-secret.conf;" in (
        DEPLOY / "nginx.conf").read_text()
    assert web["environment"]["HPCPERF_WEB_SECRET"] == "test-hpcperf_web_secret"
