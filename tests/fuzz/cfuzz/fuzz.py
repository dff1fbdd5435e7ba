"""Coverage-guided fuzzing of one C extension function with atheris (libFuzzer).

    python tests/fuzz/cfuzz/fuzz.py TARGET [libFuzzer options] [CORPUS_DIR... | FILE...]

TARGET is a function of heptool/core/_speedups.c (tests/fuzz/cfuzz/targets.py: hep3_fields,
hep3_record, hep3_jsonl, sip_summary, sip_ids, udp4_hep).  Given files instead of
directories, libFuzzer runs just those inputs (replaying a reproducer).  scripts/fuzz-c.sh
runs every target for a bounded time against the sanitized build; run it rather than this.

Coverage: the pure-Python reference code (heptool.*) is instrumented by atheris; the C code
adds native coverage only when the extension was compiled with clang -fsanitize=fuzzer-no-link
and atheris's asan_with_fuzzer.so is preloaded (scripts/fuzz-c.sh says which it got).
A Mismatch (C answer != Python answer) or any other exception is a failure: libFuzzer saves
the input (-artifact_prefix) and exits non-zero.
"""

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=["heptool"]):
    import targets


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
        sys.exit(f"usage: fuzz.py TARGET [libFuzzer options] [corpus...]; TARGET one of "
                 f"{', '.join(targets.TARGETS)}")
    if targets.C is None:
        sys.exit("fuzz.py: the C extension is not built (or HEPTOOL_PURE=1): nothing to fuzz")
    name = sys.argv.pop(1)
    print(f"fuzz.py: target {name}, extension {targets.C.__file__}", flush=True)
    atheris.Setup(sys.argv, targets.TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
