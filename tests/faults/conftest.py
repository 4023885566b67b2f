from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.conftest import server_root
from tests.faults.stack import Stack

FIGURES: list[str] = []


@pytest_asyncio.fixture
async def stack() -> AsyncIterator[Stack]:
    with server_root("faults") as root:
        s = Stack(root)
        s.start_servers()
        try:
            yield s
        finally:
            s.stop_all()
            s.stop_servers()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("fault tests: what was sent, acknowledged and stored")
        for line in FIGURES:
            terminalreporter.write_line(line)
