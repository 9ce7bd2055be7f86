"""Make docs/report.png (the README's picture of `netspec report`) with the browser the tests use.

    python tools/report_screenshot.py            # MobileNetV2, stage 3 opened, the mouse on one block

It writes a real report to a temporary folder, opens it in headless Chromium (tests/browser.py:
Debian's chromium and chromium-driver through Selenium), clicks the way a reader would and saves
the window. Needs what the browser tests need; nothing is downloaded.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from browser import find_browser, start, wait_for  # noqa: E402
from netspec.cli import main as netspec_main  # noqa: E402


def node(d, id_: str):
    return d.execute_script("return [...document.querySelectorAll('.canvas g.node')]"
                            ".find(g => g.dataset.id === arguments[0]) || null", id_)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="specs/mobilenet_v2.yaml")
    ap.add_argument("--open", default="stages.3", help="the stage to open")
    ap.add_argument("--select", default="stages.3.blocks.1", help="the node the mouse rests on")
    ap.add_argument("--out", default=str(ROOT / "docs" / "report.png"))
    ap.add_argument("--size", default="1400x1000")
    args = ap.parse_args()
    chromium, driver, why = find_browser()
    if not chromium:
        print(f"error: {why}", file=sys.stderr)
        return 2
    width, height = (int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        if netspec_main(["report", str(ROOT / args.spec), "-o", str(page)]) != 0:
            return 1
        d = start(chromium, driver, width, height)
        try:
            d.get(page.as_uri())
            wait_for(d, "return document.querySelector('.canvas').dataset.ready === 'stage'")
            node(d, args.open).click()
            wait_for(d, "return document.querySelector('.canvas').dataset.ready === arguments[0]", f"open:{args.open}")
            from selenium.webdriver.common.action_chains import ActionChains
            ActionChains(d).move_to_element(node(d, args.select)).perform()  # its details, as a reader hovers
            wait_for(d, "return document.querySelector('aside.details').dataset.item === arguments[0]", args.select)
            d.save_screenshot(args.out)
        finally:
            d.quit()
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
