"""Print the reliability figures (load, faults, error bodies) at the end of the pytest run."""

from __future__ import annotations

import pytest

from tests.reliability.support import ERROR_BODIES, SUMMARY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not SUMMARY and not ERROR_BODIES:
        return
    terminalreporter.section("reliability figures")
    for line in SUMMARY:
        terminalreporter.write_line(line)
    if ERROR_BODIES:
        terminalreporter.write_line(
            f"error bodies checked for tracebacks, exception classes, SQL and database URLs: "
            f"{ERROR_BODIES['checked']}, leaking: {ERROR_BODIES['leaking']}"
        )
