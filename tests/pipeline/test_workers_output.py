"""``listen --workers N``: the workers write their records to the one output themselves
(:mod:`heptool.pipeline.shared_output`), whole chunks under one lock; an output without a
descriptor goes through the supervisor.  Real processes on loopback, ephemeral ports, every
wait bounded, every process stopped by its pid."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "net"))
from nethelpers import ListenProcess, heptool_cmd

from heptool.core.codec import encode
from heptool.core.message import HepMessage
from heptool.pipeline.shared_output import ChunkStream, SharedOutput, output_descriptor

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="--workers needs Linux (SO_REUSEPORT balancing)")


def packets(n: int, pad: int = 0) -> list[bytes]:
    return [encode(HepMessage(
        src_ip="192.0.2.1", src_port=5060, dst_ip="192.0.2.2", dst_port=5060,
        ts_sec=1_700_000_000 + i, ts_usec=i, proto_type=1, capture_id=7,
        payload=b"OPTIONS sip:bob@192.0.2.2 SIP/2.0\r\nCall-ID: o%d@test\r\nCSeq: 1 OPTIONS\r\n"
                b"X-Pad: %s\r\nContent-Length: 0\r\n\r\n" % (i, b"p" * pad)))
        for i in range(n)]


def send_tcp(port: int, sent: list[bytes], conns: int = 16) -> None:
    """``sent`` round robin over ``conns`` TCP connections (spread over the workers)."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(conns)]
    try:
        for i, p in enumerate(sent):
            socks[i % conns].sendall(p)
    finally:
        for s in socks:
            s.close()


def call_ids(lines: list[bytes]) -> list[str]:
    return sorted(json.loads(x)["sip"]["call_id"] for x in lines)


def wait_for(cond, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what or cond}"
        time.sleep(0.05)


def per_worker(lp: ListenProcess) -> list[int]:
    for line in lp.stderr_lines:
        if line.startswith("  workers: "):
            return [int(x.replace(",", ""))
                    for x in line.split("(packets received: ")[1].rstrip(")").split(", ")]
    raise AssertionError(lp.stderr_lines)


@pytest.mark.parametrize("where", ["file", "pipe"])
def test_records_bigger_than_a_pipe_write_never_interleave(tmp_path, where):
    # 9 KiB records (more than PIPE_BUF: a pipe write of that size is not atomic by itself)
    # from 2 workers at once: every line whole, every record once
    out = tmp_path / "records.jsonl"
    args = ["--workers", "2", "--bind", "tcp://127.0.0.1:0", "-f", "jsonl"]
    if where == "file":
        args += ["-o", str(out)]
    sent = packets(600, pad=9000)
    with ListenProcess(*args, stdout=subprocess.PIPE if where == "pipe" else None) as lp:
        send_tcp(int(lp.url("tcp").rsplit(":", 1)[1]), sent)
        if where == "pipe":
            lines = lp.read_records(len(sent), timeout=30)
        else:
            wait_for(lambda: out.read_bytes().count(b"\n") >= len(sent), 30, "the records")
        assert lp.stop(signal.SIGTERM) == 0, lp.stderr_lines
    if where == "file":
        lines = out.read_bytes().splitlines()
    assert all(len(x) > 9000 for x in lines)
    assert call_ids(lines) == sorted(f"o{i}@test" for i in range(len(sent)))
    assert min(per_worker(lp)) > 0  # both workers wrote


def test_the_supervisor_is_not_on_the_records_path(tmp_path):
    # the supervisor stopped (SIGSTOP): the workers still write every record to the file
    out = tmp_path / "records.jsonl"
    sent = packets(200)
    with ListenProcess("--workers", "2", "--bind", "tcp://127.0.0.1:0", "-f", "jsonl",
                       "-o", str(out), stdout=None) as lp:
        os.kill(lp.proc.pid, signal.SIGSTOP)
        try:
            send_tcp(int(lp.url("tcp").rsplit(":", 1)[1]), sent)
            wait_for(lambda: out.read_bytes().count(b"\n") >= len(sent), 30,
                     "the records while the supervisor is stopped")
        finally:
            os.kill(lp.proc.pid, signal.SIGCONT)
        assert lp.stop(signal.SIGTERM) == 0, lp.stderr_lines
    assert call_ids(out.read_bytes().splitlines()) == sorted(
        f"o{i}@test" for i in range(len(sent)))


