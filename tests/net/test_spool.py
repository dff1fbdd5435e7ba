"""heptool.net.spool: the on-disk spool (order, restart, bound) and sender groups with
failover, in process and through ``heptool send`` against ``heptool listen`` on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nethelpers import ListenProcess, heptool_cmd, run_heptool

from heptool.net.spool import Spool


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_spool_keeps_order_across_segments_and_restarts(tmp_path):
    d = str(tmp_path / "sp")
    sp = Spool(d, max_bytes=1 << 20, segment_bytes=300)
    packets = [f"packet {i:03d} ".encode() * 5 for i in range(60)]
    for p in packets[:40]:
        assert sp.append(p)
    assert sp.packets == 40 and len(list(Path(d).glob("*.spool"))) > 3
    got = [sp.take() for _ in range(15)]
    sp.close()
    sp = Spool(d, max_bytes=1 << 20, segment_bytes=300)  # a restart
    assert sp.packets == 25
    for p in packets[40:]:
        sp.append(p)
    while (x := sp.take()) is not None:
        got.append(x)
    assert got == packets
    sp.close()
    assert Spool(d, max_bytes=1 << 20).packets == 0
    assert not list(Path(d).glob("*.spool"))


def test_spool_bound_drops_new_packets_and_counts_them(tmp_path):
    sp = Spool(str(tmp_path), max_bytes=1000, segment_bytes=300)
    results = [sp.append(b"x" * 96) for _ in range(15)]  # 100 bytes each on disk
    assert results == [True] * 10 + [False] * 5
    assert (sp.packets, sp.dropped, sp.bytes) == (10, 5, 1000)
    assert sp.take() == b"x" * 96


def test_spool_ignores_a_record_cut_short(tmp_path):
    sp = Spool(str(tmp_path), max_bytes=1 << 20)
    sp.append(b"one")
    sp.append(b"two")
    sp.close()
    seg = next(tmp_path.glob("*.spool"))
    with open(seg, "ab") as f:
        f.write(b"\x00\x00\x00\x10abc")  # a crash while writing the third
    sp = Spool(str(tmp_path), max_bytes=1 << 20)
    assert [sp.take(), sp.take(), sp.take()] == [b"one", b"two", None]


def _records(lp: ListenProcess, n: int) -> list[dict]:
    return [json.loads(x) for x in lp.read_records(n, timeout=30)]


def test_down_at_start_spooled_then_delivered_in_order_and_across_runs(tmp_path):
    port = _free_port()
    spool = tmp_path / "spool"
    # run 1: the collector never comes up: 20 packets kept on disk, nothing lost
    r = run_heptool("send", "--payload", "run1", "--count", "20", "--to",
                    f"tcp://127.0.0.1:{port}", "--spool", str(spool), "--retry", "0.3",
                    timeout=30)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "20 packets spooled, 0 sent from it, 20 kept for the next run" in err
    # run 2: down at the start, up after ~0.6 s: run 1's packets first, then run 2's, in order
    p = subprocess.Popen(heptool_cmd("send", "--payload", "run2", "--count", "30", "--rate",
                                     "30", "--time", "1", "--to", f"tcp://127.0.0.1:{port}",
                                     "--spool", str(spool), "-v"), stderr=subprocess.PIPE)
    try:
        time.sleep(0.6)
        with ListenProcess("--bind", f"tcp://127.0.0.1:{port}", "-f", "jsonl",
                           "--count", "50") as lp:
            recs = _records(lp, 50)
            _, err2 = p.communicate(timeout=30)
            assert lp.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    assert p.returncode == 0, err2
    payloads = [x["payload"] for x in recs]
    assert payloads == ["run1"] * 20 + ["run2"] * 30
    run2_times = [x["time"] for x in recs[20:]]
    assert run2_times == sorted(run2_times)
    assert b"0 kept for the next run" in err2
    assert b"keeping packets in the spool" in err2
    assert b"spool drained (" in err2


def test_spool_bound_is_enforced_with_a_counted_drop(tmp_path):
    port = _free_port()
    r = run_heptool("send", "--payload", "x" * 200, "--count", "50", "--to",
                    f"tcp://127.0.0.1:{port}", "--spool", str(tmp_path), "--spool-max", "5K",
                    "--retry", "0.2", timeout=30)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert "NOT delivered (the spool was full: 5120 bytes)" in err


def test_failover_takes_the_packets_while_the_primary_is_down():
    down = _free_port()
    with ListenProcess("--bind", "tcp://127.0.0.1:0", "-f", "jsonl", "--count", "25") as lp:
        r = run_heptool("send", "--payload", "x", "--count", "25", "--to",
                        f"tcp://127.0.0.1:{down}", "--failover", lp.url("tcp"),
                        "--retry", "0.3", timeout=30)
        assert len(_records(lp, 25)) == 25
        assert lp.wait(10) == 0
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert f"send {lp.url('tcp')}: 25 packets" in err
    r = run_heptool("send", "--payload", "x", "--to", "tcp://127.0.0.1:1", "--to",
                    "tcp://127.0.0.1:2", "--failover", "tcp://127.0.0.1:3")
    assert r.returncode == 2 and b"--failover needs exactly one --to" in r.stderr


def test_a_full_disk_drops_and_counts_instead_of_failing(tmp_path):
    """A file size limit (as a full disk: writes fail with EFBIG) in a child process."""
    code = f"""
import resource, signal
from heptool.net.spool import Spool
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
sp = Spool({str(tmp_path)!r}, max_bytes=1 << 20)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
ok = [sp.append(b"x" * 96) for _ in range(20)]
print(sum(ok), sp.dropped, sp.packets, sp.last_error is not None)
got = 0
while sp.take() is not None:
    got += 1
print(got)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()
    kept, dropped, waiting, err = first.split()
    assert int(kept) == 10 and int(dropped) == 10 and int(waiting) == 10 and err == "True"
    assert int(second) == 10
