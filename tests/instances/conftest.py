from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.conftest import server_root
from tests.instances.stack import TwoInstances

FIGURES: list[str] = []


@pytest_asyncio.fixture
async def two() -> AsyncIterator[TwoInstances]:
    """Servers of this test's own (never the shared or system ones: these tests stop them)."""
    with server_root("instances") as root:
        stack = TwoInstances(root)
        try:
            await stack.start_servers()
            await stack.start()
            yield stack
        finally:
            stack.stop_all()
            stack.stop_servers()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("two instances: what was acknowledged and stored where")
        for line in FIGURES:
            terminalreporter.write_line(line)
