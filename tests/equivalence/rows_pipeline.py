"""Rows of the fast paths under the commands (heptool.cli today, heptool.pipeline later):
convert's shape-cached HEPv3 encoder against ``encode``; listen's cached frame builder
against ``udp_frame`` and its --write-hep-only handlers against the general one, and send's
fast UDP pass against its general loop (both through the CLI, loopback UDP)."""

from __future__ import annotations

import functools
import socket
import struct
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from row import Row, outcome
from strategies import hep_messages

from heptool.capture.writer import udp_frame
from heptool.core.codec import encode

# -- the names under test (today's; remap here when they move) -------------------------------
from heptool.core.encode import shape_cached_encoder
from heptool.core.message import HepMessage
from heptool.pipeline.sinks import frame_cache as listen_frame_cache


def shape_cached_fast(ms: list) -> Any:
    """One encoder for a conversion's messages (its cache filled as it goes)."""
    enc = shape_cached_encoder(encode)
    return [outcome(enc, m) for m in ms]


def shape_cached_reference(ms: list) -> Any:
    return [outcome(encode, m) for m in ms]


#: what ``sip_to_hep`` always sets (the shape key leaves these out: a message without one
#: makes the cached function return None instead of bytes; reported, cmd_convert's to fix)
_ALWAYS_SET = {"family": 2, "ip_proto": 17, "src_ip": "10.0.0.1", "dst_ip": "10.0.0.2",
               "src_port": 5060, "dst_port": 5060, "ts_sec": 1, "ts_usec": 2, "proto_type": 1}
#: what it may set
_MAY_SET = ("capture_id", "auth_key", "node_name", "correlation_id", "payload")


def _built(ms: list) -> list:
    """Messages as convert builds them (packet_message): from fields, every value
    :data:`_ALWAYS_SET` names set, some of :data:`_MAY_SET`, nothing else."""
    out = []
    for m in ms:
        fields = {k: v if getattr(m, k) is None else getattr(m, k) for k, v in _ALWAYS_SET.items()}
        fields.update((k, getattr(m, k)) for k in _MAY_SET if getattr(m, k) is not None)
        out.append(HepMessage(**fields))
    return out


def _sip_messages() -> list:
    """The messages ``heptool convert`` encodes for every SIP capture in tests/vectors."""
    from row import CAPTURES

    from heptool.capture.convert import sip_to_hep

    out = []
    for p in CAPTURES:
        if p.suffix == ".pcap":
            try:
                out += list(sip_to_hep(p))
            except Exception:  # noqa: BLE001,S112 - a capture sip_to_hep cannot read
                continue
    return [out[i:i + 50] for i in range(0, len(out), 50)]


ROWS = [
    Row("py.shape_cached_encoder", shape_cached_fast, shape_cached_reference,
        st.lists(hep_messages(), max_size=8).map(_built), examples=_sip_messages),
]


# -- listen: the frame cache, and the --write-hep-only handlers -----------------------------------
def frame_cache_fast(items: list) -> Any:
    """listen's cached frame builder over a run of datagrams (headers cached per shape)."""
    frame = listen_frame_cache()
    return [outcome(frame, data, src, dst) for data, src, dst in items]


def frame_cache_reference(items: list) -> Any:
    return [outcome(udp_frame, data, src, dst) for data, src, dst in items]


_ENDS = st.sampled_from([("10.0.0.1", 5060), ("10.0.0.2", 9060), ("::1", 9060),
                         ("2001:db8::1", 1)])
_DATAGRAMS = st.lists(st.tuples(st.binary(max_size=40) | st.sampled_from([b"x" * 65508, b""]),
                                _ENDS, _ENDS), max_size=12)


def _datagram_examples() -> list:
    from row import vector_packets

    ps = [p.data for p in vector_packets()]
    ends = [(("10.0.0.1", 5060), ("10.0.0.2", 9060)), (("::1", 1), ("::1", 9060))]
    return [[(d, *ends[i % 2]) for d in ps[j:j + 40]] for i, j in enumerate(range(0, len(ps), 40))]


_NET = Path(__file__).resolve().parents[1] / "net"
#: HEP captures and streams whose every packet fits one UDP datagram
_SENDABLE = [p for p in sorted((_NET.parent / "vectors").rglob("*"))
             if p.name.endswith((".hep.pcap", "-hep3-udp.pcap", ".bin"))]


def _net():
    sys.path.insert(0, str(_NET))
    try:
        import nethelpers
    finally:
        sys.path.pop(0)
    return nethelpers


def _pcap_frames(path: Path) -> list:
    """The frames of a pcap file written by listen, without their capture times and the
    UDP ports (the sender's ephemeral one, listen's port 0)."""
    data = path.read_bytes()
    out, off = [], 24
    while off + 16 <= len(data):
        n = struct.unpack_from("<I", data, off + 8)[0]
        fr = data[off + 16:off + 16 + n]
        out.append(fr[:34] + bytes(4) + fr[38:])
        off += 16 + n
    return out


@functools.cache
def _listen(path: Path, generic: bool) -> Any:
    """The frames ``listen --write-hep`` writes for the packets of ``path`` sent to it over
    UDP (loopback): its --write-hep-only handler, or (``generic``) with a --write-jsonl
    beside it, which takes the general handler."""
    net = _net()
    n = len(net.hep_packets(path))
    with tempfile.TemporaryDirectory() as d:
        y = Path(d) / "y.pcap"
        extra = ("--write-jsonl", str(Path(d) / "y.jsonl")) if generic else ()
        with net.ListenProcess("--bind", "udp://127.0.0.1:0", "--write-hep", str(y), "-q",
                               "--count", str(n), *extra) as lp:
            r = net.run_heptool("send", str(path), "--to", lp.url("udp"), "--rate", "20000")
            status = lp.wait(30)
        return r.returncode, status, _pcap_frames(y)


@functools.cache
def _send(path: Path, general: bool) -> Any:
    """The datagrams ``heptool send`` sends for ``path`` (loopback UDP, caught here): its fast
    UDP pass, or (``general``) the general loop, which a --rate takes.  A run that lost
    datagrams (a full receive buffer on a busy machine) is run again, twice at most."""
    want = len(_net().hep_packets(path))
    best: Any = None
    for _ in range(3):
        r = _send_once(path, general)
        if best is None or len(r[1]) > len(best[1]):
            best = r
        if len(best[1]) >= want:
            break
    return best


def _send_once(path: Path, general: bool) -> Any:
    net = _net()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    sock.bind(("127.0.0.1", 0))
    got: list = []
    done = threading.Event()

    def drain() -> None:
        sock.settimeout(0.3)
        while True:
            try:
                got.append(sock.recv(70000))
            except TimeoutError:
                if done.is_set():
                    return
            except OSError:
                return

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    try:
        extra = ("--rate", "1000000000") if general else ()
        r = net.run_heptool("send", str(path), "--to", f"udp://127.0.0.1:{sock.getsockname()[1]}",
                            *extra)
        done.set()
        t.join(30)
    finally:
        sock.close()
    return r.returncode, got


ROWS += [
    Row("py.listen_frame_cache", frame_cache_fast, frame_cache_reference, _DATAGRAMS,
        examples=_datagram_examples),
    Row("py.listen_pcap_only", lambda p: _listen(p, False), lambda p: _listen(p, True),
        st.sampled_from(_SENDABLE), examples=lambda: _SENDABLE[:3]),
    Row("py.send_fast_udp_pass", lambda p: _send(p, False), lambda p: _send(p, True),
        st.sampled_from(_SENDABLE), examples=lambda: _SENDABLE),
]
