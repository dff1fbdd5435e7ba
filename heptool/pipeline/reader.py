"""One path from inputs to messages: :class:`MessageReader`.

Inputs (pcap, pcapng, HEP streams, JSON Lines; gzip'd or not; ``-`` = ``stdin``) become
HEP messages, or decode's records, in order.  Whatever is wrong with an input is reported
through ``on_problem`` as a :class:`Problem` (the text the commands print after
``Error:``/``Warning:``) and reading goes on; without ``on_problem`` the first damage
raises :class:`ReadError`.  No click and no rich: a library user reads captures the way
``heptool decode``, ``correlate`` and ``flow`` do::

    from heptool.pipeline import MessageReader

    reader = MessageReader(["call.pcap"], on_problem=print)
    for item in reader:
        print(item.index, item.message.proto_type)

Settings per command (issue 12's plan): decode reports and keeps the index a record
gives; correlate and flow count the index on across inputs (``continuous_index``) and take
a record's index only from a single input, when it is an int; convert reports (one input,
named in its errors as decode names it); send and encode
raise on the first problem and leave a message's warnings alone (``warnings=False``); send
reads :meth:`MessageReader.packets` (the HEP bytes as they are, a capture without HEP read
as its SIP messages: ``sip_fallback``), encode gives hand-written records their defaults
(``prepare_record``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from heptool.pipeline.kafka_source import is_kafka_url

if TYPE_CHECKING:
    from heptool.capture.inputs import InputPacket, InputStats
    from heptool.core.message import HepMessage

__all__ = ["InputReport", "Item", "MessageReader", "Problem", "ReadError", "frame_time",
           "message_time", "no_hep_text", "timed"]

#: Problem levels: ``error`` a bad packet or input (status 3), ``warning`` damage that was
#: read around (status 3), ``unreadable`` an input that could not be opened (status 1),
#: ``note`` what an input held besides HEP (no status).
LEVELS = ("error", "warning", "unreadable", "note")


class Problem(NamedTuple):
    """Something wrong with (or worth saying about) an input, as one line of text."""

    text: str  # e.g. "x.pcap: frame 7: chunk 0x0000:0x0003: ..." (no Error:/Warning:)
    level: str  # one of LEVELS
    source: str  # the input's name ("<stdin>" for "-")
    frame: int | None = None  # captures: the 1-based frame
    offset: int | None = None  # HEP streams: the packet's byte offset; captures: the record's
    line: int | None = None  # JSON Lines: the 1-based line

    @property
    def bad(self) -> bool:
        """An error or warning about the input's contents (exit status 3)."""
        return self.level in ("error", "warning")


class Item(NamedTuple):
    """One good HEP message: its index (decode's numbering), the packet it came from."""

    index: int
    packet: InputPacket
    message: HepMessage


class InputReport(NamedTuple):
    """One input read: its name and what it held (filled as it is read)."""

    name: str
    stats: InputStats


