"""A real browser for the UI tests and the browser benchmark: Debian's headless Chromium
driven by selenium (a dev dependency; `BROWSER=1 bash scripts/bootstrap.sh` installs
`chromium` and `chromium-driver`: browsers that download themselves do not install here),
and the live view driven as a user drives it: record from a fake microphone, stop, and
wait for the words, the mood and the image."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def available() -> bool:
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


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


def fake_microphone(wav: Path) -> tuple[str, ...]:
    """Chromium's flags for a microphone that plays `wav` once, granted without asking."""
    return ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}%noloop")


def poll(found: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = found()
            if value:
                return value
        except Exception as exc:  # the page is still rendering: try again
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"not shown within {timeout:.0f} s: {what} (last error {last!r})")


def text(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def sign_in(driver, username: str, password: str) -> None:
    """Sign in on the page's form, as a user types it, and wait until the page says so."""
    poll(lambda: driver.find_element("id", "sign-in").is_displayed(), 30, "the sign-in form")
    driver.find_element("id", "username").send_keys(username)
    driver.find_element("id", "password").send_keys(password)
    driver.find_element("id", "sign-in-button").click()
    poll(lambda: username in text(driver, "who"), 30, "signed in")


def record_and_watch(driver, page_url: str, username: str, seconds: float, timeout: float = 120,
                     password: str | None = None, style: str | None = None,
                     place: tuple[float, float] | None = None) -> dict:
    """Open the live view (signed in on its form with `password`, or by a `?token=` in
    `page_url`; at `place` if given, the browser's geolocation), pick `style`, record for
    `seconds`, stop; return what the page measured (ms from stop to words, mood and image
    on screen) and what it showed."""
    if place is not None:
        driver.execute_cdp_cmd("Browser.grantPermissions", {"permissions": ["geolocation"]})
        driver.execute_cdp_cmd("Emulation.setGeolocationOverride",
                               {"latitude": place[0], "longitude": place[1], "accuracy": 50})
    driver.get(page_url)
    if password is not None:
        sign_in(driver, username, password)
    poll(lambda: username in text(driver, "who"), 30, "signed in")
    if place is not None:
        poll(lambda: driver.execute_script("return here !== null"), 10, "the browser's position")
    if style is not None:
        driver.execute_script("document.getElementById('style').value = arguments[0]", style)
    driver.find_element("id", "record").click()
    poll(lambda: text(driver, "stage") == "recording", 10, "recording")
    time.sleep(seconds)
    driver.find_element("id", "stop").click()
    poll(lambda: driver.execute_script("return window.vomage.timings.image || window.vomage.timings.error"),
         timeout, "the image (or an error)")
    state = driver.execute_script("return window.vomage")
    return {"timings": state["timings"], "shown": state["shown"], "stage": text(driver, "stage"),
            "words": text(driver, "transcript"), "mood": text(driver, "mood"), "error": text(driver, "error"),
            "context": text(driver, "context"), "message": text(driver, "message"),
            "recording_id": state["recordingId"], "words_from": state.get("wordsFrom")}


def microphone_wav(recording: Path, wav: Path) -> float:
    """Decode a recording into the WAV the fake microphone plays; its duration in seconds."""
    from vomage_dagster.domain import audio
    from vomage_dagster.testing.audio_files import encode

    decoded = audio.decode(recording.read_bytes())
    wav.write_bytes(encode(decoded.samples, audio.SAMPLE_RATE, "wav"))
    return decoded.duration_s
