"""Issue 12 item 5: one bad accounting value never fails the day.

Each bad line is reported with its line number and field; a bad non-key
field loads as NULL, a bad JobID/JobIDRaw/Start/End sets the line aside, a
header naming a column twice rejects the file. The parser is checked by
hand-worked cases and by Hypothesis; the asset on the real test database.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import polars as pl
import psycopg
import pytest
from dagster import DagsterInstance, materialize
from hpcperf_assets.jobs import slurm_jobs
from hypothesis import example, given
from hypothesis import strategies as st
from records import HEADER
from records import line as base_line

from hpcperf_dagster.resources import Database, Paths
from hpcperfstats.jobs.accounting import COLUMNS, FIELDS, SPEC, issues_by_line, parse_accounting

GiB = 2**30


def line(**over: str) -> str:
    """A good record (1 node, 16 CPUs, 64G per node, 2 GPUs), fields overridden."""
    return base_line(**{"AllocTRES": "billing=16,cpu=16,gres/gpu=2,mem=64G,node=1", **over})


def parse(*lines: str):
    return parse_accounting("\n".join([HEADER, *lines]) + "\n", "day.txt")


# (overrides, field reported, action, column checked, value loaded)
CASES = [
    ({"NCPUS": "2147483648"}, "NCPUS", "loaded with NULL", "ncpus", None),
    ({"NNodes": "2147483648"}, "NNodes", "loaded with NULL", "nnodes", None),
    ({"NCPUS": "99999999999999999999999"}, "NCPUS", "loaded with NULL", "ncpus", None),
    ({"ReqMem": "9999999999999P"}, "ReqMem", "loaded with NULL", "req_mem_bytes", None),
    ({"ReqMem": "1" + "0" * 400 + "G"}, "ReqMem", "loaded with NULL", "req_mem_bytes", None),
    ({"JobName": "a\x00b"}, "JobName", "loaded with NULL", "jobname", None),
    ({"User": "u\x00"}, "User", "loaded with NULL", "username", None),
    ({"AllocTRES": "cpu=16,gres/gpu=x"}, "AllocTRES", "loaded with NULL", "ngpus", None),
    ({"AllocTRES": "cpu=16,gres/gpu:a100=٤"}, "AllocTRES", "loaded with NULL", "ngpus", None),
    ({"Elapsed": "99999999999999999-00:00:00"}, "Elapsed", "loaded with NULL", "elapsed_s",
     None),
    ({"Timelimit": "soon"}, "Timelimit", "loaded with NULL", "timelimit_s", None),
    ({"Submit": "2026-02-30T00:00:00+0000"}, "Submit", "loaded with NULL", "submit_time", None),
    ({"NodeList": "c[1-99999],d[1-99999]"}, "NodeList", "loaded with NULL", "nodelist", None),
    ({"NodeList": "c001-[001"}, "NodeList", "loaded with NULL", "hosts", []),
    ({"NNodes": "٣"}, "NNodes", "loaded with NULL", "nnodes", None),
    ({"NNodes": "3", "NodeList": "c001-[001-002]"}, "NNodes", "loaded as given", "nnodes", 3),
    ({"End": "2026-11-20T12:00:00+0000"}, "End", "loaded as given", "elapsed_s", 3600),
    ({"JobID": "12a"}, "JobID", "set aside", None, None),
    ({"JobID": "٥٠٠"}, "JobID", "set aside", None, None),
    ({"JobIDRaw": "500x"}, "JobIDRaw", "set aside", None, None),
    ({"Start": "2026-13-45T00:00:00+0000"}, "Start", "set aside", None, None),
    ({"Start": "٢٠٢٦-11-20T12:10:00+0000"}, "Start", "set aside", None, None),
    ({"End": "yesterday"}, "End", "set aside", None, None),
    ({"End": "2026-11-20T13:10:00\x00"}, "End", "set aside", None, None),
]


@pytest.mark.parametrize(("over", "field", "action", "column", "value"), CASES,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_item5_each_bad_value_is_reported_and_the_rest_loads(over, field, action, column,
                                                             value):
    df, issues = parse(line(JobID="1"), line(**{"JobID": "500", **over}),
                       line(JobID="2"))
    assert [(i.line, i.field, i.action) for i in issues][:1] == [(3, field, action)]
    assert field in issues[0].reason and issues[0].source == "day.txt"
    rows = {r["jobid"]: r for r in df.to_dicts()}
    assert {"1", "2"} <= set(rows)  # the lines around it load
    if action == "set aside":
        assert set(rows) == {"1", "2"}
        return
    bad = rows["500"]
    assert bad[column] == value
    # every other column of the line loaded as in a good line
    good = rows["1"]
    same = {c for c in ("account", "partition", "qos", "state", "start_time") if c != column}
    assert all(bad[c] == good[c] for c in same)


def test_item5_values_that_still_fit_load_exactly():
    df, issues = parse(line(NCPUS="2147483647", ReqMem="8191P", NNodes="1"))
    assert issues == []
    row = df.row(0, named=True)
    assert row["ncpus"] == 2**31 - 1
    assert row["req_mem_bytes"] == 8191 * 2**50  # 9.2e18 < 2^63 - 1


def test_item5_a_count_read_as_null_does_not_make_up_a_memory_total():
    """4000Mc is per CPU: with NCPUS bad, the total is unknown, not 4000 MiB."""
    df, issues = parse(line(ReqMem="4000Mc", NCPUS="lots"))
    assert [(i.field, i.action) for i in issues] == [("NCPUS", "loaded with NULL"),
                                                    ("ReqMem", "loaded with NULL")]
    assert df["req_mem_bytes"].to_list() == [None]
    df, _ = parse(line(ReqMem="4000Mc", NNodes="lots"))  # per CPU: NNodes does not matter
    assert df["req_mem_bytes"].to_list() == [16 * 4000 * 2**20]


def test_item5_header_naming_a_column_twice_rejects_the_file():
    text = HEADER + "|NCPUS\n" + line() + "|16\n"
    df, issues = parse_accounting(text, "dup.txt")
    assert df.is_empty() and dict(df.schema) == COLUMNS
    assert [(i.line, i.action) for i in issues] == [(1, "file rejected")]
    assert "['NCPUS'] more than once" in issues[0].reason


def test_item5_end_before_start_and_nnodes_unlike_nodelist_are_reported():
    df, issues = parse(line(JobID="7", NNodes="4", NodeList="c[1-2]",
                            End="2026-11-20T12:00:00+0000"))
    assert [(i.field, i.action) for i in issues] == [("End", "loaded as given"),
                                                    ("NNodes", "loaded as given")]
    assert "2026-11-20T12:00:00+00:00 is before Start" in issues[0].reason
    assert "4 but NodeList names 2 hosts" in issues[1].reason
    assert df["nnodes"].to_list() == [4] and df["hosts"].to_list() == [["c1", "c2"]]
    (rec,) = issues_by_line(issues)
    assert (rec["line"], rec["fields"], rec["action"]) == (2, "End, NNodes", "loaded as given")
    assert rec["reasons"] == [i.reason for i in issues]


def test_item5_not_utf8_spoils_one_field_and_the_line_is_kept_as_bytes():
    raw = line(JobID="9").encode().replace(b"|job|", b"|j\xffb|")
    data = HEADER.encode() + b"\n" + raw + b"\n" + line(JobID="10").encode() + b"\n"
    df, issues = parse_accounting(data, "b.txt")
    assert df["jobid"].to_list() == ["9", "10"] and df["jobname"].to_list() == [None, "job"]
    assert [(i.line, i.field) for i in issues] == [(2, "JobName")]
    assert issues[0].text.encode("utf-8", "surrogateescape") == raw


def test_item6_accounting_lines_end_only_at_newline():
    """U+2028, NEL and form feed in a job name do not split the line; CRLF dumps load."""
    names = ["a\u2028b", "a\x85b", "a\x0cb", "a\u2029b", "a\x1eb"]
    lines = [line(JobID=str(600 + i), JobName=n) for i, n in enumerate(names)]
    df, issues = parse(*lines)
    assert issues == [] and df["jobname"].to_list() == names
    crlf = "\r\n".join([HEADER, *lines]) + "\r\n"
    df2, issues2 = parse_accounting(crlf, "crlf.txt")
    assert issues2 == [] and df2.equals(df)


# --- Hypothesis: never raises, every line loaded or reported ------------------------------

_KEY_COLUMNS = {f.sacct: f.column for f in SPEC}
fuzz_text = st.text(st.characters(codec="utf-8", exclude_characters="|\n"), max_size=12)
value = st.one_of(
    fuzz_text,
    st.sampled_from(["", "Unknown", "2147483648", "-1", "1e999", "٨", "8_0", "\x00", "\r",
                     "\u2028", "\x85", "99999999999999999999P", "c[1-3]", "None assigned",
                     "gres/gpu=x", "gres/gpu:a=2,gres/gpu=1", "00:00:01", "2026-11-20T12:00:00"]),
)


@st.composite
def dumps(draw) -> tuple[str, list[str]]:
    lines = []
    for k in range(draw(st.integers(1, 6))):
        over = draw(st.dictionaries(st.sampled_from(FIELDS), value, max_size=4))
        rec = line(JobID=str(1000 + k), JobIDRaw=str(1000 + k))
        fields = rec.split("|")
        for name, v in over.items():
            fields[FIELDS.index(name)] = v
        if draw(st.booleans()) and draw(st.booleans()):  # a torn or padded line
            fields = fields[: draw(st.integers(0, len(fields)))] + draw(
                st.lists(fuzz_text, max_size=2))
        lines.append("|".join(fields))
    return HEADER + "\n" + "\n".join(lines) + "\n", lines


_CRLF_BLANK = [line(JobID="1000", JobIDRaw="1000"), "\r"]  # found by Hypothesis


@example(dump=(HEADER + "\n" + "\n".join(_CRLF_BLANK) + "\n", _CRLF_BLANK), as_bytes=False)
@given(dump=dumps(), as_bytes=st.booleans())
def test_item5_fuzzed_dump_never_raises_and_every_line_is_loaded_or_reported(dump, as_bytes):
    text, lines = dump
    df, issues = parse_accounting(text.encode() if as_bytes else text, "fuzz.txt")
    assert dict(df.schema) == COLUMNS
    reported = {i.line for i in issues}
    loaded = set(df["jobid"].to_list())
    for lineno, text_line in enumerate(lines, start=2):
        text_line = text_line.removesuffix("\r")  # then "\n": a CRLF line end
        jobid = text_line.split("|")[0].strip(" \t")
        if lineno in reported or "." in jobid or not text_line.strip(" \t"):
            continue  # reported, a job step, or blank
        assert jobid in loaded, f"line {lineno} neither loaded nor reported: {text_line!r}"
    # a NULL in a column that the good line fills is always explained by an issue
    for row in df.to_dicts():
        nulls = {c for c in ("ncpus", "nnodes", "jobname", "ngpus") if row[c] is None}
        if nulls:
            fields = {i.field for i in issues if i.action == "loaded with NULL"}
            assert {_KEY_COLUMNS[f] for f in fields if f in _KEY_COLUMNS} & nulls or (
                any(c == "" for c in _blank_fields(lines, row["jobid"])))


def _blank_fields(lines: list[str], jobid: str) -> list[str]:
    """Fields of the last line of ``jobid`` (empty ones read as NULL without an issue)."""
    mine = [ln.split("|") for ln in lines if ln.split("|")[0].strip(" \t") == jobid]
    return [f.strip(" \t") for f in mine[-1]] if mine else []


# --- through the real asset --------------------------------------------------------------

DAY = "2026-11-20"


def materialize_day(hpcperf_env: Path, text: str):
    folder = hpcperf_env / "accounting"
    folder.mkdir(exist_ok=True)
    (folder / f"{DAY}.txt").write_bytes(text.encode("utf-8", "surrogateescape"))
    return materialize([slurm_jobs], partition_key=DAY, instance=DagsterInstance.ephemeral(),
                       resources={"db": Database(), "paths": Paths()}, raise_on_error=False)


@pytest.mark.integration
def test_item5_slurm_jobs_loads_the_day_and_lists_each_bad_line(hpcperf_env, pg_url):
    lines = [line(JobID="100"),                                   # 2 good
             line(JobID="101", NCPUS="2147483648"),               # 3 NULL
             line(JobID="102", NNodes="9999999999"),              # 4 NULL
             line(JobID="103", ReqMem="9999999999999P"),          # 5 NULL
             line(JobID="104", JobName="evil\x00name"),           # 6 NULL
             line(JobID="105", AllocTRES="gres/gpu=two"),         # 7 NULL
             line(JobID="106", End="2026-11-20T12:00:00+0000"),   # 8 as given
             line(JobID="107", NNodes="2"),                       # 9 as given
             line(JobID="10x"),                                   # 10 set aside
             line(JobID="109", Start="never"),                    # 11 set aside
             line(JobID="110", JobName="a\u2028b")]               # 12 good
    result = materialize_day(hpcperf_env, "\n".join([HEADER, *lines]) + "\n")
    assert result.success
    with psycopg.connect(pg_url) as conn:
        got = dict(conn.execute("SELECT jobid, row(ncpus, nnodes, req_mem_bytes, jobname, ngpus, "
                                "end_time < start_time)::text FROM job_data").fetchall())
    assert sorted(got) == ["100", "101", "102", "103", "104", "105", "106", "107", "110"]
    assert got["100"] == f"(16,1,{64 * GiB},job,2,f)"
    assert got["101"] == f"(,1,{64 * GiB},job,2,f)"  # 64G per node: NCPUS not needed
    assert got["102"] == "(16,,,job,2,f)"  # 64G per node, node count unknown
    assert got["103"] == "(16,1,,job,2,f)"
    assert got["104"] == f"(16,1,{64 * GiB},,2,f)"
    assert got["105"] == f"(16,1,{64 * GiB},job,,f)"
    assert got["106"].endswith(",t)") and got["107"].startswith("(16,2,")
    mat = result.asset_materializations_for_node("slurm_jobs")[0].metadata
    listed = {r.data["line"]: (r.data["fields"], r.data["action"])
              for r in mat["bad_line_list"].records}
    expected = {3: ("NCPUS", "loaded with NULL"), 4: ("NNodes, ReqMem", "loaded with NULL"),
                5: ("ReqMem", "loaded with NULL"), 6: ("JobName", "loaded with NULL"),
                7: ("AllocTRES", "loaded with NULL"), 8: ("End", "loaded as given"),
                9: ("NNodes", "loaded as given"), 10: ("JobID", "set aside"),
                11: ("Start", "set aside")}
    assert listed == expected and mat["bad_lines"].value == 9
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "accounting_lines_all_loaded" and not check.passed
    meta = check.metadata
    assert (meta["set_aside"].value, meta["loaded_with_null"].value,
            meta["loaded_as_given"].value) == (2, 5, 2)
    assert {r.data["line"] for r in meta["bad_line_list"].records} == set(expected)
    records = [json.loads(p.read_text()) for p in (hpcperf_env / "quarantine").glob("*/*.json")]
    assert sorted(int(r["origin"].rsplit(":", 1)[1]) for r in records) == sorted(expected)
    two = next(r for r in records if r["origin"].endswith(":4"))  # NNodes, then ReqMem
    assert len(two["details"]) == 2 and two["details"][0].startswith("NNodes: 9999999999 is out")
    nul = next(p for p in (hpcperf_env / "quarantine").glob("*/*.raw")
               if b"evil" in p.read_bytes())
    assert nul.read_bytes() == lines[4].encode()  # the line as it was, NUL and all


@pytest.mark.integration
def test_item5_slurm_jobs_rejects_a_header_naming_a_column_twice(hpcperf_env, pg_url):
    result = materialize_day(hpcperf_env, HEADER + "|JobID\n" + line() + "|500\n")
    assert not result.success
    failure = result.failure_data_for_node("slurm_jobs")
    assert "['JobID'] more than once" in str(failure.user_failure_data.description)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM job_data").fetchone() == (0,)
    assert len(list((hpcperf_env / "quarantine").glob("*/*.json"))) == 1


def test_field_table_is_the_one_source_of_fields_and_columns():
    """Adding a dump field is one SPEC line: FIELDS and COLUMNS follow from it."""
    assert FIELDS == tuple(f.sacct for f in SPEC)
    assert list(COLUMNS) == [f.column for f in SPEC] + ["hosts"]
    assert all(set(f.sacct) <= set(string.ascii_letters) for f in SPEC)
    assert pl.DataFrame(schema=COLUMNS).is_empty()
