"""``heptool convert`` as a library: plain SIP captures -> HEP, and HEP -> the captured packets.

* :func:`open_input` / :class:`PeekedFile` / :class:`PeekedStream`: the input, and a way
  to look at its first bytes (standard input gives them back once, through
  :class:`heptool.capture.source.Prefixed`);
* :func:`sniff_direction`: ``hep`` (a HEP stream, JSON records, a capture holding HEP) or
  ``sip``;
* :class:`Conversion`: :meth:`~Conversion.hep_to_packets` and :meth:`~Conversion.sip_to_hep`
  write the output and return the capture layer's
  :class:`~heptool.capture.stats.ConvertStats`; whatever is wrong with the input, and the
  "nothing written" and count lines, arrive through ``on_problem`` as
  :class:`~heptool.pipeline.reader.Problem` items; ``.status`` is 3 after an error or a
  warning, else 0.

No click, no rich::

    from heptool.pipeline.convert import Conversion, open_input

    conv = Conversion(on_problem=print, name="call.pcap")
    with open("out.pcap", "wb") as out:
        stats = conv.hep_to_packets(open_input("call.pcap"), out, "pcap", mtu=1500)
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import IO, Any

from heptool.pipeline.progress import FileProgress
from heptool.pipeline.reader import MessageReader, Problem, message_time, timed

__all__ = ["SNIFF_BYTES", "Conversion", "PeekedFile", "PeekedStream", "open_input",
           "sniff_direction"]

#: Bytes of the input looked at to tell a SIP capture from a HEP capture.
SNIFF_BYTES = 1 << 20


class PeekedFile(str):
    """A path (what the readers are given: they open it themselves, with no wrapper in the
    hot loop) that remembers the head read from it through a separate handle."""

    head: bytes

    def __new__(cls, path: str, head: bytes) -> PeekedFile:  # noqa: PYI034
        self = super().__new__(cls, path)
        self.head = head
        return self

    def peek_head(self, n: int) -> bytes:
        return self.head[:n]


class PeekedStream:
    """A read-only stream whose first bytes can be looked at, then read again once.

    Only as much is looked at as the decision needs: 64 bytes tell a HEP stream or JSON
    records (so ``heptool listen -f raw | heptool convert -`` streams at once); a capture
    needs its first frames (up to 1 MiB; ``--from`` skips the look).  Once reading has
    begun nothing more is looked at."""

    name = "<stdin>"  # what error messages call it

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.head = b""
        self.eof = False
        self._body: Any = None  # a Prefixed once reading has begun

    def peek_head(self, n: int) -> bytes:
        if self._body is None and not self.eof and len(self.head) < n:
            chunks = [self.head]
            got = len(self.head)
            while got < n:
                c = self.raw.read(n - got)
                if not c:
                    self.eof = True
                    break
                chunks.append(c)
                got += len(c)
            self.head = b"".join(chunks)
        return self.head[:n]

    def read(self, n: int = -1) -> bytes:
        if self._body is None:
            from heptool.capture.source import Prefixed

            self._body = Prefixed(self.head, self.raw)
        return self._body.read(n)  # type: ignore[no-any-return]


def open_input(path: str | None, stdin: IO[bytes] | None = None) -> PeekedFile | PeekedStream:
    """``path`` (None or ``-``: ``stdin``) ready to be sniffed; OSError if it cannot be
    read."""
    if path is None or path == "-":
        if stdin is None:
            import sys

            stdin = sys.stdin.buffer
        return PeekedStream(stdin)
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    return PeekedFile(path, head)


def sniff_direction(source: PeekedFile | PeekedStream) -> str:
    """``hep`` when the input is a HEP stream, JSON records, or a capture holding HEP;
    ``sip`` otherwise."""
    import zlib

    from heptool.capture.inputs import sniff_kind
    from heptool.capture.pcap import (
        CaptureError,
        IPReassembler,
        extract_transport,
        is_hep_candidate,
        is_hep_stream_start,
        iter_frames,
    )

    kind = sniff_kind(source.peek_head(64))
    if kind not in ("pcap", "pcapng", "gzip"):
        return "hep"  # HEP stream, JSON, or unknown (the HEP reader names what it is)
    head = source.peek_head(SNIFF_BYTES)
    data = head
    if sniff_kind(head) == "gzip":
        try:
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 8 * SNIFF_BYTES)
        except zlib.error:
            return "hep"  # let the reader report the damage
    kind = sniff_kind(data)
    if kind not in ("pcap", "pcapng"):
        return "hep"  # HEP stream, JSON, or unknown (the HEP reader names what it is)
    frag = IPReassembler()
    try:
        for fr in iter_frames(io.BytesIO(data)):
            t = extract_transport(fr.linktype, fr.data, frag)
            if t is None or not t.payload:
                continue
            p = t.payload
            # TCP: HEP3 by its magic, HEPv1/v2 (Kamailio) by its header and SIP start line
            if is_hep_candidate(p) if t.proto == 17 else is_hep_stream_start(p):
                return "hep"
    except CaptureError:
        pass  # the sniffed head ends inside a record
    return "sip"


class Conversion:
    """One conversion, either direction.

    * ``on_problem(problem)``: every :class:`~heptool.pipeline.reader.Problem`: ``error``
      and ``warning`` (damaged input, bad packets: ``.status`` becomes 3), ``note`` (the
      counts with ``verbose``, "nothing written" lines, and the HEPv1 timing warning,
      which is not damage: its text says ``Warning:`` itself).  None: ignored.
    * ``count``: stop after that many messages written; ``match``: a predicate on
      messages (decode's filters); ``live``: the input arrives over time (a pipe, live
      capture): flush every record; ``name``: the input, as the notes name it;
      ``progress(name, size)``: a bar for an input file (:class:`FileProgress`), as
      :class:`~heptool.pipeline.reader.MessageReader` takes it.

    A source is a path (:class:`PeekedFile` lets the classic pcap fast paths see its
    head) or a binary stream (a :class:`PeekedStream`); ``sip_to_hep`` also takes live
    frames (:func:`heptool.capture.convert.live_frames`).
    """

    def __init__(self, *, on_problem: Callable[[Problem], Any] | None = None,
                 count: int | None = None, match: Callable[[Any], bool] | None = None,
                 live: bool = False, name: str = "<stdin>", verbose: bool = False,
                 progress: Callable[[str, int], Any] | None = None, kafka: Any = None) -> None:
        self.on_problem = on_problem
        self.kafka = kafka  # a kafka:// source: its KafkaOptions (heptool.pipeline.kafka_source)
        self.reader: MessageReader | None = None
        self.count = count
        self.match = match
        self.live = live
        self.name = name
        self.verbose = verbose
        self.progress = progress
        self._bar: FileProgress | None = None
        self.status = 0
        self.decoded = 0  # HEP messages decoded (before the filters)
        self.written = 0

    def _say(self, text: str, level: str = "note") -> None:
        if level in ("error", "warning"):
            self.status = 3
        if self.on_problem is not None:
            self.on_problem(Problem(text, level, self.name))

    def _reader(self, source: Any) -> MessageReader:
        """The HEP reader of ``source`` (a path, or a stream read as ``-``): bad packets and
        damage reported in the decoder's and capture reader's own words."""
        stream = not isinstance(source, str)
        self.reader = MessageReader(["-" if stream else source],
                                    stdin=source if stream else None,
                                    on_problem=self._reported, no_hep=False, kafka=self.kafka)
        return self.reader

    def close(self, *, commit: bool = False) -> None:
        """A kafka:// source: commit what was read (``commit``: the output is written) and
        leave its group."""
        if self.reader is not None:
            self.reader.close(commit=commit)

    def _reported(self, problem: Problem) -> None:
        if problem.bad or problem.level == "unreadable":
            self.status = 3
        if self.on_problem is not None:
            self.on_problem(problem)

    # -- HEP -> packets ----------------------------------------------------------------
    def _messages(self, reader: MessageReader) -> Iterator[Any]:
        """The messages to write: ``(message, outer time)`` for HEPv1 (no time of its own)."""
        count = self.count
        match = self.match
        bar = self._bar
        for item in reader:
            self.decoded += 1
            if bar is not None:
                bar.tick()
            m = item.message
            if m.ts_sec is not None:
                if match is not None and not match(m):
                    continue
                yield m
            else:  # HEPv1: no time of its own; its frame's is used, to filter and to write
                if match is not None and not match(timed(m, item.packet)):
                    continue
                yield m, message_time(m, item.packet)
            self.written += 1
            if count is not None and self.written >= count:
                return

    def hep_to_packets(self, source: Any, out: IO[bytes], fmt: str, mtu: int) -> Any:
        """Each HEP message of ``source`` as the frames it was captured from (``fmt``:
        ``pcap``, or ``pcapng`` with every packet commented with its HEP data)."""
        from heptool.capture.convert import (
            PCAP_LE_USEC,
            ConvertStats,
            HepFramer,
            hep3_to_pcap_records,
            hep_pcap_to_records,
            hep_to_frames,
        )
        from heptool.capture.inputs import InputStats
        from heptool.capture.pcap import CaptureError
        from heptool.capture.pcapng_writer import PcapFrameWriter, PcapngWriter

        st = ConvertStats()
        ist = InputStats()  # what the input held besides HEP (damage is reported below)
        reader = self._reader(source)
        live = self.live
        comments = fmt == "pcapng"
        w = PcapngWriter(out) if comments else PcapFrameWriter(out)
        write = w.write
        # the fused path: every message written as pcap, nothing per message to decide
        fused = not comments and not live and self.match is None and self.count is None
        bar = self._bar = FileProgress.start(self.progress, source, self.name)
        try:
            if fused:
                framer = HepFramer(mtu=mtu, stats=st)
                frames = framer.frames
                message = reader.message
                raw = out.write
                if isinstance(source, PeekedFile) and source.head[:4] == PCAP_LE_USEC:
                    records = hep_pcap_to_records(source, framer,  # a classic pcap file
                                                  stats=ist.capture)
                else:
                    records = hep3_to_pcap_records(reader.packets(), framer)
                try:
                    for p in records:
                        if type(p) is bytes:  # records, ready to write
                            raw(p)
                            if bar is not None:
                                bar.batch()
                            continue
                        if bar is not None:
                            bar.tick()
                        m = message(p)
                        if m is not None:
                            self.decoded += 1
                            if m.ts_sec is None:
                                m = (m, message_time(m, p))
                            for sec, usec, frame, comment in frames(m):
                                write(sec, usec, frame, comment)
                finally:
                    framer.close()
            else:
                for sec, usec, frame, comment in hep_to_frames(self._messages(reader),
                                                               comments=comments, mtu=mtu,
                                                               stats=st):
                    write(sec, usec, frame, comment)
                    if live:
                        out.flush()
        except CaptureError as e:  # the classic pcap reader's; named as decode names it
            self._say(f"{self.name}: {e}", "error")
        finally:
            w.close()
            if bar is not None:
                bar.stop()
        for report in reader.reports:
            ist = report.stats
        self._report_input(ist)
        if st.too_big:
            self._say(f"{st.too_big} messages too big for one UDP datagram were left out",
                      "error")
        if st.untimed:
            self._say(f"Warning: {st.untimed} HEPv1 messages have no time and their input "
                      "gave none (a HEP stream or JSON records, not a capture): their frames "
                      "carry the previous message's time, or 0")
        if self.verbose:
            self._say(f"convert: {st.messages} HEP messages -> {st.frames_out} frames "
                      f"({st.tcp_flows} TCP flows)")
        # nothing written is never silent (README "heptool convert"); after errors they said it
        if not st.frames_out and self.status == 0:
            if self.decoded:
                self._say(f"convert: {self.name}: nothing written: no HEP message matched the "
                          f"filters ({self.decoded} HEP messages)")
            else:
                self._say(f"convert: {self.name}: no HEP found")
        return st

    def to_parquet(self, source: Any, directory: str, kind: str, **sip_opts: Any) -> Any:
        """Each message of ``source`` as one row of the Parquet tables in ``directory``
        (:class:`heptool.output.parquet.ParquetWriter`: HOMER 11's tables and columns).
        ``kind`` ``hep``: the HEP messages of ``source``; ``sip``: the SIP messages of a plain
        capture wrapped as :meth:`sip_to_hep` wraps them (``sip_opts``: its keywords).
        Returns the writer (``.files``, ``.rows``); ParquetUnavailableError without pyarrow."""
        from heptool.output.parquet import ParquetWriter

        writer = ParquetWriter(directory)
        try:
            if kind == "hep":
                from heptool.capture.pcap import CaptureError

                reader = self._reader(source)
                try:
                    for m in self._messages(reader):
                        if type(m) is tuple:  # HEPv1: timed by its capture frame
                            writer.write(m[0], m[1])
                        else:
                            writer.write(m)
                except CaptureError as e:
                    self._say(f"{self.name}: {e}", "error")
                for report in reader.reports:
                    self._report_input(report.stats)
            else:
                self._sip_rows(source, writer, sip_opts)
        finally:
            writer.close()
        if self.verbose:
            self._say(f"convert: {writer.rows} messages -> {len(writer.files)} Parquet files "
                      f"in {directory}")
        if not writer.rows and self.status == 0:
            what = "HEP" if kind == "hep" else "SIP"
            self._say(f"convert: {self.name}: nothing written: no {what} message"
                      + (f" matched the filters ({self.decoded} messages)" if self.decoded
                         else " found"))
        return writer

    def _sip_rows(self, source: Any, writer: Any, opts: dict[str, Any]) -> None:
        from heptool.capture.convert import ConvertStats, sip_to_hep
        from heptool.capture.pcap import CaptureError

        match, count = self.match, self.count
        try:
            for m in sip_to_hep(source, stats=ConvertStats(), **opts):
                self.decoded += 1
                if match is not None and not match(m):
                    continue
                writer.write(m)
                self.written += 1
                if count is not None and self.written >= count:
                    break
        except CaptureError as e:
            self._say(f"{self.name}: {e}", "error")

    def _report_input(self, ist: Any) -> None:
        """Bytes of the input that were not HEP and were skipped: damage (exit 3), as in
        ``decode``, never silence."""
        name = self.name
        if ist.skipped_bytes:
            self._say(f"{name}: skipped {ist.skipped_bytes} bytes that are not HEP", "warning")
        if ist.leftover_bytes:
            self._say(f"{name}: the last {ist.leftover_bytes} bytes are an incomplete HEP "
                      "packet", "warning")
        c = ist.capture
        if c.stream_garbage_bytes:
            self._say(f"{name}: frame {c.stream_garbage_frame}: skipped "
                      f"{c.stream_garbage_bytes} bytes that are not HEP inside HEP-over-TCP "
                      "streams", "warning")

    # -- SIP -> HEP --------------------------------------------------------------------
    def _fusable(self, source: Any, packet_filter: Any, proto_type: int,
                 capture_id: int | None, node_name: str | None, auth_key: str | None,
                 correlation_id_from: str, hep_version: int, hep_src: tuple[str, int],
                 hep_dst: tuple[str, int]) -> bool:
        """Can :func:`~heptool.capture.convert.sip_to_hep3_pcap` write this conversion?
        (The same bytes as the general path, for the common case: a classic pcap file,
        SIP as HEPv3 over IPv4, every message written, no per-message filters.)"""
        from heptool.capture.convert import PCAP_LE_USEC

        if not (isinstance(source, PeekedFile) and source.head[:4] == PCAP_LE_USEC
                and len(source.head) >= 24):
            return False
        if (self.match is not None or self.count is not None or self.live
                or packet_filter is not None or proto_type != 1 or hep_version != 3
                or capture_id is None or correlation_id_from != "none"
                or ":" in hep_src[0] or ":" in hep_dst[0]):
            return False
        try:
            extra = len((node_name or "").encode()) + len((auth_key or "").encode())
        except UnicodeEncodeError:
            return False  # the general path reports it, message by message
        # a name or key near the 64 KiB chunk limit: the general path says what cannot fit
        return extra < 1024

    def _emitter(self, out: IO[bytes], fmt: str, hep_version: int, hep_src: tuple[str, int],
                 hep_dst: tuple[str, int]) -> tuple[Any, Any, Any]:
        """(writer, emit(message), synth) for the output format."""
        from heptool.capture.convert import hep_comment
        from heptool.core.encode import encode, shape_cached_encoder

        enc = shape_cached_encoder(encode) if hep_version == 3 else encode
        synth = None
        writer: Any
        if fmt in ("pcap", "pcapng"):
            from heptool.capture.frames import FrameSynth
            from heptool.capture.pcapng_writer import PcapFrameWriter, PcapngWriter

            writer = PcapngWriter(out) if fmt == "pcapng" else PcapFrameWriter(out)
            synth = FrameSynth()
            build = synth.udp_builder(hep_src[0], hep_src[1], hep_dst[0], hep_dst[1])
            wr = writer.write
            comments = fmt == "pcapng"

            def emit(m: Any) -> None:
                wr(m.ts_sec, m.ts_usec, build(enc(m)), hep_comment(m) if comments else None)
        elif fmt == "hep":
            from heptool.output.raw import RawWriter

            writer = RawWriter(out)
            rw = writer.write

            def emit(m: Any) -> None:
                rw(enc(m))
        else:
            from heptool.output.jsonl import JsonlWriter
            from heptool.output.records import decode_record

            writer = JsonlWriter(out, line_buffered=False)
            jw = writer.write
            index = [0]

            def emit(m: Any) -> None:
                jw(decode_record(m, index[0], None, None, None, None, True))
                index[0] += 1
        return writer, emit, synth

    def sip_to_hep(self, source: Any, out: IO[bytes], fmt: str, *, ports: Any = None,
                   packet_filter: Any = None, proto_type: int = 1, capture_id: int | None = 0,
                   node_name: str | None = None, auth_key: str | None = None,
                   correlation_id_from: str = "none", hep_version: int = 3,
                   hep_src: tuple[str, int] = ("127.0.0.1", 9061),
                   hep_dst: tuple[str, int] = ("127.0.0.1", 9060)) -> Any:
        """Each SIP message of ``source`` (a capture, or live frames) as one HEP packet:
        ``fmt`` ``pcap``/``pcapng`` (HEP over UDP from ``hep_src`` to ``hep_dst``),
        ``hep`` (a raw stream) or ``jsonl`` (records)."""
        from heptool.capture.convert import ConvertStats, sip_to_hep
        from heptool.capture.pcap import CaptureError
        from heptool.core.errors import HepError

        st = ConvertStats()
        match = self.match
        count = self.count
        writer, emit, synth = self._emitter(out, fmt, hep_version, hep_src, hep_dst)
        opts = {"capture_id": capture_id, "node_name": node_name, "auth_key": auth_key,
                "correlation_id_from": correlation_id_from, "hep_version": hep_version}
        fused = fmt == "pcap" and self._fusable(source, packet_filter, proto_type, capture_id,
                                                node_name, auth_key, correlation_id_from,
                                                hep_version, hep_src, hep_dst)
        if fused:
            from heptool.capture.convert import sip_to_hep3_pcap

            messages: Any = sip_to_hep3_pcap(
                source, synth, hep_src, hep_dst, capture_id=capture_id,  # type: ignore[arg-type]
                node_name=node_name, auth_key=auth_key, ports=ports, stats=st)
        else:
            messages = sip_to_hep(source, ports=ports, packet_filter=packet_filter,
                                  proto_type=proto_type, stats=st, **opts)
        write = out.write
        handed = 0  # messages the fused path handed to emit()
        bar = FileProgress.start(self.progress, source, self.name)
        try:
            for m in messages:
                if type(m) is bytes:  # the fused path's records, ready to write
                    write(m)
                    if bar is not None:
                        bar.batch()
                    continue
                handed += 1
                if bar is not None:
                    bar.tick()
                if match is not None and not match(m):
                    continue
                try:
                    emit(m)
                except (HepError, ValueError) as e:
                    self._say(f"{m.src_ip}:{m.src_port} -> {m.dst_ip}:{m.dst_port} at "
                              f"{m.ts_sec}.{m.ts_usec:06d}: cannot encode as "
                              f"HEPv{hep_version}: {e}", "error")
                    continue
                self.written += 1
                if self.live:
                    out.flush()
                if count is not None and self.written >= count:
                    break
        except CaptureError as e:  # named as decode names a damaged capture
            self._say(f"{self.name}: {e}", "error")
        finally:
            writer.close()
            if bar is not None:
                bar.stop()
            if fused:
                self.written += st.messages - handed  # every other message was written
        if self.verbose:
            self._say(f"convert: {st.frames} frames -> {self.written} HEP messages "
                      f"({st.udp_sip} over UDP, {st.tcp_sip} over TCP); not SIP: "
                      f"{st.not_ip} non-IP frames, {st.udp_other} UDP datagrams, "
                      f"{st.tcp_streams_other} TCP streams; {st.not_port} frames left out by "
                      f"--ports/--filter; {st.tcp_incomplete_bytes + st.tcp_skipped_bytes} TCP "
                      "bytes incomplete or skipped")
        # nothing written is never silent (README "heptool convert"); after errors they said it
        if not self.written and self.status == 0:
            found = st.udp_sip + st.tcp_sip
            if found:
                self._say(f"convert: {self.name}: nothing written: no SIP message matched the "
                          f"filters ({found} SIP messages)")
            else:
                left = (f"; {st.not_port} left out by --ports/--filter" if st.not_port
                        else "")
                self._say(f"convert: {self.name}: no SIP found ({st.frames} frames{left})")
        return st
