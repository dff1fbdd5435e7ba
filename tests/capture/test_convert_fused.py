"""The fused fast paths of ``convert`` give exactly the bytes of the general path.

``sip_to_hep3_pcap`` (SIP pcap -> HEPv3 pcap in one loop) is checked against the
reference pipeline it replaces (``sip_to_hep`` -> ``encode`` -> ``FrameSynth.udp`` ->
``PcapFrameWriter``): the same output bytes, the same counters, the same capture error,
on every capture in tests/vectors/ and on generated captures that mix the fast case with
everything that must leave it (TCP, IPv6, VLAN tags, IP options, fragments, truncated
frames, odd first lines, payloads too big for one HEP datagram, damaged records).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heptool.capture.convert import (
    PCAP_LE_USEC,
    ConvertStats,
    sip_to_hep,
    sip_to_hep3_pcap,
)
from heptool.capture.frames import FrameSynth
from heptool.capture.pcap import CaptureError
from heptool.capture.pcapng_writer import PcapFrameWriter
from heptool.core.codec import encode
from heptool.core.errors import HepError

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
ALL_PCAPS = sorted(VECTORS.rglob("*.pcap"))
SRC, DST = ("127.0.0.1", 9061), ("127.0.0.1", 9060)


def _emit(w: PcapFrameWriter, build, m, errors: list) -> None:
    try:
        w.write(m.ts_sec, m.ts_usec, build(encode(m)))
    except (HepError, ValueError) as e:
        errors.append((m.src_ip, m.src_port, m.ts_sec, m.ts_usec, type(e).__name__))


def reference(path: Path, **kw) -> tuple:
    """What the general pipeline writes (no file header), its counters and its errors."""
    synth = FrameSynth()
    build = synth.udp_builder(*SRC, *DST)
    out = io.BytesIO()
    w = PcapFrameWriter(out)
    st = ConvertStats()
    errors: list = []
    err = None
    try:
        for m in sip_to_hep(path, stats=st, **kw):
            _emit(w, build, m, errors)
    except CaptureError as e:
        err = str(e)
    return out.getvalue()[24:], st.as_dict(), errors, err


def fused(path: Path, **kw) -> tuple:
    synth = FrameSynth()
    build = synth.udp_builder(*SRC, *DST)
    out = io.BytesIO()
    w = PcapFrameWriter(out)
    st = ConvertStats()
    errors: list = []
    err = None
    try:
        for item in sip_to_hep3_pcap(path, synth, SRC, DST, stats=st, **kw):
            if type(item) is bytes:
                out.write(item)
            else:
                _emit(w, build, item, errors)
    except CaptureError as e:
        err = str(e)
    return out.getvalue()[24:], st.as_dict(), errors, err


@pytest.mark.parametrize("path", ALL_PCAPS, ids=lambda p: p.name)
def test_every_vector_capture_gives_the_same_bytes(path: Path) -> None:
    assert path.read_bytes()[:4] == PCAP_LE_USEC
    ref = reference(path)
    assert fused(path) == ref
    if path.name.endswith(".sip.pcap"):
        assert ref[0]  # the comparison covered messages, not two empty outputs
    opts = {"capture_id": 0xFFFFFFFF, "node_name": "nodé-1", "auth_key": "secret",
            "ports": frozenset({5060, 5061})}
    assert fused(path, **opts) == reference(path, **opts)


# ---------------------------------------------------------------------------------------
# generated captures
# ---------------------------------------------------------------------------------------

SIP_LINES = [
    b"INVITE sip:bob@example.com SIP/2.0\r\n",
    b"ACK sip:bob@example.com SIP/2.0\n",
    b"SIP/2.0 200 OK\r\n",
    b"SIP/2.0 180 Ringing\n",
    b"SIP/2.0 999 Nope\r\n",  # not a status line: not SIP
    b"SIP/2.0 200 OK\rX\n",
    b"INV@ITE sip:x SIP/2.0\r\n",  # not a token
    b"INVITE sip:x  SIP/2.0\r\n",
    b"INVITE sip:x SIP/2.0",  # no line end
    b"OPTIONS sip:" + b"a" * 300 + b" SIP/2.0\r\n",  # a long first line
    b"OPTIONS sip:" + b"a" * 2100 + b" SIP/2.0\r\n",  # longer than the 2 KiB look
    b"\r\n\r\n",
    b"hello world\n",
    b"",
]


@st.composite
def payloads(draw) -> bytes:
    line = draw(st.sampled_from(SIP_LINES))
    rest = draw(st.sampled_from([b"", b"Call-ID: a@b\r\nContent-Length: 0\r\n\r\n",
                                 b"Call-ID: x\r\nContent-Length: 4\r\n\r\nbody"]))
    return line + rest


ADDRS4 = [("10.0.0.1", "10.0.0.2"), ("192.168.1.7", "10.0.0.1"), ("0.0.0.0", "255.255.255.255")]
ADDRS6 = [("2001:db8::1", "2001:db8::2")]


def _rewrite(frame: bytes, off: int, value: bytes) -> bytes:
    return frame[:off] + value + frame[off + len(value):]


@st.composite
def frames(draw, synth: FrameSynth) -> list[bytes]:
    """One or a few frames: mostly the fused case, often something that must leave it."""
    kind = draw(st.sampled_from(["udp", "udp", "udp", "udp6", "tcp", "tcp6", "vlan", "options",
                                 "frag", "short", "badlen", "badulen", "big", "notip",
                                 "tcpbad"]))
    v6 = kind in ("udp6", "tcp6")
    src, dst = draw(st.sampled_from(ADDRS6 if v6 else ADDRS4))
    sport = draw(st.sampled_from([5060, 5061, 40000]))
    dport = draw(st.sampled_from([5060, 5080]))
    payload = draw(payloads())
    if kind == "big":
        payload = b"SIP/2.0 200 OK\r\n" + b"x" * draw(st.sampled_from(
            [65535 - 28 - 127 - 16, 65535 - 28 - 126 - 16, 65000 - 16, 65507 - 16]))
    if kind in ("tcp", "tcp6", "tcpbad"):
        out = synth.tcp(src, sport, dst, dport, payload or b"x")
        if kind == "tcpbad":  # a data offset beyond the segment
            out[-1] = _rewrite(out[-1], 46, bytes([0xF0]))
        return out
    fr = synth.udp(src, sport, dst, dport, payload)
    if kind == "vlan":
        fr = fr[:12] + b"\x81\x00\x00\x07" + fr[12:]
    elif kind == "options":  # IHL 6: a 4-byte option, lengths fixed up
        total = struct.unpack_from(">H", fr, 16)[0] + 4
        fr = fr[:14] + bytes([0x46]) + fr[15:16] + struct.pack(">H", total) + fr[18:34] \
            + b"\x01\x01\x01\x00" + fr[34:]
    elif kind == "frag":  # more fragments follow (never completed)
        fr = _rewrite(fr, 20, b"\x20\x00")
    elif kind == "short":  # captured shorter than the IP length says
        # (not under 34 bytes: pcap.py's _ipv4 raises TypeError on a cut IPv4 header, in
        # both paths alike; reported, not this module's to fix)
        fr = fr[:draw(st.integers(34, len(fr) - 1))]
    elif kind == "badlen":
        fr = _rewrite(fr, 16, struct.pack(">H", draw(st.sampled_from([0, 20, 27, 0xFFFF]))))
    elif kind == "badulen":
        fr = _rewrite(fr, 38, struct.pack(">H", draw(st.sampled_from([0, 7, 9, 0xFFFF]))))
    elif kind == "notip":
        fr = _rewrite(fr, 12, b"\x08\x06")
    return [fr]


@st.composite
def captures(draw) -> bytes:
    synth = FrameSynth()
    recs = []
    t = 1_795_683_906
    for i in range(draw(st.integers(0, 25))):
        for fr in draw(frames(synth)):
            usec = draw(st.sampled_from([0, i, 999_999, 1_000_000 + i]))
            recs.append(struct.pack("<IIII", t + i, usec, len(fr), len(fr) + 0) + fr)
    linktype = draw(st.sampled_from([1, 1, 1, 101]))
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)
    tail = draw(st.sampled_from([b"", b"", b"\x01\x02", struct.pack("<IIII", t, 0, 100, 100)
                                 + b"x" * 10, struct.pack("<IIII", t, 0, 300_000, 300_000)]))
    return head + b"".join(recs) + tail


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(captures(), st.sampled_from([None, frozenset({5060}), frozenset({5080, 40000})]),
       st.sampled_from([{}, {"node_name": "n1", "auth_key": "k", "capture_id": 7}]))
def test_generated_captures_give_the_same_bytes(tmp_path_factory, data, ports, opts) -> None:
    path = tmp_path_factory.mktemp("fused") / "x.pcap"
    path.write_bytes(data)
    assert fused(path, ports=ports, **opts) == reference(path, ports=ports, **opts)


def test_a_large_capture_spanning_many_reads(tmp_path) -> None:
    """Records cut across the 1 MiB reads, and the identification counter wrapping."""
    synth = FrameSynth()
    buf = io.BytesIO()
    w = PcapFrameWriter(buf)
    for i in range(70_000):
        body = b"y" * (i % 700)
        pl = b"SIP/2.0 200 OK\r\nCall-ID: %d\r\nContent-Length: %d\r\n\r\n" % (i, len(body)) + body
        if i % 50 == 0:
            for fr in synth.tcp("10.1.1.1", 5060, "10.1.1.2", 5062, pl):
                w.write(1_795_683_906 + i, i % 1000, fr)
        else:
            w.write(1_795_683_906 + i, i % 1000, synth.udp("10.0.0.1", 5060, "10.0.0.2", 5060, pl))
    path = tmp_path / "big.pcap"
    path.write_bytes(buf.getvalue())
    ref = reference(path)
    assert ref[1]["messages"] == 70_000
    assert fused(path) == ref
