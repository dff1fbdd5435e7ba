"""``heptool encode``: options, --chunk, records in, scenarios, every output format.

Also the writer behind ``-f pcap`` (heptool.capture.writer) and the CLI-level round trip
``decode -f jsonl | encode`` over every capture in tests/vectors/.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import heptool
from heptool import decode, encode, to_record
from heptool.analysis.scenarios import scenario
from heptool.capture.inputs import iter_input
from heptool.capture.writer import PcapWriter, ip_checksum, parse_endpoint, udp_frame
from heptool.cli import COMMANDS, main
from heptool.cli.env import Environment

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
CAPTURES = sorted(p for p in VECTORS.rglob("*.pcap") if not p.name.endswith(".sip.pcap")) + [
    VECTORS / "hepjs" / "hepjs-hep3.bin"
]
T0 = "1700000000.123456"


class Result:
    def __init__(self, code: int, out: bytes, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def text(self) -> str:
        return self.out.decode()

    def packets(self) -> list[bytes]:
        return [p.data for p in iter_input(io.BytesIO(self.out))] if self.out else []


def run(args, stdin: bytes | None = None, *, stdout_isatty=False, stdin_isatty=None, capfd=None):
    """heptool.cli.main with an injected Environment; stderr from click and from env."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="")
    err = io.StringIO()
    inp = io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8")
    env = Environment(
        stdin=inp,
        stdout=out,
        stderr=err,
        stdout_isatty=stdout_isatty,
        stdin_isatty=(stdin is None) if stdin_isatty is None else stdin_isatty,
    )
    code = main(list(args), env=env)
    out.flush()
    return Result(code, out.buffer.getvalue(), err.getvalue())


OPTS = ["--src", "10.0.0.1:5060", "--dst", "10.0.0.2:5080", "--time", T0]


# ---------------------------------------------------------------------------
# packets from options
# ---------------------------------------------------------------------------
def test_defaults(capsys):
    r = run(["encode", "--payload", "OPTIONS sip:x SIP/2.0\r\n\r\n", "--time", T0])
    assert r.code == 0, capsys.readouterr().err
    (data,) = r.packets()
    m = decode(data)
    assert (m.version, m.family, m.ip_proto, m.src_ip, m.src_port, m.dst_ip, m.dst_port) == (
        3,
        2,
        17,
        "127.0.0.1",
        5060,
        "127.0.0.1",
        5060,
    )
    assert (m.ts_sec, m.ts_usec, m.proto_type, m.capture_id) == (1700000000, 123456, 1, 1)
    assert m.payload == b"OPTIONS sip:x SIP/2.0\r\n\r\n"
    # canonical, Kamailio-safe order (HEP-SPEC 11.9)
    assert [t for _, t in m.chunk_ids()] == [1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 15]


def test_every_option(tmp_path):
    r = run(
        [
            "encode",
            "--src",
            "[2001:db8::1]:5061",
            "--dst",
            "[2001:db8::2]:5062",
            "--ip-proto",
            "tcp",
            "--time",
            "2026-11-26T09:00:00.5Z",
            "--capture-id",
            "2001",
            "--node-name",
            "edge-1",
            "--auth-key",
            "myHep",
            "--correlation-id",
            "c@h",
            "--proto",
            "log",
            "--payload",
            "hello",
        ]
    )
    assert r.code == 0
    m = decode(r.packets()[0])
    assert (m.family, m.ip_proto, m.src_ip, m.src_port, m.dst_ip, m.dst_port) == (
        10,
        6,
        "2001:db8::1",
        5061,
        "2001:db8::2",
        5062,
    )
    assert (m.ts_sec, m.ts_usec) == (1795683600, 500000)
    assert (m.capture_id, m.node_name, m.auth_key, m.correlation_id, m.proto_type) == (
        2001,
        "edge-1",
        "myHep",
        "c@h",
        100,
    )
    assert [t for _, t in m.chunk_ids()][:4] == [1, 2, 5, 6]


@pytest.mark.parametrize(
    "proto, expected",
    [("sip", 1), ("rtcp", 5), ("xlog", 100), ("58", 58), ("0x58", 88), ("rest", 88), ("255", 255)],
)
def test_proto_names_and_numbers(proto, expected):
    r = run(["encode", *OPTS, "--proto", proto, "--payload", "x"])
    assert decode(r.packets()[0]).proto_type == expected


