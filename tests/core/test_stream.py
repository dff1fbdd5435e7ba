"""StreamDecoder: sans-IO framing of HEP over a byte stream (TCP, TLS, files)."""

from __future__ import annotations

import random
import struct

import pytest

import heptool
from heptool import NEED_DATA, HepMessage, StreamDecoder, StreamError, decode, encode
from heptool.core import errors as E


def chunk(ctype: int, body: bytes, vendor: int = 0, length: int | None = None) -> bytes:
    return struct.pack(">HHH", vendor, ctype, 6 + len(body) if length is None else length) + body


def hep3(*chunks: bytes, magic: bytes = b"HEP3") -> bytes:
    body = b"".join(chunks)
    return magic + struct.pack(">H", 6 + len(body)) + body


def packet(i: int, size: int = 0) -> bytes:
    return encode(HepMessage(src_ip="10.0.0.1", dst_ip="10.0.0.2", src_port=5060, dst_port=i,
                             ts_sec=1700000000 + i, proto_type=1, capture_id=i,
                             payload=b"SIP %d " % i + b"x" * size))


PACKETS = [packet(i, size=i * 7) for i in range(12)]
STREAM = b"".join(PACKETS)


def drain(dec: StreamDecoder) -> list[HepMessage]:
    return list(dec)


def decode_split(data: bytes, cuts, **kw) -> tuple[list[HepMessage], StreamDecoder]:
    dec = StreamDecoder(**kw)
    out = []
    prev = 0
    for c in list(cuts) + [len(data)]:
        dec.feed(data[prev:c])
        prev = c
        out += drain(dec)
    return out, dec


# ---------------------------------------------------------------------------
# HEP3 framing
# ---------------------------------------------------------------------------
def test_whole_stream():
    dec = StreamDecoder()
    dec.feed(STREAM)
    msgs = drain(dec)
    assert [encode(m) for m in msgs] == PACKETS
    assert dec.messages == len(PACKETS)
    assert dec.skipped_bytes == 0 and dec.resyncs == 0
    assert dec.close() == 0
    assert dec.offset == len(STREAM)
    assert dec.buffered == 0


def test_empty_decoder():
    dec = StreamDecoder()
    assert dec.next_message() is NEED_DATA
    assert not NEED_DATA
    assert repr(NEED_DATA) == "NEED_DATA"
    dec.feed(b"")
    assert drain(dec) == []
    assert dec.close() == 0


def test_one_byte_at_a_time_need_data_until_the_last_byte_of_each_packet():
    dec = StreamDecoder()
    ends = set()
    pos = 0
    for p in PACKETS:
        pos += len(p)
        ends.add(pos - 1)
    got = []
    for i, byte in enumerate(STREAM):
        dec.feed(bytes([byte]))
        r = dec.next_message()
        if i in ends:
            assert r is not NEED_DATA, i
            got.append(encode(r))
            assert dec.next_message() is NEED_DATA
        else:
            assert r is NEED_DATA, i
    assert got == PACKETS
    assert dec.skipped_bytes == 0 and dec.close() == 0


def test_concatenated_in_one_feed_and_fed_in_pieces_agree():
    whole, _ = decode_split(STREAM, [])
    pieces, _ = decode_split(STREAM, range(0, len(STREAM), 5))
    assert whole == pieces
    assert [encode(m) for m in whole] == PACKETS


@pytest.mark.parametrize("seed", range(20))
def test_random_splits(seed):
    rnd = random.Random(seed)
    cuts = sorted(rnd.sample(range(1, len(STREAM)), rnd.randint(1, 40)))
    msgs, dec = decode_split(STREAM, cuts)
    assert [encode(m) for m in msgs] == PACKETS
    assert dec.close() == 0


def test_feed_without_draining_then_iterate():
    dec = StreamDecoder()
    for p in PACKETS:
        dec.feed(p)
    assert [encode(m) for m in dec] == PACKETS


def test_offsets_stay_right_after_buffer_compaction():
    # push well over 64 KiB through, draining as we go, then a strict failure: its offset
    # must be the stream offset, not the buffer offset
    big = [packet(i, size=3000) for i in range(60)]
    dec = StreamDecoder(strict=True)
    for p in big:
        dec.feed(p)
        assert dec.next_message() is not NEED_DATA
    total = sum(map(len, big))
    assert dec.offset == total
    dec.feed(b"junk")
    with pytest.raises(StreamError) as ei:
        dec.next_message()
    assert ei.value.offset == total


