"""In-process speed of bytes -> decode record, for every fast path against the reference (plan12 6.2).

    python bench/bench_record.py [--packets N] [--rounds R] [--heptool DIR]
    HEPTOOL_PURE=1 python bench/bench_record.py      # the pure-Python build

On bench/bench_codec.py's realistic packets (Kamailio, OpenSIPS, hep-js layouts) with the
capture head ``(index, frame, "udp", src, dst)``, with and without the ``sip`` view, each
row best of R rounds (rows interleaved within each round, so that a loaded machine slows
them alike):

(a) ``decode_record(decode(p), ...)``: decode + to_record, the reference path
(b) the exec-generated record builder (pure Python, plus the sip wrapper), when it exists
(c) C ``hep3_record`` (C build)
(d) C ``hep3_jsonl`` against ``orjson.dumps`` of (a), and of (c)

Times are this process's CPU time (a loaded machine inflates wall time unevenly).  Prints
packets/s, the share of packets each fast path takes (the rest go to (a)), and each
fast path's ratio to the reference.  The rule (plan12 6.2): a fast path stays if it is
>= 1.25x in process on the variant the CLI uses (``decode`` uses ``sip=True`` for every
JSON format) and >= 10 % faster whole-process (bench/bench_decode_cli.py).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def load(heptool_dir: Path) -> dict:
    """The functions of the heptool tree in ``heptool_dir`` (old or new module layout)."""
    sys.path.insert(0, str(heptool_dir))
    import orjson

    from heptool import decode
    from heptool.core.accel import BUILD, c_module
    from heptool.output.records import decode_record

    try:  # the exec record builder (and its sip wrapper), wherever this tree keeps it
        from heptool.core.templates import record_builder as builder
        from heptool.output import records as where
    except ImportError:
        try:
            from heptool.core import record as where
            builder = where.make_fast_record_py
        except (ImportError, AttributeError):
            builder = None
    c = c_module()
    return {"decode": decode, "decode_record": decode_record, "dumps": orjson.dumps,
            "build": BUILD, "c": c, "builder": builder, "where": where if builder else None}


def py_builder(api: dict):
    """The pure fast path as ``heptool decode`` would call it: head dispatch and sip view."""
    where = api["where"]
    wrap = getattr(where, "py_fast_record", None) or getattr(where, "_py_fast_record", None)
    return wrap() if wrap is not None else None


def rows(api: dict, sip: bool) -> dict:
    decode, decode_record, dumps = api["decode"], api["decode_record"], api["dumps"]
    out = {}

    def ref(packets):
        taken = 0
        for i, p in enumerate(packets):
            decode_record(decode(p), i, i + 1, "udp", "10.9.0.1:9060", "10.9.0.2:9060", sip)
            taken += 1
        return taken

    def ref_json(packets):
        taken = 0
        for i, p in enumerate(packets):
            dumps(decode_record(decode(p), i, i + 1, "udp", "10.9.0.1:9060", "10.9.0.2:9060", sip))
            taken += 1
        return taken

    out["(a) decode + to_record"] = ref
    out["(a') (a) + orjson.dumps"] = ref_json

    def fast_rows(name, fast):
        def run(packets):
            taken = 0
            for i, p in enumerate(packets):
                r = fast(p, i, i + 1, "udp", "10.9.0.1:9060", "10.9.0.2:9060", sip)
                if r is None:
                    r = decode_record(decode(p), i, i + 1, "udp", "10.9.0.1:9060", "10.9.0.2:9060", sip)
                else:
                    taken += 1
            return taken

        def run_json(packets):
            taken = 0
            for i, p in enumerate(packets):
                r = fast(p, i, i + 1, "udp", "10.9.0.1:9060", "10.9.0.2:9060", sip)
                if r is None:
                    r = decode_record(decode(p), i, i + 1, "udp", "10.9.0.1:9060", "10.9.0.2:9060", sip)
                else:
                    taken += 1
                dumps(r)
            return taken

        out[name] = run
        out[name.split(")")[0] + "') " + name.split(") ", 1)[1] + " + orjson.dumps"] = run_json

    pyfast = py_builder(api) if api["builder"] is not None else None
    if pyfast is not None:
        fast_rows("(b) exec record builder", pyfast)
    c = api["c"]
    if c is not None and hasattr(c, "hep3_record"):
        fast_rows("(c) C hep3_record", c.hep3_record)
    if c is not None and hasattr(c, "hep3_jsonl"):
        jsonl = c.hep3_jsonl
        crec = getattr(c, "hep3_record", None)

        def lines(packets):
            taken = 0
            for i, p in enumerate(packets):
                line = jsonl(p, i, i + 1, "udp", "10.9.0.1:9060", "10.9.0.2:9060", sip)
                if line is None:
                    r = crec(p, i, i + 1, "udp", "10.9.0.1:9060", "10.9.0.2:9060", sip) \
                        if crec is not None else None
                    if r is None:
                        r = decode_record(decode(p), i, i + 1, "udp", "10.9.0.1:9060",
                                          "10.9.0.2:9060", sip)
                    dumps(r)
                else:
                    taken += 1
            return taken

        out["(d) C hep3_jsonl"] = lines
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--heptool", type=Path, default=ROOT, help="the heptool checkout to measure")
    ap.add_argument("--sip", choices=("both", "on", "off"), default="both")
    a = ap.parse_args()
    api = load(a.heptool.resolve())
    from bench_codec import build

    packets = build(a.packets)
    n = len(packets)
    print(f"heptool {a.heptool} ({api['build']} build): {n:,} HEP3 packets, best of {a.rounds}")
    for sip in {"both": (True, False), "on": (True,), "off": (False,)}[a.sip]:
        table = rows(api, sip)
        best = dict.fromkeys(table, float("inf"))
        taken = {}
        for _ in range(a.rounds):
            for name, fn in table.items():
                gc.collect()
                t0 = time.process_time()  # CPU time: steadier than wall time on a shared machine
                taken[name] = fn(packets)
                best[name] = min(best[name], time.process_time() - t0)
        print(f"\nsip={sip}")
        base = best["(a) decode + to_record"]
        base_json = best["(a') (a) + orjson.dumps"]
        for name, t in best.items():
            ref = base_json if "orjson" in name or name.startswith("(d)") else base
            print(f"  {name:<38} {n / t:>10,.0f} /s  taken {taken[name] / n:6.1%}  "
                  f"{ref / t:5.2f}x (a{'+json' if ref is base_json else ''})")
        cj = "(c') C hep3_record + orjson.dumps"
        if "(d) C hep3_jsonl" in best and cj in best:
            print(f"  (d) against (c'): {best[cj] / best['(d) C hep3_jsonl']:.2f}x")


if __name__ == "__main__":
    main()
