"""The fused fast paths of ``convert`` give exactly the bytes of the general path.

``hep3_to_pcap_records`` (HEP -> pcap) is checked the same way against ``hep_to_frames``
over decoded messages, on the vectors and on generated HEP captures (every fixed layout,
IPv4/IPv6, UDP/TCP/fake TLS/WS, text chunks, and damaged or unusual packets).

``sip_to_hep3_pcap`` (SIP pcap -> HEPv3 pcap in one loop) is checked against the
reference pipeline it replaces (``sip_to_hep`` -> ``encode`` -> ``FrameSynth.udp`` ->
``PcapFrameWriter``): the same output bytes, the same counters, the same capture error,
on every capture in tests/vectors/ and on generated captures that mix the fast case with
everything that must leave it (TCP, IPv6, VLAN tags, IP options, fragments, truncated
frames, odd first lines, payloads too big for one HEP datagram, damaged records).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import hep_captures  # tests/strategies.py (tests/ is on sys.path)
from strategies import sip_captures as captures

from heptool.capture.convert import (
    PCAP_LE_USEC,
    ConvertStats,
    HepFramer,
    hep3_to_pcap_records,
    hep_pcap_to_records,
    hep_to_frames,
    sip_to_hep,
    sip_to_hep3_pcap,
)
from heptool.capture.frames import FrameSynth
from heptool.capture.inputs import InputError, iter_input, to_message
from heptool.capture.pcap import CaptureError
from heptool.capture.pcapng_writer import PcapFrameWriter
from heptool.core.codec import decode, encode
from heptool.core.errors import HepError
from heptool.core.templates import AGENT_LAYOUTS

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

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(captures(), st.sampled_from([None, frozenset({5060}), frozenset({5080, 40000})]),
       st.sampled_from([{}, {"node_name": "n1", "auth_key": "k", "capture_id": 7}]))
def test_generated_captures_give_the_same_bytes(tmp_path_factory, data, ports, opts) -> None:
    path = tmp_path_factory.mktemp("fused") / "x.pcap"
    path.write_bytes(data)
    assert fused(path, ports=ports, **opts) == reference(path, ports=ports, **opts)


def test_a_large_capture_spanning_many_reads(tmp_path) -> None:
    """Records cut across the 256 KiB reads, and the identification counter wrapping."""
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
    # and back: the HEP file loop across reads too
    hep = tmp_path / "big.hep.pcap"
    hep.write_bytes(path.read_bytes()[:24] + ref[0])
    back = hep_reference(hep)
    assert back[1]["messages"] == 70_000
    assert hep_fused(hep, file=True) == back


# ---------------------------------------------------------------------------------------
# HEP -> pcap
# ---------------------------------------------------------------------------------------

def _decoded(p, notes: list):
    try:
        m = decode(p.data) if p.data is not None else to_message(p)
    except HepError as e:
        notes.append(("bad", str(e.with_context(p.where)), p.index, p.hep_src, p.hep_dst))
        return None
    if m._warnings:
        notes.append(("warn", [str(w) for w in m._warnings]))
    return m if m.ts_sec is not None else (m, p.outer_ts)


def hep_reference(path: Path, mtu: int = 1500) -> tuple:
    """hep_to_frames over every decoded message, written by PcapFrameWriter."""
    out = io.BytesIO()
    w = PcapFrameWriter(out)
    st = ConvertStats()
    notes: list = []
    err = None

    def messages():
        for p in iter_input(path):
            m = _decoded(p, notes)
            if m is not None:
                yield m

    try:
        for sec, usec, fr, comment in hep_to_frames(messages(), mtu=mtu, stats=st):
            w.write(sec, usec, fr, comment)
    except (InputError, CaptureError) as e:
        err = str(e)
    return out.getvalue(), st.as_dict(), notes, err


def hep_fused(path: Path, mtu: int = 1500, *, file: bool = False) -> tuple:
    """The fused path: hep3_to_pcap_records over iter_input, or (``file``) the whole
    file loop hep_pcap_to_records."""
    out = io.BytesIO()
    w = PcapFrameWriter(out)
    st = ConvertStats()
    notes: list = []
    err = None
    framer = HepFramer(mtu=mtu, stats=st)
    records = (hep_pcap_to_records(path, framer) if file
               else hep3_to_pcap_records(iter_input(path), framer))
    try:
        for p in records:
            if type(p) is bytes:
                out.write(p)
                continue
            m = _decoded(p, notes)
            if m is not None:
                for sec, usec, fr, comment in framer.frames(m):
                    w.write(sec, usec, fr, comment)
    except (InputError, CaptureError) as e:
        err = str(e)
    finally:
        framer.close()
    return out.getvalue(), st.as_dict(), notes, err


@pytest.mark.parametrize("path", ALL_PCAPS, ids=lambda p: p.name)
def test_hep_every_vector_capture_gives_the_same_bytes(path: Path) -> None:
    ref = hep_reference(path)
    assert hep_fused(path) == ref
    assert hep_fused(path, file=True) == ref
    if "hep" in path.name.split(".")[0].split("-")[-2:] or path.name.endswith(".hep.pcap"):
        assert ref[1]["frames_out"]
    assert hep_fused(path, mtu=576) == hep_reference(path, mtu=576)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(hep_captures(), st.sampled_from([1500, 576]))
def test_hep_generated_captures_give_the_same_bytes(tmp_path_factory, data, mtu) -> None:
    path = tmp_path_factory.mktemp("hepfused") / "x.pcap"
    path.write_bytes(data)
    ref = hep_reference(path, mtu)
    assert hep_fused(path, mtu) == ref
    assert hep_fused(path, mtu, file=True) == ref


def test_hep_templates_are_the_layouts_the_codec_reads_fast() -> None:
    """The fused path reads the codec's one table of agent layouts (no copy of its own)."""
    from heptool.capture import fused_hep
    from heptool.core import templates

    assert fused_hep.AGENT_LAYOUTS is templates.AGENT_LAYOUTS
    assert [t.order for t in templates.TEMPLATES] == list(AGENT_LAYOUTS)


