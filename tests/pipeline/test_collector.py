"""heptool.pipeline.collector.Collector used from Python (what ``heptool listen`` runs):
loopback only, ephemeral ports, every wait bounded."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from heptool.core.codec import encode
from heptool.core.message import HepMessage
from heptool.pipeline.collector import CloseError, Collector

SIP = (b"OPTIONS sip:bob@192.0.2.2 SIP/2.0\r\nCall-ID: c%d@test\r\nCSeq: 1 OPTIONS\r\n"
       b"Content-Length: 0\r\n\r\n")


def packets(n: int, **fields) -> list[bytes]:
    fields.setdefault("capture_id", 7)
    return [encode(HepMessage(src_ip="192.0.2.1", src_port=5060, dst_ip="192.0.2.2",
                              dst_port=5060, ts_sec=1_700_000_000 + i, ts_usec=0,
                              proto_type=1, payload=SIP % i, **fields))
            for i in range(n)]


def run_in_thread(c: Collector) -> threading.Thread:
    t = threading.Thread(target=c.run, daemon=True)
    t.start()
    return t


def wait_for(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def pcap_records(path) -> list[bytes]:
    from heptool.capture.pcap import iter_frames

    with open(path, "rb") as f:
        return [fr.data for fr in iter_frames(f)]


@pytest.mark.parametrize("scheme", ["udp", "tcp"])
def test_collects_into_hep_pcap_and_jsonl(tmp_path, scheme):
    pcap, jsonl = tmp_path / "hep.pcap", tmp_path / "hep.jsonl"
    records = []
    c = Collector([f"{scheme}://127.0.0.1:0"], write_hep=str(pcap), write_jsonl=str(jsonl),
                  count=5)
    (bound,) = c.open()
    assert bound.port != 0
    c.open_outputs(lambda rec, m, data: records.append((rec, m, data)), need_record=True)
    t = run_in_thread(c)
    sent = packets(5)
    if scheme == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for p in sent:
                s.sendto(p, ("127.0.0.1", bound.port))
    else:
        with socket.create_connection(("127.0.0.1", bound.port), timeout=5) as s:
            s.sendall(b"".join(sent))
    t.join(10)
    assert not t.is_alive()  # count=5 ended it
    files = c.close()
    assert files == [str(pcap), str(jsonl)]
    assert [data for _, _, data in records] == sent
    assert [rec["hep_transport"] for rec, _, _ in records] == [scheme] * 5
    assert [m.payload for _, m, _ in records] == [SIP % i for i in range(5)]
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert [x["index"] for x in lines] == list(range(5))
    assert [x["capture_id"] for x in lines] == [7] * 5
    frames = pcap_records(pcap)
    assert len(frames) == 5
    assert all(f.endswith(p) for f, p in zip(frames, sent))
    assert c.accepted == 5 and c.stats.packets[scheme] == 5
    assert c.summary_lines()[0].startswith(f"listen: 5 packets received ({scheme} 5); "
                                           "5 accepted; drops: none")


def test_stop_from_another_thread_ends_run(tmp_path):
    pcap = tmp_path / "only.pcap"
    c = Collector(["udp://127.0.0.1:0", "tcp://127.0.0.1:0"], write_hep=str(pcap))
    udp, _tcp = c.open()
    t = run_in_thread(c)  # --write-hep alone: the pcap-only fast handlers
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for p in packets(3):
            s.sendto(p, ("127.0.0.1", udp.port))
    wait_for(lambda: c.accepted == 3)
    threading.Timer(0.05, c.stop).start()
    t.join(5)
    assert not t.is_alive()
    assert c.close() == [str(pcap)]
    assert len(pcap_records(pcap)) == 3


def test_filters_and_auth_key_count_drops():
    events = []
    c = Collector(["udp://127.0.0.1:0"], auth_key="k",
                  match=lambda m: m.capture_id == 7, on_event=events.append)
    with c:
        (bound,) = c.bound
        got = []
        c.open_outputs(lambda rec, m, data: got.append(m))
        t = run_in_thread(c)
        (good,) = packets(1, auth_key="k")
        (other,) = packets(1, auth_key="k", capture_id=8)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for p in (good, packets(1)[0], other, b"not hep at all", good):
                s.sendto(p, ("127.0.0.1", bound.port))
        wait_for(lambda: sum(c.stats.drops.values()) == 3 and len(got) == 2)
        c.stop()
        t.join(5)
    assert dict(c.stats.drops) == {"auth key": 1, "filtered out": 1, "not HEP": 1}
    assert c.accepted == 2 and c.tally.protos == {"sip": 2}
    # every drop but the filter's is told (issue 13 #9: the auth key's too)
    assert len(events) == 2, events
    assert events[0].startswith("dropped a udp packet from 127.0.0.1:")
    assert events[0].endswith(": auth key (no auth key)")
    assert ": not HEP (" in events[1]


def test_output_that_cannot_be_opened(tmp_path):
    from heptool.pipeline.collector import OutputError

    c = Collector(["udp://127.0.0.1:0"], write_jsonl=str(tmp_path / "no" / "x.jsonl"))
    c.open()
    with pytest.raises(OutputError) as e:
        c.open_outputs()
    assert e.value.path == str(tmp_path / "no" / "x.jsonl")
    assert c.close() == []
    assert CloseError.__mro__[1] is OSError


def test_import_loads_no_click_or_rich():
    code = ("import sys, heptool.pipeline.collector, heptool.pipeline.handlers, "
            "heptool.pipeline.sinks, heptool.output.files; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'rich')); "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"