@pytest.mark.parametrize(
    "ip_proto, expected",
    [("udp", 17), ("tcp", 6), ("sctp", 132), ("tls", 22), ("ws", 50), ("47", 47)],
)
def test_ip_proto(ip_proto, expected):
    r = run(["encode", *OPTS, "--ip-proto", ip_proto, "--payload", "x"])
    assert decode(r.packets()[0]).ip_proto == expected


def test_time_forms():
    for text, ts in (
        ("1700000000", (1700000000, 0)),
        ("1700000000.5", (1700000000, 500000)),
        ("2023-11-14T22:13:20", (1700000000, 0)),
        ("2023-11-15T00:13:20+02:00", (1700000000, 0)),
    ):
        m = decode(run(["encode", "--time", text, "--payload", "x"]).packets()[0])
        assert (m.ts_sec, m.ts_usec) == ts


def test_default_time_is_now():
    import time

    before = int(time.time())
    m = decode(run(["encode", "--payload", "x"]).packets()[0])
    assert before <= m.ts_sec <= int(time.time()) + 1


def test_payload_from_file_and_stdin(tmp_path):
    f = tmp_path / "msg.sip"
    f.write_bytes(b"INVITE sip:a SIP/2.0\r\n\xff\r\n")
    assert decode(run(["encode", "--payload", f"@{f}"]).packets()[0]).payload == f.read_bytes()
    r = run(["encode", "--payload", "-"], stdin=b"from stdin\r\n")
    assert decode(r.packets()[0]).payload == b"from stdin\r\n"


@pytest.mark.parametrize("algo", ["gzip", "zlib"])
def test_compress(algo):
    r = run(["encode", *OPTS, "--payload", "x" * 500, "--compress", algo])
    data = r.packets()[0]
    m = decode(data)
    assert (m.payload, m.compression) == (b"x" * 500, algo)
    assert (0, 0x10) in m.chunk_ids() and len(data) < 300


def test_count_repeats():
    r = run(["encode", *OPTS, "--payload", "x", "--count", "3"])
    pkts = r.packets()
    assert len(pkts) == 3 and len(set(pkts)) == 1


@pytest.mark.parametrize("version", ["1", "2"])
def test_v1_v2(version):
    sip = "OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n"
    r = run(
        ["encode", *OPTS, "--version", version, "--payload", sip, "--capture-id", "7"]
        if version == "2"
        else ["encode", *OPTS, "--version", version, "--payload", sip]
    )
    data = r.out  # one v1/v2 packet, framed by its SIP message (issue 14 #6)
    m = decode(data, strict=True)
    assert m.version == int(version) and m.payload == sip.encode() and data[1] == 16
    if version == "2":
        assert (m.ts_sec, m.ts_usec, m.capture_id) == (1700000000, 123456, 7)


# ---------------------------------------------------------------------------
# --chunk
# ---------------------------------------------------------------------------
def test_every_chunk_form(tmp_path):
    f = tmp_path / "blob"
    f.write_bytes(b"\x00\x01\x02")
    r = run(
        [
            "encode",
            *OPTS,
            "--payload",
            "p",
            "--chunk",
            "correlation_id=abc",
            "--chunk",
            "0x0013=node",
            "--chunk",
            "14=key",
            "--chunk",
            "vlan=42",
            "--chunk",
            "mos=0x1c2",
            "--chunk",
            "src_mac=00:11:22:33:44:55",
            "--chunk",
            "0x0003:0x0020=42",
            "--chunk",
            "0x0008:0x0080=hex:0a0b",
            "--chunk",
            "0x0008:0x0085=b64:Cgs=",
            "--chunk",
            f"0x0008:0x0086=@{f}",
            "--chunk",
            "0x00fe=text:@literal",
        ]
    )
    assert r.code == 0
    m = decode(r.packets()[0])
    assert (m.correlation_id, m.node_name, m.auth_key) == ("abc", "node", "key")
    assert m.extra == {"vlan": 42, "mos": 450, "src_mac": "00:11:22:33:44:55"}
    raw = [(e[0], e[1], e[2]) for e in m.layout if type(e) is tuple]
    assert raw == [
        (3, 0x20, b"42"),
        (8, 0x80, b"\n\x0b"),
        (8, 0x85, b"\n\x0b"),
        (8, 0x86, b"\x00\x01\x02"),
        (0, 0xFE, b"@literal"),
    ]
    assert m.chunk_ids()[-1:] == [(0, 0x0F)]  # the payload last, after the raw chunks


