"""heptool.core.wire: the shared wire rules (magics, sniffing, the chunk walk, Content-Length).

In the style of h11's tests: each rule is run on whole inputs, on every prefix (a packet cut at
every offset, or fed one byte at a time to the stream framing that uses it), and with
trailing garbage, and the bounded chunk walk is compared with what the decoder reports.
"""

from __future__ import annotations

import itertools
import struct

import pytest

from heptool import HepMessage, StreamDecoder, decode, encode
from heptool.core import wire
from heptool.core.errors import TruncatedChunkError
from heptool.core.wire import ChunkHeader, iter_chunks


def chunk(ctype: int, body: bytes, vendor: int = 0, length: int | None = None) -> bytes:
    return struct.pack(">HHH", vendor, ctype, 6 + len(body) if length is None else length) + body


def hep3(*chunks: bytes, magic: bytes = b"HEP3") -> bytes:
    body = b"".join(chunks)
    return magic + struct.pack(">H", 6 + len(body)) + body


PACKET = encode(HepMessage(src_ip="10.0.0.1", dst_ip="10.0.0.2", src_port=5060, dst_port=5061,
                           ts_sec=1700000000, ts_usec=7, proto_type=1, capture_id=2001,
                           node_name="n", correlation_id="c",
                           payload=b"OPTIONS sip:x SIP/2.0\r\n\r\n"))
ODD = hep3(chunk(1, b"\x02"), chunk(0x77, b"vendor!", vendor=0x0009), chunk(0x0F, b""),
           chunk(0x0F, b"SIP"))


def walk(data: bytes, start: int = 6, end: int | None = None) -> list:
    return list(iter_chunks(data, start, end))