# -- garbage -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "garbage",
    [b"x", b"garbage", b"\x00" * 100, b"HEP", b"HE", b"EEP", b"HEP2\x00\x10", b"\x01\x02\x03",
     b"GET / HTTP/1.1\r\n\r\n"],
)
def test_garbage_between_packets_is_skipped_and_counted_exactly(garbage):
    data = garbage + PACKETS[0] + garbage + PACKETS[1] + garbage + PACKETS[2]
    for cuts in ([], range(1, len(data))):
        msgs, dec = decode_split(data, cuts)
        assert [encode(m) for m in msgs] == PACKETS[:3]
        assert dec.skipped_bytes == 3 * len(garbage)
        assert dec.close() == 0


def test_garbage_at_the_end_keeps_a_possible_magic_prefix():
    dec = StreamDecoder()
    dec.feed(PACKETS[0] + b"zzzzHE")
    assert len(drain(dec)) == 1
    assert dec.skipped_bytes == 4
    dec.feed(PACKETS[1][2:])  # "P3..." completes the magic split by the feed
    assert [encode(m) for m in drain(dec)] == [PACKETS[1]]
    assert dec.close() == 0


def test_partial_magic_at_close_is_reported():
    dec = StreamDecoder()
    dec.feed(PACKETS[0] + b"HEP")
    drain(dec)
    assert dec.close() == 3


def test_hep3_length_below_6_is_garbage():
    for total in range(6):
        bogus = b"HEP3" + struct.pack(">H", total)
        msgs, dec = decode_split(bogus + PACKETS[0], [])
        assert [encode(m) for m in msgs] == [PACKETS[0]]
        assert dec.skipped_bytes == 6
        dec = StreamDecoder(strict=True)
        dec.feed(bogus + PACKETS[0])
        with pytest.raises(StreamError) as ei:
            dec.next_message()
        assert ei.value.offset == 0


def test_strict_garbage_raises_with_stream_offset_and_stays_failed():
    dec = StreamDecoder(strict=True)
    dec.feed(PACKETS[0] + b"!!" + PACKETS[1])
    assert encode(dec.next_message()) == PACKETS[0]
    with pytest.raises(StreamError) as ei:
        dec.next_message()
    assert ei.value.offset == len(PACKETS[0])
    assert f"offset {len(PACKETS[0])}" in str(ei.value)
    for _ in range(3):
        with pytest.raises(StreamError) as again:
            dec.next_message()
        assert again.value.offset == len(PACKETS[0])
    dec.feed(PACKETS[2])
    with pytest.raises(StreamError):
        dec.next_message()


def test_strict_eep_magic_is_a_decode_error_not_garbage():
    eep = b"EEP1" + PACKETS[1][4:]
    dec = StreamDecoder(strict=True)
    dec.feed(PACKETS[0] + eep + PACKETS[2])
    assert encode(dec.next_message()) == PACKETS[0]
    with pytest.raises(E.BadMagicError) as ei:
        dec.next_message()
    assert ei.value.offset == len(PACKETS[0])
    assert encode(dec.next_message()) == PACKETS[2]
    lenient = StreamDecoder()
    lenient.feed(PACKETS[0] + eep + PACKETS[2])
    assert [encode(m) for m in lenient] == [PACKETS[0], eep, PACKETS[2]]


# -- end of stream ----------------------------------------------------------------
@pytest.mark.parametrize("cut", [1, 3, 4, 5, 6, 20])
def test_partial_packet_at_close(cut):
    dec = StreamDecoder()
    dec.feed(PACKETS[0] + PACKETS[1][:cut])
    assert len(drain(dec)) == 1
    assert dec.close() == cut
    strict = StreamDecoder(strict=True)
    strict.feed(PACKETS[0] + PACKETS[1][:cut])
    assert len(drain(strict)) == 1
    with pytest.raises(StreamError) as ei:
        strict.close()
    assert ei.value.offset == len(PACKETS[0])


# -- bounds -----------------------------------------------------------------------
def test_max_buffer_bound_enforced():
    dec = StreamDecoder(max_buffer=70_000)
    dec.feed(b"HEP3\xff\xff" + bytes(69_000))
    with pytest.raises(StreamError) as ei:
        dec.feed(bytes(1_001))
    assert "70000" in str(ei.value)
    dec.feed(bytes(994))  # exactly at the bound is fine
    assert dec.buffered == 70_000


def test_max_buffer_counts_only_unread_bytes():
    dec = StreamDecoder(max_buffer=70_000)
    for _ in range(30):
        for p in PACKETS:
            dec.feed(p)
        drain(dec)
    assert dec.messages == 30 * len(PACKETS)


def test_max_buffer_must_hold_a_whole_packet():
    with pytest.raises(ValueError):
        StreamDecoder(max_buffer=65_535)