def test_chunk_overrides_option():
    r = run(
        [
            "encode",
            *OPTS,
            "--correlation-id",
            "a",
            "--chunk",
            "correlation_id=b",
            "--chunk",
            "src_port=9",
            "--payload",
            "p",
        ]
    )
    m = decode(r.packets()[0])
    assert (m.correlation_id, m.src_port) == ("b", 9)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--chunk", "nope=1"], "unknown chunk 'nope'"),
        (["--chunk", "vlan"], "expected CHUNK=VALUE"),
        (["--chunk", "vlan=99999"], "expected 0..65535"),
        (["--chunk", "src_ipv4=::1"], "expects an IPv4 address"),
        (["--chunk", "payload=@/nonexistent/x"], "cannot read /nonexistent/x"),
        (["--src", "10.0.0.1"], "missing :PORT"),
        (["--src", "host:5060"], "is not ADDR:PORT"),
        (["--src", "[::1:5060"], "missing ']'"),
        (["--src", "10.0.0.1:70000"], "port must be"),
        (["--src", "10.0.0.1:1", "--dst", "[::1]:2"], "both be IPv4 or both IPv6"),
        (["--proto", "nosuch"], "unknown protocol type"),
        (["--ip-proto", "quic"], "use udp, tcp"),
        (["--time", "yesterday"], "neither ISO 8601 nor epoch"),
        (["--capture-id", "-1"], "--capture-id"),
        (["--payload", "@/nonexistent/x"], "cannot read /nonexistent/x"),
        (["--version", "2", "--correlation-id", "x"], "HEPv2 has no chunks: --correlation-id"),
        (["--version", "1", "--chunk", "vlan=1"], "HEPv1 has no chunks: --chunk"),
        (["--version", "1", "--capture-id", "3"], "HEPv1 has no capture id"),
        (["--version", "2", "--capture-id", "70000"], "16 bits"),
        (["--version", "2", "--payload", "x"], "--payload: HEPv2 written raw"),
        (["--version", "1"], "--payload: HEPv1 written raw"),
        (["--version", "2", "--proto", "log", "--payload", "x", "-f", "pcap"],
         "--proto log: HEPv2 carries SIP only"),
        (["--version", "1", "--proto", "0x58", "--payload", "x", "-f", "jsonl"],
         "--proto rest: HEPv1 carries SIP only"),
        (["--scenario", "call", "--src", "10.0.0.1:1"], "--src cannot be used with --scenario"),
        (["--scenario", "call", "--payload", "x"], "--payload cannot be used with --scenario"),
        (["--scenario", "call", "--opensips-mode", "json"], "--opensips-mode needs --scenario"),
        (["--opensips-mode", "json"], "--opensips-mode needs --scenario opensips"),
        (["--from", "x", "--payload", "y"], "--payload cannot be used with --from"),
        (["--from", "x", "--scenario", "call"], "cannot be used together"),
    ],
)
def test_usage_errors_are_one_line(args, message, capsys):
    r = run(["encode", *args])
    err = capsys.readouterr().err + r.err
    assert r.code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert r.out == b"" and "Traceback" not in err


def test_v1_v2_write_what_decode_reads_back(tmp_path):
    """issue 14 #6: what v1/v2 can carry is written (and read back); the rest is refused."""
    sip = "OPTIONS sip:a@b SIP/2.0\r\nCall-ID: c1\r\nContent-Length: 2\r\n\r\nhi"
    for version in ("1", "2"):
        r = run(["encode", "--version", version, "--proto", "sip", "--payload", sip,
                 "--count", "2"])
        assert r.code == 0
        got = [decode(p) for p in r.packets()]
        assert [(m.version, m.payload) for m in got] == [(int(version), sip.encode())] * 2
        # a datagram carries any payload: pcap output is unchanged
        out = tmp_path / f"v{version}.pcap"
        r = run(["encode", "--version", version, "--payload", "x", "-f", "pcap",
                 "-o", str(out)])
        assert r.code == 0
        assert [p.payload for p in map(decode, (x.data for x in iter_input(str(out))))] == [b"x"]


