"""``heptool correlate`` through the CLI: the OpenSIPS capture against its truth file, the
scenario's homer5 and HEP-over-TCP variants (made with ``heptool encode``), every format,
filters, rules and exit statuses."""

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import heptool
from heptool.cli import main
from heptool.cli.env import Environment
from heptool.cli.exit import ExitStatus

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "tests" / "vectors" / "opensips" / "opensips-3.4.15-hep3-udp.pcap"
TRUTH = ROOT / "tests" / "vectors" / "opensips" / "opensips-3.4.15-hep3-udp.truth.json"


class Result:
    def __init__(self, exit_code: int, out: bytes, err: bytes) -> None:
        self.exit_code = exit_code
        self.stdout_bytes = out
        self.stdout = out.decode("utf-8", "replace")
        self.stderr = err.decode("utf-8", "replace")

    def json(self) -> dict:
        return json.loads(self.stdout)


def invoke(args, *, stdin: bytes | None = None, **env_kw) -> Result:
    runner = CliRunner(env={"COLUMNS": "120"})
    with runner.isolation(input=stdin) as streams:
        env = Environment(**env_kw)
        status = main([*map(str, args)], env=env)
        sys.stdout.flush()
        sys.stderr.flush()
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return Result(status, out, err)


def truth() -> dict:
    return json.loads(TRUTH.read_text())["capture"]


def truth_groups() -> list[list[int]]:
    return [g["members"] for g in truth()["groups"]]


def test_json_groups_equal_the_truth():
    r = invoke(["correlate", CAPTURE, "-f", "json"])
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert set(doc) == {"groups", "edges", "dangling"}
    assert [g["packets"] for g in doc["groups"]] == truth_groups()
    assert [g["label"] for g in doc["groups"]] == [g["label"] for g in truth()["groups"]]
    assert [g["id"] for g in doc["groups"]] == list(range(15))
    for g in doc["groups"]:
        assert set(g) == {"id", "label", "packets", "call_ids", "ids", "kinds", "first", "last"}
    expected = [{"from": x["from"], "via": f"extra:{x['via']}", "value": x["value"]}
                for x in truth()["links"] if not x["to"]]
    assert doc["dangling"] == expected
    # dangling values are kept apart from a group's ids (issue 14 #10)
    values = {d["value"] for d in expected}
    for g in doc["groups"]:
        assert not values & {*g["call_ids"], *(v for vs in g["ids"].values() for v in vs)}
    assert doc["groups"][4]["call_ids"] == ["hc-tcp-call-c7ba77@heptool.test"]


def test_json_is_the_default_in_a_pipe_and_indices_match_decode():
    r = invoke(["correlate", CAPTURE], stdout_isatty=False)
    doc = r.json()
    dec = invoke(["decode", CAPTURE, "-f", "jsonl"], stdout_isatty=False)
    records = [json.loads(line) for line in dec.stdout.splitlines()]
    by_index = {rec["index"]: rec for rec in records}
    for g in doc["groups"]:
        for i in g["packets"]:
            assert i in by_index
    # the MI groups hold exactly the MI records
    mi = [i for i, rec in by_index.items() if rec["proto_type"] == 0x57]
    assert sorted(i for g in doc["groups"] if g["label"].startswith("MI") for i in g["packets"]) == mi


def test_jsonl_input_keeps_decode_indices(tmp_path):
    dec = invoke(["decode", CAPTURE, "-f", "jsonl"], stdout_isatty=False)
    lines = dec.stdout.splitlines()
    sub = tmp_path / "sub.jsonl"
    sub.write_text("\n".join(lines[32:58]) + "\n")  # the TCP call only
    doc = invoke(["correlate", sub, "-f", "json"]).json()
    assert [g["packets"] for g in doc["groups"]] == [list(range(32, 58))]
    assert {"from": 41, "via": "extra:net", "value": "0"} in doc["dangling"]


def test_table_is_the_default_on_a_terminal():
    r = invoke(["correlate", CAPTURE, "--color", "never"], stdout_isatty=True)
    assert r.exit_code == 0
    assert "group 4  SIP INVITE, Call-ID hc-tcp-call-c7ba77@heptool.test" in r.stdout
    assert "dangling: #41 extra:net 0 (matches nothing)" in r.stdout
    assert "MI uptime via fifo" in r.stdout
    assert "15 of 15 groups, 151 messages" in r.stdout
    assert "\x1b[" not in r.stdout


