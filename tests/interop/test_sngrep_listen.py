"""sngrep 1.6 (Debian package) and heptool send/listen, both directions, on loopback.

* ``sngrep -I x.sip.pcap -H udp:127.0.0.1:PORT -N -q`` reads SIP from a capture and sends
  each message as HEP to ``heptool listen``: every message arrives, its payload byte for byte
  equal to the SIP in the capture, in order, with sngrep's capture id quirk as the wire says.
* ``heptool send x.hep.pcap --to udp://127.0.0.1:PORT`` into ``sngrep -L udp:127.0.0.1:PORT
  -N -q -O out.pcap``: sngrep decapsulates every packet and writes the SIP; the payloads in
  ``out.pcap`` equal the HEP payloads sent, in order.

In CI (``CI=true``) a missing sngrep fails the tests; elsewhere they skip with the reason.
Every process is stopped by its pid; every wait has a timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "net"))
from nethelpers import VECTORS, ListenProcess, hep_packets, run_heptool

pytestmark = pytest.mark.interop

SIP_PCAP = VECTORS / "kamailio" / "kamailio-hep3-udp.sip.pcap"
HEP_PCAP = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"


@pytest.fixture
def sngrep() -> str:
    path = shutil.which("sngrep")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("sngrep is not installed (bash scripts/setup-peers.sh installs it)")
        pytest.skip("sngrep is not installed (apt-get install sngrep, or "
                    "bash scripts/setup-peers.sh sngrep)")
    return path


def _payloads(pcap: Path) -> list[tuple[str, bytes]]:
    """(``ip:port`` source, payload) of every UDP datagram and non-empty TCP segment, in
    order (dpkt)."""
    import dpkt

    out = []
    with open(pcap, "rb") as f:
        r = dpkt.pcap.Reader(f)
        link = r.datalink()
        for _ts, buf in r:
            if link == dpkt.pcap.DLT_EN10MB:
                ip = dpkt.ethernet.Ethernet(buf).data
            elif link == dpkt.pcap.DLT_LINUX_SLL:
                ip = dpkt.sll.SLL(buf).data
            else:
                ip = dpkt.ip.IP(buf) if buf[0] >> 4 == 4 else dpkt.ip6.IP6(buf)
            udp = getattr(ip, "data", None)
            if isinstance(udp, (dpkt.udp.UDP, dpkt.tcp.TCP)) and udp.data:
                src = socket.inet_ntop(socket.AF_INET if len(ip.src) == 4 else socket.AF_INET6,
                                       ip.src)
                out.append((f"{src}:{udp.sport}", bytes(udp.data)))
    return out


def test_sngrep_sends_hep_to_listen(sngrep, tmp_path):
    wire = [p for _, p in _payloads(SIP_PCAP) if p[:3] in (b"SIP", b"OPT", b"REG", b"INV",
                                                          b"ACK", b"BYE", b"CAN", b"MES",
                                                          b"SUB", b"NOT", b"INF", b"PRA",
                                                          b"UPD", b"REF", b"PUB")]
    assert wire
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl") as lp:
        port = lp.urls[0].rsplit(":", 1)[1]
        r = subprocess.run([sngrep, "-I", str(SIP_PCAP), "-H", f"udp:127.0.0.1:{port}", "-N",
                            "-q"], capture_output=True, timeout=60, check=False)
        assert r.returncode == 0, r.stderr
        lines = lp.read_records(len(wire), timeout=15)
        lines += lp.read_records(10, timeout=0.5)  # nothing extra
        assert lp.stop() == 0
    recs = [json.loads(x) for x in lines]
    assert [x["payload"].encode() for x in recs] == wire
    for x in recs:
        assert x["version"] == 3 and x["proto"] == "sip"
        # sngrep writes its capture id as htons(id) in the u32 (HEP-SPEC 14): kept as is
        assert x["capture_id"] is not None
    assert any("drops: none" in line for line in lp.stderr_lines)


def test_heptool_send_into_sngrep(sngrep, tmp_path):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    out = tmp_path / "out.pcap"
    proc = subprocess.Popen([sngrep, "-L", f"udp:127.0.0.1:{port}", "-N", "-q", "-O", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not out.exists() and time.monotonic() < deadline:  # sngrep is up when it opened
            time.sleep(0.05)                                      # its output
        time.sleep(0.3)
        r = run_heptool("send", str(HEP_PCAP), "--to", f"udp://127.0.0.1:{port}", "--rate",
                        "500")
        assert r.returncode == 0, r.stderr
        time.sleep(1.0)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    from heptool.core.codec import decode

    sent = [decode(p).payload for p in hep_packets(HEP_PCAP)]
    got = [p for _, p in _payloads(out)]
    assert got == sent