def test_binary_refused_on_a_terminal(capsys):
    for fmt in ([], ["-f", "raw"], ["-f", "pcap"]):
        r = run(["encode", "--payload", "x", *fmt], stdout_isatty=True)
        err = capsys.readouterr().err
        assert r.code == 2 and r.out == b""
        assert "Error: refusing to write" in err and "use -o FILE or a pipe" in err
    r = run(["encode", "--payload", "x", "-f", "hex"], stdout_isatty=True)
    assert r.code == 0 and r.text.startswith("# packet 0: HEPv3")


def test_output_file_is_not_created_on_a_bad_value(tmp_path, capsys):
    out = tmp_path / "out.hep"
    r = run(
        ["encode", "--version", "2", "--capture-id", "70000", "-o", str(out)], stdout_isatty=True
    )
    assert r.code != 0 and not out.exists()
    r = run(["encode", "--payload", "x", "-o", str(out)], stdout_isatty=True)
    assert r.code == 0 and decode(out.read_bytes()).payload == b"x"


# ---------------------------------------------------------------------------
# output formats
# ---------------------------------------------------------------------------
def test_hex_output():
    r = run(["encode", *OPTS, "--payload", "hello", "--count", "2", "-f", "hex"])
    text = r.text
    assert text.startswith("# packet 0: HEPv3, 104 bytes\n0000  48 45 50 33")
    assert "\n\n# packet 1: HEPv3, 104 bytes\n" in text
    assert '0x0000:0x000f payload = 5 bytes: "hello"' in text


def test_jsonl_output():
    r = run(["encode", *OPTS, "--payload", "hello", "-f", "jsonl", "--count", "2"])
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [rec["index"] for rec in lines] == [0, 1]
    assert lines[0]["payload"] == "hello" and lines[0]["time"] == "2023-11-14T22:13:20.123456Z"
    # jsonl in = the same packet
    again = run(["encode"], stdin=r.out)
    assert again.packets() == run(["encode", *OPTS, "--payload", "hello"]).packets() * 2


def test_pcap_output(tmp_path):
    out = tmp_path / "x.pcap"
    r = run(["encode", "--scenario", "call", "--time", T0, "-f", "pcap", "-o", str(out)])
    assert r.code == 0
    msgs = scenario("call", start=(1700000000, 123456))
    found = list(iter_input(str(out)))
    assert [p.data for p in found] == [encode(m) for m in msgs]
    assert {(p.hep_transport, p.hep_src, p.hep_dst) for p in found} == {
        ("udp", "127.0.0.1:9061", "127.0.0.1:9060")
    }
    assert [p.outer_ts for p in found] == [(m.ts_sec, m.ts_usec) for m in msgs]


def test_pcap_hep_dst_ipv6_and_v1_time(tmp_path):
    out = tmp_path / "x.pcap"
    r = run(
        [
            "encode",
            "--version",
            "1",
            "--payload",
            "OPTIONS",
            "--time",
            T0,
            "-f",
            "pcap",
            "--hep-dst",
            "[::1]:9999",
            "-o",
            str(out),
        ]
    )
    assert r.code == 0
    (p,) = iter_input(str(out))
    assert (p.hep_src, p.hep_dst, p.outer_ts) == ("[::1]:9061", "[::1]:9999", (1700000000, 123456))
    r = run(
        [
            "encode",
            "--payload",
            "x",
            "-f",
            "pcap",
            "--hep-src",
            "10.0.0.1:1",
            "--hep-dst",
            "[::1]:2",
            "-o",
            str(out),
        ]
    )
    assert r.code == 2