def test_a_full_output_stops_every_worker_with_one_error():
    proc = subprocess.Popen(heptool_cmd("listen", "--workers", "2", "--bind",
                                        "tcp://127.0.0.1:0", "-f", "jsonl", "-o", "/dev/full"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        err = ""
        while "listening on" not in err:
            line = proc.stderr.readline()
            assert line, err
            err += line
        port = int(err.split("tcp://127.0.0.1:")[1].split()[0])
        send_tcp(port, packets(100))
        rc = proc.wait(timeout=20)  # it ends by itself: nobody signals it
        err += proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert rc == 1, err
    assert err.count("Error: ") == 1 and "No space left on device" in err, err
    assert err.count("listen: ") == 1  # the summary


def test_a_writer_killed_while_holding_the_lock_does_not_block_the_others(tmp_path):
    lock = open(tmp_path / "lock", "w+b")  # noqa: SIM115
    r, w = os.pipe()  # nobody reads: a chunk bigger than the pipe blocks its writer
    try:
        pid = os.fork()
        if pid == 0:  # the "worker": blocked in write, holding the lock
            try:
                SharedOutput(w, lock.fileno()).write_chunk(bytearray(1 << 20))
            finally:
                os._exit(0)
        time.sleep(0.5)
        mine = SharedOutput(w, lock.fileno())
        done = threading.Event()

        def take() -> None:
            import fcntl

            fcntl.lockf(lock.fileno(), fcntl.LOCK_EX)
            fcntl.lockf(lock.fileno(), fcntl.LOCK_UN)
            done.set()

        threading.Thread(target=take, daemon=True).start()
        assert not done.wait(0.5)  # held by the blocked writer
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert done.wait(5)  # released by the kernel when its holder died
        os.read(r, 1 << 17)  # room again
        mine.write_chunk(bytearray(b"x\n"))
    finally:
        os.close(r)
        os.close(w)
        lock.close()


def test_chunks_end_between_writes():
    got: list[bytes] = []
    c = ChunkStream(lambda b: got.append(bytes(b)), limit=50, delay=10.0)
    c.write(b"a" * 20 + b"\n")
    c.flush()  # younger than delay: kept
    assert got == []
    c.write(b"b" * 30 + b"\n")  # past limit: delivered, whole writes only
    assert got == [b"a" * 20 + b"\n" + b"b" * 30 + b"\n"]
    c.write(b"c\n")
    c.send()
    assert got[-1] == b"c\n"
    c.send()  # nothing waits: nothing delivered
    assert len(got) == 2


def test_an_error_is_kept_and_nothing_is_written_after_it(tmp_path):
    lock = open(tmp_path / "lock", "w+b")  # noqa: SIM115
    with open("/dev/full", "wb") as full:
        out = SharedOutput(full.fileno(), lock.fileno())
        with pytest.raises(OSError) as e:
            out.write_chunk(bytearray(b"x\n"))
        assert out.error is e.value
        out.write_chunk(bytearray(b"y\n"))  # no second error, no write
    lock.close()


def test_only_a_real_descriptor_is_shared():
    assert output_descriptor(io.BytesIO()) is None
    with open(os.devnull, "wb") as f:
        assert output_descriptor(f) == f.fileno()


def test_an_output_without_a_descriptor_gets_the_records_through_the_supervisor():
    from heptool.output.jsonl import JsonlWriter
    from heptool.pipeline.workers import Supervisor

    class Out:
        need_record = True

        def __init__(self, stream) -> None:
            w = JsonlWriter(stream)
            self.emit = lambda rec, m, data: w.write(rec)
            self.flush = stream.flush
            self.close = lambda: None

    sup = Supervisor(2, ["tcp://127.0.0.1:0"], options={"count": 120})
    [t] = sup.open()
    sink = io.BytesIO()
    sup.open_outputs(Out, sink=sink)
    assert sup.shared is None
    timer = threading.Timer(30, sup.stop)  # bounded, whatever happens
    timer.start()
    try:
        send_tcp(t.port, packets(120))
        sup.run()
    finally:
        timer.cancel()
        sup.close()
    assert call_ids(sink.getvalue().splitlines()) == sorted(f"o{i}@test" for i in range(120))


def test_record_indexes_are_unique_across_the_workers(tmp_path):
    out = tmp_path / "records.jsonl"
    sent = packets(300)
    with ListenProcess("--workers", "2", "--bind", "tcp://127.0.0.1:0", "-f", "jsonl",
                       "-o", str(out), "--write-jsonl", str(tmp_path / "w.jsonl"),
                       stdout=None) as lp:
        send_tcp(int(lp.url("tcp").rsplit(":", 1)[1]), sent)
        wait_for(lambda: out.read_bytes().count(b"\n") >= len(sent), 30, "the records")
        assert lp.stop(signal.SIGTERM) == 0, lp.stderr_lines
    first, second = per_worker(lp)
    indexes = sorted(json.loads(x)["index"] for x in out.read_bytes().splitlines())
    assert len(set(indexes)) == len(sent)  # one index per record, none twice
    assert indexes == sorted([2 * i for i in range(first)] + [2 * i + 1 for i in range(second)])
    for k in (0, 1):  # each worker's file: its own indexes, k, k+2, k+4...
        lines = (tmp_path / f"w-w{k}.jsonl").read_bytes().splitlines()
        assert [json.loads(x)["index"] for x in lines] == [k + 2 * i for i in range(len(lines))]
