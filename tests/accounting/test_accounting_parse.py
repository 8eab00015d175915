"""Parsing sacct --parsable2 dumps: every quirk of real dumps, values worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from records import HEADER, line

from hpcperfstats.jobs.accounting import (
    COLUMNS,
    FIELDS,
    format_accounting,
    parse_accounting,
    parse_duration,
    parse_gpus,
    parse_req_mem,
    short_host,
)

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "accounting" / "2026-03-18.txt"
GiB = 2**30


def parse(*lines: str, tz: str = "UTC"):
    return parse_accounting("\n".join([HEADER, *lines]) + "\n", "test.txt", tz=tz)


def test_fixture_file_parses_every_job_exactly():
    df, issues = parse_accounting(FIXTURE.read_text(), FIXTURE.name)
    assert issues == []
    assert dict(df.schema) == COLUMNS
    assert df["jobid"].to_list() == [
        "2946877", "2946901_3", "2947000+0", "2947000+1", "2947100", "2947210", "2947333",
        "2947400",
    ]  # fmt: skip
    rows = {r["jobid"]: r for r in df.to_dicts()}

    llm = rows["2946877"]
    assert llm["username"] == "jdoe" and llm["account"] == "TG-ASC23012"
    assert llm["start_time"] == datetime(2026, 3, 18, 8, 12, 3, tzinfo=UTC)
    assert llm["end_time"] == datetime(2026, 3, 18, 21, 40, 55, tzinfo=UTC)
    assert llm["elapsed_s"] == 13 * 3600 + 28 * 60 + 52  # 48532
    assert llm["timelimit_s"] == 172800  # 2-00:00:00
    assert llm["req_mem_bytes"] == 1000 * GiB
    assert llm["ngpus"] == 4  # typed and untyped gres/gpu listed: counted once
    assert llm["hosts"] == ["c571-001"]

    array = rows["2946901_3"]
    assert array["jobid_raw"] == "2946904"
    assert array["state"] == "FAILED" and array["exit_code"] == "1:0"
    assert array["hosts"] == ["c401-001", "c401-002", "c401-003", "c401-010", "c402-001"]
    assert array["req_mem_bytes"] == 5 * 180 * GiB  # per node x 5 nodes
    assert (array["elapsed_s"], array["timelimit_s"]) == (72, 5400)

    het = rows["2947000+0"]
    assert het["jobid_raw"] == "2947000"
    assert het["req_mem_bytes"] == 96 * 4000 * 2**20  # 4000Mc x 96 cpus
    assert het["hosts"] == ["c402-002", "c402-003"]
    assert rows["2947000+1"]["req_mem_bytes"] == 250 * GiB  # 250Gn x 1 node

    cancelled = rows["2947100"]
    assert cancelled["state"] == "CANCELLED"
    assert (cancelled["elapsed_s"], cancelled["timelimit_s"]) == (11730, 86400)
    assert cancelled["hosts"] == ["c560-010", "c560-012"]

    timeout = rows["2947210"]
    assert (timeout["elapsed_s"], timeout["timelimit_s"]) == (1814, 1800)
    assert timeout["req_mem_bytes"] == 0 and timeout["qos"] == "debug"

    running = rows["2947333"]
    assert running["end_time"] is None and running["timelimit_s"] is None
    assert running["state"] == "RUNNING"

    pending = rows["2947400"]
    assert pending["start_time"] is None and pending["end_time"] is None
    assert pending["hosts"] == [] and pending["nodelist"] == "None assigned"
    assert (pending["ngpus"], pending["ncpus"], pending["nnodes"]) == (0, 0, 16)
    assert pending["timelimit_s"] is None  # Partition_Limit
    assert pending["req_mem_bytes"] == 16 * 180 * GiB


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2-00:00:00", 172800),
        ("01:30:00", 5400),
        ("30:00", 1800),
        ("1-12", 129600),
        ("1-02:03", 93780),
        ("00:00:07.250", 7),
        ("UNLIMITED", None),
        ("Partition_Limit", None),
        ("", None),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_bad_duration_raises():
    with pytest.raises(ValueError):
        parse_duration("1:2:3:4")


@pytest.mark.parametrize(
    ("text", "nnodes", "ncpus", "expected"),
    [
        ("64G", 2, 32, 2 * 64 * GiB),  # no suffix: per node
        ("64Gn", 3, 48, 3 * 64 * GiB),
        ("4000Mc", 1, 8, 8 * 4000 * 1024 * 1024),
        ("1T", 1, 16, 2**40),
        ("512K", 1, 16, 524288),
        ("2000", 1, 16, 2000 * 2**20),  # Slurm's default unit is MiB
        ("1.5G", 2, 16, 3 * GiB),
        ("", 1, 16, None),
    ],
)
def test_req_mem(text, nnodes, ncpus, expected):
    assert parse_req_mem(text, nnodes, ncpus) == expected


@pytest.mark.parametrize(
    ("tres", "gpus"),
    [
        ("billing=16,cpu=16,gres/gpu=4,mem=64G,node=1", 4),
        ("cpu=16,gres/gpu:a100=2,node=1", 2),
        ("cpu=16,gres/gpu:a100=2,gres/gpu:v100=1", 3),
        ("cpu=16,gres/gpu:a100=2,gres/gpu=2", 2),
        ("cpu=16,gres/gpumem=80G,gres/gpuutil=50,mem=1G", 0),
        ("", 0),
    ],
)
def test_gpus(tres, gpus):
    assert parse_gpus(tres) == gpus


def test_short_host():
    assert short_host("c571-001.stampede3.tacc.utexas.edu") == "c571-001"
    assert short_host(" C571-001 ") == "c571-001"


def test_fqdn_nodelist_is_expanded_in_order_and_shortened():
    df, issues = parse(line(NodeList="c401-[001-003,010],c402-001.stampede3.tacc.utexas.edu",
                            NNodes="5"))
    assert issues == []
    assert df["hosts"].to_list() == [
        ["c401-001", "c401-002", "c401-003", "c401-010", "c402-001"]
    ]
    df, _ = parse(line(NodeList="c571-001.stampede3.tacc.utexas.edu"))
    assert df["hosts"].to_list() == [["c571-001"]]


def test_times_without_offset_use_given_zone_and_nulls():
    df, issues = parse(
        line(Submit="2026-11-20T13:05:00", Start="None", End=""), tz="America/Chicago"
    )
    assert issues == []
    row = df.row(0, named=True)
    assert row["submit_time"] == datetime(2026, 11, 20, 19, 5, tzinfo=UTC)  # CST = UTC-6
    assert row["start_time"] is None and row["end_time"] is None
    df, _ = parse(line(Start="2026-11-20T07:05:00-0600"))
    assert df["start_time"][0] == datetime(2026, 11, 20, 13, 5, tzinfo=UTC)


def test_steps_are_skipped():
    df, issues = parse(
        line(JobID="600", JobIDRaw="600"),
        line(JobID="600.batch", JobIDRaw="600.batch"),
        line(JobID="600.extern", JobIDRaw="600.extern"),
        line(JobID="600.0", JobIDRaw="600.0"),
        line(JobID="601_4.batch", JobIDRaw="605.batch"),
    )
    assert issues == []
    assert df["jobid"].to_list() == ["600"]


def test_malformed_lines_become_issues_and_the_rest_loads():
    # too few fields (an extra '|' goes to SubmitLine, the last field)
    bad_fields = "|".join(line(JobID="701").split("|")[:-2])
    df, issues = parse(
        line(JobID="700"),
        bad_fields,
        line(JobID="702", Start="2026-13-45T00:00:00+0000"),
        line(JobID="703", NNodes="two"),
        line(JobID="704", NodeList="c401-[001-003"),
        line(JobID="705", Elapsed="soon"),
        line(JobID="706", ReqMem="lots"),
        line(JobID="abc"),
        line(JobID="707"),
    )
    # a bad key field (JobID, Start) sets the line aside; any other loads as NULL
    assert df["jobid"].to_list() == ["700", "703", "704", "705", "706", "707"]
    assert [i.line for i in issues] == [3, 4, 5, 5, 6, 7, 8, 9]  # header is line 1
    assert all(i.source == "test.txt" for i in issues)
    assert issues[0].text == bad_fields
    assert issues[0].reason == f"expected {len(FIELDS)} fields, got {len(FIELDS) - 2}; set aside"
    assert [(i.field, i.action) for i in issues[1:]] == [
        ("Start", "set aside"), ("NNodes", "loaded with NULL"),
        ("ReqMem", "loaded with NULL"),  # 64G per node, and the node count is bad
        ("NodeList", "loaded with NULL"), ("Elapsed", "loaded with NULL"),
        ("ReqMem", "loaded with NULL"), ("JobID", "set aside")]
    assert issues[2].reason == "NNodes: not a plain decimal integer: 'two'; loaded with NNodes NULL"
    assert "node list" in issues[4].reason
    rows = {r["jobid"]: r for r in df.to_dicts()}
    assert rows["703"]["nnodes"] is None and rows["703"]["req_mem_bytes"] is None
    assert rows["703"]["ncpus"] == 16
    assert rows["704"]["nodelist"] is None and rows["704"]["hosts"] == []
    assert rows["705"]["elapsed_s"] is None and rows["705"]["timelimit_s"] == 7200
    assert rows["706"]["req_mem_bytes"] is None


def test_duplicate_jobid_last_line_wins():
    df, issues = parse(
        line(JobID="800", State="RUNNING", End="Unknown"),
        line(JobID="801"),
        line(JobID="800", State="COMPLETED"),
    )
    assert issues == []
    assert df["jobid"].to_list() == ["801", "800"]
    assert df.filter(pl.col("jobid") == "800")["state"].to_list() == ["COMPLETED"]


def test_header_lacking_fields_is_an_issue():
    df, issues = parse_accounting("JobID|User\n1|a\n", "h.txt")
    assert df.is_empty() and dict(df.schema) == COLUMNS
    assert len(issues) == 1 and issues[0].line == 1


def test_reordered_header_with_extra_field_still_loads():
    fields = ["Extra", *reversed(FIELDS)]
    values = line(JobID="900").split("|")
    text = "|".join(fields) + "\n" + "|".join(["x", *reversed(values)]) + "\n"
    df, issues = parse_accounting(text, "r.txt")
    assert issues == []
    assert df["jobid"].to_list() == ["900"] and df["ncpus"].to_list() == [16]


def test_empty_text_gives_empty_frame():
    df, issues = parse_accounting("", "e.txt")
    assert issues == [] and df.is_empty() and dict(df.schema) == COLUMNS


def test_format_accounting_round_trips():
    start = datetime(2026, 11, 20, 12, 5, tzinfo=UTC)
    text = format_accounting(
        [
            {
                "JobID": "42", "JobIDRaw": "42", "User": "ann", "Account": "A", "Partition": "p",
                "QOS": "normal", "JobName": "run", "State": "RUNNING", "ExitCode": "0:0",
                "Submit": start, "Start": start, "End": None, "Elapsed": "01:00:00",
                "Timelimit": "UNLIMITED", "NNodes": 3, "NCPUS": 48, "ReqMem": "60G",
                "AllocTRES": "cpu=48,node=3",
                "NodeList": ["c001-001", "c001-002", "c001-004"],
            }
        ]
    )  # fmt: skip
    lines = text.splitlines()
    assert lines[0] == HEADER
    fields = lines[1].split("|")
    assert fields[FIELDS.index("Start")] == "2026-11-20T12:05:00+0000"
    assert fields[FIELDS.index("End")] == "Unknown"
    assert fields[FIELDS.index("NodeList")] == "c001-[001-002,004]"
    df, issues = parse_accounting(text, "f.txt")
    assert issues == []
    row = df.row(0, named=True)
    assert row["start_time"] == start and row["end_time"] is None
    assert row["hosts"] == ["c001-001", "c001-002", "c001-004"]
    assert row["req_mem_bytes"] == 180 * GiB


def test_format_rejects_separator_in_value():
    with pytest.raises(ValueError):
        format_accounting([{"JobName": "a|b"}])


def test_item4_submit_line_and_requests_parse_and_old_dumps_still_do():
    """SubmitLine (last: it may hold '|'), ReqCPUS, ReqTRES for advice in the job's form."""
    jobs, issues = parse(line(ReqCPUS="4", ReqTRES="billing=4,cpu=4,mem=8G,node=1",
                              SubmitLine="sbatch -c 4 --wrap=a|b"))
    assert issues == []
    row = jobs.row(0, named=True)
    assert (row["req_cpus"], row["req_tres"], row["submit_line"]) == (
        4, "billing=4,cpu=4,mem=8G,node=1", "sbatch -c 4 --wrap=a|b")
    old = [f for f in FIELDS if f not in ("ReqCPUS", "ReqTRES", "SubmitLine")]
    values = line().split("|")[:len(old)]
    jobs, issues = parse_accounting("|".join(old) + "\n" + "|".join(values) + "\n", "old.txt")
    assert issues == [] and jobs.height == 1
    assert jobs.row(0, named=True)["submit_line"] is None