# ---------------------------------------------------------------------------
# the pcap writer
# ---------------------------------------------------------------------------
def test_udp_frame_ipv4():
    frame = udp_frame(b"HEP3", ("10.0.0.1", 5000), ("10.0.0.2", 9060), ident=7)
    assert frame[12:14] == b"\x08\x00"
    ip = frame[14:34]
    assert ip[0] == 0x45 and struct.unpack(">H", ip[2:4])[0] == 20 + 8 + 4
    assert ip_checksum(ip) == 0  # header checksum verifies
    assert ip[9] == 17 and ip[12:16] == bytes([10, 0, 0, 1])
    assert struct.unpack(">HHHH", frame[34:42]) == (5000, 9060, 12, 0)
    assert frame[42:] == b"HEP3"


def test_udp_frame_ipv6_checksum():
    frame = udp_frame(b"HEP3x", ("2001:db8::1", 5000), ("::1", 9060))
    assert frame[12:14] == b"\x86\xdd"
    ip6 = frame[14:54]
    assert ip6[0] >> 4 == 6 and struct.unpack(">H", ip6[4:6])[0] == 13 and ip6[6] == 17
    udp = frame[54:]
    pseudo = ip6[8:40] + struct.pack(">IxxxB", len(udp), 17)
    assert ip_checksum(pseudo + udp) == 0  # checksum verifies
    with pytest.raises(ValueError, match="same IP version"):
        udp_frame(b"", ("10.0.0.1", 1), ("::1", 2))
    with pytest.raises(ValueError, match="does not fit"):
        udp_frame(b"x" * 65530, ("10.0.0.1", 1), ("10.0.0.2", 2))


def test_pcap_writer_streams_and_dpkt_reads_it():
    import dpkt

    f = io.BytesIO()
    w = PcapWriter(f)
    assert len(f.getvalue()) == 24  # header written at once
    w.write(b"one", ts=(1700000000, 5), src=("10.0.0.1", 1))
    w.write(b"two", ts=(1700000001, 6), src=("2001:db8::1", 2), dst=("::1", 9060))
    f.seek(0)
    r = dpkt.pcap.Reader(f)
    assert r.datalink() == dpkt.pcap.DLT_EN10MB
    got = [(ts, dpkt.ethernet.Ethernet(buf).data.data.data) for ts, buf in r]
    assert [g[1] for g in got] == [b"one", b"two"]
    assert got[0][0] == pytest.approx(1700000000.000005)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("10.0.0.1:5060", ("10.0.0.1", 5060)),
        ("[::1]:9060", ("::1", 9060)),
        ("[2001:db8::0001]:1", ("2001:db8::1", 1)),
    ],
)
def test_parse_endpoint(text, expected):
    assert parse_endpoint(text) == expected
    assert parse_endpoint("::1", default_port=7) == ("::1", 7)


# ---------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, kw",
    [
        (["--scenario", "call"], {}),
        (["--scenario", "opensips"], {"mode": "json"}),
        (["--scenario", "opensips", "--opensips-mode", "homer5"], {"mode": "homer5"}),
    ],
)
def test_scenarios(args, kw):
    r = run(["encode", *args, "--time", T0, "--seed", "9"])
    assert r.code == 0
    name = args[1]
    assert r.packets() == [
        encode(m) for m in scenario(name, seed=9, start=(1700000000, 123456), **kw)
    ]


def test_scenario_count_and_overrides():
    r = run(
        [
            "encode",
            "--scenario",
            "call",
            "--time",
            T0,
            "--count",
            "2",
            "--capture-id",
            "77",
            "--node-name",
            "n",
            "--chunk",
            "0x0003:0x0020=1",
        ]
    )
    msgs = [decode(p) for p in r.packets()]
    one = scenario("call", seed=0, start=(1700000000, 123456))
    two = scenario("call", seed=1, start=(0, 0))
    assert len(msgs) == len(one) + len(two)
    assert all(m.capture_id == 77 and m.node_name == "n" for m in msgs)
    # scenario packets are built from fields: the raw chunk goes before the payload
    assert all(m.chunk_ids()[-2:] == [(3, 0x20), (0, 0x0F)] for m in msgs)
    second = msgs[len(one) :]
    assert (second[0].ts_sec, second[0].ts_usec) > (msgs[len(one) - 1].ts_sec, 0)
    call_ids = {m.correlation_id for m in msgs if m.correlation_id}
    assert len(call_ids) == 2  # seeds 0 and 1: two different calls


