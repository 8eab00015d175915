"""Off-site export of closed days: mounted path and rsync over a real sshd on
loopback; manifest, verification, no second send, local removal, restore."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import build_schedule_context, instance_for_test, materialize
from hpcperf_demo import sshd as sshd_service

from hpcperfstats.archive.days import DAY
from hpcperfstats.archive.offsite import MANIFEST, DayNotClosed, Target, export_day

from .test_archive_days import D, all_samples, messages, store


def two_days(dirs) -> Path:
    """Day D-1 closed (the host sent on day D), day D still open."""
    store(dirs, messages())
    return dirs["archive"]


def by_hand_manifest(archive: Path) -> str:
    host = archive / "c1"
    lines = [f"{hashlib.sha256((host / n).read_bytes()).hexdigest()}  c1/{n}\n"
             for n in (f"{D - 600}.gz", f"{D - 600}.gz.idx")]
    return "".join(lines)


def test_mounted_target_manifest_verify_no_resend_remove_restore(dirs, tmp_path):
    archive = two_days(dirs)
    before = all_samples(archive)
    mount = tmp_path / "offsite"
    mount.mkdir()
    target = Target(str(mount))
    res = export_day(archive, D - DAY, target)
    assert (res.files, res.sent, res.verified, res.removed) == (1, 2, True, 0)
    day = mount / "2026-11-19"
    assert (day / MANIFEST).read_text() == by_hand_manifest(archive)
    # the manifest is in sha256sum's format: the standard tool agrees
    assert subprocess.run(["sha256sum", "-c", MANIFEST], cwd=day,
                          capture_output=True).returncode == 0
    # a re-run sends nothing
    assert export_day(archive, D - DAY, target).sent == 0
    # a damaged copy is sent again and verified
    (day / "c1" / f"{D - 600}.gz").write_bytes(b"rot")
    assert export_day(archive, D - DAY, target).sent == 2
    # removal only after the configured age: 1 day after the day ended
    young = export_day(archive, D - DAY, target, remove_after_days=1, now=D + DAY - 1)
    assert young.removed == 0 and (archive / "c1" / f"{D - 600}.gz").exists()
    old = export_day(archive, D - DAY, target, remove_after_days=1, now=D + DAY)
    assert old.removed == 2 and not (archive / "c1" / f"{D - 600}.gz").exists()
    assert len(all_samples(archive)) == 3  # only day D is local now
    # restore (docs/operations.md): copy the day's host folders back
    shutil.copytree(day, archive, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(MANIFEST))
    assert all_samples(archive) == before


def test_open_day_is_not_exported(dirs, tmp_path):
    archive = two_days(dirs)
    with pytest.raises(DayNotClosed, match="still open"):
        export_day(archive, D, Target(str(tmp_path)))


def test_remote_spec_detection():
    assert Target("backup@127.0.0.1:/srv/hpcperf").remote
    assert Target("archive-host:/srv").remote
    assert not Target("/mnt/tape/hpcperf").remote
    assert not Target("./rel/path").remote


@pytest.fixture
def sshd(tmp_path: Path):
    """A real sshd on a free loopback port with throwaway host and user keys."""
    if not sshd_service.available():
        pytest.skip("openssh-server and rsync not installed (scripts/setup installs them)")
    with sshd_service.running(tmp_path / "ssh") as far:
        yield far


def test_rsync_over_ssh_target(dirs, tmp_path, sshd):
    host, ssh = sshd
    archive = two_days(dirs)
    far = tmp_path / "far"
    far.mkdir()
    target = Target(f"{host}:{far}", ssh)
    res = export_day(archive, D - DAY, target)
    assert (res.sent, res.verified) == (2, True)
    day = far / "2026-11-19"
    assert (day / MANIFEST).read_text() == by_hand_manifest(archive)
    assert (day / "c1" / f"{D - 600}.gz").read_bytes() == \
        (archive / "c1" / f"{D - 600}.gz").read_bytes()
    stamp = (day / "c1" / f"{D - 600}.gz").stat().st_mtime_ns
    assert export_day(archive, D - DAY, target).sent == 0  # never sent twice
    assert (day / "c1" / f"{D - 600}.gz").stat().st_mtime_ns == stamp
    (day / "c1" / f"{D - 600}.gz.idx").write_text("rot\n")
    assert export_day(archive, D - DAY, target).sent == 2  # a damaged copy is replaced
    assert target.verify("2026-11-19", by_hand_manifest(archive)) == []


@pytest.fixture
def instance():
    with instance_for_test() as inst:  # a schedule context needs an instance reference
        yield inst


def test_archive_day_asset_fails_then_is_retried(dirs, tmp_path, monkeypatch, instance):
    from hpcperf_assets.offsite import archive_day

    from hpcperf_dagster.definitions import defs
    from hpcperf_dagster.jobs import archive_day_schedule
    from hpcperf_dagster.resources import Paths

    archive = two_days(dirs)
    monkeypatch.setenv("HPCPERF_ARCHIVE_DIR", str(archive))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("HPCPERF_EXPORT_TARGET", str(blocker))

    def run():
        return materialize([archive_day], partition_key="2026-11-19", instance=instance,
                           resources={"paths": Paths()}, raise_on_error=False)

    assert not run().success  # the target cannot take it: the partition fails
    ctx = build_schedule_context(instance=instance, repository_def=defs.get_repository_def(),
                                 scheduled_execution_time=datetime(2026, 11, 21, 3, 15, tzinfo=UTC))
    keys = [r.partition_key for r in archive_day_schedule.evaluate_tick(ctx).run_requests]
    assert "2026-11-19" in keys and "2026-11-20" in keys and "2026-11-21" not in keys
    mount = tmp_path / "mount"
    mount.mkdir()
    monkeypatch.setenv("HPCPERF_EXPORT_TARGET", str(mount))
    first = run()
    assert first.success
    meta = first.asset_materializations_for_node("archive_day")[0].metadata
    assert meta["files_sent"].value == 2 and meta["verified"].value is True
    again = run().asset_materializations_for_node("archive_day")[0].metadata
    assert again["files_sent"].value == 0
    keys = [r.partition_key for r in archive_day_schedule.evaluate_tick(ctx).run_requests]
    assert "2026-11-19" not in keys and "2026-11-20" in keys
