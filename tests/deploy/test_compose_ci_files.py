"""The CI override and the locally built fallback images, checked as files.

The stack itself runs in the compose stage (test_compose_live.py); these
checks run everywhere and catch what would otherwise surface only there.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
IMAGES = DEPLOY / "images"


class _ComposeLoader(yaml.SafeLoader):
    """PyYAML with Compose's merge tags: ``!override`` and ``!reset`` keep their value."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node):
    value = (loader.construct_sequence(node, deep=True) if isinstance(node, yaml.SequenceNode)
             else loader.construct_mapping(node, deep=True)
             if isinstance(node, yaml.MappingNode) else loader.construct_scalar(node))
    return {"tag": node.tag, "value": value}


for _tag in ("!override", "!reset"):
    _ComposeLoader.add_constructor(_tag, _tagged)


def _load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_ComposeLoader)  # noqa: S506 (safe subclass)


def test_ci_override_publishes_every_port_on_loopback_only():
    site = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    ci = _load(DEPLOY / "ci" / "compose.ci.yaml")["services"]
    assert set(ci) == set(site)
    for name, service in site.items():
        if "ports" in service:  # replaced, not added to: no site port stays open
            assert ci[name]["ports"]["tag"] == "!override", name
    for name, service in ci.items():
        assert service["pull_policy"] == "never", name  # built locally, never pulled
        for port in service.get("ports", {}).get("value", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port}"
    assert ci["rabbitmq"]["ulimits"] == {"tag": "!reset", "value": {}}


def test_fallback_images_pin_their_base_and_keep_upstream_conventions():
    for name in ("timescaledb", "rabbitmq", "nginx"):
        text = (IMAGES / name / "Dockerfile").read_text()
        assert re.search(r"^ARG BASE=debian:(bookworm|trixie)-\d{8}-slim$", text, re.M), name
        for source in re.findall(r"^COPY (?!--)(\S+) ", text, re.M):
            if source != "timescaledb.tar.gz":  # deploy/ci/images adds the tarball
                assert (IMAGES / name / source).exists(), f"{name} copies missing {source}"
    db = (IMAGES / "timescaledb" / "Dockerfile").read_text()
    assert "STOPSIGNAL SIGINT" in db  # fast shutdown; SIGTERM waits for every client
    # compiled on every core, without the clang and LLVM the -dev package asks for
    assert 'make -C build -j"$(nproc)"' in db and "!~ /^(clang|llvm)/" in db
    entry = (IMAGES / "timescaledb" / "docker-entrypoint.sh").read_text()
    assert "/docker-entrypoint-initdb.d/" in entry and "shared_preload_libraries" in entry
    mq = (IMAGES / "rabbitmq" / "Dockerfile").read_text()
    assert "rabbitmq-plugins enable --offline rabbitmq_management" in mq
    nginx = (IMAGES / "nginx" / "docker-entrypoint.sh").read_text()
    assert "/etc/nginx/templates" in nginx and "envsubst" in nginx


def test_app_processes_get_an_init_and_no_state_outside_dagster():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    for name in ("web", "pipeline-code", "pipeline-daemon", "pipeline-web"):
        assert services[name].get("init") is True, name  # SIGTERM reaches the Python process
    # lineage lives in Dagster's storage: no marker volume between stages
    assert "state" not in compose.get("volumes", {})


def test_base_images_are_slim_and_unpack_without_fsync(tmp_path):
    """The base recipe's dpkg and apt settings, and the slimming, on a stand-in root."""
    root = tmp_path / "rootfs"
    for f in ("usr/share/doc/bash/copyright", "usr/share/doc/bash/changelog.gz",
              "usr/share/doc/bash/examples/x.sh", "usr/share/man/man1/bash.1.gz",
              "usr/share/locale/de/LC_MESSAGES/bash.mo", "usr/share/bash-completion/x",
              "etc/dpkg/dpkg.cfg.d/excludes"):
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("x")
    subprocess.run(["bash", "-c", '. "$1"; minimize "$2"; slimify "$2"', "bash",
                    DEPLOY / "ci" / "base-images", root], check=True, timeout=60)
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert left == ["etc/apt/apt.conf.d/docker-clean", "etc/dpkg/dpkg.cfg.d/docker",
                    "etc/dpkg/dpkg.cfg.d/docker-apt-speedup", "etc/dpkg/dpkg.cfg.d/excludes",
                    "usr/share/bash-completion/x", "usr/share/doc/bash/copyright"]
    dpkg = (root / "etc/dpkg/dpkg.cfg.d/docker").read_text().splitlines()
    # dpkg applies the last matching line: copyright files are kept
    assert dpkg[-1] == "path-include /usr/share/doc/*/copyright"
    assert "path-exclude /usr/share/man/*" in dpkg and "path-exclude /usr/share/doc/*" in dpkg
    assert (root / "etc/dpkg/dpkg.cfg.d/docker-apt-speedup").read_text() == "force-unsafe-io\n"
    assert "rm -f /var/cache/apt/archives/*.deb" in (
        root / "etc/apt/apt.conf.d/docker-clean").read_text()
