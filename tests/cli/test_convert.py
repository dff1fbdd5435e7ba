"""``heptool convert`` through the CLI: both directions, formats, filters, errors, live capture.

The interop proof against tshark and sngrep is tests/interop/test_tshark.py; this file checks
the command's behaviour with heptool's own reader and dpkt.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from heptool.capture.inputs import iter_input, to_message
from heptool.capture.pcap import extract_transport, open_capture
from heptool.cli import main
from heptool.cli.env import Environment
from heptool.cli.exit import ExitStatus

ROOT = Path(__file__).resolve().parents[2]
KAM = ROOT / "tests" / "vectors" / "kamailio"
OPENSIPS = ROOT / "tests" / "vectors" / "opensips" / "opensips-3.4.15-hep3-udp.pcap"


class Result:
    def __init__(self, code: int, out: bytes, err: bytes) -> None:
        self.exit_code = code
        self.stdout_bytes = out
        self.stdout = out.decode("utf-8", "replace")
        self.stderr = err.decode("utf-8", "replace")


def run(args, *, stdin: bytes | None = None, tty: bool = False) -> Result:
    runner = CliRunner()
    with runner.isolation(input=stdin) as streams:
        env = Environment(stdout_isatty=tty, stderr_isatty=False, stdin_isatty=False)
        status = main(["convert", *map(str, args)], env=env)
        sys.stdout.flush()
        sys.stderr.flush()
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return Result(status, out, err)


def transports(path: Path) -> list:
    return [extract_transport(f.linktype, f.data) for f in open_capture(path)]


def hep_messages(path_or_file) -> list:
    return [to_message(p) for p in iter_input(path_or_file)]


# -- HEP -> packets ----------------------------------------------------------------------

def test_hep_to_pcap_every_kamailio_capture(tmp_path):
    for name in ("hep1-udp", "hep2-udp", "hep3-udp", "hep3-tcp"):
        out = tmp_path / f"{name}.pcap"
        r = run([KAM / f"kamailio-{name}.hep.pcap", "-o", out])
        assert r.exit_code == 0, r.stderr
        ts = [t for t in transports(out) if t.payload]
        assert len(ts) == 60
        assert {t.family for t in ts} == {4, 6} and {t.proto for t in ts} == {6, 17}
        assert out.read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"  # classic pcap


def test_pcapng_by_extension_carries_comments(tmp_path):
    out = tmp_path / "calls.pcapng"
    assert run([KAM / "kamailio-hep3-udp.hep.pcap", "-o", out]).exit_code == 0
    raw = out.read_bytes()
    assert raw[:4] == b"\x0a\x0d\x0d\x0a"
    assert raw.count(b"HEPv3 proto=sip(1)") == 60
    assert len(list(open_capture(out))) == 60 + 4 * 3


def test_call_id_extracts_one_call(tmp_path):
    out = tmp_path / "one.pcap"
    r = run([KAM / "kamailio-hep3-udp.hep.pcap", "--call-id", "1-14465@127.0.0.1", "-o", out])
    assert r.exit_code == 0
    data = [t.payload for t in transports(out) if t.payload]
    assert len(data) == 13 and all(b"Call-ID: 1-14465@127.0.0.1" in p for p in data)


def test_opensips_non_sip_kept_as_udp_with_comments(tmp_path):
    out = tmp_path / "o.pcapng"
    assert run([OPENSIPS, "-o", out]).exit_code == 0
    n_in = len(hep_messages(OPENSIPS))
    raw = out.read_bytes()
    for kind in (b"proto=log(100)", b"proto=rest(88)", b"proto=net(89)", b"proto=mi(87)"):
        assert kind in raw
    # every message is there: one UDP datagram each for non-SIP, TCP data for SIP/TCP/TLS/WS
    assert raw.count(b"HEPv3 proto=") == n_in


def test_hep_stream_and_jsonl_inputs_from_stdin(tmp_path):
    hep = run([KAM / "kamailio-hep3-udp.sip.pcap", "--to", "hep"]).stdout_bytes
    r = run(["-", "-o", tmp_path / "a.pcap"], stdin=hep)
    # the wire's 3 TCP connections (Kamailio's HEP has 4: see tests/interop/test_tshark.py)
    assert r.exit_code == 0 and len(list(open_capture(tmp_path / "a.pcap"))) == 60 + 3 * 3
    jl = subprocess.run([sys.executable, "-m", "heptool", "decode", "-f", "jsonl",
                         str(KAM / "kamailio-hep3-udp.hep.pcap")], capture_output=True,
                        check=True).stdout
    r = run(["-", "-o", tmp_path / "b.pcap"], stdin=jl)
    assert r.exit_code == 0 and len(list(open_capture(tmp_path / "b.pcap"))) == 60 + 12


def test_hepv1_without_an_outer_time_warns(tmp_path):
    jl = subprocess.run([sys.executable, "-m", "heptool", "decode", "-f", "jsonl",
                         str(KAM / "kamailio-hep1-udp.hep.pcap")], capture_output=True,
                        check=True).stdout
    # decode's records of a capture's HEPv1 carry its frame time (frame_time): used
    r = run(["-", "-o", tmp_path / "v1a.pcap"], stdin=jl)
    assert r.exit_code == 0 and r.stderr == ""
    assert (tmp_path / "v1a.pcap").read_bytes() == run(
        [KAM / "kamailio-hep1-udp.hep.pcap", "-o", "-"]).stdout_bytes  # as from the capture
    # without it (records written by hand, a HEP stream) there is no time: said
    jl = b"".join(json.dumps({k: v for k, v in json.loads(x).items() if k != "frame_time"})
                  .encode() + b"\n" for x in jl.splitlines())
    r = run(["-", "-o", tmp_path / "v1.pcap"], stdin=jl)
    assert r.exit_code == 0
    assert r.stderr.startswith("Warning: 60 HEPv1 messages have no time")
    # from the capture itself, the outer capture time is used: no warning
    r = run([KAM / "kamailio-hep1-udp.hep.pcap", "-o", tmp_path / "v1b.pcap"])
    assert r.exit_code == 0 and r.stderr == ""
    assert {f.ts_sec for f in open_capture(tmp_path / "v1b.pcap")} != {0}


def test_hep_input_refuses_hep_and_jsonl_output():
    r = run([KAM / "kamailio-hep3-udp.hep.pcap", "--to", "jsonl"])
    assert r.exit_code == ExitStatus.USAGE
    assert "Error: the input is HEP already" in r.stderr and "heptool decode" in r.stderr


def test_corrupt_hep_reported_and_conversion_goes_on(tmp_path):
    good = run([KAM / "kamailio-hep3-udp.sip.pcap", "--to", "hep"]).stdout_bytes
    bad = b"HEP3\x00\x0c\x00\x00\x00\x01\x00\x07"  # its one chunk runs past the end
    r = run(["-", "-o", tmp_path / "x.pcap"], stdin=bad + good)
    assert r.exit_code == ExitStatus.BAD_INPUT
    assert r.stderr.startswith("Warning: packet 0 (byte 0)"), r.stderr
    assert len(list(open_capture(tmp_path / "x.pcap"))) == 1 + 60 + 3 * 3


# -- SIP -> HEP ----------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1", "2", "3"])
def test_sip_to_hep_pcap(tmp_path, version):
    out = tmp_path / "z.hep.pcap"
    r = run([KAM / "kamailio-hep3-tcp.sip.pcap", "-o", out, "--hep-version", version,
             "--capture-id", "2001", "--hep-dst", "[::1]:9999", "-v"])
    assert r.exit_code == 0, r.stderr
    assert "-> 60 HEP messages (45 over UDP, 15 over TCP)" in r.stderr
    outer = transports(out)
    assert {(t.src, t.sport, t.dst, t.dport) for t in outer} == {("::1", 9061, "::1", 9999)}
    msgs = hep_messages(out)
    assert len(msgs) == 60 and {m.version for m in msgs} == {int(version)}
    assert {m.capture_id for m in msgs} == ({None} if version == "1" else {2001})


def test_sip_to_hep_options_reach_the_packets(tmp_path):
    r = run([KAM / "kamailio-hep3-udp.sip.pcap", "--to", "hep", "--node-name", "agent1",
             "--auth-key", "s3cret", "--correlation-id-from", "call-id", "--ports", "25080"])
    msgs = hep_messages(__import__("io").BytesIO(r.stdout_bytes))
    assert msgs and all(m.src_port == 25080 or m.dst_port == 25080 for m in msgs)
    assert {m.node_name for m in msgs} == {"agent1"} and {m.auth_key for m in msgs} == {"s3cret"}
    assert all(m.correlation_id and m.correlation_id.encode() in m.payload for m in msgs)


def test_sip_to_jsonl_and_gzip_input(tmp_path):
    gz = tmp_path / "sip.pcap.gz"
    gz.write_bytes(gzip.compress((KAM / "kamailio-hep3-udp.sip.pcap").read_bytes()))
    r = run([gz, "--to", "jsonl", "--call-id", "1-14467@::1"])
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(recs) == 13 and all(x["sip"]["call_id"] == "1-14467@::1" for x in recs)
    assert {x["family"] for x in recs} == {"ipv4", "ipv6"}


def test_filter_on_a_sip_capture(tmp_path):
    r = run([KAM / "kamailio-hep3-tcp.sip.pcap", "--filter", "tcp and dst port 25071",
             "--to", "jsonl"])
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.exit_code == 0 and [x["sip"].get("method") for x in recs] == ["INVITE", "ACK", "BYE"]
    r = run([KAM / "kamailio-hep3-tcp.sip.pcap", "--filter", "ip6 or src port 25080",
             "--to", "jsonl"])
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(recs) == 13 and all(x["family"] == "ipv6" or x["src_port"] == 25080 for x in recs)


def test_filter_refused_for_hep_input():
    r = run([KAM / "kamailio-hep3-udp.hep.pcap", "--filter", "udp", "-o", "/dev/null"])
    assert r.exit_code == ExitStatus.USAGE and "--filter selects packets" in r.stderr


def test_from_overrides_detection(tmp_path):
    # a HEP capture read as SIP: no SIP in it
    r = run([KAM / "kamailio-hep3-udp.hep.pcap", "--from", "sip", "--to", "jsonl"])
    assert r.exit_code == 0 and r.stdout == ""


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["--ports", "70000"], ["--ports", "5-x"], ["--filter", "vlan 3"], ["--filter", "(udp"],
    ["--duration", "1"],
    ["--hep-dst", "nohost"], ["--hep-src", "::1", "--hep-dst", "127.0.0.1:1"],
    ["--proto-type", "bogus"], ["--grep", "("],
])
def test_usage_errors(args):
    r = run([KAM / "kamailio-hep3-udp.sip.pcap", "--to", "jsonl", *args])
    assert r.exit_code == ExitStatus.USAGE, r.stderr
    assert r.stderr.startswith("Error: ") or "Usage:" in r.stderr


def test_binary_refused_on_terminal():
    r = run([KAM / "kamailio-hep3-udp.hep.pcap"], tty=True)
    assert r.exit_code == ExitStatus.USAGE and "terminal" in r.stderr


def test_not_a_capture_is_bad_input(tmp_path):
    f = tmp_path / "x.txt"
    f.write_bytes(b"hello, this is not a capture\n")
    r = run([f, "-o", tmp_path / "o.pcap"])
    assert r.exit_code == ExitStatus.BAD_INPUT
    assert r.stderr.startswith("Error: ") and len(r.stderr.strip().splitlines()) == 1


def test_truncated_sip_capture_is_bad_input_after_good_part(tmp_path):
    data = (KAM / "kamailio-hep3-udp.sip.pcap").read_bytes()
    f = tmp_path / "cut.pcap"
    f.write_bytes(data[: len(data) // 2])
    r = run([f, "--to", "jsonl", "--from", "sip"])
    assert r.exit_code == ExitStatus.BAD_INPUT and r.stdout.count("\n") > 10


# -- live capture on loopback ------------------------------------------------------------------

def _can_capture() -> str | None:
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.close()
        return None
    except (PermissionError, AttributeError, OSError) as e:
        return f"live capture not permitted here ({e})"


def test_live_capture_on_loopback(tmp_path):
    why = _can_capture()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]  # a port nothing else on lo uses while the test runs
    payloads = [f"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nCall-ID: live{i}@h\r\nCSeq: 1 OPTIONS\r\n"
                f"Content-Length: 0\r\n\r\n".encode() for i in range(5)]
    stop = threading.Event()

    def sender() -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        time.sleep(0.8)  # let the capture socket open (rounds repeat in case it is late)
        for _round in range(20):
            if stop.is_set():
                break
            for p in payloads:
                s.sendto(p, ("127.0.0.1", port))
            time.sleep(0.25)
        s.close()

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    out = tmp_path / "live.hep.pcap"
    try:
        r = run(["-i", "lo", "--filter", f"udp port {port}", "--count", "5", "--duration", "10",
                 "-o", out])
    finally:
        stop.set()
        th.join(timeout=10)
        probe.close()
    assert r.exit_code == 0, r.stderr
    msgs = hep_messages(out)
    # each once (lo's outgoing copies dropped); the capture may open in the middle of a round
    assert sorted(m.payload for m in msgs) == sorted(payloads)
    assert all(m.dst_port == port and m.src_ip == "127.0.0.1" for m in msgs)


def test_live_and_input_exclusive():
    r = run([KAM / "kamailio-hep3-udp.sip.pcap", "-i", "lo", "--to", "jsonl"])
    assert r.exit_code == ExitStatus.USAGE


# -- HEPv1/v2 over TCP (Kamailio siptrace, hep_version 2, TCP) ---------------------------

KAM_V2_TCP = ROOT / "tests" / "vectors" / "local" / "kamailio-hep2-tcp.hep.pcap"


def _sip_messages(path: Path) -> list[bytes]:
    """The SIP messages of a plain SIP capture, read back with heptool's SIP reader."""
    from heptool.capture.convert import iter_sip_packets

    return [p.payload for p in iter_sip_packets(str(path))]


