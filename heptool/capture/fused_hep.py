"""HEP -> pcap, fused: the common HEPv3 packet straight to its pcap record.

:func:`hep3_to_pcap_records` converts the HEP bytes of each input packet with no message
object when the packet has one of the fixed chunk layouts agents send
(:data:`heptool.core.templates.AGENT_LAYOUTS`), and :func:`hep_pcap_to_records` goes one
step further for a
classic little-endian microsecond pcap file, reading the HEP packets straight out of the
read buffer.  Whatever they do not handle goes, in order, to the caller's general path
(decode, then :class:`~.hep_frames.HepFramer`), which shares their state.  Byte for byte
the general path's output (tests/capture/test_convert_fused.py checks it).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import Any

from ..core.addr import ip4_text, ip6_text
from ..core.templates import AGENT_LAYOUTS
from ..core.wire import MAGICS
from .dissect import eth_ip4_udp
from .hep import endpoint4, is_hep_candidate, iter_hep_payloads
from .hep_frames import TCP_PROTOS, HepFramer
from .inputs import InputError, InputPacket
from .pcapfile import PCAP_LE_RECORD, PCAP_LE_USEC, CaptureError, iter_records, read_exact
from .source import Prefixed
from .stats import CaptureStats
from .writer import DST_MAC, SRC_MAC

__all__ = ["hep3_to_pcap_records", "hep_pcap_to_records"]

#: Ethernet + IPv4 + UDP header of a frame FrameSynth.udp builds (UDP checksum 0)
_IP4UDP_HEAD = struct.Struct(">16sHH4sHIIHHH2x")
_CHUNK = struct.Struct(">HHH").pack
#: What one read asks for (the records are cut out of these blocks).
_READ = 1 << 18
#: Output records gathered before one write.
_BATCH = 512

#: chunk type -> (struct code, body size): the values the frames need are read (IPv4
#: addresses as numbers: the checksum wants them so), the others (family, capture id)
#: skipped.
_HEP3_FIXED = {0x01: ("x", 1), 0x02: ("B", 1), 0x03: ("I", 4), 0x04: ("I", 4),
               0x05: ("16s", 16), 0x06: ("16s", 16), 0x07: ("H", 2), 0x08: ("H", 2),
               0x09: ("I", 4), 0x0A: ("I", 4), 0x0B: ("B", 1), 0x0C: ("4x", 4)}
#: chunks that may follow the fixed ones without changing the frames (text, read by
#: decode without a warning whatever they hold); 0x0F, the payload, must be there once.
_HEP3_TEXT = frozenset((0x0E, 0x11, 0x13, 0x65))
_CHUNK_HDR = struct.Struct(">HHH").unpack_from
_PAYLOAD_CHUNK = b"\0\0\0\x0f"


def _hep3_template(order: tuple[int, ...]) -> tuple:
    """(signature, mask, end, unpack, pick, IPv6?) of one fixed layout: the magic and the
    ten chunk headers compared at once (values masked out), then every value read with
    one struct call from offset 0 and put in the order (length, ip proto, source,
    destination, source port, destination port, seconds, microseconds, proto type)."""
    fmt = ">4xH"
    sig = b"HEP3\0\0"
    mask = b"\xff" * 4 + b"\0\0"
    fields = [0]  # the length field
    for t in order:
        code, size = _HEP3_FIXED[t]
        fmt += "6x" + code
        sig += _CHUNK(0, t, 6 + size) + bytes(size)
        mask += b"\xff" * 6 + bytes(size)
        if code[-1] != "x":
            fields.append(t)
    v6 = 0x05 in order
    want = [0, 0x02, 0x05 if v6 else 0x03, 0x06 if v6 else 0x04, 0x07, 0x08, 0x09, 0x0A, 0x0B]
    s = struct.Struct(fmt)
    assert s.size == len(sig)
    return (int.from_bytes(sig, "big"), int.from_bytes(mask, "big"), s.size, s.unpack_from,
            itemgetter(*[fields.index(t) for t in want]), v6)


_HEP3_BY_THIRD: dict[int, list[tuple]] = {}
for _order in AGENT_LAYOUTS:
    _HEP3_BY_THIRD.setdefault(_order[2], []).append(_hep3_template(_order))
del _order


def _tail_payload(data: bytes, off: int, end: int) -> bytes | None:
    """The payload of the chunks ``data[off:end]`` that follow a fixed layout, when they
    are the payload chunk once and at most the text chunks (:data:`_HEP3_TEXT`) once each
    (what ``decode`` reads without a warning); ``None`` for anything else."""
    payload = None
    seen = 0
    while off + 6 <= end:
        vendor, ctype, clen = _CHUNK_HDR(data, off)
        nxt = off + clen
        if vendor or clen < 6 or nxt > end:
            break
        if ctype == 0x0F and payload is None:
            payload = data[off + 6:nxt]
        elif ctype not in _HEP3_TEXT or seen & (1 << (ctype & 0x7F)):
            break
        else:
            seen |= 1 << (ctype & 0x7F)
        off = nxt
    return payload if off == end else None


def _synth_frames(synth: Any, v6: bool, src: Any, sport: int, dst: Any, dport: int,
                  payload: bytes, tcp: Any) -> list[bytes] | None:
    """The frames :class:`~.frames.FrameSynth` makes of a packet that the one-struct UDP
    write does not cover (TCP, IPv6; the addresses as the fixed layout reads them), or
    ``None`` when it is too big for one datagram (the general path counts it)."""
    if v6:
        s_txt, d_txt = ip6_text(src), ip6_text(dst)
    else:
        s_txt, d_txt = ip4_text(src.to_bytes(4, "big")), ip4_text(dst.to_bytes(4, "big"))
    try:
        if tcp:
            return synth.tcp(s_txt, sport, d_txt, dport, payload)  # type: ignore[no-any-return]
        return [synth.udp(s_txt, sport, d_txt, dport, payload)]
    except ValueError:
        return None


def hep_pcap_to_records(path: str | os.PathLike[str], framer: HepFramer, *,
                        stats: CaptureStats | None = None) -> Iterator[Any]:
    """``hep3_to_pcap_records(iter_input(path), framer)`` for a classic little-endian
    microsecond pcap file (:data:`PCAP_LE_USEC`), fused one step further: the HEP packets
    are read, checked and converted straight out of the read buffer, with no
    :class:`~heptool.capture.inputs.InputPacket` unless one goes to the caller's general
    path (it is then the one ``iter_input`` would give).

    Records are cut out of 256 KiB reads (:func:`~.pcapfile.iter_records`), and the
    frame every HEP capture is made of (Ethernet, IPv4 without options, not fragmented,
    UDP) is read at fixed offsets (:func:`~.dissect.eth_ip4_udp`, as
    :func:`~.hep.iter_hep_payloads` reads it); its HEP packet is converted as
    :func:`hep3_to_pcap_records` converts (same layouts, same rules).  At the first record
    that is anything else (TCP, VLAN, IPv6, fragments, another link type, a record too
    short for those headers) the rest of the file is read by ``iter_hep_payloads`` itself,
    from that record on, with frame numbers and byte offsets carried over (until then that
    reader would have kept no state: no stream, no fragment), and converted by
    :func:`hep3_to_pcap_records`.  A damaged or truncated record raises the
    :class:`~.pcapfile.CaptureError` that reader would raise, after every record before it.
    """
    make = InputPacket.capture
    e4u = eth_ip4_udp
    candidate = is_hep_candidate
    magics = MAGICS
    eps: dict[int, str] = {}
    synth = framer.synth
    synth_frames = _synth_frames
    tail_payload = _tail_payload
    by_third = _HEP3_BY_THIRD
    pchunk = _PAYLOAD_CHUNK
    from_bytes = int.from_bytes
    rec = PCAP_LE_RECORD.pack
    head_pack = _IP4UDP_HEAD.pack
    eth = DST_MAC + SRC_MAC + b"\x08\x00\x45\x00"
    ttl = synth.ttl
    k_ip = 0x8500 + (ttl << 8 | 17)
    c_ip = bytes((0x40, 0, ttl, 17))
    tcp_protos = TCP_PROTOS
    max_udp = 0xFFFF - 28
    out: list[bytes] = []
    put = out.append
    n_msgs = n_frames = 0
    index = frame = 0
    try:
        f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in finally
    except OSError as e:  # as iter_input says it
        raise InputError(f"{path}: {e.strerror or e}") from None
    try:
        last = framer.last
        ident = synth.ip_ident
        sig, mask, end, unpack, pick, v6 = by_third[0x03][0]
        try:
            head = read_exact(f.read, 24)
            if len(head) < 24 or head[:4] != PCAP_LE_USEC:
                raise ValueError(f"{path}: not a classic little-endian microsecond pcap")
            # at a record the fast loop does not read (any, when the link is not Ethernet)
            stopped = int.from_bytes(head[20:24], "little") & 0xFFFF != 1
            resume_at = 24  # file offset of that record
            if not stopped:
                records = iter_records(f.read, block=_READ)
                for buf, f0, z, sec, usec in records:
                    h = e4u(buf, f0, z - f0)
                    if h is None:
                        # the general reader says what is wrong, or reads it, from here on
                        resume_at = f.tell() - len(buf) + f0 - 16
                        stopped = True
                        break
                    sip, dip, sport, dport, z = h
                    frame += 1
                    a = f0 + 42  # the datagram's payload: buf[a:z]
                    if not ((z - a >= 16 and buf[a:a + 4] in magics) or candidate(buf[a:z])):
                        continue
                    # a HEP packet: the common case converted here (see hep3_to_pcap_records)
                    n = z - a
                    if n < end or from_bytes(buf[a:a + end], "big") & mask != sig:
                        for t in by_third.get(buf[a + 23] if n >= 24 else -1, ()):
                            if t[2] <= n and from_bytes(buf[a:a + t[2]], "big") & t[1] == t[0]:
                                sig, mask, end, unpack, pick, v6 = t
                                break
                        else:
                            n = 0
                    if n:
                        (length, hproto, src, dst, hsport, hdport, hsec, husec,
                         pt) = pick(unpack(buf, a))
                        e = a + end
                        if (buf[e:e + 4] == pchunk and n - end >= 6
                                and (buf[e + 4] << 8 | buf[e + 5]) == n - end):
                            payload = buf[e + 6:z]
                        else:
                            payload = tail_payload(buf, e, z)
                        if (length == n and payload is not None
                                and (pt != 1 or payload[:1] != b"{")):
                            plen = len(payload)
                            if not v6 and plen <= max_udp and (pt != 1 or hproto not in tcp_protos
                                                               or not plen):
                                last = (hsec, husec)
                                total = 28 + plen
                                ident = (ident + 1) & 0xFFFF
                                c = (k_ip + src + dst + total + ident) % 0xFFFF
                                put(rec(hsec, husec, total + 14, total + 14))
                                put(head_pack(eth, total, ident, c_ip, ~c & 0xFFFF if c else 0,
                                              src, dst, hsport, hdport, total - 20))
                                put(payload)
                                n_msgs += 1
                                n_frames += 1
                                index += 1
                                if len(out) >= _BATCH:
                                    yield b"".join(out)
                                    out.clear()
                                continue
                            synth.ip_ident = ident
                            frames = synth_frames(synth, v6, src, hsport, dst, hdport, payload,
                                                  pt == 1 and hproto in tcp_protos and plen)
                            ident = synth.ip_ident
                            if frames is not None:
                                last = (hsec, husec)
                                n_msgs += 1
                                for fr in frames:
                                    k = len(fr)
                                    put(rec(hsec, husec, k, k))
                                    put(fr)
                                n_frames += len(frames)
                                index += 1
                                continue
                    # the general path's packet, as iter_input gives it
                    s_ep = eps.get(sip << 16 | sport) or endpoint4(eps, buf, f0 + 26, sport)
                    d_ep = eps.get(dip << 16 | dport) or endpoint4(eps, buf, f0 + 30, dport)
                    if out:
                        yield b"".join(out)
                        out.clear()
                    synth.ip_ident = ident
                    framer.last = last
                    yield make(index, frame, "udp", s_ep, d_ep, (sec, usec), buf[a:z])
                    ident = synth.ip_ident
                    last = framer.last
                    index += 1
            if out:
                yield b"".join(out)
                out.clear()
        except Exception:
            if out:  # what came before a damaged input is written before the error
                yield b"".join(out)
                out.clear()
            raise
        finally:
            synth.ip_ident = ident
            framer.last = last
            framer.n_msgs += n_msgs
            framer.n_frames += n_frames
        if not stopped:
            return  # every record was read here
        # the rest of the file, from the first record not read here, the general way
        yield from hep3_to_pcap_records(_hep_tail(f, head, resume_at, frame, index, stats),
                                        framer)
    finally:
        f.close()


def _hep_tail(f: Any, head: bytes, offset: int, frame: int, index: int,
              stats: CaptureStats | None = None) -> Iterator[Any]:
    """``iter_input``'s packets of a pcap file from the record at ``offset`` on (frame
    ``frame + 1``, packet ``index``): ``iter_hep_payloads`` reading the file from there,
    its file header put back in front, its frame numbers and offsets shifted back.
    ``stats`` gets that reader's counts (its ``stream_garbage_frame`` shifted back too)."""
    make = InputPacket.capture
    f.seek(offset)
    delta = offset - 24
    st = CaptureStats()
    try:
        for fr, sec, usec, transport, src, dst, data in iter_hep_payloads(Prefixed(head, f),
                                                                          stats=st):
            yield make(index, fr + frame, transport, src, dst, (sec, usec), data)
            index += 1
    except CaptureError as e:
        raise CaptureError(e.message, frame=None if e.frame is None else e.frame + frame,
                           offset=None if e.offset is None else e.offset + delta) from None
    finally:
        if stats is not None:
            if st.stream_garbage_frame:
                st.stream_garbage_frame += frame
            for k, v in st.as_dict().items():
                setattr(stats, k, getattr(stats, k) + v)


