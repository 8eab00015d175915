"""Property (Hypothesis): a drain over any mix of good and bad messages, real RabbitMQ.

Whatever the mix (hostile host names, bad epochs, torn, binary and oversized
bodies, header-only messages, headers in mid-message, samples of a host
with no header yet), the drain never raises and never blocks; every good
sample is archived once and loaded once into host_data; every bad message
is quarantined, once per distinct body, with a reason; nothing is written
outside the archive and quarantine roots (and the hour markers).

One broker for the session (the ``rabbit`` fixture), a fresh queue and
folders per example. Bounded: ``MAX_EXAMPLES`` examples of up to 24
messages (about 2-4 s each on a loaded machine).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcperfstats.archive import quarantine
from hpcperfstats.archive.store import read_index
from hpcperfstats.hostdata.load import build_host_data
from hpcperfstats.ingest.drain import drain_queue, queue_depth

from .conftest import HOUR, START, publish
from .hostile import E, files_under, header, sample

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 12
MAX_BYTES = 4096
#: six hosts, batches of 7: a batch often opens several files (written aside, renamed at sync)
HOSTS = [f"p{i}" for i in range(1, 7)]
HOSTILE = ["/tmp/hpcperf-prop", "..", "...", "a/b", "-p1", "x" * 64, "p_1", "ﬀ"]
BAD_EPOCHS = ["1e20", "1e999", "٨٠٥١٢٣٣", "946684799", "9999999999", "1_795_176_000"]
KINDS = ["header+sample", "sample", "header-only", "header-mid", "hostile", "bad-epoch",
         "torn", "binary", "huge", "duplicate"]


class Plan:
    """Messages in queue order, and what each must become."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.bad: list[bytes] = []
        self.good: set[tuple[str, int]] = set()  # (host, epoch) of every good sample
        self.next = {h: E + 15 for h in HOSTS}
        self.has_header = {h: False for h in HOSTS}
        #: refused only for want of a header: the same body after one would be good
        self.headless: list[bytes] = []

    def epoch(self, host: str) -> int:
        self.next[host] += 15
        return self.next[host]

    def add_good(self, body: str, host: str, epochs: list[int]) -> None:
        self.bodies.append(body.encode())
        self.good.update((host, t) for t in epochs)

    def add_bad(self, body: bytes) -> None:
        self.bodies.append(body)
        self.bad.append(body)

    def add(self, kind: str, host: str, draw) -> None:
        if kind == "header+sample":
            t = self.epoch(host)
            self.add_good(header(host) + sample(t, host), host, [t])
            self.has_header[host] = True
        elif kind == "header-only":
            self.add_good(header(host), host, [])
            self.has_header[host] = True
        elif kind in ("sample", "header-mid"):
            t = self.epoch(host)
            if not self.has_header[host]:  # nothing to continue: quarantined ("no header")
                self.add_bad(sample(t, host).encode())
                self.headless.append(self.bodies[-1])
            elif kind == "sample":
                self.add_good(sample(t, host), host, [t])
            else:
                u = self.epoch(host)
                self.add_good(sample(t, host) + header(host) + sample(u, host), host, [t, u])
        elif kind == "hostile":
            name = draw(st.sampled_from(HOSTILE))
            self.add_bad((header(name) + sample(self.next[host] + 1, name)).encode())
        elif kind == "bad-epoch":
            text = header(host) + sample(draw(st.sampled_from(BAD_EPOCHS)), host)
            self.add_bad(text.encode())
        elif kind == "torn":  # cut inside the first value of the second cpu line
            text = header(host) + sample(self.next[host] + 2, host)
            cut = text.index("\ncpu 1 ") + draw(st.integers(8, 9))
            self.add_bad(text[:cut].encode())
        elif kind == "binary":
            self.add_bad(b"\xff" + draw(st.binary(max_size=64)))
        elif kind == "huge":
            self.add_bad((header(host) + "#" + "x" * MAX_BYTES + "\n").encode())
        elif kind == "duplicate" and self.bodies:  # a redelivery of an earlier message
            body = draw(st.sampled_from(self.bodies))
            if body in self.headless:
                return
            self.bodies.append(body)
            if body in self.bad:
                self.bad.append(body)


@st.composite
def plans(draw) -> Plan:
    plan = Plan()
    for kind in draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=24)):
        plan.add(kind, draw(st.sampled_from(HOSTS)), draw)
    return plan


@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=plans())
def test_drain_property_any_mix_of_good_and_bad_messages(rabbit, pg_url, plan):
    root = Path(tempfile.mkdtemp(prefix="hpcperf-prop-"))
    dirs = {k: root / k for k in ("archive", "quarantine")}
    queue = f"prop{uuid.uuid4().hex[:12]}"
    try:
        publish(rabbit.url, queue, plan.bodies)
        result = drain_queue(rabbit.url, queue, dirs["archive"], dirs["quarantine"],
                             max_messages=len(plan.bodies) + 1, max_seconds=60,
                             max_bytes=MAX_BYTES, batch=7)
        assert result.messages == len(plan.bodies) and queue_depth(rabbit.url, queue) == 0

        # every bad body quarantined, once per distinct body, with a reason; no good one
        records = quarantine.list_records(dirs["quarantine"], limit=10_000)
        assert {r["sha256"] for r in records} == {hashlib.sha256(b).hexdigest()
                                                  for b in plan.bad}
        assert all(r["reason"] for r in records)

        # every good sample archived once
        indexed = [(p.parent.name, e.time) for p in dirs["archive"].glob("*/*")
                   if p.name.isdigit() for e in read_index(p).entries]
        assert sorted(indexed) == sorted(plan.good)

        # no file written aside left behind
        assert [p for p in dirs["archive"].glob("*/.*")] == []
        # nothing outside the roots
        assert all(p.is_relative_to(dirs["archive"]) or p.is_relative_to(dirs["quarantine"])
                   for p in files_under(root))

        # and loaded once into host_data
        with psycopg.connect(pg_url) as conn:
            conn.execute("TRUNCATE host_data")
            load = build_host_data(conn, dirs["archive"], START, START + HOUR, 3600)
            got = conn.execute("SELECT host, extract(epoch FROM time)::bigint FROM host_data "
                               "GROUP BY 1, 2").fetchall()
            dup = conn.execute("SELECT count(*) - count(DISTINCT (host, time, type, device, "
                               "event)) FROM host_data").fetchone()[0]
        assert sorted(got) == sorted(plan.good) and dup == 0
        assert load.samples_unloaded == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)
