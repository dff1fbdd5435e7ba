"""heptool.pipeline.replay.Replay from Python: no click, loopback sockets, bounded waits.

The engine ``heptool send`` runs: packets go out byte for byte and in order (UDP and TCP),
``count``/``loops`` and the rewrites do what the command's options say, ``stop()`` from
another thread ends a run, an unreachable destination is a DeliveryError, and importing
heptool.pipeline.replay / .convert loads neither click nor rich.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from heptool.core.codec import decode
from heptool.core.errors import HepError
from heptool.net.client import Pacer
from heptool.net.target import parse_target
from heptool.pipeline.build import Rewrites, scenario_messages
from heptool.pipeline.reader import MessageReader, ReadError
from heptool.pipeline.replay import DeliveryError, Replay, ReplaySummary, open_senders

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
UDP3 = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"
TIMEOUT = 10.0


def _hep_of(path: Path) -> list[bytes]:
    return [p.data for p in MessageReader([str(path)]).packets()]


class UdpSink:
    """A loopback UDP socket that keeps every datagram."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(TIMEOUT)
        self.url = f"udp://127.0.0.1:{self.sock.getsockname()[1]}"

    def take(self, n: int) -> list[bytes]:
        return [self.sock.recv(70000) for _ in range(n)]

    def nothing_more(self) -> bool:
        self.sock.settimeout(0.2)
        try:
            self.sock.recv(70000)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def udp():
    sink = UdpSink()
    yield sink
    sink.close()


