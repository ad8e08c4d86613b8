"""The browser helpers of the UI tests: `vomage_dagster.local.browser`'s Chromium, plus
screenshots kept in `tests/artifacts/` (kept by CI as test artifacts, not committed) and a
wait that leaves a screenshot behind when what it waits for never shows."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vomage_dagster.local.browser import available, chromium, text  # noqa: F401  (for the tests)

ARTIFACTS = Path(__file__).parent / "artifacts"

needs_browser = pytest.mark.skipif(not available(), reason="chromium and chromium-driver are not installed "
                                                          "(BROWSER=1 bash scripts/bootstrap.sh)")


def screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def wait_for(driver, found: Callable[[], object], timeout: float = 60.0, what: str = "") -> object:
    """Poll `found` until it returns something truthy; on timeout, a screenshot and a clear error."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = found()
            if value:
                return value
        except Exception as exc:  # the page is still rendering: try again
            last = exc
        time.sleep(0.5)
    shot = screenshot(driver, f"timeout-{int(time.time())}")
    raise AssertionError(f"not shown within {timeout:.0f} s: {what} (screenshot {shot.name}; last error {last!r})")


def page_text(driver) -> str:
    return driver.find_element("tag name", "body").text