def test_largest_hep3_packet_is_framed():
    p = encode(HepMessage(payload=b"z" * (65535 - 12)))
    assert len(p) == 65535
    msgs, _dec = decode_split(p + PACKETS[0], range(1000, len(p), 1000))
    assert [encode(m) for m in msgs] == [p, PACKETS[0]]


# -- a framed packet that does not decode ------------------------------------------
def _corrupt(p: bytes) -> tuple[bytes, int]:
    """p with its payload chunk length set to 3; returns (bytes, offset of that length)."""
    at = p.rindex(b"\x00\x00\x00\x0f")
    bad = bytearray(p)
    bad[at + 4:at + 6] = b"\x00\x03"
    return bytes(bad), at + 4


def test_framed_packet_with_corrupt_chunk_lenient():
    bad, _ = _corrupt(PACKETS[1])
    msgs, dec = decode_split(PACKETS[0] + bad + PACKETS[2], [])
    assert len(msgs) == 3
    assert [type(w) for w in msgs[1].warnings] == [E.TruncatedChunkError]
    assert encode(msgs[1]) == bad
    assert dec.skipped_bytes == 0


def test_framed_packet_with_corrupt_chunk_strict_raises_and_continues():
    bad, at = _corrupt(PACKETS[1])
    dec = StreamDecoder(strict=True)
    dec.feed(PACKETS[0] + bad + PACKETS[2] + bad)
    assert encode(dec.next_message()) == PACKETS[0]
    with pytest.raises(E.TruncatedChunkError) as ei:
        dec.next_message()
    assert ei.value.offset == len(PACKETS[0]) + at
    assert ei.value.chunk == (0, 0x0F)
    assert encode(dec.next_message()) == PACKETS[2]  # moved past it
    with pytest.raises(heptool.HepDecodeError) as ei2:
        dec.next_message()
    assert ei2.value.offset == len(PACKETS[0]) + len(bad) + len(PACKETS[2]) + at
    assert dec.next_message() is NEED_DATA
    assert dec.close() == 0


# ---------------------------------------------------------------------------
# HEPv1/v2 framed by the SIP message (Kamailio over TCP, HEP-SPEC 14)
# ---------------------------------------------------------------------------
def v12(sip: bytes, version: int = 2, v6: bool = False) -> bytes:
    asz = 16 if v6 else 4
    head = struct.pack(">BBBBHH", version, 8 + 2 * asz, 10 if v6 else 2, 6, 5060, 5060)
    head += bytes(range(1, asz + 1)) + bytes(range(2, asz + 2))
    if version == 2:
        head += struct.pack("<IIH", 1700000000, 5, 2001) + b"\0\0"
    return head + sip


BODY = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\n"
SIP_CL = (b"INVITE sip:bob@x SIP/2.0\r\nVia: SIP/2.0/TCP x\r\nContent-Length: %d\r\n\r\n" % len(BODY)) + BODY
SIP_L = (b"MESSAGE sip:bob@x SIP/2.0\r\nl:%d\r\nVia: SIP/2.0/TCP x\r\n\r\n" % len(BODY)) + BODY
SIP_LOWER = (b"SIP/2.0 200 OK\r\ncontent-length  :  %d\r\n\r\n" % len(BODY)) + BODY
SIP_NONE = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP x\r\n\r\n"
SIP_ZERO = b"BYE sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize("sip", [SIP_CL, SIP_L, SIP_LOWER, SIP_NONE, SIP_ZERO],
                         ids=["content-length", "compact-l", "lowercase", "none", "zero"])
@pytest.mark.parametrize(("version", "v6"), [(1, False), (2, False), (1, True), (2, True)])
def test_v12_framed_by_content_length(sip, version, v6):
    one = v12(sip, version, v6)
    data = one + one + PACKETS[0] + one
    for cuts in ([], range(1, len(data)), [len(one) - 1, len(one) + 3]):
        msgs, dec = decode_split(data, cuts)
        assert [m.version for m in msgs] == [version, version, 3, version]
        assert [m.payload for m in msgs] == [sip, sip, msgs[2].payload, sip]
        assert encode(msgs[0]) == one
        assert dec.skipped_bytes == 0
        assert dec.close() == 0


def test_v12_no_content_length_means_empty_body():
    # the bytes after CRLFCRLF are the next packet, not a body
    data = v12(SIP_NONE) + v12(SIP_CL)
    msgs, _ = decode_split(data, [])
    assert [m.payload for m in msgs] == [SIP_NONE, SIP_CL]