def hep3_to_pcap_records(packets: Iterable[Any], framer: HepFramer) -> Iterator[Any]:
    """``hep_to_frames`` + :class:`PcapFrameWriter` (no comments) for the common packet,
    fused: the HEP bytes of each input packet (``packets`` are
    :class:`~heptool.capture.inputs.InputPacket` items) go straight to pcap records, no
    message object, no generic decode.  Yields ``bytes`` (whole records, several at a
    time) and, in order between them, every packet it leaves to the caller's general path
    (decode, then ``framer.frames``; ``framer`` is shared, so flows, identifications and
    the last time run on).

    The common packet: HEPv3, its length field equal to its size, the first ten chunks
    one of the fixed layouts agents send (:data:`~heptool.core.templates.AGENT_LAYOUTS`,
    exact headers and sizes),
    then the payload chunk once and at most the text chunks 0x0E/0x11/0x13/0x65 once each:
    a packet ``decode`` reads without a warning, into exactly the values used here.  SIP
    whose payload is JSON-wrapped (OpenSIPS), and payloads too big for one datagram, are
    left to the general path.
    """
    synth = framer.synth
    synth_frames = _synth_frames
    tail_payload = _tail_payload
    by_third = _HEP3_BY_THIRD
    pchunk = _PAYLOAD_CHUNK
    from_bytes = int.from_bytes
    rec = PCAP_LE_RECORD.pack
    head = _IP4UDP_HEAD.pack
    eth = DST_MAC + SRC_MAC + b"\x08\x00\x45\x00"
    ttl = synth.ttl
    k_ip = 0x8500 + (ttl << 8 | 17)
    c_ip = bytes((0x40, 0, ttl, 17))
    tcp_protos = TCP_PROTOS
    max_udp = 0xFFFF - 28
    out: list[bytes] = []
    put = out.append
    n_msgs = n_frames = 0
    last = framer.last
    ident = synth.ip_ident
    # the template of the previous packet is tried first (a capture has few layouts)
    sig, mask, end, unpack, pick, v6 = by_third[0x03][0]
    try:
        for p in packets:
            data = p.data
            if data is None:
                n = 0
            else:
                n = len(data)
                if n < end or from_bytes(data[:end], "big") & mask != sig:
                    for t in by_third.get(data[23] if n >= 24 else -1, ()):
                        if t[2] <= n and from_bytes(data[:t[2]], "big") & t[1] == t[0]:
                            sig, mask, end, unpack, pick, v6 = t
                            break
                    else:
                        n = 0
            if n:
                (length, proto, src, dst, sport, dport, sec, usec,
                 pt) = pick(unpack(data, 0))
                if (data[end:end + 4] == pchunk and n - end >= 6
                        and (data[end + 4] << 8 | data[end + 5]) == n - end):
                    payload = data[end + 6:]  # the payload chunk right after, and last
                else:
                    payload = tail_payload(data, end, n)  # the chunks after the fixed ones
                if length == n and payload is not None and (pt != 1 or payload[:1] != b"{"):
                    plen = len(payload)
                    if not v6 and plen <= max_udp and (pt != 1 or proto not in tcp_protos
                                                       or not plen):
                        # UDP over IPv4: FrameSynth.udp written out (the checksum's
                        # address words summed as the numbers they are, modulo 0xFFFF)
                        last = (sec, usec)
                        total = 28 + plen
                        ident = (ident + 1) & 0xFFFF
                        c = (k_ip + src + dst + total + ident) % 0xFFFF
                        put(rec(sec, usec, total + 14, total + 14))
                        put(head(eth, total, ident, c_ip, ~c & 0xFFFF if c else 0, src, dst,
                                 sport, dport, total - 20))
                        put(payload)
                        n_msgs += 1
                        n_frames += 1
                        if len(out) >= _BATCH:
                            yield b"".join(out)
                            out.clear()
                        continue
                    # TCP, or IPv6: through FrameSynth with the addresses as text
                    synth.ip_ident = ident
                    frames = synth_frames(synth, v6, src, sport, dst, dport, payload,
                                          pt == 1 and proto in tcp_protos and plen)
                    ident = synth.ip_ident
                    if frames is not None:
                        last = (sec, usec)
                        n_msgs += 1
                        for fr in frames:
                            k = len(fr)
                            put(rec(sec, usec, k, k))
                            put(fr)
                        n_frames += len(frames)
                        continue
            if out:
                yield b"".join(out)
                out.clear()
            synth.ip_ident = ident
            framer.last = last
            yield p
            ident = synth.ip_ident
            last = framer.last
        if out:
            yield b"".join(out)
            out.clear()
    except Exception:
        if out:  # what came before a damaged input is written before the error is reported
            yield b"".join(out)
            out.clear()
        raise
    finally:
        synth.ip_ident = ident
        framer.last = last
        framer.n_msgs += n_msgs
        framer.n_frames += n_frames
