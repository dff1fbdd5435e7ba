"""``heptool listen --workers N``: N collector processes on the same ports, one supervisor.

:class:`Supervisor` forks N worker processes (Linux: ``fork`` and ``SO_REUSEPORT``, which
spreads datagrams by their 4-tuple hash and connections over the sockets bound to one
port).  Each worker is a whole :class:`heptool.pipeline.collector.Collector` on the same
UDP/TCP/TLS ports, with the same filters and outputs.  A port 0 is resolved first: the
supervisor binds it (``SO_REUSEPORT``, no traffic: the port is not known yet), the workers
bind the port it got, and the supervisor closes its socket once every worker listens.

What each worker writes, and how it stays safe:

* ``--write-hep/--write-sip/--write-jsonl F.EXT``: one file per worker, ``F-w0.EXT``,
  ``F-w1.EXT``... (rotated: ``F-w0-00000.EXT``...; :func:`worker_path`); together they
  hold every packet (``mergecap`` joins pcaps by time).
* records on standard output (or ``-o FILE``): each worker formats its records and writes
  them in whole-record chunks (up to 64 KiB, or what waited 20 ms) straight to the
  descriptor every worker inherited (a file, a pipe, a terminal), each chunk under one
  exclusive lock (:class:`SharedOutput`: ``lockf`` on a lock file, which the kernel
  releases when a holder dies), so lines never interleave and no record passes through a
  third process (JSON Lines and raw only: a table or one JSON array cannot be shared by N
  writers).  An output without a descriptor (a test's in-memory stream) gets the chunks
  over the worker's pipe instead (:class:`PipeStream`), written by the supervisor.  An
  output that fails (EPIPE: the reader is gone; ENOSPC) stops every worker, and the
  supervisor raises its error, as a single listen does.
* counts: every worker sends a snapshot (:meth:`Collector.snapshot`) every 0.1 s and a
  final one after its outputs are closed; the supervisor sums them
  (:class:`heptool.pipeline.merge.MergedCounts`)
  into one ``--stats`` line, one Prometheus endpoint and one summary.
* connection events, drops (``-v``) and notices go over the pipe too, one line each.

Signals: :meth:`Supervisor.stop` (SIGINT/SIGTERM) and :meth:`Supervisor.reopen` (SIGHUP)
send the same signal to every worker.  A worker that dies (SIGKILL, a crash) is reported
with its pid and how it ended; the supervisor then stops the others and :meth:`close`
raises :exc:`WorkerError` (listen: the summary, then exit status 1).  A worker whose
supervisor is gone stops by itself within 0.1 s.  No click, no rich.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from heptool.net.senders import SendError
from heptool.net.target import Target, parse_target
from heptool.pipeline.collector import CloseError, Collector, OutputError
from heptool.pipeline.merge import ForwardState, MergedCounts
from heptool.pipeline.shared_output import ChunkStream, SharedOutput, output_descriptor

__all__ = ["PipeStream", "Supervisor", "WorkerError", "cpu_count", "worker_path"]

#: how long the workers may take to bind and open their outputs
START_TIMEOUT = 30.0
#: a worker's receive loop sleeps this long after each busy round: N workers and a sender
#: on few cores then wake per batch of packets, not per packet (see Server.run)
PAUSE = 0.0005
#: message tags on a worker's pipe
_DATA, _SNAP, _FINAL, _READY, _FAIL, _EVENT, _NOTICE, _OUTERR = (
    b"D", b"S", b"F", b"R", b"X", b"E", b"N", b"O")


class WorkerError(OSError):
    """A worker ended badly (killed, crashed, an output failed): ``problems`` the texts."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def cpu_count() -> int:
    """The cores this process may run on (``--workers auto``)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_path(path: str, k: int) -> str:
    """Worker ``k``'s file for the output ``path``: ``hep.pcap`` -> ``hep-w0.pcap``."""
    root, ext = os.path.splitext(path)
    return f"{root}-w{k}{ext}"


class PipeStream(ChunkStream):
    """A :class:`ChunkStream` whose chunks go to the supervisor over the worker's pipe
    (``conn``), tagged as records: for an output without a descriptor."""

    def __init__(self, conn: Any, limit: int = 1 << 16, delay: float = 0.02) -> None:
        super().__init__(conn.send_bytes, _DATA, limit, delay)


