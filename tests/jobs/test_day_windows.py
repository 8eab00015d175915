"""The job-day loop shared by the metrics and flags builders."""

from datetime import UTC, datetime, timedelta

from hpcperfstats.jobs.store import day_windows


def test_day_windows_cover_the_range_and_stop_at_its_end():
    start = datetime(2026, 3, 19, tzinfo=UTC)
    end = start + timedelta(days=2, hours=6)
    assert list(day_windows(start, end)) == [
        (start, start + timedelta(days=1)),
        (start + timedelta(days=1), start + timedelta(days=2)),
        (start + timedelta(days=2), end),
    ]
    assert list(day_windows(end, end)) == []
