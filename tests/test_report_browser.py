"""The report page in a real browser: headless Chromium (Debian's, installed by scripts/setup.sh)
driven through Selenium, on three zoo networks. One browser for the whole module."""
from __future__ import annotations

import contextlib
import io
import json
import warnings

import pytest

import netspec
from browser import find_browser, start, wait_for
from conftest import SPECS
from netspec.cli import main

CHROMIUM, DRIVER, WHY_NOT = find_browser()
NETWORKS = {  # id: (spec, variant)
    "mobilenet_v2": ("mobilenet_v2.yaml", None),
    "resnet18": ("resnet.yaml", "resnet18"),
    "lenet5": ("lenet5.yaml", None),
}
WIDTH, HEIGHT = 1280, 900


@pytest.fixture(scope="module")
def driver():
    if not CHROMIUM:
        message = f"browser tests skipped: {WHY_NOT}"
        warnings.warn(message)  # shows in the warnings summary of every run, not only with -rs
        pytest.skip(message)
    d = start(CHROMIUM, DRIVER, WIDTH, HEIGHT)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Each network's report file, graph and `netspec analyze --json` output."""
    if not CHROMIUM:
        pytest.skip(f"browser tests skipped: {WHY_NOT}")
    out = {}
    root = tmp_path_factory.mktemp("reports")
    for key, (spec, variant) in NETWORKS.items():
        path = root / f"{key}.html"
        extra = ["--variant", variant] if variant else []
        assert main(["report", str(SPECS / spec), *extra, "-o", str(path)]) == 0
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["analyze", str(SPECS / spec), *extra, "--json"]) == 0
        G = netspec.lower(netspec.load(SPECS / spec, variant=variant))
        out[key] = (path.as_uri(), G, json.loads(buf.getvalue()))
    return out


def open_page(d, url: str, view: str = "stage"):
    d.get_log("browser")  # drop what an earlier page logged
    d.get(url)
    assert wait_for(d, "return document.body.dataset.ready === '1' && "
                       "document.querySelector('.canvas').dataset.ready === arguments[0]", view), "page did not load"


def errors(d) -> list:
    return [e for e in d.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def node(d, id_: str):
    return d.execute_script("return [...document.querySelectorAll('.canvas g.node')]"
                            ".find(g => g.dataset.id === arguments[0]) || null", id_)


def shown(d, field: str) -> str:
    return d.execute_script("const e = document.querySelector(`aside.details [data-field='${arguments[0]}']`);"
                            "return e ? e.dataset.value : null", field)


def stage_row(report: dict, scope: str) -> dict:
    return next(s for s in report["stages"] if s["scope"] == scope)


@pytest.mark.parametrize("net", NETWORKS)
def test_page_renders_without_errors(driver, pages, net):
    from PIL import Image

    url, G, report = pages[net]
    open_page(driver, url)
    canvas = driver.find_element("css selector", ".canvas")
    png = Image.open(io.BytesIO(canvas.screenshot_as_png)).convert("RGB")
    rect = canvas.rect
    assert png.size == (round(rect["width"]), round(rect["height"]))
    assert png.size[0] > 600 and png.size[1] > 400
    colours = png.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # a drawing, not an empty box
    assert sum(c for c, rgb in colours if rgb != (255, 255, 255)) > 0.02 * png.size[0] * png.size[1]
    # every level draws too
    for level in ("network", "block", "op"):
        driver.find_element("css selector", f"button[data-level='{level}']").click()
        assert wait_for(driver, "return document.querySelector('.canvas').dataset.ready === arguments[0]", level)
        assert driver.execute_script("return document.querySelectorAll('.canvas g.node').length") >= 2
    assert errors(driver) == []


@pytest.mark.parametrize("net", NETWORKS)
def test_hover_shows_the_numbers_of_analyze(driver, pages, net):
    from selenium.webdriver.common.action_chains import ActionChains

    url, G, report = pages[net]
    open_page(driver, url)
    scope = G.graph["stages"][1]
    ActionChains(driver).move_to_element(node(driver, scope)).perform()
    assert wait_for(driver, "return document.querySelector('aside.details').dataset.item === arguments[0]", scope)
    row = stage_row(report, scope)
    assert int(shown(driver, "params")) == row["costs"]["params"]
    assert int(shown(driver, "macs")) == row["costs"]["macs"]
    assert int(shown(driver, "mem_access")) == row["costs"]["mem_access"]
    text = driver.find_element("css selector", "aside.details").text
    assert f"{row['costs']['params']:,}" in text and row["rf"] and "RF" in text
    assert errors(driver) == []


@pytest.mark.parametrize("net", NETWORKS)
def test_click_opens_a_stage_then_a_block_and_closes_them(driver, pages, net):
    url, G, report = pages[net]
    open_page(driver, url)
    scope = G.graph["stages"][0]
    node(driver, scope).click()
    assert wait_for(driver, "return document.querySelector('.canvas').dataset.ready === arguments[0]", f"open:{scope}")
    assert node(driver, scope) is None  # drawn as its parts now
    inside = [n for n, d in G.nodes(data=True) if d["part"] == scope]
    blocks = list(dict.fromkeys(G.nodes[n]["blocks"][0] for n in inside if G.nodes[n]["blocks"]))
    if blocks:  # LeNet-5's stages hold bare ops: opening the stage already shows them
        assert node(driver, blocks[0]) is not None
        node(driver, blocks[0]).click()
        assert wait_for(driver, "return document.querySelector('.canvas').dataset.ready === arguments[0]",
                        f"open:{blocks[0]}")
        ops = [n for n in inside if G.nodes[n]["blocks"][:1] == (blocks[0],)]
        assert all(node(driver, n) is not None for n in ops)
        driver.find_element("css selector", "button[data-act='close']").click()
        assert wait_for(driver, "return document.querySelector('.canvas').dataset.ready === arguments[0]",
                        f"open:{scope}")
    else:
        assert all(node(driver, n) is not None for n in inside)
    driver.find_element("css selector", "button[data-act='close']").click()
    assert wait_for(driver, "return document.querySelector('.canvas').dataset.ready === 'stage'")
    assert node(driver, scope) is not None
    assert errors(driver) == []


@pytest.mark.parametrize("net", NETWORKS)
def test_search_finds_a_node(driver, pages, net):
    url, G, report = pages[net]
    open_page(driver, url)
    target = next(n for n, d in G.nodes(data=True) if d["part"] == G.graph["stages"][-1] and d["op"] == "conv2d")
    box = driver.find_element("css selector", ".search input")
    box.send_keys(target)
    assert wait_for(driver, "return [...document.querySelectorAll('.search li')].some(li => li.dataset.id === arguments[0])",
                    target)
    box.send_keys("\n")
    assert wait_for(driver, "const g = [...document.querySelectorAll('.canvas g.node.selected')];"
                            "return g.length === 1 && g[0].dataset.id === arguments[0]", target)
    assert driver.execute_script("return document.querySelector('aside.details').dataset.item") == target
    row = next(x for x in report["nodes"] if x["name"] == target)
    assert int(shown(driver, "macs")) == row["costs"]["macs"]
    assert errors(driver) == []


@pytest.mark.parametrize("net", NETWORKS)
def test_charts_have_one_bar_per_stage(driver, pages, net):
    url, G, report = pages[net]
    open_page(driver, url)
    counts = driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#charts .chart')]"
        ".map(c => [c.dataset.metric, [...c.querySelectorAll('rect.bar')].map(r => r.dataset.id)]))")
    stages = [s["scope"] for s in report["stages"]]
    assert counts == {m: stages for m in ("params", "macs", "mem_access", "live_bytes")}
    assert len(driver.find_elements("css selector", "#audit .card")) == 4
    assert errors(driver) == []


