"""``heptool send`` into ``heptool listen`` on loopback: byte for byte, over UDP, TCP and TLS.

Each test runs ``heptool listen`` as a subprocess on port 0 (it prints the port it got),
sends with ``heptool send`` and compares.  Loopback only; every wait has a timeout; every
process is stopped by its pid.
"""

from __future__ import annotations

import json
import signal
import sys
from itertools import pairwise
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "net"))
from nethelpers import VECTORS, ListenProcess, hep_packets, make_cert, run_heptool

UDP_VECTORS = [
    VECTORS / "kamailio" / "kamailio-hep1-udp.hep.pcap",
    VECTORS / "kamailio" / "kamailio-hep2-udp.hep.pcap",
    VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap",
    VECTORS / "sngrep" / "sngrep-hep2-udp.hep.pcap",
    VECTORS / "sngrep" / "sngrep-hep3-udp.hep.pcap",
    VECTORS / "hepjs" / "hepjs-hep3-udp.hep.pcap",
    VECTORS / "opensips" / "opensips-3.4.15-hep3-udp.pcap",
]
V3_VECTORS = [
    VECTORS / "kamailio" / "kamailio-hep3-tcp.hep.pcap",
    VECTORS / "hepjs" / "hepjs-hep3-tcp.hep.pcap",
    VECTORS / "opensips" / "opensips-3.4.15-hep3-udp.pcap",
]


@pytest.fixture(scope="module")
def scenario_stream(tmp_path_factory) -> Path:
    """~1,600 realistic HEP3 packets (100 calls of the 'call' scenario), as a raw HEP stream."""
    path = tmp_path_factory.mktemp("send") / "calls.hep"
    r = run_heptool("encode", "--scenario", "call", "--count", "100", "--time",
                    "2026-11-26T09:00:00Z", "-o", str(path))
    assert r.returncode == 0, r.stderr
    return path


def _roundtrip(tmp_path: Path, source: Path, scheme: str, *listen_extra: str,
               send_extra: tuple[str, ...] = ()) -> tuple[list[bytes], list[bytes], ListenProcess]:
    expected = hep_packets(source)
    y = tmp_path / "y.pcap"
    with ListenProcess("--bind", f"{scheme}://127.0.0.1:0", "--write-hep", str(y), "-q",
                       "--count", str(len(expected)), *listen_extra) as lp:
        r = run_heptool("send", str(source), "--to", lp.url(scheme), *send_extra)
        assert r.returncode == 0, r.stderr.decode()
        assert lp.wait(20) == 0, lp.stderr_lines
    return expected, hep_packets(y), lp


@pytest.mark.parametrize("source", UDP_VECTORS, ids=lambda p: p.name)
def test_udp_byte_for_byte(tmp_path, source):
    expected, got, _ = _roundtrip(tmp_path, source, "udp")
    assert got == expected


@pytest.mark.parametrize("source", V3_VECTORS, ids=lambda p: p.name)
def test_tcp_byte_for_byte(tmp_path, source):
    expected, got, _ = _roundtrip(tmp_path, source, "tcp")
    assert got == expected


def test_udp_and_tcp_many_packets_in_order(tmp_path, scenario_stream):
    for scheme in ("udp", "tcp"):
        expected, got, _ = _roundtrip(tmp_path, scenario_stream, scheme)
        assert len(expected) > 1500
        assert got == expected, scheme


def test_tls_byte_for_byte(tmp_path, scenario_stream):
    cert, key = make_cert(tmp_path)
    expected, got, _ = _roundtrip(tmp_path, scenario_stream, "tls", "--cert", str(cert),
                                   "--key", str(key), send_extra=("--ca", str(cert)))
    assert got == expected


def test_tls_verifies_the_server_by_default(tmp_path):
    cert, key = make_cert(tmp_path)
    with ListenProcess("--bind", "tls://127.0.0.1:0", "--cert", str(cert), "--key", str(key),
                       "-q") as lp:
        r = run_heptool("send", "--payload", "x", "--to", lp.url("tls"))
        assert r.returncode == 1
        assert b"certificate verify failed" in r.stderr
        r = run_heptool("send", "--payload", "x", "--to", lp.url("tls"), "--insecure")
        assert r.returncode == 0, r.stderr
        assert lp.stop() == 0