def test_hep2_over_tcp_is_detected_and_converted(tmp_path):
    """`--from auto` looked only for HEP3 magic in TCP: Kamailio's HEPv2 over TCP was taken
    for a SIP capture and gave an empty 24-byte pcap with exit 0."""
    decoded = hep_messages(KAM_V2_TCP)
    assert len(decoded) == 18 and {m.version for m in decoded} == {2}
    out = tmp_path / "sip.pcap"
    r = run([KAM_V2_TCP, "-o", out])
    assert r.exit_code == 0, r.stderr
    assert _sip_messages(out) == [m.payload for m in decoded]
    # the same as when the direction is given
    forced = tmp_path / "forced.pcap"
    assert run([KAM_V2_TCP, "--from", "hep", "-o", forced]).exit_code == 0
    assert forced.read_bytes() == out.read_bytes()


def test_hep2_over_tcp_capture_frames_what_the_sink_received():
    """The capture's TCP stream is byte for byte what the HEP sink read from Kamailio."""
    stream = KAM_V2_TCP.with_name("kamailio-hep2-tcp.stream.bin").read_bytes()
    assert b"".join(p.data for p in iter_input(KAM_V2_TCP)) == stream


def test_sniff_v12_over_tcp_needs_sip_after_the_header():
    from heptool.capture.pcap import is_hep_stream_start

    head = bytes([2, 16, 2, 6]) + b"\x13\xc4\x13\xc4" + bytes(8) + bytes(12)
    assert is_hep_stream_start(head + b"OPTIONS sip:x SIP/2.0\r\n\r\n")
    assert is_hep_stream_start(head)  # header alone in its segment
    assert not is_hep_stream_start(head + b"\x00\x01binary")
    assert not is_hep_stream_start(head + b"OPTIONS but not a start line\r\n")
    assert is_hep_stream_start(b"HEP3\x00\x06")
    assert not is_hep_stream_start(b"INVITE sip:x SIP/2.0\r\n")


