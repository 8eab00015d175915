"""The Dagster path of an archive import: a job with the directory as run config."""

from __future__ import annotations

from .conftest import demo_bodies


def test_import_job_copies_indexes_and_reports_hours(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HPCPERF_HOME", str(home))
    from hpcperf_dagster.definitions import defs

    bodies = demo_bodies(nodes=2, hours=2)
    old = tmp_path / "old"
    for host in ("c001-001", "c001-002"):
        mine = [b.decode() for b in bodies if f" {host}\n" in b.decode()]
        (old / f"{host}.cluster.org").mkdir(parents=True)
        (old / f"{host}.cluster.org" / "1795176000").write_text("".join(mine))
    result = defs.resolve_job_def("import_archive_job").execute_in_process(
        run_config={"ops": {"import_archive_op": {"config": {"directory": str(old)}}}})
    assert result.success
    assert result.output_for_node("import_archive_op") == 2  # hours 12:00 and 13:00
    idx = (home / "archive" / "c001-001" / "1795176000.idx").read_text().splitlines()
    assert len(idx) == 24
    # the hours are raw_stats_archive partitions in Dagster: host_data follows them
    assert [(e.asset_key.to_user_string(), e.partition)
            for e in result.get_asset_materialization_events()] == [
        ("raw_stats_archive", "2026-11-20-12:00"), ("raw_stats_archive", "2026-11-20-13:00")]