def test_tls_client_certificates(tmp_path):
    from nethelpers import load_ca

    ca_cert, ca_key = make_cert(tmp_path, "ca")
    srv_cert, srv_key = make_cert(tmp_path, "srv", ca=load_ca(ca_cert, ca_key))
    cli_cert, cli_key = make_cert(tmp_path, "cli", ca=load_ca(ca_cert, ca_key))
    with ListenProcess("--bind", "tls://127.0.0.1:0", "--cert", str(srv_cert), "--key",
                       str(srv_key), "--client-ca", str(ca_cert), "-f", "jsonl") as lp:
        url = lp.url("tls")
        r = run_heptool("send", "--payload", "no cert", "--to", url, "--ca", str(ca_cert),
                        "--retry", "0.5")
        assert r.returncode == 1
        r = run_heptool("send", "--payload", "with cert", "--to", url, "--ca", str(ca_cert),
                        "--cert", str(cli_cert), "--key", str(cli_key))
        assert r.returncode == 0, r.stderr
        lines = lp.read_records(1)
        assert json.loads(lines[0])["payload"] == "with cert"
        assert lp.stop() == 0


def test_listen_jsonl_records_match_decode(tmp_path):
    source = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"
    decoded = [json.loads(line) for line in
               run_heptool("decode", "-f", "jsonl", str(source)).stdout.splitlines()]
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl") as lp:
        r = run_heptool("send", str(source), "--to", lp.url("udp"))
        assert r.returncode == 0
        lines = lp.read_records(len(decoded))
        assert lp.stop(signal.SIGTERM) == 0
    got = [json.loads(line) for line in lines]
    assert len(got) == len(decoded)
    port = int(lp.url("udp").rsplit(":", 1)[1])
    for i, (g, d) in enumerate(zip(got, decoded)):
        assert g["index"] == i
        assert g["hep_transport"] == "udp"
        assert g["hep_dst"] == f"127.0.0.1:{port}"
        assert g["hep_src"].startswith("127.0.0.1:")
        for key in ("frame", "hep_transport", "hep_src", "hep_dst", "index"):
            g.pop(key, None)
            d.pop(key, None)
        assert g == d
    summary = "\n".join(lp.stderr_lines)
    assert f"listen: {len(decoded)} packets received (udp {len(decoded)})" in summary


def test_listen_prints_free_port_and_stops_cleanly_on_sigterm(tmp_path):
    y = tmp_path / "y.pcap"
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--bind", "tcp://[::1]:0", "--write-hep",
                       str(y), "-q", expect=2) as lp:
        assert lp.urls[0].startswith("udp://127.0.0.1:") and not lp.urls[0].endswith(":0")
        assert lp.urls[1].startswith("tcp://[::1]:")
        r = run_heptool("send", "--payload", "hello", "--to", lp.urls[1], "--count", "3")
        assert r.returncode == 0, r.stderr
        import time
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(hep_packets(y)) < 3:
            time.sleep(0.05)  # the pcap is written in whole records on a short timer
        assert lp.stop(signal.SIGTERM) == 0
    pk = hep_packets(y)
    assert len(pk) == 3
    from heptool.capture.inputs import iter_input

    p = next(iter_input(str(y)))
    assert p.hep_dst == lp.urls[1].removeprefix("tcp://")
    assert any(line.startswith("listen: 3 packets received (tcp 3)") for line in lp.stderr_lines)


def test_v1_v2_converted_to_v3_for_tcp(tmp_path):
    source = VECTORS / "kamailio" / "kamailio-hep2-udp.hep.pcap"
    n = len(hep_packets(source))
    with ListenProcess("--bind", "tcp://127.0.0.1:0", "-f", "jsonl", "--count", str(n)) as lp:
        r = run_heptool("send", str(source), "--to", lp.url("tcp"))
        assert r.returncode == 0
        assert f"{n} HEPv1/v2 packets converted to HEPv3".encode() in r.stderr
        recs = [json.loads(x) for x in lp.read_records(n)]
        assert lp.wait() == 0
    assert [rec["version"] for rec in recs] == [3] * n
    r = run_heptool("send", str(source), "--to", "tcp://127.0.0.1:9", "--hep-version", "2")
    assert r.returncode == 2 and b"carries HEPv3 only" in r.stderr