# ---------------------------------------------------------------------------
# records in
# ---------------------------------------------------------------------------
def _records(path: Path) -> bytes:
    """What ``decode -f jsonl`` writes, made through the library: to_record + index/frame."""
    lines = []
    for p in iter_input(str(path)):
        rec = {"index": p.index, "frame": p.frame, **to_record(heptool.decode(p.data))}
        lines.append(json.dumps(rec))
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_records_reencode_byte_exact(path):
    original = [p.data for p in iter_input(str(path))]
    r = run(["encode"], stdin=_records(path))
    assert r.code == 0
    assert r.packets() == original


@pytest.mark.skipif("decode" not in COMMANDS, reason="heptool decode is not registered yet")
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_decode_jsonl_pipe_encode_byte_exact(path, tmp_path):
    original = b"".join(p.data for p in iter_input(str(path)))
    jsonl = run(["decode", "-f", "jsonl", str(path)])
    assert jsonl.code == 0, jsonl.err
    f = tmp_path / "x.jsonl"
    f.write_bytes(jsonl.out)
    r = run(["encode", "--from", str(f)])
    assert r.code == 0 and r.out == original


def test_hand_written_record_defaults():
    rec = {"payload": "hello", "src_ip": "2001:db8::1", "proto": "log", "correlation_id": "c"}
    r = run(["encode", "--time", T0], stdin=json.dumps(rec).encode())
    m = decode(r.packets()[0])
    assert (m.family, m.ip_proto, m.src_ip, m.dst_ip, m.src_port, m.dst_port) == (
        10,
        17,
        "2001:db8::1",
        "::1",
        5060,
        5060,
    )
    assert (m.ts_sec, m.ts_usec, m.proto_type, m.capture_id, m.payload) == (
        1700000000,
        123456,
        100,
        1,
        b"hello",
    )
    # a key present with null stays absent
    r = run(["encode"], stdin=json.dumps({"payload": "x", "capture_id": None}).encode())
    assert decode(r.packets()[0]).capture_id is None


