"""Packets from ``heptool encode`` decode in hep-js 1.0.22 (a second, independent codec) to
the fields we set.

hep-js is installed by ``scripts/setup-peers.sh`` into ``.peers/``. In CI (``CI=true``) a
missing hep-js fails these tests; elsewhere they skip with the reason.

What is not compared, each a hep-js limitation documented in HEP-SPEC (sections 3, 8.2, 14
"hep-js 1.0.22"): HEP v1/v2 (hep-js reads v3 only); IPv6 addresses (chunks 0x05/0x06 are
never read); chunk 0x0024 (decoded as a u16); chunk 0x0010 (compressed payloads are ignored);
chunk 0x0065 and other types it does not know (ignored unless registered as extensions).
hep-js dispatches on the chunk type whatever the vendor (HEP-SPEC 4), so a vendor chunk with
a known type overwrites that field: the expectations model that.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from heptool.analysis.scenarios import scenario
from heptool.capture.inputs import iter_input
from heptool.cli import main
from heptool.cli.env import Environment

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
HEPJS = ROOT / ".peers" / "node_modules" / "hep-js"
SCRIPT = Path(__file__).with_name("hepjs_decode.js")
T0 = "1700000000.123456"
START = (1700000000, 123456)


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (HEPJS / "package.json").is_file():
        return "hep-js is not installed in .peers/ (run: bash scripts/setup-peers.sh)"
    version = json.loads((HEPJS / "package.json").read_text())["version"]
    if version != "1.0.22":
        return f"hep-js {version} is installed, the tests expect 1.0.22"
    return None


@pytest.fixture(scope="module")
def hepjs():
    why = _missing()
    if why is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"hep-js interop: {why}")
        pytest.skip(why)

    def decode(data: bytes) -> list[dict]:
        p = subprocess.run(
            ["node", str(SCRIPT), str(HEPJS)],
            input=data,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert p.returncode == 0, p.stderr.decode()
        return [json.loads(line) for line in p.stdout.decode().splitlines()]

    return decode


def encode_cli(args: list[str]) -> bytes:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    env = Environment(
        stdin=io.StringIO(),
        stdout=out,
        stderr=io.StringIO(),
        stdin_isatty=True,
        stdout_isatty=False,
    )
    assert main(["encode", *args], env=env) == 0
    out.flush()
    return out.buffer.getvalue()  # type: ignore[attr-defined]


def split(data: bytes) -> list[bytes]:
    return [p.data for p in iter_input(io.BytesIO(data))]


def expected(m) -> dict:
    """What hep-js should report for a message we built (only what it can read)."""
    rc = {
        "protocolFamily": m.family,
        "protocol": m.ip_proto,
        "srcPort": m.src_port,
        "dstPort": m.dst_port,
        "timeSeconds": m.ts_sec,
        "timeUseconds": m.ts_usec,
        "payloadType": m.proto_type,
        "captureId": m.capture_id,
    }
    if m.family == 2:
        rc["srcIp"], rc["dstIp"] = m.src_ip, m.dst_ip
    for attr, key in (
        ("auth_key", "capturePass"),
        ("correlation_id", "correlation_id"),
        ("node_name", "hepNodeName"),
    ):
        if getattr(m, attr) is not None:
            rc[key] = getattr(m, attr)
    if "mos" in m.extra:
        rc["mos"] = m.extra["mos"]
    out: dict = {"rcinfo": {k: v for k, v in rc.items() if v is not None}}
    if m.payload is not None and not m.compression:
        out["payload"] = m.payload.decode()
    return out


def compare(got: dict, want: dict) -> None:
    rc = dict(got.get("rcinfo", {}))
    rc.pop("transaction_type", None)  # hep-js decodes 0x0024 as a u16 (HEP-SPEC 3)
    assert rc == want["rcinfo"]
    assert got.get("payload") == want.get("payload")


@pytest.mark.parametrize(
    "name, kw", [("call", {}), ("opensips", {"mode": "json"}), ("opensips", {"mode": "homer5"})]
)
def test_scenarios(hepjs, name, kw):
    args = ["--scenario", name, "--time", T0, "--seed", "3"]
    if kw:
        args += ["--opensips-mode", kw["mode"]]
    data = encode_cli(args)
    msgs = scenario(name, seed=3, start=START, **kw)
    got = hepjs(data)
    assert len(got) == len(msgs) == len(split(data))
    for g, m in zip(got, msgs):
        assert "_false" not in g
        compare(g, expected(m))


OPTS = ["--src", "192.0.2.10:5060", "--dst", "198.51.100.20:5080", "--time", T0]


def test_options(hepjs):
    data = encode_cli(
        [
            *OPTS,
            "--ip-proto",
            "tcp",
            "--proto",
            "log",
            "--capture-id",
            "305419896",
            "--node-name",
            "edge-1",
            "--auth-key",
            "myHep",
            "--correlation-id",
            "abc@host",
            "--payload",
            "call started",
        ]
    )
    (got,) = hepjs(data)
    assert got["rcinfo"] == {
        "protocolFamily": 2,
        "protocol": 6,
        "srcIp": "192.0.2.10",
        "dstIp": "198.51.100.20",
        "srcPort": 5060,
        "dstPort": 5080,
        "timeSeconds": 1700000000,
        "timeUseconds": 123456,
        "payloadType": 100,
        "captureId": 305419896,
        "hepNodeName": "edge-1",
        "capturePass": "myHep",
        "correlation_id": "abc@host",
    }
    assert got["payload"] == "call started"


def test_every_chunk_form(hepjs, tmp_path):
    blob = tmp_path / "corr"
    blob.write_bytes(b"from-a-file")
    cases = [
        (["--chunk", "correlation_id=by-name"], {"correlation_id": "by-name"}),
        (["--chunk", "0x0011=by-hex-type"], {"correlation_id": "by-hex-type"}),
        (["--chunk", "17=by-decimal-type"], {"correlation_id": "by-decimal-type"}),
        (["--chunk", "0x0000:0x0011=by-vendor-type"], {"correlation_id": "by-vendor-type"}),
        (["--chunk", f"correlation_id=@{blob}"], {"correlation_id": "from-a-file"}),
        (["--chunk", "correlation_id=hex:61626364"], {"correlation_id": "abcd"}),
        (["--chunk", "correlation_id=b64:YWJjZA=="], {"correlation_id": "abcd"}),
        (["--chunk", "mos=431"], {"mos": 431}),
        (["--chunk", "0x0020=hex:01af"], {"mos": 431}),
        (["--chunk", "capture_id=0x10"], {"captureId": 16}),
        (["--chunk", "src_port=9"], {"srcPort": 9}),
        (
            ["--chunk", "node_name=n1", "--chunk", "auth_key=k"],
            {"hepNodeName": "n1", "capturePass": "k"},
        ),
        (["--chunk", "proto_type=rtcp"], {"payloadType": 5}),
        # hep-js ignores the vendor id of a known type (HEP-SPEC 4): the vendor chunk, sent
        # after the generic one, wins there
        (["--chunk", "mos=300", "--chunk", "0x0003:0x0020=hex:002a"], {"mos": 42}),
        # unknown to hep-js: ignored, the rest of the packet still reads
        (["--chunk", "0x0008:0x0080=text", "--chunk", "vlan=7", "--chunk", "0x99=x"], {}),
        (["--chunk", "transaction_type=call"], {}),  # hep-js reads 0x24 as u16: not compared
    ]
    base = {
        "protocolFamily": 2,
        "protocol": 17,
        "srcIp": "192.0.2.10",
        "dstIp": "198.51.100.20",
        "srcPort": 5060,
        "dstPort": 5080,
        "timeSeconds": 1700000000,
        "timeUseconds": 123456,
        "payloadType": 1,
        "captureId": 1,
    }
    data = b"".join(encode_cli([*OPTS, "--payload", "p", *args]) for args, _ in cases)
    got = hepjs(data)
    assert len(got) == len(cases)
    for g, (args, changes) in zip(got, cases):
        compare(g, {"rcinfo": {**base, **changes}, "payload": "p"})


def test_compressed_and_ipv6_keep_the_rest_readable(hepjs):
    data = encode_cli([*OPTS, "--payload", "x" * 300, "--compress", "gzip"])
    (got,) = hepjs(data)
    assert "payload" not in got and got["rcinfo"]["srcIp"] == "192.0.2.10"  # 0x10 ignored
    data = encode_cli(
        [
            "--src",
            "[2001:db8::1]:5060",
            "--dst",
            "[2001:db8::2]:5060",
            "--time",
            T0,
            "--payload",
            "v6",
        ]
    )
    (got,) = hepjs(data)
    assert got["payload"] == "v6" and got["rcinfo"]["protocolFamily"] == 10
    assert "srcIp" not in got["rcinfo"]  # hep-js reads no IPv6 chunks