def test_fan_out_and_rewrites(tmp_path):
    source = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"
    n = len(hep_packets(source))
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl", "--count", str(n)) as a, \
         ListenProcess("--bind", "tcp://127.0.0.1:0", "-f", "jsonl", "--count", str(n)) as b:
        r = run_heptool("send", str(source), "--to", a.url("udp"), "--to", b.url("tcp"),
                        "--capture-id", "77", "--node-name", "edge", "--auth-key", "k",
                        "--restamp", "now")
        assert r.returncode == 0, r.stderr
        ra = [json.loads(x) for x in a.read_records(n)]
        rb = [json.loads(x) for x in b.read_records(n)]
        assert a.wait() == 0 and b.wait() == 0
    assert len(ra) == len(rb) == n
    import time
    for rec in ra + rb:
        assert rec["capture_id"] == 77 and rec["node_name"] == "edge" and rec["auth_key"] == "k"
        assert abs(rec["ts_sec"] - time.time()) < 60
    assert [x["payload"] for x in ra] == [x["payload"] for x in rb]
    assert b"send udp://" in r.stderr and b"send tcp://" in r.stderr


def test_restamp_shift_keeps_gaps(tmp_path):
    source = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"
    orig = [json.loads(x) for x in run_heptool("decode", "-f", "jsonl", str(source)).stdout.splitlines()]
    n = len(orig)
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl", "--count", str(n)) as lp:
        r = run_heptool("send", str(source), "--to", lp.url("udp"), "--restamp", "shift")
        assert r.returncode == 0
        got = [json.loads(x) for x in lp.read_records(n)]
        assert lp.wait() == 0

    def us(rec):
        return rec["ts_sec"] * 1_000_000 + rec["ts_usec"]

    gaps = [us(b) - us(a) for a, b in pairwise(orig)]
    assert [us(b) - us(a) for a, b in pairwise(got)] == gaps
    assert us(got[0]) != us(orig[0])


def test_hep_version_rewrite_over_udp():
    source = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"
    n = len(hep_packets(source))
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl", "--count", str(n)) as lp:
        r = run_heptool("send", str(source), "--to", lp.url("udp"), "--hep-version", "2")
        assert r.returncode == 0, r.stderr
        got = [json.loads(x) for x in lp.read_records(n)]
        assert lp.wait() == 0
    assert {g["version"] for g in got} == {2}


def test_auth_key_allow_and_filters(tmp_path):
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl", "--auth-key", "s3cret",
                       "--proto", "sip", "--since", "2020-01-01T00:00:00Z") as lp:
        url = lp.url("udp")
        for args in (["--auth-key", "wrong"], [], ["--auth-key", "s3cret", "--proto", "log"],
                     ["--auth-key", "s3cret"]):
            r = run_heptool("send", "--payload", "OPTIONS sip:a SIP/2.0\r\n\r\n", "--to", url,
                            *args)
            assert r.returncode == 0
        recs = [json.loads(x) for x in lp.read_records(1)]
        assert lp.stop() == 0
    assert len(recs) == 1 and recs[0]["auth_key"] == "s3cret"
    err = "\n".join(lp.stderr_lines)
    assert "auth key 2" in err and "filtered out 1" in err and "1 accepted" in err
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl", "--allow", "10.0.0.0/8",
                       "--bind", "tcp://127.0.0.1:0", expect=2) as lp:
        run_heptool("send", "--payload", "x", "--to", lp.url("udp"))
        run_heptool("send", "--payload", "x", "--to", lp.url("tcp"), "--retry", "0.5")
        assert lp.stop() == 0
    err = "\n".join(lp.stderr_lines)
    assert "not allowed 1" in err and "0 accepted" in err


