"""A Prometheus endpoint: ``GET /metrics`` in the text exposition format 0.0.4.

:class:`MetricsServer` is a tiny HTTP server on its own thread; each scrape calls a
``collect()`` function that returns :class:`Family` objects built from a snapshot of the
counters the packet loop keeps anyway (plain ints and dicts: the loop never waits for the
HTTP side, and a dict is copied whole under the interpreter lock, so a scrape sees each one
consistent).  :func:`listen_families` is what ``heptool listen --metrics`` exposes;
:class:`HepCounts` the per capture id and protocol type counts it adds to the packet path,
with a bounded number of capture ids (the rest are counted under ``capture_id="other"``).
No prometheus_client at run time::

    srv = MetricsServer(("127.0.0.1", 0), lambda: [Family("x_total", "counter", "X.", [({}, 1)])])
    srv.start()                  # srv.address: the port picked
    ...                          # curl http://127.0.0.1:PORT/metrics
    srv.close()
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

__all__ = ["CONTENT_TYPE", "Family", "HepCounts", "MetricsServer", "listen_families", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: the most capture ids with their own series; the rest go under capture_id="other"
MAX_CAPTURE_IDS = 100


class Family(NamedTuple):
    """One metric family: ``name``, ``kind`` (counter, gauge, untyped), ``help`` and its
    ``samples``: ``(labels, value)`` pairs (labels a dict of str to str)."""

    name: str
    kind: str
    help: str
    samples: Sequence[tuple[Mapping[str, str], float]]


def _escape_label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n")


def _number(v: float) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def render(families: Iterable[Family]) -> str:
    """The text exposition format 0.0.4 of ``families`` (HELP, TYPE, one line per sample)."""
    out: list[str] = []
    for f in families:
        out.append(f"# HELP {f.name} {_escape_help(f.help)}")
        out.append(f"# TYPE {f.name} {f.kind}")
        for labels, value in f.samples:
            if labels:
                inner = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
                out.append(f"{f.name}{{{inner}}} {_number(value)}")
            else:
                out.append(f"{f.name} {_number(value)}")
    return "\n".join(out) + "\n"


class MetricsServer:
    """``GET /metrics`` (and ``/``) on ``address`` (host, port; port 0 picks one), served on
    a daemon thread from ``collect()``; anything else is 404.  :meth:`start` binds (OSError
    when it cannot) and serves; :meth:`close` stops."""

    def __init__(self, address: tuple[str, int], collect: Callable[[], Iterable[Family]]) -> None:
        self.requested = address
        self.collect = collect
        self.httpd: Any = None
        self.thread: threading.Thread | None = None
        self.scrapes = 0

    @property
    def address(self) -> tuple[str, int]:
        """The address served (the port picked when 0 was asked)."""
        assert self.httpd is not None, "start() first"
        host, port = self.httpd.server_address[:2]
        return host, port

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}/metrics" if ":" in host else f"http://{host}:{port}/metrics"

    def start(self) -> None:
        import socket
        from http.server import BaseHTTPRequestHandler, HTTPServer

        owner = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5.0  # a client that sends nothing does not hold the server
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:  # http.server's name
                path = self.path.split("?", 1)[0]
                if path not in ("/metrics", "/"):
                    self.send_error(404, "only /metrics here")
                    return
                try:
                    body = render(owner.collect()).encode("utf-8")
                except Exception as e:  # a scrape never ends the listener  # noqa: BLE001
                    self.send_error(500, f"collecting the metrics failed: {e}")
                    return
                owner.scrapes += 1
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # nothing printed: stderr belongs to the command

        class Server(HTTPServer):
            address_family = socket.AF_INET6 if ":" in self.requested[0] else socket.AF_INET
            allow_reuse_address = True

        try:
            self.httpd = Server(self.requested, Handler)
        except OSError as e:
            host, port = self.requested
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise OSError(e.errno, f"cannot serve metrics on {where}: "
                                   f"{e.strerror or e}") from None
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.2,),
                                       name="heptool-metrics", daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        if self.thread is not None:
            self.thread.join(5)
            self.thread = None


class HepCounts:
    """Packets and bytes per (capture id, protocol type number) in ``counts``:
    ``{(capture_id, proto_type): [packets, bytes]}`` (the names are given at scrape time).  The packet path does
    ``e = counts.get(key) or hc.entry(key); e[0] += 1; e[1] += n``; :meth:`entry` puts a new
    capture id under "other" once ``max_ids`` have their own series (memory and label
    cardinality stay bounded whatever the senders put in the packets)."""

    __slots__ = ("counts", "ids", "max_ids")

    def __init__(self, max_ids: int = MAX_CAPTURE_IDS) -> None:
        self.counts: dict[tuple[Any, Any], list[int]] = {}
        self.ids: set[Any] = set()
        self.max_ids = max_ids

    def entry(self, key: tuple[Any, Any]) -> list[int]:
        """The [packets, bytes] entry of ``key`` (created; "other" when too many ids)."""
        cid, proto = key
        if cid not in self.ids:
            if len(self.ids) >= self.max_ids:
                other = ("other", proto)
                e = self.counts.get(other)
                if e is None:
                    e = self.counts[other] = [0, 0]
                return e  # not stored under key: the next packet of this id comes here again
            self.ids.add(cid)
        e = self.counts[key] = [0, 0]
        return e


def listen_families(stats: Any, *, accepted: int, hep_counts: HepCounts | None = None,
                    forwards: Sequence[Any] = (), kernel_drops: int | None = None,
                    start_time: float | None = None) -> list[Family]:
    """What ``heptool listen --metrics`` serves, from a
    :class:`heptool.net.stats.ServerStats` (``stats``), the accepted count, the per capture
    id/protocol counts, the forwards' senders (their ``status()``) and the kernel's
    receive-buffer drops."""
    packets = dict(stats.packets)
    nbytes = dict(stats.bytes)
    drops = dict(stats.drops)
    closed = dict(stats.closed)
    out = [
        Family("heptool_received_packets_total", "counter",
               "HEP packets received, per transport (before any check).",
               [({"transport": k}, v) for k, v in sorted(packets.items())]),
        Family("heptool_received_bytes_total", "counter",
               "Bytes of the HEP packets received, per transport.",
               [({"transport": k}, v) for k, v in sorted(nbytes.items())]),
    ]
    if hep_counts is not None:
        merged: dict[tuple[str, str], list[int]] = {}
        for (c, p), e in dict(hep_counts.counts).items():
            m = merged.setdefault((_cid(c), _proto(p)), [0, 0])
            m[0] += e[0]
            m[1] += e[1]
        rows = sorted(merged.items())
        out.append(Family(
            "heptool_hep_packets_total", "counter",
            "HEP packets that decoded, per capture id (at most "
            f"{hep_counts.max_ids}, the rest under \"other\") and protocol type.",
            [({"capture_id": c, "proto": p}, e[0]) for (c, p), e in rows]))
        out.append(Family(
            "heptool_hep_bytes_total", "counter",
            "Bytes of the HEP packets that decoded, per capture id and protocol type.",
            [({"capture_id": c, "proto": p}, e[1]) for (c, p), e in rows]))
    out.append(Family("heptool_accepted_packets_total", "counter",
                      "Packets accepted (auth key, filters and dedup passed) and handed to the "
                      "outputs.", [({}, accepted)]))
    out.append(Family("heptool_dropped_total", "counter",
                      "Packets (and refused or closed connections) dropped, per reason.",
                      [({"reason": k}, v) for k, v in sorted(drops.items())]))
    out.append(Family("heptool_connections_total", "counter",
                      "TCP/TLS connections accepted.", [({}, stats.connections)]))
    out.append(Family("heptool_open_connections", "gauge", "TCP/TLS connections open now.",
                      [({}, stats.open_connections)]))
    out.append(Family("heptool_connections_closed_total", "counter",
                      "TCP/TLS connections closed or refused, per reason.",
                      [({"reason": k}, v) for k, v in sorted(closed.items())]))
    out.append(Family("heptool_stream_garbage_bytes_total", "counter",
                      "Bytes skipped as garbage in TCP/TLS streams.", [({}, stats.garbage_bytes)]))
    if kernel_drops is not None:
        out.append(Family("heptool_kernel_receive_buffer_drops_total", "counter",
                          "UDP datagrams the kernel dropped: the receive buffer was full.",
                          [({}, kernel_drops)]))
    if forwards:
        states = []
        for fw in forwards:
            try:
                states.append(fw.status())  # a heptool.net.client.TargetStatus
            except (OSError, ValueError):
                continue
        for name, kind, field, text in _FORWARD_FAMILIES:
            out.append(Family(name, kind, text,
                              [({"target": str(s.target)}, int(getattr(s, field)))
                               for s in states]))
        retried = [s for s in states if getattr(s, "retried", None) is not None]
        if retried:  # the Kafka forwards (the HEP senders have no such count)
            out.append(Family("heptool_forward_retried_requests_total", "counter",
                              "Requests the client sent again to the kafka:// --forward target "
                              "(librdkafka's txretries).",
                              [({"target": str(s.target)}, int(s.retried)) for s in retried]))
    out.append(Family("process_start_time_seconds", "gauge",
                      "Start time of the process since the Unix epoch, in seconds.",
                      [({}, start_time if start_time is not None else _START)]))
    return out


_START = time.time()

_FORWARD_FAMILIES = (
    ("heptool_forward_connected", "gauge",
     "connected", "1 while the --forward target is connected (UDP: the socket is open)."),
    ("heptool_forward_queued_packets", "gauge",
     "queued", "Packets waiting to be sent to the --forward target."),
    ("heptool_forward_sent_packets_total", "counter",
     "sent", "Packets sent to the --forward target (TCP: acknowledged or written)."),
    ("heptool_forward_undelivered_packets_total", "counter",
     "undelivered", "Packets given up for the --forward target."),
    ("heptool_forward_reconnects_total", "counter",
     "reconnects", "Reconnections to the --forward target."),
)


def _cid(c: Any) -> str:
    return "none" if c is None else str(c)


def _proto(p: Any) -> str:
    """A protocol type's label: its name ("sip", "rtcp"...), "none", or the number."""
    if p is None:
        return "none"
    from heptool.core.registry import PROTO_TYPES

    return PROTO_TYPES.get(p) or str(p)