def test_phone_width_has_no_sideways_scroll(driver, pages):
    url, *_ = pages["mobilenet_v2"]
    driver.set_window_size(390, 844)
    try:
        open_page(driver, url)
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        canvas = driver.find_element("css selector", ".canvas").rect
        assert canvas["width"] <= 390 and canvas["height"] > 300
    finally:
        driver.set_window_size(WIDTH, HEIGHT)
    assert errors(driver) == []


def test_family_and_run_sections_draw(driver, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(
        {"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.2 / e, "val_acc1": 0.2 * e, "val_acc5": 0.3 + 0.1 * e})
        + "\n" for e in range(1, 5)))
    page = tmp_path / "r.html"
    netspec.report(SPECS / "mobilenet_v1.yaml", page, variant="0.5_160", run=run)
    open_page(driver, page.as_uri())
    points = driver.execute_script("return [...document.querySelectorAll('#family-plot circle.point')].map(c => c.dataset.id)")
    rows = driver.execute_script("return document.querySelectorAll('#family-table tbody tr').length")
    assert rows == 17 and len(points) == 16  # the base network is also the 1.0_224 variant: one point
    assert "0.5_160" in points and "(base) = 1.0_224" in points
    curves = driver.execute_script("return [...document.querySelectorAll('#run-curves polyline.curve')]"
                                   ".map(p => [p.dataset.key, p.getAttribute('points').trim().split(/\\s+/).length])")
    assert sorted(curves) == [["train_loss", 4], ["val_acc1", 4], ["val_acc5", 4], ["val_loss", 4]]
    assert "80.0%" in driver.find_element("css selector", "#run-final").text  # final top-1
    assert errors(driver) == []


def test_compare_page_draws(driver, tmp_path):
    page = tmp_path / "c.html"
    assert main(["compare", str(SPECS / "mobilenet_v1.yaml"), str(SPECS / "mobilenet_v2.yaml"), "--html", str(page)]) == 0
    open_page(driver, page.as_uri(), view="compare")
    assert driver.execute_script("return document.querySelectorAll('.canvas svg g.node').length") > 10
    bars = driver.execute_script("return Object.fromEntries([...document.querySelectorAll('#charts .chart')]"
                                 ".map(c => [c.dataset.metric, c.querySelectorAll('rect.bar').length]))")
    rows = driver.execute_script("return document.querySelectorAll('#stage-table tbody tr').length")
    assert rows >= 8 and bars == {m: 2 * rows for m in ("params", "macs", "mem_access")}
    assert len(driver.find_elements("css selector", "#audit .card")) == 4
    assert errors(driver) == []
