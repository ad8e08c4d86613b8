"""A real browser for the UI tests: Debian's headless Chromium driven by selenium.

Browsers that download themselves (Playwright's) do not install here; `scripts/test.sh`
installs `chromium` and `chromium-driver` (bootstrap, `BROWSER=1`). Screenshots go to
`tests/artifacts/` (kept by CI as test artifacts, not committed).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).parent / "artifacts"


def available() -> bool:
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


needs_browser = pytest.mark.skipif(not available(), reason="chromium and chromium-driver are not installed "
                                                          "(BROWSER=1 bash scripts/bootstrap.sh)")


@contextmanager
def chromium(extra_args: tuple[str, ...] = (), width: int = 1440, height: int = 1000) -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", *extra_args):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


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
