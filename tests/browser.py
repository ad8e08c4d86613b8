"""The browser helpers of the UI tests: `vomage_dagster.testing.browser`'s Chromium, plus
screenshots kept in `tests/artifacts/` (kept by CI as test artifacts, not committed) and a
wait that leaves a screenshot behind when what it waits for never shows."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vomage_dagster.testing.browser import available, chromium, poll, text  # noqa: F401  (for the tests)

ARTIFACTS = Path(__file__).parent / "artifacts"

needs_browser = pytest.mark.skipif(not available(), reason="chromium and chromium-driver are not installed "
                                                          "(BROWSER=1 bash scripts/bootstrap.sh)")


def screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def wait_for(driver, found: Callable[[], object], timeout: float = 60.0, what: str = "") -> object:
    """`poll` until `found` returns something truthy; on timeout, a screenshot and a clear error."""
    try:
        return poll(found, timeout, what)
    except TimeoutError as exc:
        shot = screenshot(driver, f"timeout-{int(time.time())}")
        raise AssertionError(f"{exc} (screenshot {shot.name})") from None


def page_text(driver) -> str:
    return driver.find_element("tag name", "body").text
