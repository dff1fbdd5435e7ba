"""(Re)write the seed corpus of the C fuzz targets: tests/fuzz/corpus/<function>/.

    python tests/fuzz/cfuzz/make_corpus.py

Deterministic: the same vectors give the same files (named by content hash).  Seeds are a
spread of the packets, SIP payloads and Ethernet frames of tests/vectors plus a few of the
benchmark's realistic packets (bench/bench_codec.py), each in the input layout its target
reads (tests/fuzz/cfuzz/targets.py: a leading option byte for the functions with options).
Kept small (well under 1 MB) so it can live in the repository; libFuzzer grows its own
working corpus from it.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import sys
from pathlib import Path

import dpkt

ROOT = Path(__file__).resolve().parents[3]
VECTORS = ROOT / "tests" / "vectors"
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
PER_TARGET = 120  # seeds from the vectors, per target
BENCH = 24  # seeds from the benchmark's packets, per target


def _spread(items: list, n: int) -> list:
    """n items spread evenly over the list (all of them when there are fewer)."""
    if len(items) <= n:
        return items
    return [items[i * len(items) // n] for i in range(n)]


def _unique(items):
    seen = set()
    return [x for x in items if not (x in seen or seen.add(x))]


def _captures():
    return sorted(p for p in VECTORS.rglob("*") if p.suffix in (".pcap", ".pcapng", ".bin"))


def hep_packets() -> list[bytes]:
    from heptool.capture.inputs import InputStats, iter_input

    out = []
    for path in _captures():
        with open(path, "rb") as f:
            out += [p.data for p in iter_input(f, stats=InputStats()) if p.data is not None]
    return _unique(out)


def frames() -> list[bytes]:
    out = []
    for path in _captures():
        if path.suffix != ".pcap":
            continue
        with open(path, "rb") as f:
            r = dpkt.pcap.Reader(f)
            if r.datalink() == 1:
                out += [bytes(buf) for _ts, buf in r]
    return _unique(out)


def bench_packets(n: int) -> list[bytes]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from bench_codec import build
    finally:
        sys.path.pop(0)
    return build(n)


def udp_frame(payload: bytes, i: int) -> bytes:
    """Ethernet/IPv4/UDP to port 9060 around a payload (as a HEP sender would send it)."""
    udp = struct.pack(">HHHH", 5060 + i % 3, 9060, 8 + len(payload), 0) + payload
    ip = (b"\x45\x00" + struct.pack(">H", 20 + len(udp)) + b"\x00\x00\x40\x00\x40\x11\x00\x00"
          + bytes([10, 0, 0, 1 + i % 200, 10, 0, 1, 1]))
    return bytes(12) + b"\x08\x00" + ip + udp


def payloads(packets: list[bytes]) -> list[bytes]:
    from heptool.core.codec import decode
    from heptool.core.errors import HepDecodeError

    out = []
    for d in packets:
        try:
            p = decode(d).payload
        except HepDecodeError:
            continue
        if p and (p[:1].isalpha() or p[:1] == b"{"):
            out.append(p)
    return _unique(out)


def seeds() -> dict[str, list[bytes]]:
    packets = hep_packets()
    bench = bench_packets(BENCH)
    sip = payloads(packets)
    sip_bench = payloads(bench)
    hep = _spread(packets, PER_TARGET) + bench
    opts = [bytes([(i * 37) % 256]) for i in range(len(hep))]  # every option combination
    texts = [p for p in _spread(sip, PER_TARGET) + sip_bench if p[:1].isalpha()]
    fr = _spread([f for f in frames() if b"HEP3" in f or b"EEP" in f], PER_TARGET // 2)
    fr += _spread(frames(), PER_TARGET // 2)
    fr = _unique(fr) + [udp_frame(d, i) for i, d in enumerate(bench)]
    # the C/Python disagreements issue 11 found (and crashes of the Python reading), kept as
    # seeds so every fuzz run starts from them
    hard = [
        b"INVITE sip:b@x SIP/2.0\r\nCall-ID: c\r\nX-C\xc4\xb1D: v\r\n\r\n",
        b"INVITE sip:b@x SIP/2.0\r\nCall-ID: c\r\nX-C\xc4\xb0D: v\r\n\r\n",
        b"OPTIONS sipg\nh0\r SIP/2.0\r\nCall-ID: a@b\r\nCSeq: 1 OPTIONS\r\n\r\n",
        b"INVITE sip:b@x SIP/2.0\r\ni: compact\r\nCall-ID : v\r\n\r\n",
        b"SIP/2.0 1\xc2\xb20 OK\r\nCall-ID: c\r\nCSeq: \xc2\xb2 INVITE\r\n\r\n",
        b"SIP/2.0 200 OK\r\nCall-ID: c\r\nCSeq: " + b"9" * 4301 + b" INVITE\r\n\r\n",
    ]
    return {
        "hep3_fields": hep,
        "hep3_record": [o + d for o, d in zip(opts, hep)],
        "hep3_jsonl": [o + d for o, d in zip(opts[::-1], hep)],
        "sip_summary": [bytes([i % 2]) + t for i, t in enumerate(texts)] + [b"\x00" + h for h in hard],
        "sip_ids": _spread(sip, PER_TARGET) + sip_bench + hard,
        "udp4_hep": [bytes([i % 8]) + f for i, f in enumerate(fr)],
    }


def main() -> None:
    total = 0
    for name, items in seeds().items():
        d = CORPUS / name
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for data in _unique(items):
            (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)
        size = sum(f.stat().st_size for f in d.iterdir())
        total += size
        print(f"{name}: {len(list(d.iterdir()))} seeds, {size} bytes")
    print(f"total {total} bytes in {CORPUS}")


if __name__ == "__main__":
    main()