# -- nothing written is never silent (exit status 0: no SIP/HEP is valid input) -----------

@pytest.mark.parametrize(("args", "note"), [
    (["--from", "sip", KAM / "kamailio-hep3-udp.hep.pcap"], "no SIP found (60 frames)"),
    (["--from", "hep", KAM / "kamailio-hep3-udp.sip.pcap"], "no HEP found"),
    ([KAM / "kamailio-hep3-udp.sip.pcap", "--ports", "1"],
     "no SIP found (90 frames; 90 left out by --ports/--filter)"),
    ([KAM / "kamailio-hep3-udp.sip.pcap", "--call-id", "nope"],
     "nothing written: no SIP message matched the filters (60 SIP messages)"),
    ([KAM / "kamailio-hep3-udp.hep.pcap", "--call-id", "nope"],
     "nothing written: no HEP message matched the filters (60 HEP messages)"),
])
def test_nothing_written_says_so(tmp_path, args, note):
    out = tmp_path / "x.pcap"
    r = run([*args, "-o", out])
    assert r.exit_code == ExitStatus.OK
    name = next(a for a in args if isinstance(a, Path))
    assert r.stderr.splitlines() == [f"convert: {name}: {note}"]
    assert len(out.read_bytes()) == 24  # a valid, empty pcap


