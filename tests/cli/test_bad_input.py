"""Every command on every kind of bad input (issue 7, "Hostile bytes").

One matrix: decode, encode (--from FILE and standard input), convert, correlate, flow and send
(to a UDP socket on loopback that the test owns) x empty, truncated in the header, truncated
mid-record, wrong magic, an absurd pcap caplen, an absurd pcapng block length, a gzip bomb (a 512 MiB JSON line in 0.5 MB of
gzip, run under a 1 GiB address-space limit), a JSON Lines line that is not JSON, and binary on
standard input.  Each run is a real process, so the exit status is the real one.

Expected of each: exit status 3 (BAD_INPUT); standard error is one line, ``Error: ...``, naming
the place (file offset, frame or line); and everything before the fault is still output (the 5
packets before a damaged frame, the 5 records before a line that is not JSON).  The one
exception is by design: ``encode`` with an *empty* standard input builds its packet from the
options (an empty pipe is not records, e.g. ``</dev/null`` in CI), exit 0.
"""

from __future__ import annotations

import io
import json
import resource
import socket
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from heptool import StreamDecoder
from heptool.capture.pcap import iter_frames
from heptool.capture.pcapng_writer import PcapngWriter

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
GOOD = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"
BOMB_BYTES = 512 << 20
MEMORY_LIMIT = 1 << 30


def _records(pcap: bytes) -> list[int]:
    offs, off = [], 24
    while off + 16 <= len(pcap):
        offs.append(off)
        off += 16 + struct.unpack_from("<I", pcap, off + 8)[0]
    return offs


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, tuple[Path, int, str]]:
    """kind -> (file, good packets before the fault, text the error must contain)."""
    d = tmp_path_factory.mktemp("bad")
    good = GOOD.read_bytes()
    recs = _records(good)
    out: dict[str, tuple[Path, int, str]] = {}

    def put(kind, data, n, where):
        p = d / kind
        p.write_bytes(data)
        out[kind] = (p, n, where)

    put("empty", b"", 0, "(empty)")
    put("truncated-header", good[:10], 0, "byte offset 0: truncated pcap file header")
    put("truncated-record", good[:recs[5] + 30], 5, "frame 6, byte offset 2541")
    put("wrong-magic", b"\xde\xad\xbe\xef" + good[4:], 0, "starts with de ad be ef")
    b = bytearray(good)
    b[recs[5] + 8:recs[5] + 12] = struct.pack("<I", 0x7FFFFFFF)
    put("absurd-caplen", bytes(b), 5, "frame 6, byte offset 2541: record length 2147483647")
    ng = io.BytesIO()
    w = PcapngWriter(ng)
    for fr in iter_frames(io.BytesIO(good)):
        w.write(fr.ts_sec, fr.ts_usec, fr.data)
    b = bytearray(ng.getvalue())
    at = 44 + 32  # section header and interface blocks, then one packet block per frame
    for _ in range(5):
        at += struct.unpack_from("<I", b, at + 4)[0]
    b[at + 4:at + 8] = struct.pack("<I", 0x7FFFFFF0)
    put("absurd-pcapng-block", bytes(b), 5, "frame 6, byte offset 2684: bad pcapng block length")
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [co.compress(b'{"payload": "')]
    block = b"A" * (1 << 20)
    parts += [co.compress(block) for _ in range(BOMB_BYTES >> 20)]
    parts.append(co.flush())
    put("gzip-bomb", b"".join(parts), 0, "line 1: longer than 16 MiB")
    lines = run(["decode", "-f", "jsonl", str(GOOD)]).stdout.splitlines(True)
    put("jsonl-not-json", b"".join(lines[:5]) + b"this is not json\n" + b"".join(lines[5:10]),
        5, "line 6: not JSON")
    put("binary-stdin", bytes(range(256)) * 16, 0, "<stdin>: not a pcap, pcapng, HEP stream")
    return out


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(args, stdin: Path | None = None, limit: bool = False) -> subprocess.CompletedProcess:
    with (stdin.open("rb") if stdin else open("/dev/null", "rb")) as fh:
        return subprocess.run([sys.executable, "-m", "heptool", *args], check=False, stdin=fh,
                              capture_output=True, timeout=120,
                              preexec_fn=_limit if limit else None)


class Listener:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.url = f"udp://127.0.0.1:{self.sock.getsockname()[1]}"

    def received(self) -> int:
        n = 0
        try:
            while True:
                self.sock.recv(70000)
                n += 1
        except TimeoutError:
            return n


def count_hep(raw: bytes) -> int:
    dec = StreamDecoder()
    dec.feed(raw)
    return sum(1 for _ in dec)


COMMANDS = ["decode", "encode-from", "encode-stdin", "convert", "correlate", "flow", "send"]
KINDS = ["empty", "truncated-header", "truncated-record", "wrong-magic", "absurd-caplen",
         "absurd-pcapng-block", "gzip-bomb", "jsonl-not-json", "binary-stdin"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", COMMANDS)
def test_bad_input(bad, tmp_path, command, kind):
    path, n_good, where = bad[kind]
    src = "-" if kind == "binary-stdin" else str(path)
    stdin = path if kind == "binary-stdin" or command == "encode-stdin" else None
    listener = None
    out_file = tmp_path / "out.pcap"
    args = {
        "decode": ["decode", "-f", "jsonl", src],
        "encode-from": ["encode", "--from", src],
        "encode-stdin": ["encode"],
        "convert": ["convert", src, "-o", str(out_file)],
        "correlate": ["correlate", "-f", "json", src],
        "flow": ["flow", src, "--group", "0"],
        "send": ["send", src],
    }[command]
    try:
        if command == "send":
            listener = Listener()
            args += ["--to", listener.url]
        r = run(args, stdin=stdin, limit=kind == "gzip-bomb")
        err = r.stderr.decode("utf-8", "replace").splitlines()
        if command == "encode-stdin" and kind == "empty":
            assert r.returncode == 0 and count_hep(r.stdout) == 1 and not err  # by design
            return
        assert r.returncode == 3, (r.returncode, err)
        assert len(err) == 1 and err[0].startswith("Error: "), err
        assert where in err[0], err
        # everything before the fault is still output
        if command == "decode":
            assert len(r.stdout.splitlines()) >= n_good  # JSON Lines: later lines too
        elif command.startswith("encode"):
            assert count_hep(r.stdout) >= n_good
        elif command == "convert":
            frames = list(iter_frames(io.BytesIO(out_file.read_bytes()))) if out_file.exists() else []
            assert len(frames) >= n_good
        elif command == "correlate":
            groups = json.loads(r.stdout)["groups"] if r.stdout else []
            assert bool(groups) == bool(n_good)
        elif command == "flow":
            assert bool(r.stdout.strip()) == bool(n_good)
        elif command == "send":
            assert listener.received() >= n_good
    finally:
        if listener is not None:
            listener.sock.close()
