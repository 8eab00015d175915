"""Dates and times from URLs (pure logic of ``dashboards.layout.parse_time``)."""

from datetime import UTC, datetime

from dashboards.layout import parse_time


def test_a_to_date_is_the_whole_day_and_a_time_is_kept():
    # the applications page's "to" date: a job ending at 23:30 on that day is in
    assert parse_time("2026-03-31", to_date=True) == datetime(2026, 4, 1, tzinfo=UTC)
    assert parse_time("2026-03-31") == datetime(2026, 3, 31, tzinfo=UTC)
    # a time is meant as given, start or end; other zones become UTC
    assert parse_time("2026-03-31T12:00", to_date=True) == datetime(2026, 3, 31, 12, tzinfo=UTC)
    assert parse_time("2026-03-31T12:00+02:00") == datetime(2026, 3, 31, 10, tzinfo=UTC)
    assert parse_time("2026-03-31 12:00Z") == datetime(2026, 3, 31, 12, tzinfo=UTC)


def test_bad_or_missing_values_are_none():
    for value in (None, "", "yesterday", "2026-13-01", "2026-03-31\x00", "=cmd|' /C calc'!A0"):
        assert parse_time(value) is None
        assert parse_time(value, to_date=True) is None