def test_v12_body_split_across_feeds():
    one = v12(SIP_CL)
    dec = StreamDecoder()
    dec.feed(one[:-5])
    assert dec.next_message() is NEED_DATA
    dec.feed(one[-5:-1])
    assert dec.next_message() is NEED_DATA
    dec.feed(one[-1:])
    assert dec.next_message().payload == SIP_CL


def test_v12_not_framed_when_disabled():
    dec = StreamDecoder(allow_v12=False)
    dec.feed(v12(SIP_NONE) + PACKETS[0])
    assert [encode(m) for m in dec] == [PACKETS[0]]
    assert dec.skipped_bytes == len(v12(SIP_NONE))


def test_v12_without_sip_is_garbage():
    junk = v12(b"\x00\x01binary")
    msgs, dec = decode_split(junk + PACKETS[0], [])
    assert [encode(m) for m in msgs] == [PACKETS[0]]
    assert dec.skipped_bytes == len(junk)


def test_v12_headers_never_end_within_max_message():
    junk = v12(b"INVITE " + b"a" * 300)
    dec = StreamDecoder(max_message=100)
    dec.feed(junk + PACKETS[0])
    assert [encode(m) for m in dec] == [PACKETS[0]]
    assert dec.skipped_bytes == len(junk)


def test_v12_garbage_resync_after_v12_seen():
    one = v12(SIP_ZERO)
    data = one + b"@@@@" + one
    msgs, dec = decode_split(data, [])
    assert [m.payload for m in msgs] == [SIP_ZERO, SIP_ZERO]
    assert dec.skipped_bytes == 4


def test_v12_strict_garbage():
    dec = StreamDecoder(strict=True)
    dec.feed(v12(SIP_ZERO) + b"@" + v12(SIP_ZERO))
    assert dec.next_message().payload == SIP_ZERO
    with pytest.raises(StreamError) as ei:
        dec.next_message()
    assert ei.value.offset == len(v12(SIP_ZERO))


def test_real_hepjs_stream_file():
    from pathlib import Path

    data = (Path(__file__).resolve().parents[1] / "vectors" / "hepjs" / "hepjs-hep3.bin").read_bytes()
    whole, dec = decode_split(data, [])
    assert len(whole) == 21
    assert dec.skipped_bytes == 0 and dec.close() == 0
    assert b"".join(encode(m) for m in whole) == data
    bytewise, _ = decode_split(data, range(1, len(data)))
    assert bytewise == whole
    assert all(m == decode(encode(m)) for m in whole)


# Content-Length is 1-9 ASCII digits: more was int() of thousands of digits (ValueError past
# Python's 4,300-digit limit, "internal error" in decode); now it is no frame (issue 11).
@pytest.mark.parametrize("digits", [b"9" * 10, b"1" * 4301, b"0" * 5000 + b"5", b"9" * 100_000])
def test_v12_content_length_of_too_many_digits_is_garbage(digits):
    bad = v12(b"INVITE sip:x SIP/2.0\r\nContent-Length: " + digits + b"\r\n\r\n")
    good = v12(SIP_ZERO)
    msgs, dec = decode_split(good + bad + good + PACKETS[0], [], max_message=200_000,
                             max_buffer=1 << 21)
    assert [m.payload for m in msgs] == [SIP_ZERO, SIP_ZERO, msgs[2].payload]
    assert dec.skipped_bytes == len(bad)
    strict = StreamDecoder(strict=True, max_message=200_000, max_buffer=1 << 21)
    strict.feed(good + bad + good)
    assert strict.next_message().payload == SIP_ZERO
    with pytest.raises(StreamError) as ei:
        strict.next_message()
    assert ei.value.offset == len(good)


def test_v12_content_length_nine_digits_is_a_length():
    """9 digits is a valid value; longer than max_message means "not a frame" as before."""
    bad = v12(b"INVITE sip:x SIP/2.0\r\nContent-Length: 999999999\r\n\r\n")
    msgs, dec = decode_split(v12(SIP_ZERO) + bad + v12(SIP_ZERO), [])
    assert [m.payload for m in msgs] == [SIP_ZERO, SIP_ZERO]
    assert dec.skipped_bytes == len(bad)


def test_v12_content_length_non_ascii_digits_are_not_a_length():
    # '²' and Arabic-Indic digits are str.isdigit() but never a Content-Length: the header
    # does not count, so the message has no body and the next packet follows it
    for text in ("²", "\u0663"):
        sip = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: " + text.encode() + b"\r\n\r\n"
        msgs, dec = decode_split(v12(sip) + v12(SIP_ZERO), [])
        assert [m.payload for m in msgs] == [sip, SIP_ZERO] and dec.skipped_bytes == 0