def reference(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """The chunk walk written out plainly: (offset, vendor, type, length) of every whole chunk."""
    out = []
    off = start
    while end - off >= 6:
        vendor, ctype, clen = struct.unpack(">HHH", data[off:off + 6])
        if clen < 6 or off + clen > end:
            break
        out.append((off, vendor, ctype, clen))
        off += clen
    return out


# ---------------------------------------------------------------------------
# iter_chunks
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("data", [PACKET, ODD], ids=["agent", "odd"])
def test_whole_packet_yields_every_chunk_by_name(data):
    got = walk(data)
    assert all(type(h) is ChunkHeader for h in got)
    assert [tuple(h) for h in got] == reference(data, 6, len(data))
    assert got[0].offset == 6 and got[-1].offset + got[-1].length == len(data)
    # the chunks tile the packet exactly, each body is what the header says
    for a, b in itertools.pairwise(got):
        assert a.offset + a.length == b.offset
    assert [(h.vendor, h.type) for h in got] == decode(data).chunk_ids()


@pytest.mark.parametrize("data", [PACKET, ODD], ids=["agent", "odd"])
def test_every_truncation_offset(data):
    """Cut at every offset: the whole chunks before the cut, then exactly one error (or none
    when the cut falls on a chunk boundary), whose text and offset are the decoder's."""
    bounds = {h.offset for h in walk(data)} | {len(data)}
    for cut in range(6, len(data) + 1):
        got = walk(data, 6, cut)
        heads = [g for g in got if type(g) is ChunkHeader]
        assert [tuple(h) for h in heads] == reference(data, 6, cut)
        errors = [g for g in got if type(g) is not ChunkHeader]
        if cut in bounds:
            assert errors == []
            continue
        assert len(errors) == 1 and got[-1] is errors[0]
        err = errors[0]
        assert isinstance(err, TruncatedChunkError)
        stop = heads[-1].offset + heads[-1].length if heads else 6
        assert err.offset in (stop, stop + 4)
        # the decoder reports the same damage at the same place (lenient: a warning)
        cut_packet = data[:4] + struct.pack(">H", cut) + data[6:cut]
        m = decode(cut_packet)
        assert [(type(w), str(w)) for w in m.warnings] == [(type(err), str(err))]


def test_truncation_errors_name_the_chunk():
    data = hep3(chunk(1, b"\x02"), chunk(7, b"\x13\xc4", length=3))
    *heads, err = walk(data)
    assert [h.type for h in heads] == [1]
    assert err.message == "chunk 0x0000:0x0007 length 3 is less than 6"
    assert err.offset == 13 + 4 and err.chunk == (0, 7)
    data = hep3(chunk(1, b"\x02"), chunk(7, b"\x13\xc4", length=60))
    err = walk(data)[-1]
    assert err.message == "chunk 0x0000:0x0007 length 60 exceeds remaining 8 bytes"
    assert err.offset == 17
    err = walk(hep3(chunk(1, b"\x02"), b"\0\0\0"))[-1]
    assert err.message == "3 bytes left, a chunk header needs 6" and err.offset == 13
    assert err.chunk is None


def test_trailing_garbage_is_not_walked_with_end():
    """``end`` bounds the walk: bytes after the HEP3 length are never read as chunks."""
    for garbage in (b"\0", b"\0\0\0\x0f\0\x07x", b"HEP3\0\x06", b"\xff" * 40):
        data = PACKET + garbage
        assert walk(data, 6, len(PACKET)) == walk(PACKET)
        # without the bound the garbage is walked too, and ends the walk with its error or chunk
        assert walk(data)[: len(walk(PACKET))] == walk(PACKET)


def test_start_and_end_bounds():
    heads = walk(PACKET)
    second = heads[1].offset
    assert walk(PACKET, second) == heads[1:]
    assert walk(PACKET, 6, 6) == []
    assert walk(PACKET, len(PACKET)) == []
    assert walk(b"", 0) == []


def test_zero_length_fields_are_whole_chunks():
    data = hep3(chunk(0x0F, b""), chunk(0x11, b""))
    assert [(h.type, h.length) for h in walk(data)] == [(0x0F, 6), (0x11, 6)]


# ---------------------------------------------------------------------------
# magics and sniffing
# ---------------------------------------------------------------------------
def test_magics():
    assert wire.MAGICS == (b"HEP3", b"EEP1", b"EEP3") == (wire.HEP3, wire.EEP1, wire.EEP3)
    assert wire.MAX_HEP3_SIZE == 65535
    assert [m.group() for m in wire.MAGIC_RE.finditer(b"xxHEP3EEP1EEP2EEP3HEP")] == [
        b"HEP3", b"EEP1", b"EEP3"]


V1 = bytes((1, 16, 2, 17)) + b"\x13\xc4\x13\xc4" + bytes(8) + b"SIP"
V2 = bytes((2, 16, 2, 17)) + b"\x13\xc4\x13\xc4" + bytes(8) + bytes(12) + b"SIP"


@pytest.mark.parametrize(("data", "version"), [
    (PACKET, 3), (b"EEP1\0\x06", 3), (b"EEP3", 3), (V1, 1), (V2, 2),
    (bytes((2, 0x77, 10, 17, 0, 0, 0, 0)), 2),  # sngrep: garbage length byte, family 10
    (bytes((1, 40, 99, 6, 0, 0, 0, 0)), 1),  # length 40, unknown family
    (bytes((1, 33, 99, 6, 0, 0, 0, 0)), None),
    (bytes((3, 16, 2, 17, 0, 0, 0, 0)), None),
    (b"HEP2xxxx", None), (b"", None), (b"GET / HTTP/1.1", None),
])
def test_sniff_version(data, version):
    assert wire.sniff_version(data) == version
    assert wire.sniff_version(data + b"trailing garbage") == version


def test_sniff_version_on_every_prefix():
    """Byte at a time: a magic needs its 4 bytes, a v1/v2 header its 8."""
    for data, need in ((PACKET, 4), (V1, 8), (V2, 8)):
        want = wire.sniff_version(data)
        for k in range(len(data) + 1):
            assert wire.sniff_version(data[:k]) == (want if k >= need else None), (data[:k], k)


def test_codec_and_capture_sniffs_are_the_wire_rule():
    from heptool.capture.inputs import sniff_kind
    from heptool.core import codec

    assert codec.sniff_version is wire.sniff_version
    for data in (PACKET, V1, V2, b"EEP3", bytes((1, 33, 99, 6, 0, 0, 0, 0)), b"\x02\x28"):
        assert (sniff_kind(data) == "hep") == (wire.sniff_version(data) is not None)


@pytest.mark.parametrize(("version", "hlen", "family", "size"), [
    (1, 16, 2, 16), (2, 16, 2, 28), (1, 40, 10, 40), (2, 40, 10, 52),
    (2, 0x77, 2, 28), (2, 16, 30, 52), (1, 16, 99, 16), (1, 40, 99, 40), (1, 33, 99, 0),
    (2, 16, 24, 52), (2, 40, 2, 28),
])
def test_v12_header_size(version, hlen, family, size):
    assert wire.v12_header_size(version, hlen, family) == size


def test_v12_header_size_is_where_decode_starts_the_payload():
    for data in (V1, V2):
        m = decode(data)
        assert m.payload == data[wire.v12_header_size(data[0], data[1], data[2]):]


# ---------------------------------------------------------------------------
# Content-Length
# ---------------------------------------------------------------------------
def test_clen_value():
    assert [wire.clen_value(v) for v in (b"0", b"12", b"", b"1_0", b" 1", "²".encode(),
                                         b"1" * 9, b"1" * 10)] == [
        0, 12, -1, -1, -1, -1, 111111111, -1]
    assert wire.INVALID == -1 and wire.CLEN_MAX_DIGITS == 9


@pytest.mark.parametrize(("head", "sip", "v12"), [
    (b"INVITE x SIP/2.0\r\nContent-Length: 5\r\n", 5, 5),
    (b"INVITE x SIP/2.0\r\nl:7\r\n", 7, 7),
    (b"INVITE x SIP/2.0\r\nCONTENT-LENGTH\t:\t12\r\n", 12, 12),
    (b"INVITE x SIP/2.0\nContent-Length: 5\n", 5, None),  # bare LF: SIP framing only
    (b"INVITE x SIP/2.0\r\n  l: 5\r\n", 5, None),  # indented: SIP framing only
    (b"INVITE x SIP/2.0\r\nContent-Length: 1234567890\r\n", -1, -1),
    (b"INVITE x SIP/2.0\r\nX-Content-Length: 5\r\n", None, None),
])
def test_the_two_content_length_regexes(head, sip, v12):
    """One digit rule; two header rules, kept apart so that neither framing changes: the
    SIP splitter reads any line start, the v1/v2 stream framing only a CRLF line start."""
    assert wire.content_length(head) == sip
    mo = wire.V12_CLEN_RE.search(head)
    assert (wire.clen_value(mo.group(1)) if mo else None) == v12


def test_sip_framing_uses_the_wire_rule():
    from heptool.sip import framing

    assert framing.content_length is wire.content_length
    assert framing.clen_value is wire.clen_value
    assert (framing.INVALID, framing.CLEN_MAX_DIGITS) == (wire.INVALID, wire.CLEN_MAX_DIGITS)


def test_v12_stream_framing_byte_at_a_time_with_trailing_garbage():
    """The v1/v2-over-TCP framing (v12_header_size + V12_CLEN_RE + clen_value) gives the same
    packets whole and one byte at a time, and skips garbage after them."""
    sip = b"INVITE sip:x SIP/2.0\r\nl: 4\r\n\r\nbody"
    stream = V2[:-3] + sip + PACKET + V1[:-3] + sip
    garbage = b"\xffgarbage"
    whole = StreamDecoder()
    whole.feed(stream + garbage)
    want = [encode(m) for m in whole]
    assert len(want) == 3
    one = StreamDecoder()
    got = []
    for i in range(len(stream + garbage)):
        one.feed((stream + garbage)[i:i + 1])
        got.extend(encode(m) for m in one)
    assert got == want
    assert one.close() == whole.close()
