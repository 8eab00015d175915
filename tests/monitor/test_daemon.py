"""The daemon as systemd runs it: SIGHUP reload, prolog/epilog requests, outages.

The reload and prolog/epilog tests print instead of publishing
(``--stdout``): what they check is the stream of messages, not the broker.
The outage test stops and restarts a private RabbitMQ node of its own (the
session broker is shared with other tests).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pika
import pytest
from hpcperf_monitor.rawformat import read_raw

HOST = "c401-004.test.example"  # tree4's hostname


def drain(url: str, queue: str) -> list[str]:
    """Every message body waiting in ``queue``, in queue order."""
    out = []
    with pika.BlockingConnection(pika.URLParameters(url)) as conn:
        channel = conn.channel()
        while True:
            method, _props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append(body.decode())


def wait_for(predicate, timeout: float = 20.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    return out, err


def seq_of(state: Path) -> int:
    try:
        return int((state / HOST / "seq").read_text())
    except (OSError, ValueError):
        return 0


def test_sighup_rereads_config_and_resends_header(tmp_path: Path, start_monitor, tree4):
    conf = tmp_path / "monitor.conf"
    conf.write_text("# test config\n[monitor]\ncollectors = cpu,ps\ninterval = 1\n")
    state = tmp_path / "state"
    proc = start_monitor("--stdout", "--root", str(tree4), "--state-dir", str(state),
                         "--config", str(conf))
    assert wait_for(lambda: seq_of(state) >= 2)
    conf.write_text("collectors = cpu,ps,vm\ninterval = 1\n")
    proc.send_signal(signal.SIGHUP)
    before = seq_of(state)
    assert wait_for(lambda: seq_of(state) >= before + 2)
    out, err = stop(proc)
    raw = read_raw(out)
    assert raw.issues == []
    assert len(raw.headers) == 2  # one at start, one after the reload
    assert list(raw.headers[0].schemas) == ["cpu", "ps"]
    assert list(raw.headers[1].schemas) == ["cpu", "ps", "vm"]
    assert [s.seq for s in raw.samples] == list(range(1, len(raw.samples) + 1))
    assert "vm" in raw.samples[-1].rows and "vm" not in raw.samples[0].rows
    assert "reloaded" in err


def test_sighup_bad_value_keeps_old_setting(tmp_path: Path, start_monitor, tree4):
    conf = tmp_path / "monitor.conf"
    conf.write_text("collectors = cpu\ninterval = 1\n")
    state = tmp_path / "state"
    proc = start_monitor("--stdout", "--root", str(tree4), "--state-dir", str(state),
                         "--config", str(conf))
    assert wait_for(lambda: seq_of(state) >= 1)
    conf.write_text("collectors = cpu,nosuch\ninterval = 1\n")
    proc.send_signal(signal.SIGHUP)
    before = seq_of(state)
    assert wait_for(lambda: seq_of(state) >= before + 2)
    out, err = stop(proc)
    raw = read_raw(out)
    assert all(list(h.schemas) == ["cpu"] for h in raw.headers)
    assert len(raw.headers) == 2  # the header is re-sent all the same
    problems = [line for line in err.splitlines() if "nosuch" in line]
    assert len(problems) == 1 and "unknown collector(s) nosuch" in problems[0]


def test_prolog_epilog_marks_through_daemon(tmp_path: Path, start_monitor, run_monitor, tree4):
    state = tmp_path / "state"
    common = ["--root", str(tree4), "--state-dir", str(state), "--collectors", "cpu"]
    proc = start_monitor("--stdout", "--interval", "3600", *common)
    assert wait_for(lambda: seq_of(state) == 1)  # the start-up sample
    # two jobs share the node; an array task whose cgroup is keyed by its own id
    assert run_monitor("--begin", "7001", "--gpus", "0,1", *common).returncode == 0
    # marks tell the jobs running when the daemon takes the sample
    assert wait_for(lambda: seq_of(state) == 2)
    assert run_monitor("--begin", "7000_3", "--cgroup-id", "7002", *common).returncode == 0
    assert wait_for(lambda: seq_of(state) == 3)
    assert run_monitor("--end", "7001", *common).returncode == 0
    assert wait_for(lambda: seq_of(state) == 4)
    out, _ = stop(proc)
    raw = read_raw(out)
    assert raw.issues == [] and len(raw.headers) == 1  # one stream: prolog runs sent nothing
    first, begin1, begin2, end1 = raw.samples
    assert (first.jobid, first.seq) == ("-", 1)
    assert (begin1.jobid, begin1.mark_values("begin"), begin1.seq) == ("7001", ["7001"], 2)
    assert begin1.mark_values("gpus") == ["7001 0,1"]
    assert begin1.mark_values("jobs") == []  # one job: the record line says it all
    assert (begin2.jobid, begin2.mark_values("begin")) == ("7000_3", ["7000_3"])
    # the record line names the newest job; %jobs names both, oldest first
    assert begin2.mark_values("jobs") == ["7001 7000_3"]
    assert (end1.jobid, end1.mark_values("end"), end1.seq) == ("7001", ["7001"], 4)
    assert end1.mark_values("jobs") == ["7001 7000_3"]  # 7001 still ran at its end sample
    assert (state / HOST / "jobs").read_text() == "7000_3\n"  # the daemon forgot 7001
    assert (state / HOST / "jobmap").read_text() == "7002 7000_3\n"
    assert not list((state / HOST / "requests").iterdir())


def test_second_daemon_refuses(tmp_path: Path, start_monitor, run_monitor, tree4):
    common = ["--stdout", "--root", str(tree4), "--state-dir", str(tmp_path),
              "--collectors", "cpu", "--interval", "3600"]
    proc = start_monitor(*common)
    assert wait_for(lambda: (tmp_path / HOST / "daemon.pid").exists())
    second = run_monitor(*common, timeout=20)
    assert second.returncode == 1 and "another daemon" in second.stderr
    stop(proc)


@pytest.fixture
def private_rabbit():
    """A RabbitMQ node of this test's own, in a 0755 dir the rabbitmq user can reach."""
    from hpcperf_demo import rabbitmq

    rabbitmq.ensure_installed()
    base = Path(tempfile.mkdtemp(prefix="hpcperf-monitor-rabbit-"))
    os.chmod(base, 0o755)
    node = rabbitmq.node(base, name=f"hpcperfmon{os.getpid()}")
    node.start()
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.integration
def test_broker_outage_every_sample_once_in_order(
    private_rabbit, tmp_path: Path, tree4, start_monitor
):
    queue = f"outage-{uuid.uuid4().hex[:8]}"
    proc = start_monitor("--amqp-url", private_rabbit.url, "--cluster", queue,
                         "--interval", "1", "--root", str(tree4),
                         "--state-dir", str(tmp_path), "--collectors", "cpu,ps")
    try:
        assert wait_for(lambda: seq_of(tmp_path) >= 2)
        private_rabbit.stop()
        down_at = seq_of(tmp_path)
        assert wait_for(lambda: seq_of(tmp_path) >= down_at + 3)  # sampling goes on
        spool = tmp_path / HOST / "spool"
        assert len(list(spool.glob("*.msg"))) >= 2
        private_rabbit.start()
        up_at = seq_of(tmp_path)
        assert wait_for(lambda: seq_of(tmp_path) >= up_at + 2)
        assert wait_for(lambda: not list(spool.glob("*.msg")), timeout=10)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "guest:guest" not in err
    bodies = drain(private_rabbit.url, queue)
    raw = read_raw("".join(bodies))
    assert raw.issues == []
    assert [s.seq for s in raw.samples] == list(range(1, seq_of(tmp_path) + 1))
    times = [s.time for s in raw.samples]
    assert times == sorted(times)
    assert bodies[0].startswith("$")


def test_item11_daemon_says_once_which_slurm_settings_give_job_cgroups(
        tmp_path: Path, start_monitor, tree4):
    """A node with cgroups but no Slurm job cgroups (proctrack/linuxproc): the
    daemon logs once, at INFO, what would give per-job numbers; prolog/epilog
    one-shots stay quiet."""
    import shutil

    root = tmp_path / "node"
    shutil.copytree(tree4, root)
    (root / "sys/fs/cgroup/memory").mkdir(parents=True)
    state = tmp_path / "state"
    proc = start_monitor("--stdout", "--root", str(root), "--state-dir", str(state),
                         "--interval", "1", "--collectors", "cpu,cgroup")
    assert wait_for(lambda: seq_of(state) >= 3)
    out, err = stop(proc)
    hints = [line for line in err.splitlines() if "no Slurm job cgroups" in line]
    assert len(hints) == 1 and hints[0].startswith("hpcperf-monitor: INFO ")
    for setting in ("ProctrackType=proctrack/cgroup", "TaskPlugin=task/cgroup",
                    "JobAcctGatherType=jobacct_gather/cgroup"):
        assert setting in hints[0]
    assert len(read_raw(out).headers) == 1  # cgroup declared, no job rows: one header