class TcpSink:
    """A loopback TCP listener that reads one connection to its end."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(TIMEOUT)
        self.url = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.data = bytearray()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        conn, _ = self.sock.accept()
        conn.settimeout(TIMEOUT)
        with conn:
            while chunk := conn.recv(1 << 16):
                self.data += chunk

    def received(self) -> bytes:
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()
        self.sock.close()
        return bytes(self.data)


def test_a_capture_goes_out_byte_for_byte_in_order(udp):
    packets = _hep_of(UDP3)
    summary = Replay(MessageReader([str(UDP3)]), open_senders([parse_target(udp.url)])).run()
    assert isinstance(summary, ReplaySummary)
    assert summary.sent == len(packets) and summary.undelivered == 0
    assert udp.take(len(packets)) == packets and udp.nothing_more()
    st = summary.senders[0].stats
    assert st.packets == len(packets) and st.bytes == sum(map(len, packets))
    assert summary.lines()[0].startswith(f"send {udp.url}: {len(packets)} packets, "
                                         f"{st.bytes} bytes in ")


def test_tcp_gets_the_same_bytes_back_to_back():
    sink = TcpSink()
    packets = _hep_of(UDP3)
    summary = Replay(MessageReader([str(UDP3)]), open_senders([parse_target(sink.url)],
                                                              retry=2.0)).run()
    assert summary.sent == len(packets)
    assert sink.received() == b"".join(packets)


def test_count_and_loops(udp):
    packets = _hep_of(UDP3)
    n = len(packets)
    # two passes, stopped by count in the second: the first packets again, in order
    summary = Replay(MessageReader([str(UDP3)]), open_senders([parse_target(udp.url)]),
                     loops=0, count=n + 5).run()
    assert summary.sent == n + 5 and summary.stopped
    assert udp.take(n + 5) == packets + packets[:5] and udp.nothing_more()


def test_rewrites_version_and_filter(udp):
    events: list[tuple[str, int]] = []
    every = [i.message for i in MessageReader([str(UDP3)])]
    port = every[0].src_port
    keep = [m for m in every if m.src_port == port]
    rewrites = Rewrites(capture_id=4242, node_name="replayed", restamp="shift")
    summary = Replay(MessageReader([str(UDP3)]), open_senders([parse_target(udp.url)]),
                     rewrites=rewrites, version=3,
                     match=lambda m: m.src_port == port,
                     on_event=lambda kind, value: events.append((kind, value))).run()
    assert summary.sent == len(keep) and summary.filtered == len(every) - len(keep) > 0
    got = [decode(d) for d in udp.take(len(keep))]
    assert [m.payload for m in got] == [m.payload for m in keep]
    assert {m.capture_id for m in got} == {4242} and {m.node_name for m in got} == {"replayed"}
    # shift: the capture starts now, the gaps kept
    assert abs(got[0].time - time.time()) < 60
    assert got[-1].time - got[0].time == pytest.approx(keep[-1].time - keep[0].time, abs=1e-5)
    assert events[0] == ("pass", 0)


def test_messages_as_a_source_paced_by_rate(udp):
    msgs = list(scenario_messages("call", seed=1, start=(1_700_000_000, 0)))
    started = time.monotonic()
    summary = Replay(lambda: msgs, open_senders([parse_target(udp.url)]),
                     pacer=Pacer("rate", rate=200), count=10, loops=0).run()
    assert summary.sent == 10
    assert time.monotonic() - started >= 9 / 200 * 0.9
    from heptool.core.codec import encode

    assert udp.take(10) == [encode(m) for m in msgs[:10]]


def test_stop_from_another_thread(udp):
    packets = _hep_of(UDP3)
    replay = Replay(MessageReader([str(UDP3)]), open_senders([parse_target(udp.url)]),
                    pacer=Pacer("rate", rate=100), loops=0)
    timer = threading.Timer(0.3, replay.stop)
    timer.start()
    started = time.monotonic()
    summary = replay.run()
    timer.join()
    assert time.monotonic() - started < TIMEOUT
    assert summary.stopped and 0 < summary.sent < 1000
    assert udp.take(summary.sent) == (packets * 20)[: summary.sent]


def test_a_bad_input_raises_and_an_unreachable_collector_is_a_delivery_error(tmp_path, udp):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"payload": "x"}\n{"not json\n')
    with pytest.raises(ReadError, match="line 2"):
        Replay(MessageReader([str(bad)], warnings=False),
               open_senders([parse_target(udp.url)])).run()
    with pytest.raises(HepError, match="SIP message|capture id"):
        Replay(MessageReader([str(VECTORS / "kamailio" / "kamailio-hep3-udp.sip.pcap")],
                             sip_fallback=True),
               open_senders([parse_target(udp.url)]), rewrites=Rewrites(capture_id=70000),
               version=2).run()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    # a TCP collector down at the start is no error at open: it is retried in the
    # background, and what it never got is a DeliveryError at the end, with the summary
    senders = open_senders([parse_target(f"tcp://127.0.0.1:{port}")], retry=0)
    with pytest.raises(DeliveryError) as e:
        Replay(MessageReader([str(UDP3)]), senders).run()
    assert isinstance(e.value, HepError) and e.value.summary is not None
    assert e.value.summary.undelivered == e.value.summary.sent > 0
    assert str(e.value).endswith("could not be delivered (see above)")
    assert "NOT delivered" in e.value.summary.lines()[0]


def test_udp_to_nothing_listening_counts_the_same_at_any_pace():
    """What the kernel accepted is sent; ICMP port unreachable is a note ("refused"), not a
    packet lost: the counts and the outcome no longer depend on the pacing."""
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    n = len(list(MessageReader([str(UDP3)]).packets()))
    results = []
    for pacer in (Pacer("max"), Pacer("rate", rate=200)):
        senders = open_senders([parse_target(f"udp://127.0.0.1:{port}")])
        summary = Replay(MessageReader([str(UDP3)]), senders, pacer=pacer).run()
        st = senders[0].stats
        results.append((st.packets, st.undelivered, summary.undelivered))
        if pacer.mode == "rate":  # 5 ms apart: every ICMP reply is back before the next
            assert st.refused >= n - 2
            assert "ICMP port unreachable" in summary.lines()[0]
            assert "NOT delivered" not in summary.lines()[0]
    assert results == [(n, 0, 0), (n, 0, 0)]


def test_importing_the_pipeline_loads_no_click_or_rich():
    code = ("import sys, heptool.pipeline.replay, heptool.pipeline.convert, "
            "heptool.pipeline.build; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'rich')); "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"
