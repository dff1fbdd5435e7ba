"""Fuzz every reader of input files: pcap, pcapng (either gzipped), IP/TCP reassembly, the raw
HEP stream, JSON Lines / JSON arrays, and what follows them (decode, the JSON record, the
table summary, correlation extraction, SIP -> HEP conversion with the SIP-over-TCP splitter).

Seeds: every capture in tests/vectors (pcap, the .bin HEP stream, the .jsonl records), each
also rewritten as pcapng, gzipped, and as JSON Lines.  Mutations: truncation, bit flips, byte
overwrites, inserted/deleted/duplicated runs, an absurd caplen in a pcap record header, a
wrong pcapng block length (first or trailing copy), a huge JSON line.

Invariant: heptool's own error (InputError, CaptureError, HepError) or success.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import struct

import fuzzutil
import orjson
import pytest
from hypothesis import strategies as st

from heptool.analysis.extract import extract
from heptool.capture.convert import sip_to_hep
from heptool.capture.inputs import InputError, InputStats, iter_input, to_message
from heptool.capture.pcap import CaptureError, iter_frames
from heptool.capture.pcapng_writer import PcapngWriter
from heptool.core.errors import HepError
from heptool.core.record import to_record
from heptool.output.records import decode_record, make_fast_jsonl, make_fast_record
from heptool.sip.ids import sip_ids, sip_ids_py
from heptool.sip.summary import summary

OWN_ERRORS = (InputError, CaptureError, HepError)


@functools.cache
def seeds() -> tuple[bytes, ...]:
    out = []
    for path in sorted(fuzzutil.VECTORS.rglob("*")):
        if path.suffix in (".pcap", ".bin", ".jsonl"):
            out.append(path.read_bytes())
    for path in sorted(fuzzutil.VECTORS.rglob("*.pcap")):  # generated: the same as pcapng
        buf = io.BytesIO()
        w = PcapngWriter(buf)
        for fr in iter_frames(io.BytesIO(path.read_bytes())):
            w.write(fr.ts_sec, fr.ts_usec, fr.data, f"frame {fr.frame_no}" if fr.frame_no % 2 else None)
        out.append(buf.getvalue())
    return tuple(out)


def pcap_records(b: bytes) -> list[int]:
    """Offsets of the classic-pcap record headers (little-endian files, as the vectors)."""
    if b[:4] not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        return []
    offs, off = [], 24
    while off + 16 <= len(b):
        offs.append(off)
        off += 16 + struct.unpack_from("<I", b, off + 8)[0]
    return offs


def pcapng_blocks(b: bytes) -> list[tuple[int, int]]:
    """(offset, total length) of each pcapng block (little-endian)."""
    if b[:4] != b"\x0a\x0d\x0d\x0a":
        return []
    out, off = [], 0
    while off + 12 <= len(b):
        n = struct.unpack_from("<I", b, off + 4)[0]
        if n < 12:
            break
        out.append((off, n))
        off += n
    return out


ABSURD = st.sampled_from([0, 1, 15, 65535, 262145, 0x7FFFFFFF, 0xFFFFFFFF])


@st.composite
def mutated(draw, base=None):
    b = bytearray(draw(base if base is not None else st.sampled_from(seeds())))
    ops = draw(st.lists(st.sampled_from(
        ["truncate", "flip", "overwrite", "insert", "delete", "dup", "caplen", "origlen",
         "blocklen", "blocktail", "gzip"]), min_size=1, max_size=3))
    for op in ops:
        n = len(b)
        if n == 0:
            break
        if op == "truncate":
            del b[draw(st.integers(0, n - 1)):]
        elif op == "flip":
            for _ in range(draw(st.integers(1, 8))):
                i = draw(st.integers(0, n - 1))
                b[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            i = draw(st.integers(0, n - 1))
            b[i:i + 4] = draw(st.binary(min_size=1, max_size=4))
        elif op == "insert":
            i = draw(st.integers(0, n))
            b[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            i = draw(st.integers(0, n - 1))
            del b[i:i + draw(st.integers(1, 64))]
        elif op == "dup":
            i = draw(st.integers(0, n - 1))
            j = draw(st.integers(i, min(n, i + 2000)))
            k = draw(st.integers(0, n))
            b[k:k] = b[i:j]
        elif op in ("caplen", "origlen") and (recs := pcap_records(bytes(b))):
            at = draw(st.sampled_from(recs)) + (8 if op == "caplen" else 12)
            b[at:at + 4] = struct.pack("<I", draw(ABSURD))
        elif op in ("blocklen", "blocktail") and (blocks := pcapng_blocks(bytes(b))):
            off, total = draw(st.sampled_from(blocks))
            at = off + 4 if op == "blocklen" else off + total - 4
            if at + 4 <= len(b):
                b[at:at + 4] = struct.pack("<I", draw(ABSURD))
        elif op == "gzip":
            b = bytearray(gzip.compress(bytes(b), compresslevel=1, mtime=0))  # no clock in the data
    return bytes(b)


json_lines = st.lists(st.one_of(
    st.sampled_from([b"{}", b"[]", b"null", b"{\"version\": 3}", b"{\"payload\": {\"$base64\": \"!!\"}}",
                     b"{\"frame\": \"x\", \"hep_transport\": [1]}", b"\xff\xfe{", b"{" * 50, b"[" * 100000,
                     b"{\"version\": 1, \"family\": 99}", b"{\"chunks\": [{\"vendor\": -1}]}"]),
    st.dictionaries(st.sampled_from(["version", "payload", "src_ip", "dst_port", "ts_sec",
                                     "chunks", "proto", "capture_id", "frame", "family",
                                     "correlation_id", "ip_proto", "auth_key", "vlan"]),
                    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                              st.text(max_size=20), st.lists(st.integers(), max_size=3),
                              st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)),
                    max_size=8).map(lambda d: json.dumps(d).encode()),
), min_size=1, max_size=8).map(lambda lines: b"\n".join(lines))

inputs = st.one_of(mutated(), mutated(json_lines), json_lines,
                   json_lines.map(lambda b: b"[" + b.replace(b"\n", b",") + b"]"),
                   st.binary(max_size=200))


_FAST_RECORD = make_fast_record()
_FAST_JSONL = make_fast_jsonl()


def check_fast_paths(p, m) -> None:
    """The record/JSON-line fast paths (C when built) agree with the decoder on this packet."""
    for frame in (p.frame, None):
        head = (p.index, frame, p.hep_transport if frame is not None else None, p.hep_src,
                p.hep_dst)
        r = _FAST_RECORD(p.data, *head, True)
        if r is None:
            continue
        assert not m.warnings
        assert r == decode_record(m, *head, True)
        if _FAST_JSONL is not None:
            line = _FAST_JSONL(p.data, *head, True)
            assert line is None or line == orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE)
    if m.payload:
        assert sip_ids(m.payload) == sip_ids_py(m.payload)


def read_all(data: bytes, strict: bool = False) -> None:
    stats = InputStats()
    try:
        for p in iter_input(io.BytesIO(data), stats=stats, strict=strict):
            try:
                m = to_message(p, strict)
            except HepError as e:
                assert "\n" not in str(e)
                continue
            to_record(m)
            summary(m)
            extract(m)
            if p.data is not None:
                check_fast_paths(p, m)
    except OWN_ERRORS as e:
        assert "\n" not in str(e), str(e)


def convert_all(data: bytes) -> None:
    try:
        for _m in sip_to_hep(io.BytesIO(data)):
            pass
    except OWN_ERRORS as e:
        assert "\n" not in str(e), str(e)


TARGETS = {
    "inputs": (inputs, read_all, [
        # from_record: a family that is neither a number nor a name (AttributeError)
        b'{"payload": null, "src_ip": null, "dst_port": null, "family": []}',
        # a JSON Lines line with no end (a gzip bomb's): quadratic copies, unbounded memory
        b'{"payload": "' + b"A" * (17 << 20),
        # a JSON array record's "frame" is the place named in its error: "\n" made it two lines
        b'[{"version": null, "payload": null, "src_ip": null, "dst_port": null, "frame": "\\n"}]',
    ]),
    "inputs-strict": (inputs, lambda d: read_all(d, True), [
        b'[{"payload": null, "src_ip": null, "dst_port": null, "family": "", "frame": "\\n"}]',
    ]),
    "sip-to-hep": (mutated(), convert_all, []),
}


@pytest.mark.parametrize(("name", "budget"), fuzzutil.targets_params(TARGETS))
def test_fuzz(name, budget):
    strategy, body, examples = TARGETS[name]
    fuzzutil.run(name, strategy, body, budget=budget, examples=examples)


def test_seeds_are_read():
    assert len(seeds()) >= 30
    for s in seeds():
        read_all(s)