def test_records_with_overrides_and_version(tmp_path):
    f = tmp_path / "r.jsonl"
    f.write_bytes(_records(VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"))
    r = run(["encode", "--from", str(f), "--capture-id", "9", "--chunk", "vlan=3", "-f", "jsonl"])
    recs = [json.loads(line) for line in r.text.splitlines()]
    assert len(recs) == 60 and {(x["capture_id"], x["vlan"]) for x in recs} == {(9, 3)}
    r = run(["encode", "--from", str(f), "--version", "2"])
    assert {decode(p).version for p in r.packets()} == {2}


def test_from_hep_stream_and_pcap(tmp_path):
    pcap = VECTORS / "sngrep" / "sngrep-hep3-udp.hep.pcap"
    r = run(["encode", "--from", str(pcap)])
    assert r.packets() == [p.data for p in iter_input(str(pcap))]
    assert run(["encode"], stdin=r.out).out == r.out


def test_bad_records_exit_3(tmp_path, capsys):
    r = run(["encode"], stdin=b'{"payload": "x"}\n{"src_ip": "nope"}\n')
    err = capsys.readouterr().err
    assert r.code == 3 and "Error: line 2:" in err and len(r.packets()) == 1
    r = run(["encode"], stdin=b"\x00\x01garbage")
    assert r.code == 3 and "not a pcap, pcapng, HEP stream or JSON Lines" in capsys.readouterr().err
    r = run(["encode", "--from", str(tmp_path / "missing.jsonl")])
    assert r.code == 3 and "missing.jsonl" in capsys.readouterr().err
    r = run(["encode", "--count", "2"], stdin=b'{"payload": "x"}\n')
    assert r.code == 2


def test_empty_stdin_builds_from_options():
    r = run(["encode", "--time", T0], stdin=b"", stdin_isatty=False)
    m = decode(r.packets()[0])
    assert m.payload == b"" and m.ts_sec == 1700000000


# ---------------------------------------------------------------------------
# a real process: pipes, completion, help
# ---------------------------------------------------------------------------
def _heptool(args, stdin=b"", env=None):
    return subprocess.run(
        [sys.executable, "-m", "heptool", *args],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_real_pipe_scenario_to_records_and_back():
    a = _heptool(["encode", "--scenario", "opensips", "--time", T0])
    assert a.returncode == 0 and a.stderr == b""
    b = _heptool(["encode", "-f", "jsonl"], stdin=a.stdout)
    c = _heptool(["encode"], stdin=b.stdout)
    assert c.returncode == 0 and c.stdout == a.stdout


def test_real_devnull_stdin():
    p = subprocess.run(
        [sys.executable, "-m", "heptool", "encode", "--payload", "x"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert p.returncode == 0 and decode(p.stdout).payload == b"x"
    p = subprocess.run(
        [sys.executable, "-m", "heptool", "encode", "--time", T0],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert p.returncode == 0 and decode(p.stdout).payload == b""


def _complete(words: str) -> list[str]:
    p = _heptool(
        [],
        env={
            "_HEPTOOL_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        },
    )
    return [line.split(",", 1)[1] for line in p.stdout.decode().splitlines()]


def test_shell_completion_of_chunks_and_protos():
    assert {"correlation_id", "capture_id"} <= set(_complete("heptool encode --chunk c"))
    assert "vlan" in _complete("heptool encode --chunk ")
    assert _complete("heptool encode --proto rt") == [
        "rtcp",
        "rtcp_json",
        "rtcp_pion",
        "rtcpxr",
        "rtp",
        "rtpagent",
        "rtsp",
    ]
    assert "opensips" in _complete("heptool encode --scenario ")


def test_help_has_examples():
    p = _heptool(["encode", "--help"])
    assert p.returncode == 0
    text = p.stdout.decode()
    assert "heptool encode --scenario call" in text and "--chunk SPEC" in text


@pytest.mark.parametrize(("record", "message"), [
    # float("1e400") is inf: int() raised OverflowError ("internal error")
    (b'{"time": "1e400", "payload": "x"}', "is not a number of seconds"),
    (b'{"time": "nan", "payload": "x"}', "is not a number of seconds"),
    # int() of a record's v12_length raised ValueError out of from_record
    (b'{"version": 1, "src_ip": "1.2.3.4", "dst_ip": "1.2.3.4", "v12_length": "x"}',
     "v12_length must be an integer 0..255"),
    # b"\0" * 10**11 was a MemoryError
    (b'{"version": 1, "src_ip": "1.2.3.4", "dst_ip": "1.2.3.4", "trailer_nuls": "99999999999"}',
     "trailer_nuls must be an integer 0..65535"),
    (b'{"version": 1, "src_ip": "1.2.3.4", "dst_ip": "1.2.3.4", "trailer_nuls": -3}',
     "trailer_nuls must be an integer 0..65535"),
    (b'{"ts_sec": "' + b"9" * 5000 + b'", "payload": "x"}', "bad record value"),
])
def test_hostile_record_numbers_are_bad_input(record, message, capsys):
    r = run(["encode"], stdin=b'{"payload": "ok"}\n' + record + b'\n{"payload": "ok"}\n')
    err = capsys.readouterr().err
    assert r.code == 3, err
    assert "internal error" not in err and "Error: line 2: " in err and message in err
    assert len(r.packets()) == 1  # encode stops at a bad record (test_bad_records_exit_3)


def test_record_time_fraction_digits_are_ascii():
    from heptool.core.record import parse_time

    assert parse_time("12.5") == (12, 500000)
    assert parse_time("12.000001") == (12, 1)
    with pytest.raises(heptool.HepValueError):
        parse_time("12.²")
    with pytest.raises(heptool.HepValueError):
        parse_time(float("inf"))


@pytest.mark.parametrize(("record", "shown"), [
    # int("0x" + 5000 f's, 0) is fine, but repr() of it in the error raised ValueError
    (b'{"capture_id": "0x' + b"f" * 5000 + b'", "payload": "x"}', "an integer of 20000 bits"),
    (b'{"time": "-1e300", "payload": "x"}', "a negative integer of 997 bits"),
])
def test_huge_record_ints_are_named_not_printed(record, shown, capsys):
    for cmd in (["encode"], ["decode", "-f", "jsonl"]):
        r = run(cmd, stdin=record + b"\n")
        err = capsys.readouterr().err + r.err
        assert r.code == 3 and "internal error" not in err and shown in err, err
        assert len(err) < 300