def test_filters_select_groups():
    doc = invoke(["correlate", CAPTURE, "-f", "json", "--call-id",
                  "hc-tls-call-c7ba77@heptool.test"]).json()
    assert [g["id"] for g in doc["groups"]] == [5]
    assert doc["groups"][0]["kinds"]["net_tls"] == 2  # the net events come with the call
    assert all(58 <= e["from"] <= 81 for e in doc["edges"])
    doc = invoke(["correlate", CAPTURE, "-f", "json", "--proto", "mi"]).json()
    assert [g["id"] for g in doc["groups"]] == [10, 11, 12, 13, 14]
    doc = invoke(["correlate", CAPTURE, "-f", "json", "--group", "1", "--group", "3"]).json()
    assert [g["id"] for g in doc["groups"]] == [1, 3]
    doc = invoke(["correlate", CAPTURE, "-f", "json", "--grep", "nomatch-anywhere"]).json()
    assert doc == {"groups": [], "edges": [], "dangling": []}


def test_dot_and_mermaid():
    r = invoke(["correlate", CAPTURE, "-f", "dot", "--group", "4"])
    assert r.stdout.startswith("graph heptool {") and r.stdout.rstrip().endswith("}")
    assert "subgraph cluster_4" in r.stdout
    assert 'm41 -- v' in r.stdout and "color=red" in r.stdout  # the dangling "0"
    r = invoke(["correlate", CAPTURE, "-f", "mermaid", "--group", "1"])
    lines = r.stdout.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  subgraph g1["group 1: SIP OPTIONS, Call-ID 1691818996@127.0.0.1"]' in lines
    assert '  m2 -- "extra:net" --- v0' in lines


def test_dot_is_valid_graphviz(tmp_path):
    import shutil
    import subprocess

    if shutil.which("dot") is None:
        if os.environ.get("CI") == "true":  # scripts/setup-peers.sh installs it for CI
            pytest.fail("graphviz 'dot' is not installed (scripts/setup-peers.sh graphviz)")
        pytest.skip("graphviz 'dot' is not installed (bash scripts/setup-peers.sh graphviz)")
    r = invoke(["correlate", CAPTURE, "-f", "dot"])
    p = subprocess.run(["dot", "-Tsvg"], input=r.stdout_bytes, capture_output=True, check=False)
    assert p.returncode == 0, p.stderr


def encode_scenario(mode: str, fmt: str, seeds: int = 3) -> bytes:
    r = invoke(["encode", "--scenario", "opensips", "--opensips-mode", mode, "--count",
                str(seeds), "-f", fmt], stdout_isatty=False)
    assert r.exit_code == 0, r.stderr
    return r.stdout_bytes


@pytest.mark.parametrize("fmt", ["raw", "pcap"])
def test_scenario_homer5_and_json_modes_give_the_same_groups(tmp_path, fmt):
    docs = {}
    for mode in ("json", "homer5"):
        path = tmp_path / f"{mode}.{fmt}"
        path.write_bytes(encode_scenario(mode, fmt))
        docs[mode] = invoke(["correlate", path, "-f", "json"]).json()
    groups = {mode: [g["packets"] for g in d["groups"]] for mode, d in docs.items()}
    assert groups["json"] == groups["homer5"]
    assert len(groups["json"]) == 6  # 3 calls, each with its MI exchange
    assert not any(e.get("inferred") for e in docs["json"]["edges"])
    inferred = [e for e in docs["homer5"]["edges"] if e.get("inferred")]
    assert inferred and all(e["via"] == "five_tuple" for e in inferred)
    # without inference the homer5 connection events stand apart
    no = invoke(["correlate", tmp_path / f"homer5.{fmt}", "-f", "json", "--no-infer"]).json()
    assert len(no["groups"]) == 9


def test_scenario_over_hep_tcp_gives_the_same_groups(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("core_test_correlate",
                                                  ROOT / "tests" / "core" / "test_correlate.py")
    core_tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core_tests)
    tcp_pcap = core_tests.tcp_pcap  # the HEP-over-TCP pcap builder of the core tests

    from heptool.capture.inputs import iter_input, to_message

    raw = tmp_path / "s.hep"
    raw.write_bytes(encode_scenario("homer5", "raw"))
    packets = [heptool.encode(to_message(p)) for p in iter_input(str(raw))]
    tcp = tmp_path / "s-tcp.pcap"
    tcp.write_bytes(tcp_pcap(packets, segment=400))
    a = invoke(["correlate", raw, "-f", "json"]).json()
    b = invoke(["correlate", tcp, "-f", "json"]).json()
    assert [g["packets"] for g in a["groups"]] == [g["packets"] for g in b["groups"]]
    assert a["edges"] == b["edges"]