def test_udp_oversize_is_reported_not_truncated(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 65_420)
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-q") as lp:
        r = run_heptool("send", "--payload", f"@{big}", "--to", lp.url("udp"))
        assert lp.stop() == 0
    assert r.returncode == 1
    assert b"exceeds the UDP maximum of 65507" in r.stderr
    assert b"1 NOT delivered" in r.stderr
    assert any("listen: 0 packets received" in x for x in lp.stderr_lines)


def test_send_errors():
    r = run_heptool("send", "--payload", "x", "--to", "tcp://127.0.0.1:9", "--retry", "0.3")
    assert r.returncode == 1  # down at the start: retried in the background, then counted
    assert r.stderr.decode().startswith("send tcp://127.0.0.1:9: 0 packets")
    assert b"1 NOT delivered" in r.stderr and b"connect: Connection refused" in r.stderr
    r = run_heptool("send", "--payload", "x", "--to", "udp://127.0.0.1")
    assert r.returncode == 2 and b"missing :PORT" in r.stderr
    r = run_heptool("send", "--payload", "x", "--to", "udp://127.0.0.1:9", "--rate", "5",
                    "--pace", "original")
    assert r.returncode == 2
    r = run_heptool("send", str(VECTORS / "hepjs" / "hepjs-input.json"), "--to",
                    "udp://127.0.0.1:9")
    assert r.returncode in (0, 1, 3)


def test_pacing_rate_and_count(tmp_path):
    import time
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-q", "--count", "20") as lp:
        t0 = time.monotonic()
        r = run_heptool("send", "--payload", "x", "--to", lp.url("udp"), "--rate", "50",
                        "--count", "20")
        took = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
        assert lp.wait() == 0
    assert 0.3 < took < 5.0
    assert b"20 packets" in r.stderr


def test_pace_original_speed(tmp_path):
    import time
    # a 2-packet capture 1 s apart, sent 4x faster: ~0.25 s
    a = tmp_path / "a.hep"
    r1 = run_heptool("encode", "--payload", "a", "--time", "100", "-o", str(a))
    b = tmp_path / "b.hep"
    r2 = run_heptool("encode", "--payload", "b", "--time", "101", "-o", str(b))
    assert r1.returncode == r2.returncode == 0
    both = tmp_path / "ab.hep"
    both.write_bytes(a.read_bytes() + b.read_bytes())
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl", "--count", "2") as lp:
        t0 = time.monotonic()
        r = run_heptool("send", str(both), "--to", lp.url("udp"), "--speed", "4")
        took = time.monotonic() - t0
        assert r.returncode == 0
        assert lp.wait() == 0
    assert took >= 0.25


def test_loop_and_stdin_records():
    source = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"
    records = run_heptool("decode", "-f", "jsonl", str(source)).stdout
    n = len(records.splitlines())
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "raw", "--count", str(3 * n),
                       ) as lp:
        r = run_heptool("send", "--to", lp.url("udp"), "--loop", "3", input=records)
        assert r.returncode == 0, r.stderr
        assert lp.wait() == 0
        assert f"{3 * n} packets".encode() in r.stderr


def test_rotation_stats_and_forward(tmp_path):
    source = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"
    expected = hep_packets(source)
    n = len(expected)
    y = tmp_path / "fwd.pcap"
    with ListenProcess("--bind", "tcp://127.0.0.1:0", "--write-hep", str(y), "-q",
                       "--count", str(n)) as sink:
        j = tmp_path / "rec.jsonl"
        h = tmp_path / "hep.pcap"
        with ListenProcess("--bind", "udp://127.0.0.1:0", "-q", "--write-jsonl", str(j),
                           "--write-hep", str(h), "--rotate-size", "2K", "--stats", "0.2",
                           "--forward", sink.url("tcp"), "--count", str(n)) as proxy:
            r = run_heptool("send", str(source), "--to", proxy.url("udp"))
            assert r.returncode == 0
            assert proxy.wait() == 0
        assert sink.wait() == 0
    assert hep_packets(y) == expected
    pcaps = sorted(tmp_path.glob("hep-*.pcap"))
    jsonls = sorted(tmp_path.glob("rec-*.jsonl"))
    assert len(pcaps) > 1 and len(jsonls) > 1
    assert [p for f in pcaps for p in hep_packets(f)] == expected
    assert sum(len(f.read_text().splitlines()) for f in jsonls) == n
    assert any(line.startswith("  forward tcp://") and f"{n} sent, 0 undelivered" in line
               for line in proxy.stderr_lines)


