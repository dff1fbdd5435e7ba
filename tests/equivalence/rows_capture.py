"""Rows of the capture fast paths (heptool.capture): C ``udp4_hep`` per frame and over whole
captures (against the pure-Python build in a ``HEPTOOL_PURE=1`` process), the
Ethernet/IPv4/UDP fast path of ``extract_transport``, and the fused convert loops against
the general pipelines they replace (tests/capture/test_convert_fused.py defines both)."""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from row import CAPTURES, PURE, TESTS, Row, outcome, vector_frames
from strategies import eth_frames, hep_captures, sip_captures

# -- the names under test (today's; remap here when they move) -------------------------------
from heptool.capture import dissect, hep, pcapfile, reassembly
from heptool.core.accel import c_function

C_UDP4 = c_function("udp4_hep")
extract_transport, slow_path = dissect.extract_transport, dissect._slow_path
IPReassembler = reassembly.IPReassembler
iter_hep_payloads, CaptureStats = hep.iter_hep_payloads, hep.CaptureStats
HEP_MAGICS = (b"HEP3", b"EEP1", b"EEP3")
iter_pcap = pcapfile.iter_pcap  # read1 blocks, else a read loop

sys.path.insert(0, str(TESTS / "capture"))
try:  # the fused and general convert pipelines, as that module's tests run them
    from test_convert_fused import fused, hep_fused, hep_reference, reference
finally:
    sys.path.pop(0)

# -- udp4_hep, one frame -----------------------------------------------------------------------
PORTS: tuple[Any, ...] = (None, 9060, 5060, 0, 65535, 2**70, "9060", -1)


def udp4_fast(x: tuple) -> Any:
    frame, port = x
    eps: dict = {}
    r = C_UDP4(frame, eps, port)
    again = C_UDP4(frame, eps, port)  # the second time from the endpoint cache
    if again != r:
        return ("answered differently with its endpoint cache", r, again)
    return r


def udp4_reference(x: tuple) -> Any:
    """The Python fused path's answer: 0 when not on ``port``, else (src, dst, payload)."""
    frame, port = x
    if port is not None and (type(port) is not int):
        return "a port that is not an int: Python decides"
    t = extract_transport(1, frame, IPReassembler())
    if t is None or t.proto != 17:
        return "not UDP"
    if port is not None and port not in (t.sport, t.dport):
        return 0
    if t.payload[:4] not in HEP_MAGICS:
        return "not HEP"
    return (f"{t.src}:{t.sport}", f"{t.dst}:{t.dport}", t.payload)


def _frame_examples() -> list:
    return [(f, p) for f in vector_frames() for p in (None, 9060)]


# -- extract_transport's fast path ---------------------------------------------------------------
def transport_fast(frame: bytes) -> Any:
    return ("t", outcome(extract_transport, 1, frame, IPReassembler()))


def transport_reference(frame: bytes) -> Any:
    def slow(f: bytes) -> Any:
        try:
            return slow_path(1, f, IPReassembler())
        except (ArithmeticError, LookupError, ValueError, OSError, __import__("struct").error):
            return None

    return ("t", outcome(slow, frame))


# -- whole captures: C (this process) against the pure-Python build -----------------------------
def payloads_of(data: bytes, port: int | None) -> tuple:
    """iter_hep_payloads over a capture: its packets and counters (or its error)."""
    stats = CaptureStats()
    r = outcome(lambda: list(map(tuple, iter_hep_payloads(io.BytesIO(data), port, stats=stats))))
    return r, stats.as_dict()


def capture_fast(x: tuple) -> Any:
    return ("ok", payloads_of(*x))


def capture_reference(x: tuple) -> Any:
    return PURE.call("rows_capture", "payloads_of", *x)


def _capture_examples() -> list:
    return [(p.read_bytes(), port) for p in CAPTURES if p.suffix != ".bin"
            for port in (None, 9060)]


# -- pcap records: cut out of read1 blocks, or read one by one -----------------------------------
class _Blocks:
    """A file whose read1 returns at most ``step`` bytes (a pipe's short reads)."""

    def __init__(self, data: bytes, step: int) -> None:
        self.f, self.step = io.BytesIO(data), step

    def read(self, n: int = -1) -> bytes:
        return self.f.read(n)

    def read1(self, n: int = -1) -> bytes:
        return self.f.read1(min(n, self.step) if n >= 0 else self.step)