def test_nothing_written_after_errors_has_only_the_errors(tmp_path):
    r = run(["-", "-o", tmp_path / "x.pcap"], stdin=b"garbage!")
    assert r.exit_code == ExitStatus.BAD_INPUT
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("Error: <stdin>: ")


def test_something_written_has_no_note(tmp_path):
    r = run([KAM / "kamailio-hep3-udp.sip.pcap", "-o", tmp_path / "x.pcap"])
    assert r.exit_code == 0 and r.stderr == ""


# -- bytes skipped in HEP input are damage: a warning and exit 3, as in decode ----------------

def _v2(payload: bytes) -> bytes:
    from heptool import HepMessage, encode

    return encode(HepMessage(version=2, src_ip="10.0.0.1", dst_ip="10.0.0.2", src_port=5060,
                             dst_port=5060, ip_proto=6, ts_sec=1, ts_usec=2, capture_id=3,
                             proto_type=1, payload=payload))


_GOOD = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n"
_BAD = _v2(b"OPTIONS sip:b SIP/2.0\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n")


def _v2_tcp_pcap(path: Path) -> Path:
    import dpkt

    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f)
        seq = 1000
        for i, (flags, data) in enumerate([(dpkt.tcp.TH_SYN, b""), (dpkt.tcp.TH_ACK, _v2(_GOOD)),
                                           (dpkt.tcp.TH_ACK, _BAD), (dpkt.tcp.TH_ACK, _v2(_GOOD))]):
            tcp = dpkt.tcp.TCP(sport=40000, dport=9060, seq=seq, flags=flags, data=data)
            ip = dpkt.ip.IP(src=socket.inet_aton("127.0.0.1"), dst=socket.inet_aton("127.0.0.1"),
                            p=6, data=tcp)
            ip.len = len(ip)
            w.writepkt(bytes(dpkt.ethernet.Ethernet(data=ip)), ts=1_700_000_000 + i)
            seq += len(data) or 1
    return path