def test_listen_usage_errors(tmp_path):
    r = run_heptool("listen", "--bind", "tls://127.0.0.1:0")
    assert r.returncode == 2 and b"--cert" in r.stderr
    r = run_heptool("listen", "--bind", "udp://127.0.0.1:0", "--allow", "nonsense")
    assert r.returncode == 2
    r = run_heptool("listen", "--bind", "sctp://127.0.0.1:0")
    assert r.returncode == 2


@pytest.mark.parametrize("ext", ["pcap", "pcapng"])
def test_write_sip_is_what_convert_writes(tmp_path, ext):
    source = VECTORS / "kamailio" / "kamailio-hep3-tcp.hep.pcap"
    n = len(hep_packets(source))
    y = tmp_path / f"sip.{ext}"
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--write-sip", str(y), "-q",
                       "--count", str(n)) as lp:
        r = run_heptool("send", str(source), "--to", lp.url("udp"))
        assert r.returncode == 0
        assert lp.wait() == 0, lp.stderr_lines
    z = tmp_path / f"convert.{ext}"
    r = run_heptool("convert", str(source), "-o", str(z))
    assert r.returncode == 0, r.stderr
    if ext == "pcap":
        assert y.read_bytes() == z.read_bytes()
    else:  # the section header names the writing application: compare the packets
        import dpkt

        def frames(path):
            with open(path, "rb") as f:
                return [(ts, bytes(buf)) for ts, buf in dpkt.pcapng.Reader(f)]

        assert frames(y) == frames(z) and len(frames(y)) >= n


def test_write_sip_rotates_by_size(tmp_path):
    """--rotate-size applies to --write-sip: several files, each a valid pcap, whose frames
    together are exactly what one unrotated --write-sip (= convert) gives."""
    import dpkt

    source = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"
    n = len(hep_packets(source))
    y = tmp_path / "sip.pcap"
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--write-sip", str(y), "--rotate-size",
                       "4K", "-q", "--count", str(n)) as lp:
        r = run_heptool("send", str(source), "--to", lp.url("udp"))
        assert r.returncode == 0
        assert lp.wait() == 0, lp.stderr_lines
    parts = sorted(tmp_path.glob("sip-*.pcap"))
    assert len(parts) > 1
    z = tmp_path / "convert.pcap"
    assert run_heptool("convert", str(source), "-o", str(z)).returncode == 0

    def frames(path):
        with open(path, "rb") as f:
            return [bytes(buf) for _ts, buf in dpkt.pcap.Reader(f)]

    assert [fr for p in parts for fr in frames(p)] == frames(z)


def test_pcap_readable_after_sigkill(tmp_path):
    source = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"
    expected = hep_packets(source)
    y = tmp_path / "y.pcap"
    import time
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--write-hep", str(y), "-q") as lp:
        r = run_heptool("send", str(source), "--to", lp.url("udp"))
        assert r.returncode == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(hep_packets(y)) < len(expected):
            time.sleep(0.05)
        lp.stop(signal.SIGKILL)
    assert hep_packets(y) == expected


def test_duration_and_stats_lines():
    import time
    t0 = time.monotonic()
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--duration", "4", "--stats", "0.2",
                       "-q") as lp:
        run_heptool("send", "--payload", "x", "--to", lp.url("udp"), "--count", "5")
        assert lp.wait(20) == 0
    assert 3.9 < time.monotonic() - t0 < 20
    stats = [x for x in lp.stderr_lines if x.startswith("stats: ")]
    assert len(stats) >= 2
    assert "protocols: sip 5" in stats[-1] and "total 5" in stats[-1]
    assert "kernel receive-buffer drops 0" in stats[-1]