class _Worker:
    __slots__ = ("conn", "ended", "final", "k", "pid", "ready")

    def __init__(self, k: int, pid: int, conn: Any) -> None:
        self.k = k
        self.pid = pid
        self.conn = conn
        self.ready = False
        self.final = False
        self.ended: str | None = None  # how it ended, once reaped


class Supervisor:
    """``workers`` worker processes, each a :class:`Collector` on ``binds`` built from
    ``options`` (Collector keywords; the ``write_*`` paths become one per worker, see
    :func:`worker_path`), and the merged counts.  Used like a Collector: :meth:`open`
    (resolves port 0), :meth:`open_outputs` (forks the workers; raises what a worker could
    not open: OSError, :exc:`OutputError`, :class:`heptool.net.senders.SendError`),
    :meth:`run`, :meth:`stop`/:meth:`reopen` (safe from signal handlers), :meth:`close`,
    :meth:`summary_lines`.  ``on_line`` gets the merged ``--stats`` line, ``on_notice``
    what an operator must see (a worker ended, its notices), ``on_event`` the workers'
    ``-v`` lines."""

    def __init__(self, workers: int, binds: Sequence[Target | str], *,
                 tls_context: Any = None, options: dict[str, Any] | None = None,
                 on_event: Callable[[str], None] | None = None,
                 on_line: Callable[[str], None] | None = None,
                 on_notice: Callable[[str], None] | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.n = workers
        self.binds = [parse_target(b) if isinstance(b, str) else b for b in binds]
        self.tls_context = tls_context
        self.options = dict(options or {})
        self.count = self.options.get("count")
        self.stats_every = self.options.get("stats_every")
        self.metrics = self.options.pop("metrics", None)
        self.on_event = on_event
        self.on_line = on_line
        self.on_notice = on_notice
        self.merged = MergedCounts()
        self.workers: list[_Worker] = []
        self.probes: list[socket.socket] = []
        self.resolved: list[Target] = []
        self.bound: list[Target] = []
        self.sink: IO[bytes] | None = None
        self.shared: SharedOutput | None = None
        self.lock_file: IO[bytes] | None = None
        self.sink_error: OSError | None = None
        self.problems: list[str] = []
        self.metrics_server: Any = None
        self.stopping = False

    # -- setup ------------------------------------------------------------------------------
    def open(self) -> list[Target]:
        """Check every port can be bound (port 0: pick one, held until the workers listen);
        OSError when one cannot."""
        if not hasattr(os, "fork") or not hasattr(socket, "SO_REUSEPORT"):
            raise OSError("--workers needs fork() and SO_REUSEPORT (Linux)")
        try:
            for t in self.binds:
                sock = _probe(t)
                if t.port == 0:
                    self.probes.append(sock)
                    t = t.with_port(sock.getsockname()[1])
                else:
                    sock.close()  # traffic may be flowing: a held socket would take some
                self.resolved.append(t)
        except BaseException:
            self._close_probes()
            raise
        return self.resolved

    def open_outputs(self, make_output: Callable[[IO[bytes]], Any] | None = None,
                     sink: IO[bytes] | None = None) -> None:
        """Fork the workers and wait until each listens with its outputs open.
        ``make_output(stream)`` builds, in each worker, what formats its records on
        ``stream`` (an object with ``emit``, ``need_record``, ``flush`` and ``close`` as
        :meth:`Collector.open_outputs` takes them; None: no records) for ``sink``: the
        workers write to its descriptor themselves (:class:`SharedOutput`), or, when it has
        none, the supervisor writes what they send."""
        self.sink = sink
        for f in (sys.stdout, sys.stderr, sink):  # nothing buffered is written twice by a
            try:  # child, nor after what the workers write
                if f is not None:
                    f.flush()
            except (OSError, ValueError):
                pass
        fd = output_descriptor(sink) if make_output is not None else None
        if fd is not None:
            import tempfile

            self.lock_file = tempfile.TemporaryFile(prefix="heptool-workers-")  # noqa: SIM115
            self.shared = SharedOutput(fd, self.lock_file.fileno())
        from multiprocessing import Pipe

        for k in range(self.n):
            r, w = Pipe(duplex=False)
            pid = os.fork()
            if pid == 0:  # the worker
                code = 70
                try:  # (os._exit: nothing of the CLI runs twice, no buffer is flushed twice)
                    r.close()
                    for other in self.workers:
                        other.conn.close()
                    for p in self.probes:
                        p.close()
                    code = _worker_main(k, w, self, make_output)
                except (BrokenPipeError, ConnectionResetError, EOFError):
                    code = 1  # the supervisor is gone: nobody to tell
                except BaseException:  # noqa: BLE001 - a child never returns into the CLI
                    import traceback

                    traceback.print_exc()
                finally:
                    os._exit(code)
            w.close()
            self.workers.append(_Worker(k, pid, r))
        deadline = time.monotonic() + START_TIMEOUT
        failure: BaseException | None = None
        while failure is None and not all(w.ready for w in self.workers):
            if time.monotonic() > deadline:
                failure = OSError("the listen workers did not start in time")
                break
            failure = self._poll(0.1, starting=True)
        if failure is not None:
            self.stop()
            self._wait_all()
            self._close_probes()
            raise failure
        self._close_probes()
        if self.metrics is not None:
            self._start_metrics(self.metrics)

    def _start_metrics(self, address: tuple[str, int]) -> None:
        from heptool.net.metrics import HepCounts, MetricsServer, listen_families

        m = self.merged
        m.hep_counts = HepCounts()
        started = time.time()

        def collect() -> list:
            return listen_families(m.stats, accepted=m.accepted, hep_counts=m.hep_counts,
                                   forwards=[ForwardState(s) for s in m.forward_status()],
                                   kernel_drops=m.kernel_drops, start_time=started)

        self.metrics_server = MetricsServer(address, collect)
        self.metrics_server.start()

    @property
    def metrics_url(self) -> str | None:
        return self.metrics_server.url if self.metrics_server is not None else None

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    # -- running ----------------------------------------------------------------------------
    def run(self) -> None:
        """Relay records and counts until every worker has ended (``count``, ``duration``,
        :meth:`stop`, or a worker died: then the others are stopped)."""
        next_stats = time.monotonic() + self.stats_every if self.stats_every else None
        while any(w.ended is None for w in self.workers):
            self._poll(0.1)
            if (self.count is not None and not self.stopping
                    and self.merged.accepted >= self.count):
                self.stop()
            now = time.monotonic()
            if next_stats is not None and now >= next_stats and self.on_line is not None:
                next_stats = now + self.stats_every  # type: ignore[operator]
                self.on_line(self.merged.stats_line(now))
        if self.sink_error is not None:  # (EPIPE: the caller still closes and sums up)
            raise self.sink_error

    def _poll(self, timeout: float, starting: bool = False) -> BaseException | None:
        """Read what the workers sent (up to ``timeout`` s); at start, the first failure."""
        from multiprocessing.connection import wait

        live = [w for w in self.workers if w.ended is None]
        by_conn = {id(w.conn): w for w in live}
        failure = None
        for conn in wait([w.conn for w in live], timeout):
            w = by_conn[id(conn)]
            for _ in range(64):
                try:
                    msg = conn.recv_bytes()
                except (EOFError, OSError):
                    self._ended(w)
                    if starting and failure is None and not w.ready:
                        failure = OSError(f"listen worker {w.k} (pid {w.pid}) {w.ended} "
                                          "while starting")
                    break
                err = self._message(w, msg)
                if err is not None and failure is None:
                    failure = err
                if not conn.poll():
                    break
        self._flush_sink()
        return failure

    def _message(self, w: _Worker, msg: bytes) -> BaseException | None:
        tag, body = msg[:1], msg[1:]
        if tag == _DATA:
            if self.sink is not None and self.sink_error is None:
                try:
                    self.sink.write(body)
                except OSError as e:  # a reader gone (EPIPE): stop, re-raised by close()
                    self.sink_error = e
                    self.stop()
        elif tag in (_SNAP, _FINAL):
            snap, error = _load_snapshot(body)
            self.merged.update(w.k, snap)
            if tag == _FINAL:
                w.final = True
                if error is not None:
                    self.problems.append(f"worker {w.k}: {error}")
        elif tag == _EVENT:
            if self.on_event is not None:
                self.on_event(body.decode("utf-8", "replace"))
        elif tag == _NOTICE:
            if self.on_notice is not None:
                self.on_notice(f"worker {w.k}: {body.decode('utf-8', 'replace')}")
        elif tag == _OUTERR:  # a worker could not write the records: stop, re-raised by run()
            if self.sink_error is None:
                code, text = json.loads(body)
                self.sink_error = OSError(code, text)
                self.stop()
        elif tag == _READY:
            w.ready = True
            if not self.bound:
                self.bound = [parse_target(u) for u in json.loads(body)]
        elif tag == _FAIL:
            kind, args = json.loads(body)
            return (OutputError(*args) if kind == "output" else
                    SendError(*args) if kind == "send" else OSError(*args))
        return None

    def _flush_sink(self) -> None:
        if self.sink is not None and self.sink_error is None:
            try:
                self.sink.flush()
            except OSError as e:
                self.sink_error = e
                self.stop()

    def _ended(self, w: _Worker) -> None:
        """Worker ``w``'s pipe closed: reap it and say how it ended."""
        try:
            w.conn.close()
        except OSError:
            pass
        try:
            _, status = os.waitpid(w.pid, 0)
        except ChildProcessError:
            w.ended = "ended"
            return
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = str(sig)
            w.ended = f"was killed by {name}"
        else:
            code = os.WEXITSTATUS(status)
            w.ended = f"exited with status {code}"
            if w.final:  # it said itself how it ended (an output failed: in problems)
                return
        if w.ready:
            text = (f"worker {w.k} (pid {w.pid}) {w.ended}"
                    + ("" if w.final else ": its counts are those of its last report"))
            self.problems.append(text)
            if self.on_notice is not None:
                self.on_notice(f"{text}; stopping the other workers")
            self.stop()

    def stop(self) -> None:
        """Stop every worker (SIGTERM to each): they flush, report and exit."""
        self.stopping = True
        self._signal(signal.SIGTERM)

    def reopen(self) -> None:
        """New output files in every worker (SIGHUP to each)."""
        self._signal(signal.SIGHUP)

    def _signal(self, sig: int) -> None:
        for w in self.workers:
            if w.ended is None:
                try:
                    os.kill(w.pid, sig)
                except ProcessLookupError:
                    pass

    def _wait_all(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while any(w.ended is None for w in self.workers):
            if time.monotonic() > deadline:
                self._signal(signal.SIGKILL)
            self._poll(0.1)

    def _close_probes(self) -> None:
        for p in self.probes:
            p.close()
        self.probes.clear()

    # -- ending -----------------------------------------------------------------------------
    def close(self) -> list[str]:
        """Wait for the workers (stopping them when :meth:`run` did not finish), stop the
        metrics; the files written.  :exc:`WorkerError` when a worker ended badly
        (:meth:`run` raised the OSError of records that could not be written: EPIPE)."""
        if any(w.ended is None for w in self.workers):
            self.stop()
            self._wait_all()
        self._close_probes()
        if self.metrics_server is not None:
            self.metrics_server.close()
        if self.lock_file is not None:
            self.lock_file.close()
        self.merged.close()
        if self.problems:
            raise WorkerError(self.problems)
        return self.merged.files

    def summary_lines(self) -> list[str]:
        per = self.merged.per_worker()
        return [*self.merged.summary_lines(),
                f"  workers: {self.n} (packets received: "
                + ", ".join(f"{n:,}" for n in per) + ")"]


def _dump_snapshot(snap: dict[str, Any], error: str | None) -> bytes:
    """A worker's counts (:meth:`Collector.snapshot`) as JSON for the pipe: data only, never
    code (no pickle between processes, tests/test_security.py); tuple keys become lists."""
    data = dict(snap)
    data["forwards"] = [[list(st), err] for st, err in snap["forwards"]]
    hc = snap["hep_counts"]
    data["hep_counts"] = None if hc is None else [[list(k), v] for k, v in hc.items()]
    return json.dumps([data, error]).encode()


def _load_snapshot(body: bytes) -> tuple[dict[str, Any], str | None]:
    """:func:`_dump_snapshot` read back, with its TargetStatus and tuple keys."""
    from heptool.net.client import TargetStatus

    data, error = json.loads(body)
    data["forwards"] = [(TargetStatus(*st), err) for st, err in data["forwards"]]
    hc = data["hep_counts"]
    data["hep_counts"] = None if hc is None else {tuple(k): v for k, v in hc}
    return data, error


def _probe(t: Target) -> socket.socket:
    """A socket bound (not listening) to ``t`` with SO_REUSEPORT, as the workers bind."""
    from heptool.net.server import bind_socket

    return bind_socket(t, reuse_port=True)


def _worker_main(k: int, conn: Any, sup: Supervisor,
                 make_output: Callable[[IO[bytes]], Any] | None) -> int:
    """One worker: a Collector on the supervisor's ports; its exit status."""
    parent = os.getppid()
    state: dict[str, Any] = {"c": None, "stop": False}

    def on_stop(_sig: int, _frame: Any) -> None:
        state["stop"] = True
        if state["c"] is not None:
            state["c"].stop()

    def on_hup(_sig: int, _frame: Any) -> None:
        if state["c"] is not None:
            state["c"].reopen()

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGHUP, on_hup)

    def send(tag: bytes, body: bytes) -> None:
        conn.send_bytes(tag + body)

    opts = dict(sup.options)
    for key in ("write_hep", "write_sip", "write_jsonl"):
        if opts.get(key):
            opts[key] = worker_path(opts[key], k)

    shared = sup.shared
    records: ChunkStream
    if shared is not None:  # straight to the output, one chunk at a time under the lock

        def deliver(chunk: bytearray) -> None:
            try:
                shared.write_chunk(chunk)
            except OSError as e:  # once: write_chunk writes nothing after an error
                send(_OUTERR, json.dumps([e.errno or errno.EIO, e.strerror or str(e)]).encode())
                if state["c"] is not None:
                    state["c"].stop()

        records = ChunkStream(deliver)
    else:
        records = PipeStream(conn)

    def tick() -> None:
        c = state["c"]
        if os.getppid() != parent:  # the supervisor is gone
            c.stop()
            return
        records.send()
        send(_SNAP, _dump_snapshot(c.snapshot(), None))

    c = Collector(sup.resolved, tls_context=sup.tls_context, reuse_port=True,
                  on_event=(lambda t: send(_EVENT, t.encode("utf-8", "replace")))
                  if sup.on_event is not None else None,
                  on_line=None, on_notice=lambda t: send(_NOTICE, t.encode("utf-8", "replace")),
                  on_tick=tick, **{key: v for key, v in opts.items() if key != "reuse_port"})
    c.tally.index, c.tally.step = k, sup.n  # record indexes unique across the workers
    try:
        c.open()
    except OSError as e:
        send(_FAIL, json.dumps(["os", [str(e)]]).encode())
        return 1
    state["c"] = c
    if sup.metrics is not None:
        from heptool.net.metrics import HepCounts

        c.hep_counts = HepCounts()
    c.pause = PAUSE
    out = make_output(records) if make_output is not None else None
    try:
        if out is None:
            c.open_outputs()
        else:
            c.open_outputs(out.emit, need_record=out.need_record, flush=out.flush,
                           on_close=out.close)
    except OutputError as e:
        send(_FAIL, json.dumps(["output", [e.path, e.hint, e.exists]]).encode())
        c.close()
        return 2
    except SendError as e:
        send(_FAIL, json.dumps(["send", [str(e)]]).encode())
        c.close()
        return 1
    send(_READY, json.dumps([str(t) for t in c.bound]).encode())
    if state["stop"]:
        c.stop()
    error = None
    try:
        c.run()
    finally:
        try:
            c.close()
        except CloseError as e:
            error = str(e)
        records.send()
        send(_FINAL, _dump_snapshot(c.snapshot(), error))
    return 0 if error is None else 1

