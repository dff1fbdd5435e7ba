"""heptool.sip.framing: SIP over a byte stream split into messages, under every split."""

from __future__ import annotations

import random

import pytest

from heptool.sip.framing import SipSplitter, content_length, looks_like_sip

INVITE = (b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
          b"Call-ID: a@h\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
          b"Content-Length: 12\r\n\r\nv=0\r\no=x\r\n\r\n")
OK = b"SIP/2.0 200 OK\r\nCall-ID: a@h\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n"
BYE = b"BYE sip:bob@example.com SIP/2.0\r\ncontent-length : 4\r\nCall-ID: a@h\r\n\r\nabcd"
NOLEN = b"ACK sip:bob@example.com SIP/2.0\r\nCall-ID: a@h\r\n\r\n"
STREAM = [INVITE, OK, BYE, NOLEN]


def split_all(chunks):
    sp = SipSplitter()
    out = []
    for c in chunks:
        out.extend(sp.feed(c))
    return out, sp


def test_content_length_forms():
    assert content_length(INVITE[:INVITE.index(b"\r\n\r\n") + 2]) == 12
    assert content_length(b"SIP/2.0 200 OK\r\nl: 7\r\n") == 7
    assert content_length(b"X sip:a SIP/2.0\r\nCONTENT-LENGTH:\t3\r\n") == 3
    assert content_length(b"X sip:a SIP/2.0\r\nCall-ID: l: 5\r\n") is None


def test_looks_like_sip():
    for m in STREAM:
        assert looks_like_sip(m)
    for not_sip in (b"", b"\r\n\r\n", b"HEP3\x00\x10", b"GET / HTTP/1.1\r\n\r\n",
                    b"\x16\x03\x01\x02\x00", b"SIP/2.0 abc\r\n", b"INVITE sip:x SIP/2.0"):
        assert not looks_like_sip(not_sip)


def test_several_messages_in_one_segment():
    out, sp = split_all([b"".join(STREAM)])
    assert [m for _o, m in out] == STREAM
    offsets = [o for o, _m in out]
    assert offsets == [0, len(INVITE), len(INVITE) + len(OK), len(INVITE) + len(OK) + len(BYE)]
    assert sp.buffered == 0 and sp.close() == 0


@pytest.mark.parametrize("seed", range(20))
def test_any_split_gives_the_same_messages(seed):
    data = b"".join(STREAM) * 3
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 40)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
    out, _sp = split_all(chunks)
    assert [m for _o, m in out] == STREAM * 3


def test_one_byte_at_a_time():
    data = b"".join(STREAM)
    out, _sp = split_all([data[i:i + 1] for i in range(len(data))])
    assert [m for _o, m in out] == STREAM


def test_keepalives_skipped_and_counted():
    out, sp = split_all([b"\r\n\r\n" + OK + b"\r\n" + INVITE + b"\r\n\r\n"])
    assert [m for _o, m in out] == [OK, INVITE]
    assert sp.keepalive_bytes == 10


def test_garbage_is_skipped_to_the_next_start_line():
    out, sp = split_all([b"\x16\x03\x01 junk\r\nmore junk\r\n" + OK])
    assert [m for _o, m in out] == [OK]
    assert sp.skipped_bytes == len(b"\x16\x03\x01 junk\r\nmore junk\r\n")


def test_incomplete_message_held_then_dropped_at_close():
    out, sp = split_all([INVITE[:-3]])
    assert out == [] and sp.buffered == len(INVITE) - 3
    assert sp.close() == len(INVITE) - 3


def test_bounded_header():
    sp = SipSplitter(max_header=256)
    huge = b"INVITE sip:x SIP/2.0\r\n" + b"X-Pad: " + b"a" * 1000 + b"\r\n"
    assert sp.feed(huge) == []
    assert sp.buffered < 300
    assert sp.feed(b"\r\n" + OK) == [(len(huge) + 2, OK)]


def test_bounded_body():
    sp = SipSplitter(max_body=10)
    big = b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 100000\r\n\r\n"
    out = sp.feed(big + OK)
    assert [m for _o, m in out] == [OK]
    assert sp.skipped_bytes == len(big)


def test_content_length_is_nine_ascii_digits_at_most():
    """More digits was int() of up to any number of digits: past 4,300 a ValueError out of
    convert ("internal error"); now invalid framing, skipped like an oversized body."""
    from heptool.sip.framing import INVALID, clen_value

    assert content_length(b"X sip:a SIP/2.0\r\nContent-Length: 999999999\r\n") == 999999999
    assert content_length(b"X sip:a SIP/2.0\r\nContent-Length: 0000000001\r\n") == INVALID
    assert content_length(b"X sip:a SIP/2.0\r\nl: " + b"7" * 5000 + b"\r\n") == INVALID
    assert content_length("X sip:a SIP/2.0\r\nContent-Length: ²\r\n".encode()) is None
    assert [clen_value(v) for v in (b"0", b"12", b"", b"1_0", b" 1", "²".encode(), b"1" * 10)] == [
        0, 12, INVALID, INVALID, INVALID, INVALID, INVALID]


@pytest.mark.parametrize("digits", [b"1" * 10, b"9" * 4301, b"9" * 50_000])
def test_huge_content_length_is_skipped_not_an_error(digits):
    big = b"MESSAGE sip:x SIP/2.0\r\nContent-Length: " + digits + b"\r\n\r\n"
    out, sp = split_all([OK + big + OK])
    assert [m for _o, m in out] == [OK, OK]
    assert sp.skipped_bytes == len(big)
