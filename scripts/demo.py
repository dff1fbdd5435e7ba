"""What heptool can show today: every HEP packet in the bundled captures, decoded.

    python3 scripts/demo.py [CAPTURE...]      (default: all of tests/vectors/)

For each capture: JSON records (the same records `heptool decode -f jsonl` will print)
of the first packets to stdout, then per capture on stderr how many HEP packets were
found (UDP and TCP), by version and protocol type, and whether every one re-encodes to
the identical bytes.  Until the `decode` subcommand lands this is the library at work:
heptool.capture finds the packets, heptool.decode/encode/to_record do the rest.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import heptool
from heptool.capture import iter_hep_payloads

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((ROOT / "tests" / "vectors").rglob("*.pcap"))
    shown = 0
    failures = 0
    for path in paths:
        counts: Counter[str] = Counter()
        exact = 0
        n = 0
        for index, hp in enumerate(iter_hep_payloads(path)):
            try:
                msg = heptool.decode(hp.data)
            except heptool.HepDecodeError as e:
                print(f"{path.name}: frame {hp.frame}, {e}", file=sys.stderr)
                failures += 1
                continue
            n += 1
            counts[f"v{msg.version} {heptool.registry.proto_name(msg.proto_type)}"] += 1
            exact += heptool.encode(msg) == hp.data
            if shown < 3 or (index == 0):
                rec = {"index": index, "frame": hp.frame, "hep_transport": hp.transport,
                       **heptool.to_record(msg)}
                print(json.dumps(rec))
                shown += 1
        if n:
            kinds = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {n} HEP packets "
                  f"({kinds}); {exact}/{n} re-encode byte-exact", file=sys.stderr)
            failures += n - exact
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