@pytest.mark.parametrize("out_name", ["x.pcap", "x.pcapng"])  # fused path, general path
def test_unframable_v2_in_a_tcp_capture_is_a_warning(tmp_path, out_name):
    """A HEPv2-over-TCP packet with a 5,000-digit Content-Length was an internal error, then
    (framing fixed) skipped silently with exit 0; now a warning names the frame, exit 3, and
    the packets around it are converted."""
    src = _v2_tcp_pcap(tmp_path / "in.pcap")
    out = tmp_path / out_name
    r = run([src, "-o", out])
    assert r.exit_code == ExitStatus.BAD_INPUT
    assert r.stderr.splitlines() == [(f"Warning: {src}: frame 3: skipped {len(_BAD)} bytes "
                                      "that are not HEP inside HEP-over-TCP streams")]
    sip = [t.payload for t in transports(out) if t.payload]
    assert sip == [_GOOD, _GOOD]


def test_garbage_in_a_hep_stream_is_a_warning(tmp_path):
    src = tmp_path / "in.hep"
    src.write_bytes(_v2(_GOOD) + _BAD + _v2(_GOOD))
    r = run([src, "-o", tmp_path / "x.pcap"])
    assert r.exit_code == ExitStatus.BAD_INPUT
    assert r.stderr.splitlines() == [f"Warning: {src}: skipped {len(_BAD)} bytes that are not HEP"]