def test_send_a_sip_capture_as_convert_would(tmp_path):
    source = VECTORS / "kamailio" / "kamailio-hep3-udp.sip.pcap"
    hep = tmp_path / "c.hep"
    r = run_heptool("convert", str(source), "--to", "hep", "-o", str(hep))
    assert r.returncode == 0, r.stderr
    expected = hep_packets(hep)
    y = tmp_path / "y.pcap"
    for extra in ((), ("--rate", "100000")):  # the fast path and the general one
        with ListenProcess("--bind", "udp://127.0.0.1:0", "--write-hep", str(y), "-q",
                           "--count", str(len(expected))) as lp:
            r = run_heptool("send", str(source), "--to", lp.url("udp"), *extra)
            assert r.returncode == 0, r.stderr
            assert b"no HEP in this capture" in r.stderr
            assert lp.wait() == 0
        assert hep_packets(y) == expected


def test_send_stops_on_sigint_with_a_summary():
    import subprocess

    from nethelpers import heptool_cmd
    with ListenProcess("--bind", "tcp://127.0.0.1:0", "-f", "jsonl") as lp:
        p = subprocess.Popen(heptool_cmd("send", "--payload", "x", "--to", lp.url("tcp"),
                                         "--rate", "200", "--loop", "0"),
                             stderr=subprocess.PIPE)
        try:
            assert lp.read_records(5, timeout=20)  # it is sending (however slowly it started)
            p.send_signal(signal.SIGINT)
            _, err = p.communicate(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        assert p.returncode == 130
        line = err.decode().splitlines()[0]
        assert line.startswith("send tcp://") and "NOT delivered" not in line
        sent = int(line.split(": ")[1].split(" packets")[0])
        assert sent > 0
        assert lp.stop() == 0
    assert any(f"listen: {sent} packets received" in x for x in lp.stderr_lines)


def test_write_hep_counts_a_tcp_packet_too_big_for_a_udp_frame(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 65_420)  # a HEP3 packet of ~65,520 bytes: fine over TCP
    y = tmp_path / "y.pcap"
    with ListenProcess("--bind", "tcp://127.0.0.1:0", "--write-hep", str(y), "-q",
                       "--count", "2") as lp:
        r = run_heptool("send", "--payload", f"@{big}", "--to", lp.url("tcp"))
        assert r.returncode == 0, r.stderr
        r = run_heptool("send", "--payload", "small", "--to", lp.url("tcp"))
        assert r.returncode == 0, r.stderr
        assert lp.wait() == 0
    assert len(hep_packets(y)) == 1
    assert any("too big for a --write-hep UDP frame 1" in x for x in lp.stderr_lines)


def test_listen_in_process_table_on_a_terminal():
    """In process (CliRunner, as decode's tests): -f auto on a terminal is a streaming table;
    --duration ends the run with status 0."""
    import socket
    import threading
    import time

    from click.testing import CliRunner

    from heptool.cli import main
    from heptool.cli.env import Environment

    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    ready = threading.Event()

    def sender() -> None:
        ready.wait(10)
        deadline = time.monotonic() + 10
        while b"listening on" not in captured[0].getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for p in hep_packets(VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap")[:3]:
            s.sendto(p, ("127.0.0.1", port))
        s.close()

    captured: list = []
    th = threading.Thread(target=sender)
    th.start()
    runner = CliRunner(env={"COLUMNS": "160"})
    with runner.isolation() as streams:
        captured.append(streams[1])
        ready.set()
        env = Environment(stdout_isatty=True, stdin_isatty=True)
        status = main(["listen", "--bind", f"udp://127.0.0.1:{port}", "--duration", "3",
                       "--color", "never"], env=env)
        sys.stdout.flush()
        sys.stderr.flush()
        out, err = streams[0].getvalue().decode(), streams[1].getvalue().decode()
    th.join(5)
    assert status == 0, err
    assert f"listening on udp://127.0.0.1:{port}" in err
    assert "OPTIONS" in out and "src -> dst" in out
    assert "listen: 3 packets received (udp 3)" in err
