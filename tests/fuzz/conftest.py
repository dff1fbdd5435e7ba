"""Reports the fuzzing harness's executions and failures at the end of the run."""

import fuzzutil


def pytest_terminal_summary(terminalreporter):
    if not fuzzutil.EXECUTIONS:
        return
    total = sum(fuzzutil.EXECUTIONS.values())
    crashes = sum(fuzzutil.FAILURES.values())
    terminalreporter.write_line(
        f"fuzz: {total} executions, {crashes} failing ("
        + ", ".join(f"{k} {v}" for k, v in sorted(fuzzutil.EXECUTIONS.items())) + ")")
