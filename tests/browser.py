"""A headless Chromium for the report's browser tests (and tools/report_screenshot.py): Debian's
`chromium` and `chromium-driver`, which scripts/setup.sh installs, driven through Selenium.
Nothing is downloaded: the driver's path is given, so Selenium Manager never runs."""
from __future__ import annotations

import os
import shutil
import time
from typing import Optional


def find_browser() -> tuple[Optional[str], Optional[str], str]:
    """(chromium, chromedriver, why not) for this machine."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return None, None, "selenium is not installed (pip install selenium; scripts/setup.sh does)"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        return None, None, ("Debian's chromium and chromium-driver are not installed "
                            "(apt-get install chromium chromium-driver; scripts/setup.sh does)")
    return chromium, driver, ""


def start(chromium: str, driver: str, width: int = 1280, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
              f"--window-size={width},{height}", "--force-device-scale-factor=1", "--lang=en-US"):
        opts.add_argument(a)
    if os.geteuid() == 0:  # CI runs as root, where Chromium refuses its sandbox
        opts.add_argument("--no-sandbox")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(driver))


def wait_for(d, script: str, *args, timeout: float = 20.0):
    """Poll a JavaScript expression until it is truthy; its value."""
    end = time.monotonic() + timeout
    while True:
        value = d.execute_script(script, *args)
        if value or time.monotonic() > end:
            return value
        time.sleep(0.05)
