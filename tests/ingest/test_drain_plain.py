"""The drain's fast path (``hpcperfstats.ingest.plain``) decides exactly as the reference.

Property (Hypothesis): any sequence of messages, hostile ones included (NUL
bytes, bad epochs, wrong or malformed hosts, huge lines and values, invalid
UTF-8, tabs, ``\\r``, tier marks, repeated devices, headers in mid-message,
bad schemas), stored by a ``MessageStore`` with the fast path and by one
with the reference reader alone, gives the same archive files byte for byte
(indexes included), the same quarantine reasons in the same order and the
same counts. And the monitor's own messages do take the fast path, so the
comparison is not vacuous.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hpcperfstats.ingest.drain import MessageStore, epoch_window
from hpcperfstats.ingest.plain import PlainReader

from .conftest import demo_bodies
from .hostile import SCHEMA, E, header, sample

RECEIVED = float(E + 600)
MAX_BYTES = 3 << 20
HOSTS = ["p1", "p2"]

#: lines a message is made of: good ones, and each kind of hostile one
LINES = [
    "$tacc_stats 2.3.5", "$hostname p1", "$hostname p2", "$hostname P1.example.org",
    "$hostname ../etc", "$hostname", "$hostname  p1 ", "$uptime 5000", "$uptime x", "$",
    *SCHEMA.splitlines(), "!cpu user,E user,E", "!cpu", "!disk r,E,W=99", "@cpu 0 1",
    "@fast", "@full", "@ fast ", "@", "# a comment", "", "   ", "\t",
    f"{E + 15} - p1", f"{E + 30} 42 p1", f"{E + 15}.25 - p2", f"{E + 45}  -  p2  ",
    f"{E + 60} - p1 extra", f"{E + 75} {'j' * 129} p1", f"{E + 90} - {'h' * 254}",
    "1e20 - p1", "946684799 - p1", f"{E + 3 * 86400} - p1", "٨٠٥١٢٣٣ - p1",
    f"{E + 15}. - p1", f"{E + 105} - p_1", f"{E + 120} - p1.example.org",
    "cpu 0 1000 500 9000", "cpu 1 1000 500 9000", "cpu 0  1 2 3 ", "cpu 0 1 2",
    "cpu 0 1 2 3 4", "cpu 0 1e5 2 3", "cpu 0 +1 2 3", "cpu 0 .5 2 3", "cpu 0 -1.5 2 3",
    "cpu 0 1 2 " + "9" * 299, "cpu 0 1 2 " + "9" * 300, "cpu 0 1 2 " + "9" * 400,
    "mem 0 2000 8000", "mem 0 2000", "disk 0 1 2", " cpu 2 1 2 3", "cpu\t3 1 2 3",
    "%seq 1", "%begin 42", "%", "cpu 4 1 2 3\r", "cpu 5 1\x002 3", "cpu 6 1 2 3\x0c",
    "procexe 20001//usr/bin/python3.11 0 0", "cpu ü 1 2 3", "mem 1 2000 8000 # x",
]
EPOCHS = ["946684799", "946684800", str(E + 600 + 86400), str(E + 601 + 86400), "1e20",
          "99999999999999", "253402300800", "0" * 400 + "1", str(E) + ".5", "1" * 330]
#: a field of a line replaced by one of these
FIELDS = ["946684799", str(E + 3 * 86400), str(E + 86400), "1e20", "9" * 299, "9" * 308,
          "9" * 309, "9" * 4400,
          "-1.5", "+1", "0", "1", "x", "", "p1", "p2", "P1", "p_1", "j" * 129, "cpu", "mem",
          "%x", "#", "$x", "@fast", "1.", "٨"]


@st.composite
def bodies(draw) -> bytes:
    """A message as the monitor writes it (a header and a sample, or samples) with a
    line or two replaced, inserted, repeated, dropped, made huge (over MAX_LINE)
    or given a bad field or epoch, or lines drawn from LINES alone; then perhaps
    one byte changed (invalid UTF-8, NUL...) or the end cut off."""
    host = draw(st.sampled_from(HOSTS))
    t = E + 15 * draw(st.integers(1, 200))
    kind = draw(st.sampled_from(["header", "sample", "sample", "lines"]))
    if kind == "header":
        lines = (header(host) + sample(t, host)).splitlines()
    elif kind == "sample":
        lines = (sample(t, host, draw(st.integers(0, 3)))
                 + sample(t + 15, host) * draw(st.integers(0, 1))).splitlines()
    else:
        lines = draw(st.lists(st.sampled_from(LINES), max_size=12))
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(lines)))
        op = draw(st.sampled_from(["replace", "insert", "repeat", "drop", "field", "field",
                                   "epoch", "huge"]))
        if op == "epoch":  # the first record line's epoch
            first = next((k for k, ln in enumerate(lines) if ln[:1].isdigit()), None)
            if first is not None:
                lines[first] = draw(st.sampled_from(EPOCHS)) + " " + lines[first].split(" ", 1)[-1]
        elif op == "huge":
            lines.insert(at, draw(st.sampled_from("#%")) + "1" * (1 << 20))
        elif op == "insert" or at == len(lines):
            lines.insert(at, draw(st.sampled_from(LINES)))
        elif op == "field" and lines[at].split():  # one field of a line changed
            fields = lines[at].split(" ")
            k = draw(st.integers(0, len(fields) - 1))
            fields[k] = draw(st.sampled_from(FIELDS))
            lines[at] = " ".join(fields)
        elif op == "replace":
            lines[at] = draw(st.sampled_from(LINES))
        elif op == "repeat":
            lines.insert(at, lines[at])
        else:
            del lines[at]
    body = "".join(line + "\n" for line in lines).encode()
    if draw(st.booleans()):
        body = body[:-1] if body.endswith(b"\n") else body  # no final newline
    change = draw(st.sampled_from(["none", "none", "none", "byte", "byte", "cut"]))
    if change == "byte" and body:
        at = draw(st.integers(0, len(body) - 1))
        byte = draw(st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\t", b"\r", b" ", b"\n",
                                     b"x", b"9", b"0", b"-", b".", b"$", b"@", b"%", b"#"]))
        body = body[:at] + byte + body[at + 1:]
    elif change == "cut" and body:
        body = body[:draw(st.integers(0, len(body)))]
    return body


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _outcome(messages: list[bytes], plain: bool, tmp: Path) -> tuple:
    store = MessageStore(tmp / "archive", tmp / "quarantine", MAX_BYTES, plain=plain)
    decisions = []
    for n, body in enumerate(messages):
        before = store.result.quarantined
        store.store(body, f"test:{n}", RECEIVED)
        decisions.append(store.result.rejected[-1][0] if store.result.quarantined > before
                         else "stored")
        if n % 3 == 2:
            store.sync()
    store.sync()
    res = store.result
    counts = (res.messages, res.samples, res.quarantined, res.duplicates, res.headers_only,
              sorted(res.hosts), sorted(res.hours), res.reasons)
    return decisions, counts, _files(tmp / "archive")


#: every example starts with a header message per host, so later samples continue a file
OPENING = [(header(h) + sample(E, h)).encode() for h in HOSTS]


@given(messages=st.lists(bodies(), min_size=1, max_size=6))
def test_fast_path_stores_and_quarantines_exactly_as_the_reference(messages):
    messages = OPENING + messages
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        fast = _outcome(messages, True, Path(a))
        reference = _outcome(messages, False, Path(b))
    assert fast == reference


def test_the_monitors_messages_take_the_fast_path():
    """Demo messages (a header message per host, then samples) are all decided by
    the fast path: 3 hosts x 1 hour = 36 messages, 3 of them opening files."""
    messages = demo_bodies(nodes=3, hours=1)
    with tempfile.TemporaryDirectory() as tmp:
        store = MessageStore(Path(tmp) / "archive", Path(tmp) / "quarantine", MAX_BYTES)
        taken = 0
        for n, body in enumerate(messages):
            window = epoch_window(_first_epoch(body) + 60, store.settings)
            taken += store.plain.parts(body, store.writer.current_header, window) is not None
            store.store(body, f"test:{n}", window.received)
        store.sync()
    assert (taken, len(messages), store.result.quarantined) == (36, 36, 0)
    assert store.result.samples == 36 and store.result.headers_only == 0


def _first_epoch(body: bytes) -> float:
    return next(float(line.split()[0]) for line in body.split(b"\n") if line[:1].isdigit())


def test_plain_reader_leaves_every_doubt_to_the_reference():
    """Hand-picked cases the fast path must not take (it returns None)."""
    reader = PlainReader(lambda name: name.lower().split(".")[0])
    window = (RECEIVED, 946684800.0, 86400.0)
    good = (header("p1") + sample(E + 15, "p1")).encode()
    assert reader.parts(good, lambda host: None, window)[0] == "p1"
    known = reader.parts(good, lambda host: None, window)[1][0].header
    for body in [
        good.replace(b"cpu 1", b"cpu 0"),  # the same device twice in one sample
        good.replace(b"1000 500", b"1000\t500"),  # a tab
        good.replace(b"\n", b"\r\n"),
        good + b"\x00",
        good.replace(b"$uptime 5000", b"$uptime x"),
        good + header("p1").encode() + sample(E + 30, "p1").encode(),  # a header mid-message
        good.replace(b"!mem", b"@fast\n!mem"),
        good.replace(str(E + 15).encode(), b"946684799"),
        good.replace(b"- p1\n", b"- p2\n"),  # a sample of another host
    ]:
        assert reader.parts(body, lambda host: None, window) is None, body
    cont = sample(E + 30, "p1").encode()
    assert reader.parts(cont, lambda host: None, window) is None  # nothing to continue
    got = reader.parts(cont, lambda host: known, window)
    assert got is not None and got[1][0].times == (E + 30.0,) and not got[1][0].opens
    assert got[1][0].spans == ((0, len(cont)),)