# ---------------------------------------------------------------------------------------
# through the CLI: the fused paths (taken by default) against the general ones (--count
# turns fusing off and changes nothing else when it is never reached)
# ---------------------------------------------------------------------------------------

def _cli(args) -> tuple[int, bytes, str]:
    from click.testing import CliRunner

    from heptool.cli import main
    from heptool.cli.env import Environment

    runner = CliRunner()
    with runner.isolation() as streams:
        env = Environment(stdout_isatty=False, stderr_isatty=False, stdin_isatty=False)
        status = main(["convert", *map(str, args)], env=env)
        return status, streams[0].getvalue(), streams[1].getvalue().decode()


@pytest.mark.parametrize("path", ALL_PCAPS, ids=lambda p: p.name)
def test_cli_fused_and_general_paths_agree(path: Path, tmp_path: Path) -> None:
    fast, slow = tmp_path / "fast.pcap", tmp_path / "slow.pcap"
    a = _cli([path, "-v", "-o", fast])
    b = _cli([path, "-v", "--count", 10**9, "-o", slow])
    assert a == b
    assert fast.read_bytes() == slow.read_bytes()
    if path.name.endswith((".sip.pcap", ".hep.pcap")):
        assert len(fast.read_bytes()) > 24


# ---------------------------------------------------------------------------------------
# hep_pcap_to_records on captures it reads only in part (then the general reader goes on)
# ---------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(st.one_of(hep_captures(), captures()), st.sampled_from([b"", b"mix"]))
def test_hep_file_loop_hands_over_to_the_general_reader(tmp_path_factory, data, mix) -> None:
    """HEP captures, and SIP captures with every kind of frame that stops the file loop,
    and damaged ends: the same records, reports (frame numbers, packet indexes, outer
    endpoints) and capture errors (frame numbers, byte offsets) as the general path."""
    if mix and len(data) > 24:  # a HEP capture followed by frames the fast loop leaves
        synth = FrameSynth()
        buf = io.BytesIO()
        w = PcapFrameWriter(buf)
        hep = encode(heptool_message())
        for fr in [synth.udp("10.0.0.1", 1, "10.0.0.2", 9060, hep),
                   synth.udp("10.0.0.1", 1, "10.0.0.2", 9060, b"HEP3\0\x10" + bytes(12)),
                   *synth.tcp("10.0.0.1", 2, "10.0.0.2", 9060, hep + hep[:10]),
                   synth.udp("10.0.0.1", 1, "10.0.0.2", 9060, hep)]:
            w.write(1, 2, fr)
        data = data + buf.getvalue()[24:] + data[24:]
    path = tmp_path_factory.mktemp("hepfile") / "x.pcap"
    path.write_bytes(data)
    assert hep_fused(path, file=True) == hep_reference(path)


