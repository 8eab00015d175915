r"""docs/raw-format.md cannot rot: its examples are parsed and checked here.

Every fenced block marked ``raw-stats`` is read with ``read_raw`` and must
match the ``raw-stats-result`` block right after it. Result blocks are YAML:
``headers``/``samples`` are a count or a list of expected objects, ``issues``
the exact ``"<line>: <reason>"`` list. In expected objects a mapping lists only
the keys it checks, a list must match exactly, numbers compare to 1e-9.
Info-string words: ``name=``, ``continues=<name>`` (read with that example's
header), ``first_line=<n>``, ``fixture=<file>`` (lines must be verbatim there).
In an example ``\0``, ``\f``, ``\r`` and ``\uXXXX`` stand for that one character.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hpcperf_monitor.rawformat import RawStats, boot_time, read_raw, split_lines, write_raw

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "raw-format.md"
FIXTURES = REPO / "tests" / "fixtures" / "real"
FENCE = re.compile(r"^```([\w-]+)?([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
ESCAPE = re.compile(r"\\(0|f|r|u[0-9a-f]{4})")
ESCAPED = {"0": "\0", "f": "\x0c", "r": "\r"}


def _unescape(body: str) -> str:
    """The doc writes characters it cannot show (NUL, form feed...) as escapes."""
    return ESCAPE.sub(lambda m: ESCAPED.get(m[1]) or chr(int(m[1][1:], 16)), body)


@dataclass
class Example:
    index: int
    text: str
    attrs: dict[str, str]
    expect: dict

    @property
    def id(self) -> str:
        return self.attrs.get("name") or self.attrs.get("fixture") or f"example{self.index}"


def _examples() -> list[Example]:
    blocks = [(m[1] or "", m[2], m[3]) for m in FENCE.finditer(DOC.read_text())]
    out: list[Example] = []
    for i, (lang, info, body) in enumerate(blocks):
        if lang != "raw-stats":
            continue
        following = blocks[i + 1] if i + 1 < len(blocks) else ("", "", "")
        assert following[0] == "raw-stats-result", f"raw-stats block {len(out)} has no result"
        attrs = dict(word.split("=", 1) for word in info.split())
        text = _unescape(body)
        out.append(Example(len(out), text, attrs, yaml.safe_load(following[2])))
    return out


EXAMPLES = _examples()
BY_NAME = {ex.attrs["name"]: ex for ex in EXAMPLES if "name" in ex.attrs}


def _read(ex: Example) -> RawStats:
    header = None
    if "continues" in ex.attrs:
        previous = _read(BY_NAME[ex.attrs["continues"]])
        header = previous.samples[-1].header
    first_line = int(ex.attrs.get("first_line", 1))
    return read_raw(ex.text, source="doc", header=header, first_line=first_line)


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _matches(actual, expected, where: str) -> None:
    actual = _plain(actual)
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not a mapping"
        for key, value in expected.items():
            assert str(key) in actual, f"{where}: no {key!r} in {sorted(actual)}"
            _matches(actual[str(key)], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (
            f"{where}: {actual!r} != {expected!r}"
        )
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _matches(a, e, f"{where}[{i}]")
    elif isinstance(expected, float) or (
        isinstance(expected, int) and isinstance(actual, float) and not isinstance(expected, bool)
    ):
        assert math.isclose(actual, expected, rel_tol=0, abs_tol=1e-9), f"{where}: {actual!r}"
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def _header_view(header) -> dict:
    return {
        "properties": header.properties,
        "devices": header.devices,
        "hostname": header.hostname,
        "boot_time": boot_time(header),
        "events": {
            type_: {
                e.name: {f: getattr(e, f) for f in e.__dataclass_fields__} for e in schema.events
            }
            for type_, schema in header.schemas.items()
        },
    }


def _sample_view(sample) -> dict:
    fields = ("time", "time_text", "jobid", "job", "host", "tier", "marks", "seq", "rows")
    return {f: getattr(sample, f) for f in fields}


def _check_items(actual: list, expected, view, where: str) -> None:
    if isinstance(expected, int):
        assert len(actual) == expected, f"{where}: {len(actual)} != {expected}"
        return
    assert len(actual) == len(expected), f"{where}: {len(actual)} != {len(expected)}"
    for i, (item, exp) in enumerate(zip(actual, expected, strict=True)):
        _matches(view(item), exp, f"{where}[{i}]")


def test_the_doc_has_examples_of_every_kind():
    assert len(EXAMPLES) >= 7
    texts = "\n".join(ex.text for ex in EXAMPLES)
    for line_start in ("$", "!", "@fast", "@full", "@cpu", "%begin", "%end", "%seq", "#"):
        assert f"\n{line_start}" in f"\n{texts}", f"no example line starts with {line_start}"
    assert any("fixture" in ex.attrs for ex in EXAMPLES)
    assert any("continues" in ex.attrs for ex in EXAMPLES)


@pytest.mark.parametrize("ex", EXAMPLES, ids=lambda ex: ex.id)
def test_example_reads_as_the_doc_says(ex: Example):
    raw = _read(ex)
    expect = ex.expect
    issues = [f"{i.line}: {i.reason}" for i in raw.issues]
    assert issues == expect.get("issues", []), "issues differ from the doc"
    assert all(i.source == "doc" and "\n" not in i.text for i in raw.issues)
    _check_items(raw.headers, expect["headers"], _header_view, "headers")
    _check_items(raw.samples, expect["samples"], _sample_view, "samples")


@pytest.mark.parametrize("ex", [e for e in EXAMPLES if "fixture" in e.attrs], ids=lambda e: e.id)
def test_fixture_excerpt_is_verbatim(ex: Example):
    path = FIXTURES / ex.attrs["fixture"]
    lines = set(split_lines(path.read_text()))
    missing = [line for line in split_lines(ex.text) if line.strip() and line not in lines]
    assert missing == []


def test_whole_stampede3_fixture_reads_as_the_doc_says(stampede_text):
    raw = read_raw(stampede_text, source="stampede3-c571-001.raw")
    assert raw.issues == []
    assert len(raw.headers) == 1
    assert len(raw.samples) == 17
    assert {s.jobid for s in raw.samples} == {"2946877"}
    gaps = [b.time - a.time for a, b in zip(raw.samples, raw.samples[1:], strict=False)]
    assert all(200 < gap < 310 for gap in gaps)
    assert len(raw.headers[0].schemas) == 11
    assert sum(len(devs) for devs in raw.samples[0].rows.values()) == 202


def _reason_pattern(cell: str) -> re.Pattern:
    text = cell.strip().strip("`")
    parts = re.split(r"<[^>]+>", text)
    return re.compile("^" + ".+".join(re.escape(p) for p in parts) + "$")


def test_bad_line_table_matches_the_reader():
    """Each reason in the table occurs in an example, and every issue is in the table."""
    doc = DOC.read_text()
    section = doc.split("## Bad lines", 1)[1].split("```", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| ")]
    patterns = [_reason_pattern(row[2].split("` (")[0]) for row in rows[2:]]  # past the head
    assert len(patterns) >= 15
    reasons = [i.reason for ex in EXAMPLES for i in _read(ex).issues]
    for pattern in patterns:
        assert any(pattern.match(r) for r in reasons), f"no example shows {pattern.pattern}"
    for reason in reasons:
        assert any(p.match(reason) for p in patterns), f"{reason!r} is not in the table"


CLEAN = [e for e in EXAMPLES if not e.expect.get("issues")]


@pytest.mark.parametrize("ex", CLEAN, ids=lambda e: e.id)
def test_clean_example_survives_a_rewrite(ex: Example):
    raw = _read(ex)
    again = read_raw(write_raw(raw))  # write_raw repeats the header it continued
    assert again.issues == []
    assert [_sample_view(s) for s in again.samples] == [_sample_view(s) for s in raw.samples]