class _NoRead1:
    def __init__(self, data: bytes) -> None:
        self.read = io.BytesIO(data).read


def _records(f: Any) -> tuple:
    magic = f.read(4)
    frames: list = []
    try:
        for fr in iter_pcap(f, magic):
            frames.append(tuple(fr))
    except Exception as e:  # noqa: BLE001 - both ways must fail alike
        return frames, type(e).__name__, str(e)
    return frames, None


def pcap_blocks_fast(x: tuple) -> Any:
    data, step = x
    return _records(_Blocks(data, step) if step else io.BytesIO(data))


def pcap_read_reference(x: tuple) -> Any:
    return _records(_NoRead1(x[0]))


@st.composite
def pcap_files(draw) -> bytes:
    """SIP and HEP captures, cut anywhere or with a byte changed past the file header."""
    data = draw(sip_captures() | hep_captures())
    how = draw(st.sampled_from(["as is", "as is", "cut", "byte"]))
    if how == "cut":
        return data[:draw(st.integers(0, len(data)))]
    if how == "byte" and len(data) > 24:
        i = draw(st.integers(24, len(data) - 1))
        return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]
    return data


def _pcap_examples() -> list:
    out = []
    for p in CAPTURES:
        data = p.read_bytes()
        if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
                        b"\xa1\xb2\x3c\x4d"):
            out += [(data, 0), (data, 7), (data[:len(data) // 2], 100), (data[:-3], 0)]
    return out


# -- the fused convert loops ---------------------------------------------------------------------
def _on_file(fn: Any, data: bytes, *args: Any, **kw: Any) -> Any:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.pcap"
        path.write_bytes(data)
        return outcome(lambda: fn(path, *args, **kw))


_PCAPS = [p for p in CAPTURES if p.suffix == ".pcap"]
_OPTS = [{}, {"capture_id": 0xFFFFFFFF, "node_name": "nod\u00e9-1", "auth_key": "secret",
              "ports": frozenset({5060, 5061})}, {"ports": frozenset({5080, 40000})}]


def _sip_examples() -> list:
    return [(p.read_bytes(), i) for p in _PCAPS for i in (0, 1)]


def _hep_examples() -> list:
    return [(p.read_bytes(), mtu) for p in _PCAPS for mtu in (1500, 576)]


ROWS = [
    Row("c.udp4_hep", udp4_fast, udp4_reference,
        st.tuples(eth_frames(), st.sampled_from(PORTS)), needs_c=True,
        examples=_frame_examples, taken=0.4),  # (the SIP captures' frames are no HEP)
    Row("c.udp4_hep.capture", capture_fast, capture_reference,
        st.tuples(hep_captures() | sip_captures(), st.sampled_from([None, 9060, 5060])),
        needs_c=True, examples=_capture_examples),
    Row("py.extract_transport", transport_fast, transport_reference, eth_frames(),
        examples=vector_frames),
    Row("py.iter_pcap_read1", pcap_blocks_fast, pcap_read_reference,
        st.tuples(pcap_files(), st.sampled_from([0, 1, 7, 100, 70000])), examples=_pcap_examples),
    Row("py.sip_to_hep3_pcap", lambda x: _on_file(fused, x[0], **_OPTS[x[1]]),
        lambda x: _on_file(reference, x[0], **_OPTS[x[1]]),
        st.tuples(sip_captures(), st.integers(0, len(_OPTS) - 1)), examples=_sip_examples),
    Row("py.hep3_to_pcap_records", lambda x: _on_file(hep_fused, *x),
        lambda x: _on_file(hep_reference, *x),
        st.tuples(hep_captures() | sip_captures(), st.sampled_from([1500, 576])),
        examples=_hep_examples),
    Row("py.hep_pcap_to_records", lambda x: _on_file(hep_fused, *x, file=True),
        lambda x: _on_file(hep_reference, *x),
        st.tuples(hep_captures() | sip_captures(), st.sampled_from([1500, 576])),
        examples=_hep_examples),
]
