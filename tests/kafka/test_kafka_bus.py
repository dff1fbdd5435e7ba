"""Kafka as a HEP bus, against a real Kafka-protocol broker on 127.0.0.1 (librdkafka's mock
cluster in a process of its own, see conftest.py), topics of 4 partitions.

listen -> Kafka -> decode byte for byte; every message of a call in one partition; two
consumers of one group see every message once; offsets committed only after the output is
written; delivery counted; SIGTERM flushes; correlate per partition joins the legs that
share a key.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "net"))
from kafkahelpers import create_topic, make_calls, topic_messages
from nethelpers import ROOT, ListenProcess, hep_packets, heptool_cmd, run_heptool

from heptool.core.codec import decode, encode
from heptool.sip.ids import call_id


def _udp_send(url: str, packets: list[bytes], pause_every: int = 200) -> None:
    host, port = url.removeprefix("udp://").rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i, p in enumerate(packets):
            s.sendto(p, (host, int(port)))
            if i % pause_every == pause_every - 1:
                time.sleep(0.01)  # loopback, but a test should not rely on buffer sizes
    finally:
        s.close()


def _decode_raw(tmp_path: Path, url: str, *extra: str, name: str = "out.hep") -> list[bytes]:
    out = tmp_path / name
    r = run_heptool("decode", url, "--from-beginning", "--until-idle", "2", "-f", "raw",
                    "-o", str(out), *extra, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return hep_packets(out) if out.stat().st_size else []


def test_the_mock_topic_has_4_partitions(topic_url, tmp_path):
    r = run_heptool("send", "--payload", "x", "--to", topic_url)
    assert r.returncode == 0, r.stderr.decode()
    import confluent_kafka as ck

    from heptool.net.target import parse_target

    t = parse_target(topic_url, kafka=True)
    c = ck.Consumer({"bootstrap.servers": t.bootstrap, "group.id": "x"})
    try:
        assert len(c.list_topics(t.topic, timeout=10).topics[t.topic].partitions) == 4
    finally:
        c.close()


def test_listen_to_kafka_to_decode_byte_for_byte(topic_url, tmp_path):
    packets = make_calls(tmp_path / "in.hep", calls=30)
    assert len(packets) > 400
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--forward", topic_url, "-q",
                       "--count", str(len(packets))) as lp:
        _udp_send(lp.url("udp"), packets)
        assert lp.wait(60) == 0, lp.stderr_lines
    summary = "\n".join(lp.stderr_lines)
    assert f"forward {topic_url}: {len(packets)} sent, 0 undelivered" in summary
    got = _decode_raw(tmp_path, topic_url)
    # every packet, byte for byte, none twice
    assert sorted(got) == sorted(packets)
    # within a call (one key, one partition) the order is the order sent
    order = {p: i for i, p in enumerate(packets)}
    by_call = collections.defaultdict(list)
    for p in got:
        by_call[_key_of(p)].append(order[p])
    assert all(v == sorted(v) for v in by_call.values())


def _key_of(p: bytes) -> str | None:
    from heptool.net.kafka import call_key

    return call_key(decode(p))


def test_no_call_split_across_partitions_and_headers(topic_url, tmp_path):
    packets = make_calls(tmp_path / "in.hep", calls=40)
    r = run_heptool("send", str(tmp_path / "in.hep"), "--to", topic_url)
    assert r.returncode == 0, r.stderr.decode()
    msgs = topic_messages(topic_url)
    assert sorted(v for *_, v in msgs) == sorted(packets)
    parts_of_call: dict[str, set[int]] = collections.defaultdict(set)
    parts_of_key: dict[bytes, set[int]] = collections.defaultdict(set)
    for part, _off, key, headers, value in msgs:
        m = decode(value)
        cid = call_id(m.payload) if m.payload is not None else None
        if cid is not None:
            parts_of_call[cid].add(part)
        for ref in (m.correlation_id,):  # RTCP and logs name their call in 0x0011
            if ref:
                parts_of_call[ref].add(part)
        assert key is not None
        parts_of_key[key].add(part)
        h = dict(headers)
        assert h["hep_proto"] == b"%d" % m.proto_type
        assert h["hep_capture_id"] == b"%d" % m.capture_id
        assert h["hep_time"] == b"%d.%06d" % (m.ts_sec, m.ts_usec)
        assert h.get("hep_node") == (m.node_name.encode() if m.node_name else None)
    assert len(parts_of_call) > 40
    split = {c: p for c, p in parts_of_call.items() if len(p) > 1}
    assert not split
    assert all(len(p) == 1 for p in parts_of_key.values())
    assert len({p for p, *_ in msgs}) > 1  # the calls did spread over the partitions


def test_murmur2_partition_as_java_clients(topic_url, tmp_path):
    """The partition of a key is murmur2(key) % 4, positive, as Java's DefaultPartitioner."""
    make_calls(tmp_path / "in.hep", calls=10)
    r = run_heptool("send", str(tmp_path / "in.hep"), "--to", topic_url)
    assert r.returncode == 0, r.stderr.decode()
    for part, _off, key, _h, _v in topic_messages(topic_url):
        assert part == (_murmur2(key) & 0x7FFFFFFF) % 4


