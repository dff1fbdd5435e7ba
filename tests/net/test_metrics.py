"""heptool.net.metrics: the exposition format (checked with prometheus_client's parser), the
HTTP endpoint on loopback, the bounded per capture id counts, listen_families."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from heptool.net.client import TargetStatus
from heptool.net.metrics import (
    CONTENT_TYPE,
    Family,
    HepCounts,
    MetricsServer,
    listen_families,
    render,
)
from heptool.net.stats import ServerStats

parser = pytest.importorskip("prometheus_client.parser")


def parse(text: str) -> dict[str, list]:
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def value(families: dict, sample: str, **labels: str) -> float:
    for f in families.values():
        for s in f.samples:
            if s.name == sample and s.labels == labels:
                return s.value
    raise KeyError(f"{sample}{labels}")


def test_render_escapes_labels_and_help_and_parses_back():
    text = render([
        Family("a_total", "counter", 'Help with \\ and\nnewline.',
               [({"reason": 'odd "quoted" \\ reason\nline'}, 3), ({"reason": "b"}, 2**40)]),
        Family("g", "gauge", "A gauge.", [({}, 1.5)]),
        Family("empty_total", "counter", "No samples yet.", []),
    ])
    fams = parse(text)
    assert value(fams, "a_total", reason='odd "quoted" \\ reason\nline') == 3
    assert value(fams, "a_total", reason="b") == 2**40
    assert value(fams, "g") == 1.5
    assert fams["a"].type == "counter" and fams["g"].type == "gauge"
    assert fams["a"].documentation == "Help with \\ and\nnewline."
    assert text.endswith("\n")


def test_capture_ids_beyond_the_cap_go_under_other():
    hc = HepCounts(max_ids=3)
    for cid in range(10):
        for _ in range(cid + 1):
            e = hc.counts.get((cid, 1)) or hc.entry((cid, 1))
            e[0] += 1
            e[1] += 100
    assert len(hc.counts) == 4
    st = ServerStats()
    fams = parse(render(listen_families(st, accepted=0, hep_counts=hc)))
    assert value(fams, "heptool_hep_packets_total", capture_id="0", proto="sip") == 1
    assert value(fams, "heptool_hep_packets_total", capture_id="2", proto="sip") == 3
    assert value(fams, "heptool_hep_packets_total", capture_id="other", proto="sip") == sum(
        range(4, 11))
    assert value(fams, "heptool_hep_bytes_total", capture_id="other", proto="sip") == 100 * sum(
        range(4, 11))


def test_listen_families_from_the_counters():
    st = ServerStats()
    st.packets["udp"] += 5
    st.bytes["udp"] += 500
    st.packets["tcp"] += 2
    st.bytes["tcp"] += 300
    st.drops["auth key"] += 1
    st.connection_closed("garbage")
    st.connections = 1

    class Sender:
        def status(self):
            return TargetStatus("tcp://127.0.0.1:9", False, 2, 6, 1, 2)

    fams = parse(render(listen_families(st, accepted=4, forwards=[Sender()], kernel_drops=7,
                                        start_time=1234.5)))
    assert value(fams, "heptool_received_packets_total", transport="udp") == 5
    assert value(fams, "heptool_received_bytes_total", transport="tcp") == 300
    assert value(fams, "heptool_accepted_packets_total") == 4
    assert value(fams, "heptool_dropped_total", reason="auth key") == 1
    assert value(fams, "heptool_dropped_total", reason="connection closed: garbage") == 1
    assert value(fams, "heptool_connections_closed_total", reason="garbage") == 1
    assert value(fams, "heptool_kernel_receive_buffer_drops_total") == 7
    t = "tcp://127.0.0.1:9"
    assert value(fams, "heptool_forward_connected", target=t) == 0
    assert value(fams, "heptool_forward_queued_packets", target=t) == 2
    assert value(fams, "heptool_forward_sent_packets_total", target=t) == 6
    assert value(fams, "heptool_forward_undelivered_packets_total", target=t) == 1
    assert value(fams, "heptool_forward_reconnects_total", target=t) == 2
    assert value(fams, "process_start_time_seconds") == 1234.5


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_server_serves_metrics_and_404_elsewhere(host):
    calls = []

    def collect():
        calls.append(1)
        return [Family("x_total", "counter", "X.", [({}, len(calls))])]

    srv = MetricsServer((host, 0), collect)
    try:
        srv.start()
    except OSError as e:
        if host == "::1":
            pytest.skip(f"no IPv6 loopback: {e}")
        raise
    try:
        assert srv.address[1] != 0
        for n in (1, 2):
            with urllib.request.urlopen(srv.url, timeout=10) as r:
                assert r.headers["Content-Type"] == CONTENT_TYPE
                assert value(parse(r.read().decode()), "x_total") == n
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(srv.url.replace("/metrics", "/other"), timeout=10)
        assert e.value.code == 404
    finally:
        srv.close()
    assert srv.scrapes == 2


def test_a_failing_collect_is_a_500_and_the_server_goes_on():
    state = {"fail": True}

    def collect():
        if state["fail"]:
            raise RuntimeError("boom")
        return [Family("ok", "gauge", "OK.", [({}, 1)])]

    srv = MetricsServer(("127.0.0.1", 0), collect)
    srv.start()
    try:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(srv.url, timeout=10)
        assert e.value.code == 500
        state["fail"] = False
        with urllib.request.urlopen(srv.url, timeout=10) as r:
            assert value(parse(r.read().decode()), "ok") == 1
    finally:
        srv.close()


def test_port_in_use_is_an_oserror_naming_it():
    a = MetricsServer(("127.0.0.1", 0), list)
    a.start()
    try:
        port = a.address[1]
        with pytest.raises(OSError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            MetricsServer(("127.0.0.1", port), list).start()
    finally:
        a.close()