class ReadError(Exception):
    """The first problem, raised when the reader has no ``on_problem``."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.text)
        self.problem = problem


def _where(p: Any) -> dict[str, Any]:
    return {"frame": p.frame, "offset": p.offset, "line": p.line}


def _named(name: str, emit: Any, write: Any, write_line: Any) -> tuple[Any, Any, Any]:
    """``emit``, ``write`` and ``write_line`` giving records that start with ``"input":
    name``; ``write_line`` None when the name is not what orjson encodes as it is (a
    lone surrogate from an undecodable file name: the record path says it)."""
    def named_emit(r: dict[str, Any], m: Any, p: Any) -> Any:
        return emit({"input": name, **r}, m, p)

    named_write = None
    if write is not None:
        def named_write(r: dict[str, Any]) -> Any:
            return write({"input": name, **r})

    named_line = None
    if write_line is not None:
        from heptool.output.jsonl import dumps

        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            return named_emit, named_write, None
        head = b'{"input":' + dumps(name)[:-1] + b","

        def named_line(line: bytes) -> Any:
            return write_line(head + line[1:])

    return named_emit, named_write, named_line


# -- the time of a message without its own (HEPv1): its capture frame's, in ONE place ------
def frame_time(p: InputPacket) -> tuple[int, int] | None:
    """The capture time of packet ``p``'s frame: a capture's, or the ``frame_time`` a
    decode record carries (JSON Lines of a capture's HEPv1 messages); None without one."""
    if p.outer_ts is not None:
        return p.outer_ts
    rec = p.record
    if rec is not None and type(rec) is dict and rec.get("frame_time"):
        from heptool.core.record import parse_time

        try:
            return parse_time(rec["frame_time"])
        except (TypeError, ValueError):
            return None
    return None


def message_time(m: HepMessage, p: InputPacket) -> tuple[int, int] | None:
    """``m``'s time: its own, else (HEPv1 has none) its capture frame's; None without."""
    if m.ts_sec is not None:
        return m.ts_sec, m.ts_usec or 0
    return frame_time(p)


def timed(m: HepMessage, p: InputPacket) -> HepMessage:
    """The message a filter sees (``--since``/``--until``): ``m`` itself, or for a message
    without a time of its own (HEPv1) a copy carrying its frame's time (when known)."""
    if m.ts_sec is not None:
        return m
    t = frame_time(p)
    if t is None:
        return m
    c = m.copy()
    c.ts_sec, c.ts_usec = t
    return c


def no_hep_text(name: str, stats: Any, port: int | None) -> str:
    """The line that says a capture held no HEP: what it held, what to try."""
    c = stats.capture
    where = f" on port {port}" if port is not None else ""
    text = f"{name}: {c.frames} frames, no HEP{where}"
    hints = []
    if port is not None and c.not_port:
        hints.append(f"{c.not_port} frames on other ports")
    if c.not_hep_udp or c.non_hep_tcp_bytes:
        arg = "FILE" if name == "<stdin>" else name
        hints.append(f"plain SIP? try: heptool convert {arg}")
    return text + (f" ({'; '.join(hints)})" if hints else "")


class MessageReader:
    """The HEP messages of ``sources`` in order, problems through ``on_problem``.

    * ``stdin``: the binary stream ``-`` means; ``port``: captures, only HEP to or from it;
      ``strict``: refuse the quirks only some receivers accept.
    * ``warnings``: report a message's warnings (damage read around) as problems.
    * ``continuous_index``: with several inputs the index counts on from one to the next
      (the position the message would have in the inputs concatenated); a record's own
      ``index`` is then taken only from a single input, and only when it is an int.
    * ``progress(name, size)``: called per input file (not standard input); may return an
      object with ``update(bytes_read)`` and ``stop()`` (or None).
    * ``name_errors``: problems name their input (a damaged capture always, a bad packet
      when there are several inputs); False: the decoder's and capture reader's words
      only (send, encode).
    * ``prepare_record(record)``: a JSON record is replaced by what this returns before it
      is decoded (encode's defaults for hand-written records).
    * ``sip_fallback``: a pcap/pcapng file with no HEP at all is read as its SIP messages,
      each as HEPv3 (as ``heptool convert`` builds them), after a ``note``.
    * ``no_hep``: (without ``sip_fallback``) a pcap/pcapng input with no HEP at all is an
      ``error`` (exit status 3) saying what it held (:func:`no_hep_text`); False: nothing
      is said (the caller says it: convert).
    * ``kafka``: how ``kafka://HOST:PORT/TOPIC`` inputs are read
      (:class:`heptool.pipeline.kafka_source.KafkaOptions`); their offsets are committed
      by :meth:`close` ``(commit=True)``, once the caller's output is written.

    ``.bad`` (a bad packet or damage was reported), ``.error`` (an input could not be
    opened), ``.written`` (records given by :meth:`each_record`) and ``.reports`` (an
    :class:`InputReport` per input read by :meth:`messages`/:meth:`packets`) hold after a
    run.
    """

    def __init__(self, sources: Sequence[str], *, stdin: IO[bytes] | None = None,
                 port: int | None = None, strict: bool = False,
                 on_problem: Callable[[Problem], Any] | None = None, warnings: bool = True,
                 continuous_index: bool = False, verbose: bool = False,
                 progress: Callable[[str, int], Any] | None = None, name_errors: bool = True,
                 prepare_record: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 sip_fallback: bool = False, no_hep: bool = True, kafka: Any = None) -> None:
        self.sources = list(sources)
        self.stdin = stdin
        self.port = port
        self.strict = strict
        self.on_problem = on_problem
        self.warnings = warnings
        self.continuous_index = continuous_index
        self.verbose = verbose
        self.progress = progress
        self.name_errors = name_errors
        self.prepare_record = prepare_record
        self.sip_fallback = sip_fallback
        self.no_hep = no_hep
        self.kafka = kafka  # kafka:// inputs: a heptool.pipeline.kafka_source.KafkaOptions
        self._topics: list[Any] = []  # the KafkaReaders opened, closed by close()
        self.reports: list[InputReport] = []
        self._current = ""  # the name of the input being read
        self.bad = False
        self.error = False
        self.written = 0
        self._complaints = 0

    # -- problems -------------------------------------------------------------------
    def _problem(self, text: str, level: str, source: str, **where: Any) -> None:
        problem = Problem(text, level, source, **where)
        if level in ("error", "warning"):
            self.bad = True
            self._complaints += 1
        elif level == "unreadable":
            self.error = True
        if self.on_problem is None:
            if level == "note":
                return
            raise ReadError(problem)
        self.on_problem(problem)

    def _name(self, source: str) -> str:
        return "<stdin>" if source == "-" else source

    def _prefix(self, name: str) -> str:
        return f"{name}: " if len(self.sources) > 1 and self.name_errors else ""

    def _open(self, source: str) -> Any:
        """The open file of ``source`` (None for ``-`` and a Kafka topic); False if it
        cannot be opened."""
        if source == "-" or is_kafka_url(source):
            return None
        try:
            return open(source, "rb", buffering=1 << 16)
        except OSError as e:
            text = f"{e.strerror or e}: {source}" if self.name_errors else \
                f"{source}: {e.strerror or e}"  # as capture.inputs.open_source says it
            self._problem(text, "unreadable", source)
            return False

    def _input_failed(self, e: Exception, name: str) -> None:
        """An input that stopped being readable (InputError, CaptureError, HEP framing)."""
        from heptool.capture.inputs import InputError
        from heptool.capture.pcap import CaptureError

        if (isinstance(e, InputError) and not isinstance(e, CaptureError)) or not self.name_errors:
            self._problem(str(e), "error", name, frame=getattr(e, "frame", None),
                          offset=getattr(e, "offset", None))
        else:
            self._problem(f"{name}: {e}", "error", name, frame=getattr(e, "frame", None),
                          offset=getattr(e, "offset", None))

    def _decode(self, p: InputPacket, prefix: str, name: str) -> HepMessage | None:
        """The message of ``p``, its warnings reported; None (reported) if it is bad."""
        from heptool.capture.inputs import to_message
        from heptool.core.codec import decode
        from heptool.core.errors import HepError

        data = p.data
        strict = self.strict
        if data is None and self.prepare_record is not None and p.record is not None:
            try:
                p = p._replace(record=self.prepare_record(p.record))
            except HepError as e:
                self._problem(prefix + str(e.with_context(
                    f"line {p.line}" if p.line is not None else p.where)), "error", name,
                    **_where(p))
                return None
        try:
            m = decode(data, strict) if data is not None else to_message(p, strict)
        except HepError as e:  # a record's errors name the line already
            self._problem(prefix + str(e if data is None else e.with_context(p.where)),
                          "error", name, **_where(p))
            return None
        if self.warnings and m.has_warnings:
            for w in m.warnings:
                self._problem(prefix + str(w.with_context(p.where)), "warning", name,
                              **_where(p))
        return m

    # -- messages -------------------------------------------------------------------
    def __iter__(self) -> Iterator[Item]:
        return self.messages()

    def messages(self) -> Iterator[Item]:
        """An :class:`Item` for every good HEP message of every input."""
        offset = 0
        several = len(self.sources) > 1
        continuous = self.continuous_index
        decode = self._decode
        for source in self.sources:
            name = self._name(source)
            prefix = self._prefix(name)
            p = None
            packets = self._source_packets(source, name)
            try:
                for p in packets:
                    m = decode(p, prefix, name)
                    if m is None:
                        continue
                    index = p.index
                    rec = p.record
                    if rec is not None:
                        if not continuous:
                            index = rec.get("index", index)
                        elif not several:
                            i = rec.get("index", index)
                            if isinstance(i, int) and not isinstance(i, bool):
                                index = i
                    yield Item(offset + index if continuous else index, p, m)
            finally:
                packets.close()
            if continuous and p is not None:
                offset += p.index + 1

    def message(self, p: InputPacket) -> HepMessage | None:
        """The message of one packet :meth:`packets` gave (a problem reported, or raised,
        when it is bad: then None)."""
        name = self._current
        return self._decode(p, self._prefix(name), name)

    def packets(self) -> Iterator[InputPacket]:
        """Every HEP packet of every input as read (:class:`~heptool.capture.inputs.
        InputPacket`, not decoded: :meth:`message` decodes one), input failures reported."""
        for source in self.sources:
            packets = self._source_packets(source, self._name(source))
            try:
                yield from packets
            finally:
                packets.close()

    def _source_packets(self, source: str, name: str) -> Iterator[InputPacket]:
        import os

        from heptool.capture.inputs import InputError, InputStats
        from heptool.capture.pcap import CaptureError
        from heptool.core.errors import HepError

        self._current = name
        f = self._open(source)
        if f is False:
            return
        stats = InputStats()
        self.reports.append(InputReport(name, stats))
        complaints = self._complaints
        it = None
        progress = None
        try:
            if f is not None and self.progress is not None:
                progress = self.progress(name, os.fstat(f.fileno()).st_size)
            it = self._input(f, source, name, stats)
            if progress is None:
                yield from it
            else:
                update, tell = progress.update, f.tell
                for seen, p in enumerate(it, 1):
                    yield p
                    if not seen & 0xFFF:
                        update(tell())
        except (InputError, CaptureError, HepError) as e:  # HepError: a stream's framing
            self._input_failed(e, name)
            return
        finally:
            if it is not None:
                it.close()
            if progress is not None:
                progress.stop()
            if f is not None:
                f.close()
        if stats.kind in ("pcap", "pcapng") and not stats.capture.hep_packets:
            if self.sip_fallback and source != "-":
                yield from self._sip_packets(source, name)
            elif self.no_hep and not self.sip_fallback and self._complaints == complaints:
                self._problem(no_hep_text(name, stats, self.port), "error", name)

    def _input(self, f: Any, source: str, name: str, stats: InputStats) -> Iterator[InputPacket]:
        """The packets of one input: a file or stream (iter_input) or a Kafka topic."""
        if is_kafka_url(source):
            from heptool.pipeline.kafka_source import kafka_packets

            return kafka_packets(source, self.kafka, stats, self._topics,
                                 lambda text: self._problem(text, "unreadable", name),
                                 lambda text: self._problem(text, "note", name))
        from heptool.capture.inputs import iter_input

        return iter_input(f if f is not None else source, stdin=self.stdin, port=self.port,
                          stats=stats, strict=self.strict)

    def close(self, *, commit: bool = False) -> None:
        """Kafka inputs: commit what was read, with ``commit`` (call it once the output is
        written: at least once), and leave their groups.  Nothing to do for files."""
        while self._topics:
            self._topics.pop().close(commit=commit)

    def _sip_packets(self, source: str, name: str) -> Iterator[InputPacket]:
        """A capture without HEP: its SIP messages as HEPv3 packets (no frame, line or
        offset: they are not in the input as HEP)."""
        from heptool.capture.convert import sip_to_hep
        from heptool.capture.inputs import InputPacket
        from heptool.capture.pcap import CaptureError
        from heptool.core.codec import encode

        self._problem(f"{name}: no HEP in this capture; sending its SIP messages as HEPv3 "
                      "(as 'heptool convert' builds them)", "note", name)
        try:
            for i, m in enumerate(sip_to_hep(source)):
                yield InputPacket.built(i, encode(m))
        except CaptureError as e:
            self._problem(f"{name}: {e}", "error", name)

    # -- decode's records -----------------------------------------------------------
    def each_record(self, emit: Callable[[dict[str, Any], Any, Any], Any], *, need_sip: bool,
                    match: Callable[[Any], bool] | None = None,
                    write: Callable[[dict[str, Any]], Any] | None = None,
                    write_line: Callable[[bytes], Any] | None = None,
                    tally: Callable[[dict[str, Any]], Any] | None = None,
                    count: int | None = None) -> None:
        """Decode's records of every input, pushed: ``emit(record, message, packet)``.

        Push-style, so the hot loop has no generator frame.  With no ``match``, the common
        packet goes from bytes straight to a record given to ``write(record)`` (fast path),
        or, with ``write_line`` and no ``tally``, to its JSON line (C).  ``tally(record)``
        sees every record; ``count`` stops after that many.

        With more than one input every record written starts with ``input``, the name of
        the input it came from (``<stdin>`` for ``-``): indexes count per input, so input
        and index name a message.  One input: no ``input`` key (nothing to tell apart)."""
        for source in self.sources:
            if not self._one(source, emit, need_sip, match, write, write_line, tally, count):
                break

    def _one(self, source: str, emit: Any, need_sip: bool, match: Any, write: Any,
             write_line: Any, tally: Any, count: int | None) -> bool:
        """One input of :meth:`each_record`; False once ``count`` is reached."""
        import os

        from heptool.capture.inputs import InputError, InputStats
        from heptool.capture.pcap import CaptureError
        from heptool.core.errors import HepError
        from heptool.output.records import decode_record, make_fast_jsonl, make_fast_record

        name = self._name(source)
        prefix = self._prefix(name)
        f = self._open(source)
        if f is False:
            return True
        if len(self.sources) > 1:  # records say their input (wrapped once: no per-record cost)
            emit, write, write_line = _named(name, emit, write, write_line)
        progress = None
        complaints = self._complaints
        stats = InputStats()
        decode = self._decode
        it = None
        try:
            if f is not None and self.progress is not None:
                progress = self.progress(name, os.fstat(f.fileno()).st_size)
            it = self._input(f, source, name, stats)
            seen = 0
            # no filter: the common packet goes bytes -> record directly
            fast = make_fast_record() if match is None and write is not None else None
            # JSON Lines: the common packet's line written straight from its bytes (C)
            jsonl = make_fast_jsonl() if fast is not None and write_line is not None \
                and tally is None else None
            for p in it:
                seen += 1
                if progress is not None and not seen & 0xFFF:
                    progress.update(f.tell())
                data = p.data
                if data is not None and fast is not None:
                    if jsonl is not None:
                        line = jsonl(data, p.index, p.frame, p.hep_transport, p.hep_src,
                                     p.hep_dst, need_sip)
                        if line is not None:
                            write_line(line)
                            self.written += 1
                            if count is not None and self.written >= count:
                                return False
                            continue
                    r = fast(data, p.index, p.frame, p.hep_transport, p.hep_src, p.hep_dst,
                             need_sip)
                    if r is not None:
                        write(r)
                        if tally is not None:
                            tally(r)
                        self.written += 1
                        if count is not None and self.written >= count:
                            return False
                        continue
                m = decode(p, prefix, name)
                if m is None:
                    continue
                untimed = m.ts_sec is None  # HEPv1: its frame's time, if any, is used
                if match is not None and not match(timed(m, p) if untimed else m):
                    continue
                rec = p.record
                index = p.index if rec is None else rec.get("index", p.index)
                r = decode_record(m, index, p.frame, p.hep_transport, p.hep_src, p.hep_dst,
                                  need_sip, frame_time(p) if untimed else None)
                emit(r, m, p)
                if tally is not None:
                    tally(r)
                self.written += 1
                if count is not None and self.written >= count:
                    return False
        except (InputError, CaptureError, HepError) as e:  # HepError: a stream's framing
            self._input_failed(e, name)
        finally:
            if it is not None:
                it.close()
            if progress is not None:
                progress.stop()
            if f is not None:
                f.close()
        self._report(name, stats, clean=self._complaints == complaints)
        return True

    def _report(self, name: str, stats: InputStats, *, clean: bool = True) -> None:
        """What the input held besides HEP: damage always, the rest (notes) when
        ``verbose``; a capture with no HEP at all (and no error about it: that said it
        already) always."""
        if stats.kind == "hep":
            if stats.leftover_bytes:
                self._problem(f"{name}: the last {stats.leftover_bytes} bytes are an "
                              "incomplete HEP packet", "warning", name)
            if stats.skipped_bytes:
                self._problem(f"{name}: skipped {stats.skipped_bytes} bytes that are not HEP",
                              "warning", name)
        if stats.kind in ("pcap", "pcapng") and stats.capture.stream_garbage_bytes:
            c = stats.capture  # e.g. a HEPv1/v2 packet whose SIP framing is invalid
            self._problem(f"{name}: frame {c.stream_garbage_frame}: skipped "
                          f"{c.stream_garbage_bytes} bytes that are not HEP inside "
                          "HEP-over-TCP streams", "warning", name,
                          frame=c.stream_garbage_frame)
        if clean and self.no_hep and stats.kind in ("pcap", "pcapng") and \
                not stats.capture.hep_packets:
            # never silence (an empty result would look like a broken pipeline): the input
            # is not what this reads, as an unknown format is not (exit status 3)
            self._problem(no_hep_text(name, stats, self.port), "error", name)
        if self.verbose and stats.kind in ("pcap", "pcapng"):
            c = stats.capture
            self._problem(f"{name}: {c.frames} frames, {c.hep_packets} HEP packets; not HEP: "
                          f"{c.not_ip} non-IP/other frames, {c.not_hep_udp} UDP datagrams, "
                          f"{c.non_hep_tcp_bytes} TCP bytes; {c.not_port} frames on other "
                          f"ports; {c.stream_skipped_bytes + c.tcp_gap_bytes} TCP bytes lost "
                          "or skipped", "note", name)