def _murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), written from its spec."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    rest = length % 4
    tail = data[length - rest:]
    if rest == 3:
        h ^= tail[2] << 16
    if rest >= 2:
        h ^= tail[1] << 8
    if rest >= 1:
        h ^= tail[0]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def _group_partitions(lines: list[str], topic_url: str) -> set[int]:
    """The partitions a ``decode -v`` member holds now, from its assigned/revoked lines."""
    held: set[int] = set()
    for line in lines:
        m = re.fullmatch(re.escape(topic_url) + r": partitions ([\d, ]+) (assigned|revoked)", line)
        if m:
            ps = {int(x) for x in m.group(1).split(", ")}
            held = ps if m.group(2) == "assigned" else held - ps
    return held


def test_two_consumers_in_one_group_see_every_message_once(topic_url, tmp_path):
    # The group is formed before the messages arrive.  librdkafka's mock broker (this
    # suite's broker) answers a follower whose SyncGroup comes after the leader's with
    # "invalid request" (the follower joins again) and refuses offset commits while the
    # group rebalances, where a real broker takes them from the members of the ending
    # generation; so a group that forms while a member reads hands what that member read
    # but could not commit to the other member again (at least once, not exactly once).
    packets = make_calls(tmp_path / "in.hep", calls=60)
    create_topic(topic_url)
    outs = [tmp_path / f"c{i}.hep" for i in range(2)]
    procs = [subprocess.Popen(heptool_cmd("decode", topic_url, "--group", "pair",
                                          "--from-beginning", "--until-idle", "8", "-f", "raw",
                                          "-o", str(o), "-v"),
                              stderr=subprocess.PIPE, text=True, cwd=ROOT) for o in outs]
    errs: list[list[str]] = [[], []]

    def pump(k: int) -> None:
        for line in procs[k].stderr:  # type: ignore[union-attr]
            errs[k].append(line.rstrip("\n"))

    pumps = [threading.Thread(target=pump, args=(k,), daemon=True) for k in range(2)]
    for t in pumps:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while True:  # each member holds partitions of its own, together all 4
            held = [_group_partitions(list(e), topic_url) for e in errs]
            if held[0] and held[1] and not held[0] & held[1] and held[0] | held[1] == {0, 1, 2, 3}:
                break
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), errs
            time.sleep(0.05)
        r = run_heptool("send", str(tmp_path / "in.hep"), "--to", topic_url)
        assert r.returncode == 0, r.stderr.decode()
        for p in procs:
            assert p.wait(timeout=120) == 0, errs
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
    for t in pumps:
        t.join(5)
    got = [hep_packets(o) if o.stat().st_size else [] for o in outs]
    assert sorted(got[0] + got[1]) == sorted(packets), errs  # all of them, none twice
    assert not set(got[0]) & set(got[1])
    assert got[0] and got[1]  # both took part
    # the group shared the partitions: whole calls on each side
    keys = [{_key_of(p) for p in g} for g in got]
    assert not keys[0] & keys[1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("command", ["decode", "correlate"])
def test_a_signal_ends_a_consumer_with_its_output_written_and_committed(topic_url, tmp_path,
                                                                        command, sig):
    # the normal end of a consumer that runs until stopped (no --until-idle), as of
    # listen: the output complete, its messages committed, exit 0 (SIGTERM killed it)
    packets = make_calls(tmp_path / "in.hep", calls=5)
    r = run_heptool("send", str(tmp_path / "in.hep"), "--to", topic_url)
    assert r.returncode == 0, r.stderr.decode()
    out = tmp_path / "out"
    fmt = ["-f", "raw"] if command == "decode" else ["-f", "json"]
    group = "--group" if command == "decode" else "--kafka-group"
    p = subprocess.Popen(heptool_cmd(command, topic_url, group, "stop", "--from-beginning",
                                     *fmt, "-o", str(out)),
                         stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines: list[str] = []
    t = threading.Thread(target=lines.extend, args=(p.stderr,), daemon=True)  # line by line
    t.start()
    try:
        deadline = time.monotonic() + 60
        if command == "decode":  # every record written
            while len(hep_packets(out) if out.exists() and out.stat().st_size else []) < len(
                    packets):
                assert time.monotonic() < deadline and p.poll() is None, lines
                time.sleep(0.05)
        else:  # correlate writes at the end: joining takes 3 s, reading the topic far less
            time.sleep(8)
        p.send_signal(sig)
        assert p.wait(timeout=30) == 0, lines
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=5)
    t.join(5)
    if command == "decode":
        assert sorted(hep_packets(out)) == sorted(packets)
    else:
        assert sum(len(g["packets"]) for g in json.loads(out.read_text())["groups"]) == len(
            packets)
    # all committed: the group has nothing left to read
    assert _decode_raw(tmp_path, topic_url, "--group", "stop", name="again.hep") == []


def test_offsets_committed_only_after_the_output_is_written(topic_url, tmp_path):
    packets = make_calls(tmp_path / "in.hep", calls=5)
    bad = packets[3][:-3]  # its length field says 3 bytes more than there are
    r = run_heptool("send", "--payload", "x", "--to", topic_url)  # warm the topic up
    assert r.returncode == 0
    import confluent_kafka as ck

    from heptool.net.target import parse_target

    t = parse_target(topic_url, kafka=True)
    p = ck.Producer({"bootstrap.servers": t.bootstrap})
    p.produce(t.topic, bad, b"k")
    assert p.flush(10) == 0
    # --strict stops at the bad packet: exit 3, nothing committed
    r = run_heptool("decode", topic_url, "--group", "g", "--from-beginning", "--until-idle",
                    "2", "--strict", "-f", "raw", "-o", str(tmp_path / "a.hep"), timeout=120)
    assert r.returncode == 3, r.stderr.decode()
    # the same group reads everything again, and this time commits (the bad one reported)
    r = run_heptool("decode", topic_url, "--group", "g", "--from-beginning", "--until-idle",
                    "2", "-f", "raw", "-o", str(tmp_path / "b.hep"), timeout=120)
    assert r.returncode == 3, r.stderr.decode()
    assert len(hep_packets(tmp_path / "b.hep")) == 1
    # nothing left for the group: its offsets were committed after the output was written
    r = run_heptool("decode", topic_url, "--group", "g", "--from-beginning", "--until-idle",
                    "2", "-f", "raw", "-o", str(tmp_path / "c.hep"), timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert (tmp_path / "c.hep").stat().st_size == 0


def test_count_commits_what_was_written_and_no_more(topic_url, tmp_path):
    packets = make_calls(tmp_path / "in.hep", calls=3)
    r = run_heptool("send", str(tmp_path / "in.hep"), "--to", topic_url, "--kafka-key", "none")
    assert r.returncode == 0, r.stderr.decode()
    first = _decode_raw(tmp_path, topic_url, "--group", "h", "--count", "7", name="1.hep")
    rest = _decode_raw(tmp_path, topic_url, "--group", "h", name="2.hep")
    assert len(first) == 7
    assert sorted(first + rest) == sorted(packets)


@pytest.mark.parametrize("end", ["until-idle", "SIGTERM"])
def test_send_from_a_topic_to_udp(topic_url, tmp_path, end):
    # SIGTERM: without --until-idle send waited on the topic through the signal (its
    # handler stopped the replay, which was waiting for the next message); now the reading
    # ends too, what was read is delivered and committed
    packets = make_calls(tmp_path / "in.hep", calls=5)
    r = run_heptool("send", str(tmp_path / "in.hep"), "--to", topic_url)
    assert r.returncode == 0
    y = tmp_path / "y.pcap"
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--write-hep", str(y), "-q",
                       "--count", str(len(packets))) as lp:
        idle = ["--until-idle", "2"] if end == "until-idle" else []
        p = subprocess.Popen(heptool_cmd("send", topic_url, "--group", "relay",
                                         "--from-beginning", *idle, "--to", lp.url("udp")),
                             stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            assert lp.wait(60) == 0, lp.stderr_lines  # every packet came
            if end == "SIGTERM":
                p.send_signal(signal.SIGTERM)
            _out, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=5)
    assert p.returncode == (0 if end == "until-idle" else 130), err  # 130: interrupted
    assert f"{len(packets)} packets" in err, err
    assert sorted(hep_packets(y)) == sorted(packets)
    assert _decode_raw(tmp_path, topic_url, "--group", "relay") == []  # all committed


def test_sigterm_flushes_the_forward(topic_url, tmp_path):
    packets = make_calls(tmp_path / "in.hep", calls=10)
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--forward", topic_url, "-q",
                       "--stats", "0.2") as lp:
        _udp_send(lp.url("udp"), packets)
        deadline = time.monotonic() + 30
        # every packet received, and a --stats line that shows the forward up (the first
        # lines may say DOWN: the producer tells it is up with its first acknowledgement or
        # its first statistics, after a second)
        while not any(f"total {len(packets)};" in line and f"; forward {topic_url} up, " in line
                      for line in lp.stderr_lines):
            assert time.monotonic() < deadline, lp.stderr_lines
            time.sleep(0.05)
        assert lp.stop(signal.SIGTERM) == 0
    text = "\n".join(lp.stderr_lines)
    assert f"forward {topic_url}: {len(packets)} sent, 0 undelivered" in text
    assert sorted(v for *_, v in topic_messages(topic_url)) == sorted(packets)