# -- errors name the input, as decode's do (issue 14 #11) ---------------------------------

def _decode_errors(args, stdin=None) -> list[str]:
    runner = CliRunner()
    with runner.isolation(input=stdin) as streams:
        env = Environment(stdout_isatty=False, stderr_isatty=False, stdin_isatty=False)
        main(["decode", "-f", "jsonl", *map(str, args)], env=env)
        sys.stderr.flush()
        err = streams[1].getvalue().decode()
    return [line for line in err.splitlines() if line.startswith("Error:")]


@pytest.mark.parametrize("case", ["hep", "hep-filtered", "hep-pcapng-out", "sip", "header",
                                  "stdin"])
def test_errors_name_the_input_as_decode_does(tmp_path, case):
    src = {"sip": KAM / "kamailio-hep2-udp.sip.pcap"}.get(case, OPENSIPS)
    data = src.read_bytes()
    bad = tmp_path / "damaged.pcap"
    bad.write_bytes(data[:24 + 4] if case == "header" else data[:3000])
    extra = {"hep-filtered": ["--call-id", "hc-tcp-call-c7ba77@heptool.test"],
             "hep-pcapng-out": ["-f", "pcapng"]}.get(case, [])
    if case == "stdin":
        r = run(["-", "-o", tmp_path / "o.pcap"], stdin=bad.read_bytes())
        expected = _decode_errors(["-"], stdin=bad.read_bytes())
        name = "<stdin>"
    else:
        r = run([bad, "-o", tmp_path / "o.pcap", *extra])
        expected = _decode_errors([bad])
        name = str(bad)
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert r.exit_code == ExitStatus.BAD_INPUT
    assert errors and all(e.startswith(f"Error: {name}: ") for e in errors), r.stderr
    assert errors == expected


def test_terminal_refusal_suggests_what_convert_offers():
    for args in ([KAM / "kamailio-hep3-udp.hep.pcap"], [KAM / "kamailio-hep3-udp.sip.pcap"]):
        r = run(args, tty=True)
        assert r.exit_code == ExitStatus.USAGE and r.stdout == ""
        (line,) = [x for x in r.stderr.splitlines() if x.startswith("Error:")]
        assert "-f hex" not in line
        assert "use -o FILE or a pipe" in line and "--to jsonl" in line
        assert "heptool decode" in line
