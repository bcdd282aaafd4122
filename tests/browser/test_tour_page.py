"""The tour's HTML page in a real headless browser: Debian's Chromium,
driven by Selenium through Debian's chromedriver (both paths explicit, so
Selenium Manager never downloads anything; the page needs no network).

The page is rendered from the results the ``cross`` environment recorded
($MULTIPARAM_TOUR_RESULTS, all four backends), or, when there are none, by
running the tour live here (whatever imports here, MXNet through its worker,
and a "not available" column with the install command for the rest).
Checks: it renders (a non-blank screenshot, tour.png beside the page), a
tab click switches the visible panel in every step, the side-by-side toggle
shows every framework of a step in its own column and switches back to
tabs, the histograms load, and no script error occurs."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
# a plain import: in the browser env a missing selenium is an error, not a skip
from selenium import webdriver  # noqa: F401

from multiparam.registry import available_backends, import_order  # noqa: E402
from multiparam.tour import STEP_IDS  # noqa: E402

BACKEND_ORDER = tuple(import_order(available_backends()))

CHROMIUM = os.environ.get("MULTIPARAM_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MULTIPARAM_CHROMEDRIVER", "/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = Path(os.environ.get("MULTIPARAM_TOUR_OUT") or tmp_path_factory.mktemp("tour"))
    recorded = os.environ.get("MULTIPARAM_TOUR_RESULTS")
    cmd = [sys.executable, "-m", "multiparam", "tour", "--out", str(out), "--no-text"]
    if recorded and Path(recorded).exists():
        cmd += ["--from-json", recorded]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    html = out / "index.html"
    assert html.exists(), proc.stdout + proc.stderr
    assert f"HTML page (a tab per framework per step, or side by side): {html.resolve()}" in proc.stdout
    return html


@pytest.fixture(scope="module")
def driver(page):
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: apt-get install -y chromium chromium-driver "
                        "(tox -e browser does this)")
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = page.parent / "chromium-profile"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,1800"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(60)
    drv.get(page.resolve().as_uri())
    yield drv
    drv.quit()


def _visible_backend(drv, step_index=0):
    return drv.execute_script(
        "var s = document.querySelectorAll('section.step')[arguments[0]];"
        "return Array.from(s.querySelectorAll('.panel'))"
        ".filter(p => getComputedStyle(p).display !== 'none').map(p => p.dataset.backend);",
        step_index)


def test_page_renders_and_screenshot_is_not_blank(driver, page):
    assert "multiparam" in driver.title
    sections = driver.execute_script("return document.querySelectorAll('section.step[id^=step-]').length")
    assert sections == len(STEP_IDS)
    shot = page.parent / "tour.png"
    assert driver.save_screenshot(str(shot))
    from PIL import Image   # comes with matplotlib

    with Image.open(shot) as im:
        colors = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50, "the screenshot is (nearly) blank"
    hist = driver.find_element("css selector", "section#step-init_hist")
    driver.execute_script("arguments[0].scrollIntoView()", hist)
    assert hist.screenshot(str(page.parent / "tour_init_hist.png"))


@pytest.mark.parametrize("backend", BACKEND_ORDER)
def test_clicking_a_tab_switches_the_visible_panel(driver, backend):
    other = next(b for b in BACKEND_ORDER if b != backend)
    driver.execute_script("showBackend(arguments[0])", other)
    assert _visible_backend(driver) == [other]
    button = driver.find_element("css selector", f'section.step .tabbar button[data-backend="{backend}"]')
    # as a reader scrolls to it: chromedriver would bring it up under the sticky toolbar
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    assert _visible_backend(driver) == [backend]
    # every step follows, as the book's tabs do
    last = len(STEP_IDS) - 1
    assert _visible_backend(driver, last) == [backend]
    text = driver.execute_script(
        "return document.querySelector('section.step .panel.active').innerText")
    assert "multiparam" in text or "not available" in text


def _columns(drv, step_index=0):
    """The visible panels of one step: backend, left edge, top edge, width."""
    return drv.execute_script(
        "var s = document.querySelectorAll('section.step')[arguments[0]];"
        "return Array.from(s.querySelectorAll('.panel'))"
        ".filter(p => getComputedStyle(p).display !== 'none')"
        ".map(p => { var r = p.getBoundingClientRect();"
        "            return [p.dataset.backend, r.left, r.top, r.width]; });",
        step_index)


def test_toggle_shows_every_framework_side_by_side_and_back(driver, page):
    toggle = driver.find_element("css selector", "#layout-toggle")
    assert toggle.get_attribute("aria-pressed") == "false"
    driver.execute_script("showBackend(arguments[0])", BACKEND_ORDER[0])
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    for step_index in (0, len(STEP_IDS) - 1):
        columns = _columns(driver, step_index)
        # every framework at once, in registry order, left to right on one row
        assert [c[0] for c in columns] == list(BACKEND_ORDER)
        lefts = [c[1] for c in columns]
        assert lefts == sorted(lefts) and len(set(lefts)) == len(BACKEND_ORDER)
        assert len({round(c[2]) for c in columns}) == 1
        assert all(c[3] > 150 for c in columns)
    heads = driver.execute_script(
        "return Array.from(document.querySelectorAll('section.step')[0].querySelectorAll('.column-head'))"
        ".map(h => getComputedStyle(h).display !== 'none' && h.innerText)")
    assert all(heads) and len(heads) == len(BACKEND_ORDER)
    assert not driver.find_element("css selector", "section.step .tabbar").is_displayed()
    step = driver.find_element("css selector", "section#step-tied_grad")
    driver.execute_script("arguments[0].scrollIntoView()", step)
    assert step.screenshot(str(page.parent / "tour_columns.png"))
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "false"
    assert _visible_backend(driver) == [BACKEND_ORDER[0]]
    assert driver.find_element("css selector", "section.step .tabbar").is_displayed()


def test_histograms_load(driver):
    loaded = driver.execute_script(
        "return Array.from(document.querySelectorAll('img.hist')).map(i => i.complete && i.naturalWidth)")
    assert loaded and all(w and w > 100 for w in loaded), loaded


def test_no_script_errors(driver):
    assert driver.execute_script("return window.__tourErrors") == []
    severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not severe, severe