def test_undelivered_is_counted_and_exit_1(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # a port nothing listens on
    port = s.getsockname()[1]
    try:
        r = run_heptool("send", "--payload", "x", "--count", "3", "--retry", "1", "--to",
                        f"kafka://127.0.0.1:{port}/t", timeout=60)
    finally:
        s.close()
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert "3 NOT delivered" in err
    assert "3 packets could not be delivered" in err


def _correlate(path_or_url: str, *extra: str) -> dict:
    r = run_heptool("correlate", path_or_url, *extra, "-f", "json", timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def _b2bua(tmp_path: Path) -> list[bytes]:
    """A B2BUA's two legs: the A leg as captured (Call-ID a-leg@x), the B leg (Call-ID
    b-leg@y) with the agent's correlation id, chunk 0x0011, naming the A leg."""
    from heptool.core.message import HepMessage

    def sip(first: str, cid: str) -> bytes:
        return (f"{first}\r\nCall-ID: {cid}\r\nCSeq: 1 INVITE\r\nFrom: <sip:a@x>;tag=1\r\n"
                "To: <sip:b@y>\r\nContent-Length: 0\r\n\r\n").encode()

    out = []
    for i, (first, cid, corr) in enumerate([
            ("INVITE sip:b@y SIP/2.0", "a-leg@x", None),
            ("INVITE sip:b@z SIP/2.0", "b-leg@y", "a-leg@x"),
            ("SIP/2.0 200 OK", "b-leg@y", "a-leg@x"),
            ("SIP/2.0 200 OK", "a-leg@x", None)]):
        m = HepMessage(version=3, family=2, ip_proto=17, src_ip="10.0.0.1", dst_ip="10.0.0.2",
                       src_port=5060, dst_port=5060, ts_sec=1_700_000_000 + i, ts_usec=0,
                       proto_type=1, capture_id=7, correlation_id=corr, payload=sip(first, cid))
        out.append(encode(m))
    return out


def test_correlate_per_partition_joins_legs_that_share_a_key(topic_url, tmp_path):
    packets = make_calls(tmp_path / "calls.hep", calls=12) + _b2bua(tmp_path)
    src = tmp_path / "all.hep"
    src.write_bytes(b"".join(packets))
    r = run_heptool("send", str(src), "--to", topic_url)
    assert r.returncode == 0, r.stderr.decode()
    whole = _correlate(str(src))
    # each partition on its own, as one consumer of a group sees it
    by_part: dict[int, list[bytes]] = collections.defaultdict(list)
    for part, _o, _k, _h, v in topic_messages(topic_url):
        by_part[part].append(v)
    assert len(by_part) > 1

    def ids(g: dict) -> frozenset[str]:
        return frozenset(g["call_ids"]) | frozenset(v for vs in g["ids"].values() for v in vs)

    def signature(doc: dict) -> set[frozenset[str]]:
        # a group by what it joins: its call ids and other ids (not indices)
        return {ids(g) for g in doc["groups"]}

    per_partition: set[frozenset[str]] = set()
    for part, vals in by_part.items():
        f = tmp_path / f"p{part}.hep"
        f.write_bytes(b"".join(vals))
        per_partition |= signature(_correlate(str(f)))
    expected = signature(whole)
    # the B2BUA legs are one group within their partition
    legs = next(g for g in expected if "a-leg@x" in g)
    assert "b-leg@y" in legs and legs in per_partition
    # the OpenSIPS call's SIP, xlog and REST (keyed by the call: 0x0065 'sip') stay joined
    os_call = ids(next(g for g in whole["groups"] if "rest_request" in g["kinds"]))
    # (its TCP connection events are keyed by the connection id: maybe another partition)
    assert os_call - {x for x in os_call if x.isdigit()} in per_partition
    # and a consumer of the whole topic finds the same groups as the file
    assert signature(_correlate(topic_url, "--from-beginning", "--until-idle", "2")) == expected


def test_convert_from_a_topic(topic_url, tmp_path):
    import dpkt

    make_calls(tmp_path / "in.hep", calls=5)
    r = run_heptool("send", str(tmp_path / "in.hep"), "--to", topic_url)
    assert r.returncode == 0, r.stderr.decode()
    r = run_heptool("convert", str(tmp_path / "in.hep"), "-o", str(tmp_path / "ref.pcap"))
    assert r.returncode == 0, r.stderr.decode()
    r = run_heptool("convert", topic_url, "--group", "conv", "--from-beginning", "--until-idle",
                    "2", "-o", str(tmp_path / "k.pcap"), timeout=120)
    assert r.returncode == 0, r.stderr.decode()

    def frames(path: Path) -> list[tuple[float, bytes, bytes, bytes]]:
        # (time, addresses, payload): IP ids and TCP sequence numbers follow the order the
        # frames were written in, which differs between partitions
        out = []
        with open(path, "rb") as f:
            for ts, buf in dpkt.pcap.Reader(f):
                ip = dpkt.ethernet.Ethernet(buf).data
                out.append((ts, bytes(ip.src) + bytes(ip.dst), bytes(ip.data.data)))
        return sorted(out)

    assert frames(tmp_path / "k.pcap") == frames(tmp_path / "ref.pcap")
    # the group's offsets were committed once the pcap was complete
    r = run_heptool("convert", topic_url, "--group", "conv", "--from-beginning", "--until-idle",
                    "2", "-o", str(tmp_path / "again.pcap"), timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert frames(tmp_path / "again.pcap") == []


def test_unreachable_broker_is_an_unreadable_input(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # a port nothing listens on
    port = s.getsockname()[1]
    try:
        r = run_heptool("decode", f"kafka://127.0.0.1:{port}/t", "--until-idle", "1",
                        timeout=120)
    finally:
        s.close()
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert err.count("Error: ") == 1 and f"kafka://127.0.0.1:{port}/t" in err


def test_convert_from_a_topic_to_parquet_commits_once_the_files_are_complete(topic_url, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    pytest.importorskip("pyarrow")
    make_calls(tmp_path / "in.hep", calls=3)
    r = run_heptool("send", str(tmp_path / "in.hep"), "--to", topic_url)
    assert r.returncode == 0, r.stderr.decode()
    r = run_heptool("decode", str(tmp_path / "in.hep"), "-f", "jsonl")
    sent = len(r.stdout.splitlines())
    assert sent > 0
    lake = tmp_path / "lake"
    r = run_heptool("convert", topic_url, "--group", "pq", "--from-beginning", "--until-idle",
                    "2", "--to", "parquet", "-o", str(lake), timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake}/**/*.parquet', "
                      "hive_partitioning=true)").fetchall()[0][0]
    assert rows == sent
    # the group's offsets were committed once the Parquet files were complete
    r = run_heptool("convert", topic_url, "--group", "pq", "--from-beginning", "--until-idle",
                    "2", "--to", "parquet", "-o", str(tmp_path / "again"), timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert not list((tmp_path / "again").glob("**/*.parquet"))
