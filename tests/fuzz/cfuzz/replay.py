"""Run a C fuzz target on saved inputs, without atheris (a reproducer, a corpus).

    python tests/fuzz/cfuzz/replay.py TARGET FILE_OR_DIR...

Prints how many inputs ran and every failure (Mismatch or other exception) with its file;
exit status 1 when any failed.  A sanitizer report ends the process at once; with
REPLAY_CURRENT=FILE in the environment, FILE then names the input it was running.  scripts/fuzz-c.sh uses it to run what atheris found again
under the ASan+UBSan build.
"""

import os
import sys
import traceback
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import targets


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] not in targets.TARGETS:
        sys.exit("usage: replay.py TARGET FILE_OR_DIR...; TARGET one of "
                 + ", ".join(targets.TARGETS))
    if targets.C is None:
        sys.exit("replay.py: the C extension is not built (or HEPTOOL_PURE=1)")
    name, paths = sys.argv[1], [Path(p) for p in sys.argv[2:]]
    # REPLAY_CURRENT=FILE: FILE names the input being run, so that the caller can keep the
    # input a sanitizer stopped the process on
    current = os.environ.get("REPLAY_CURRENT")
    check = targets.TARGETS[name]
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    failed = 0
    for f in files:
        if current:
            Path(current).write_text(str(f))
        try:
            check(f.read_bytes())
        except Exception:  # noqa: BLE001  (any failure of the target is a finding)
            failed += 1
            print(f"replay.py: {name}: FAIL on {f}", file=sys.stderr)
            traceback.print_exc()
    print(f"replay.py: {name}: {len(files)} inputs, {failed} failing ({targets.C.__file__})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