def heptool_message():
    from heptool.core.message import HepMessage

    return HepMessage(src_ip="10.1.1.1", dst_ip="10.1.1.2", src_port=5060, dst_port=5060,
                      ip_proto=17, family=2, ts_sec=1, ts_usec=2, proto_type=1, capture_id=1,
                      payload=b"OPTIONS sip:x SIP/2.0\r\n\r\n")


def test_cli_fused_and_general_paths_agree_on_damage(tmp_path: Path) -> None:
    """Reports, exit status and output for captures with bad parts, both directions."""
    synth = FrameSynth()
    buf = io.BytesIO()
    w = PcapFrameWriter(buf)
    big = b"SIP/2.0 200 OK\r\n" + b"z" * 65400  # fits a datagram, not a HEP one in it
    for i, fr in enumerate([
            synth.udp("10.0.0.1", 5060, "10.0.0.2", 5060, b"OPTIONS sip:a SIP/2.0\r\n\r\n"),
            synth.udp("10.0.0.1", 5060, "10.0.0.2", 5060, big),
            *synth.tcp("10.0.0.1", 5061, "10.0.0.2", 5060, b"BYE sip:a SIP/2.0\r\nl: 0\r\n\r\n"),
            synth.udp("2001:db8::1", 5060, "2001:db8::2", 5060, b"SIP/2.0 180 Ringing\r\n\r\n"),
            synth.udp("10.0.0.1", 9060, "10.0.0.2", 9060, b"HEP3\x00\x20" + bytes(26)),
            synth.udp("10.0.0.1", 9060, "10.0.0.2", 9060,
                      encode(heptool_message())[:-3])]):
        w.write(1_795_683_906, i, fr)
    (tmp_path / "sip.pcap").write_bytes(buf.getvalue() + b"\x01\x02\x03")
    # its HEP, with a bad packet and a damaged end added
    hep = tmp_path / "hep.pcap"
    _cli(["--from", "sip", tmp_path / "sip.pcap", "-o", hep])
    extra = io.BytesIO()
    PcapFrameWriter(extra).write(1, 2, synth.udp("10.0.0.1", 9060, "10.0.0.2", 9060,
                                                 b"HEP3\x00\x08\x00\x00"))
    hep.write_bytes(hep.read_bytes() + extra.getvalue()[24:] + b"\x09" * 20)
    for path in (tmp_path / "sip.pcap", hep):
        fast, slow = tmp_path / "fast.out", tmp_path / "slow.out"
        a = _cli(["--from", "sip" if path.name == "sip.pcap" else "hep", path, "-v", "-o", fast])
        b = _cli(["--from", "sip" if path.name == "sip.pcap" else "hep", path, "-v",
                  "--count", 10**9, "-o", slow])
        assert a == b
        assert a[0] == 3 and "Error" in a[2]
        assert fast.read_bytes() == slow.read_bytes()


def _outcome(fn, *args, **kw) -> tuple:
    try:
        return ("ok", fn(*args, **kw))
    except Exception as e:  # noqa: BLE001 - both paths must fail alike, if at all
        return ("raised", type(e).__name__, str(e))


@pytest.mark.parametrize("seed", range(3))
def test_mutated_vector_captures_give_the_same_bytes(tmp_path: Path, seed: int) -> None:
    """Byte flips, cuts and insertions in the vector captures (seeded): both directions,
    all three fast paths, the same result as the general path, errors included."""
    import random

    rnd = random.Random(seed)
    vectors = [p.read_bytes() for p in ALL_PCAPS]
    path = tmp_path / "m.pcap"
    for _ in range(50):
        data = bytearray(rnd.choice(vectors))
        for _ in range(rnd.randint(1, 6)):
            op = rnd.random()
            i = rnd.randrange(24, len(data)) if len(data) > 24 else 24
            if op < 0.6 and len(data) > 24:
                data[i] = rnd.randrange(256)
            elif op < 0.75:
                del data[i:i + rnd.randint(1, 40)]
            elif op < 0.9:
                data[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 20)))
            else:
                data = data[:i]
        path.write_bytes(bytes(data))
        assert _outcome(fused, path) == _outcome(reference, path)
        hep = _outcome(hep_reference, path)
        assert _outcome(hep_fused, path) == hep
        assert _outcome(hep_fused, path, file=True) == hep