def test_rules_options(tmp_path):
    def sip(cid: str, extra: str = "") -> heptool.HepMessage:
        payload = (f"INVITE sip:b@x SIP/2.0\r\nCall-ID: {cid}\r\nCSeq: 1 INVITE\r\n{extra}"
                   "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\n\r\n")
        return heptool.HepMessage(src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2",
                                  dst_port=5060, ts_sec=1700000000, ts_usec=0, proto_type=1,
                                  payload=payload)

    path = tmp_path / "b2b.hep"
    path.write_bytes(b"".join(heptool.encode(m) for m in [
        sip("a@h"), sip("a@h_b2b-1"), sip("x@h", "Session-ID: 42\r\n"),
        sip("y@h", "Session-ID: 42\r\n")]))
    plain = invoke(["correlate", path, "-f", "json"]).json()
    assert [g["packets"] for g in plain["groups"]] == [[0], [1], [2], [3]]
    ruled = invoke(["correlate", path, "-f", "json", "--b2b-pattern", "*_b2b-1",
                    "--link-header", "Session-ID"]).json()
    assert [g["packets"] for g in ruled["groups"]] == [[0, 1], [2, 3]]
    assert {"from": 1, "to": 0, "via": "b2b"} in ruled["edges"]
    assert {"from": 3, "to": 2, "via": "header:Session-ID"} in ruled["edges"]


@pytest.mark.parametrize("args", [["--b2b-pattern", "nostar"], ["--link-header", "a b"],
                                  ["--proto", "nosuchproto"], ["-f", "svg"]])
def test_usage_errors(args):
    r = invoke(["correlate", CAPTURE, *args])
    assert r.exit_code == ExitStatus.USAGE
    assert r.stderr.startswith("Error:") or "Error:" in r.stderr
    assert len([x for x in r.stderr.splitlines() if x.startswith("Error")]) == 1


def test_bad_input_exit_status(tmp_path):
    good = heptool.encode(heptool.HepMessage(src_ip="10.0.0.1", src_port=1, dst_ip="10.0.0.2",
                                             dst_port=2, ts_sec=1, ts_usec=0, proto_type=1,
                                             payload=b"x"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"version": 3, "src_ip": "nonsense"}\n')
    r = invoke(["correlate", bad, "-f", "json"])
    assert r.exit_code == ExitStatus.BAD_INPUT
    assert r.json() == {"groups": [], "edges": [], "dangling": []}
    notinput = tmp_path / "x.txt"
    notinput.write_bytes(b"hello")
    assert invoke(["correlate", notinput, "-f", "json"]).exit_code == ExitStatus.BAD_INPUT
    r = invoke(["correlate", "-", "-f", "json"], stdin=good + good)
    assert r.exit_code == 0 and len(r.json()["groups"]) == 2
    assert invoke(["correlate", "/nonexistent.pcap"]).exit_code == ExitStatus.USAGE


def test_gzip_input_and_several_inputs(tmp_path):
    gz = tmp_path / "x.pcap.gz"
    gz.write_bytes(gzip.compress(CAPTURE.read_bytes()))
    doc = invoke(["correlate", gz, "-f", "json"]).json()
    assert [g["packets"] for g in doc["groups"]] == truth_groups()
    both = invoke(["correlate", CAPTURE, CAPTURE, "-f", "json"]).json()
    # the same calls twice: the same ids, so each group doubles; indices count on
    assert len(both["groups"]) == 15
    assert both["groups"][0]["packets"] == [0, 151]


def test_output_file(tmp_path):
    out = tmp_path / "g.json"
    r = invoke(["correlate", CAPTURE, "-f", "json", "-o", out], stdout_isatty=True)
    assert r.exit_code == 0 and r.stdout == ""
    assert len(json.loads(out.read_text())["groups"]) == 15


def test_streamed_json_equals_the_core_document():
    from heptool.analysis.correlate import correlate
    from heptool.capture.inputs import iter_input, to_message

    g = correlate(to_message(p) for p in iter_input(str(CAPTURE)))
    assert invoke(["correlate", CAPTURE, "-f", "json"]).json() == g.to_dict()
    sub = invoke(["correlate", CAPTURE, "-f", "json", "--group", "4"]).json()
    assert sub == json.loads(json.dumps(g.to_dict([g.groups()[4]])))
