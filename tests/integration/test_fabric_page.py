"""The status page at ``/fabric/`` in a real browser: Debian's headless Chromium driven by
Selenium through Debian's chromedriver (nothing downloaded at run time), against a real uvicorn on
a free loopback port.  The page lists the sources and products, and when a write refreshes a
product its row changes (cached at, age, refreshes seen) without a reload.

Chromium may look only at loopback: every other host name is mapped to NOTFOUND and background
networking is off.  Without Chromium, chromedriver or selenium the test skips, or fails with CI=true.
"""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

pytest.importorskip("starlette")

from dataflow import DataFlow  # noqa: E402

from .fabric_helpers import until  # noqa: E402

CHROMIUM = os.environ.get("DATAFLOW_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DATAFLOW_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
IN_CI = os.environ.get("CI", "").lower() == "true"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-default-apps", "--disable-domain-reliability", "--disable-extensions",
         "--disable-client-side-phishing-detection", "--metrics-recording-only", "--dns-prefetch-disable",
         "--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--window-size=1200,900")


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install 'dataflow-native[test]')"
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)) and not shutil.which(path):
            return f"{path} not found (apt-get install -y chromium chromium-driver: Debian's package {pkg})"
    return None


@pytest.fixture
def browser():
    why = _missing()
    if why:
        if IN_CI:
            pytest.fail(why + " (CI=true: a missing browser is a failure)")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
async def db(tmp_path):
    db = DataFlow(f"sqlite:///{tmp_path}/page.db")

    @db.model
    class Order:
        customer: str

    await db.initialize()
    yield db
    await db.stop()
    await db.close_async()


def _text(driver, css):
    from selenium.webdriver.common.by import By
    els = driver.find_elements(By.CSS_SELECTOR, css)
    return els[0].text if els else None


async def _wait(driver, pred, what, timeout=30.0):
    """Poll the page (in a thread: the server runs on this loop) until ``pred(driver)``."""
    async def check():
        return await asyncio.to_thread(pred, driver)
    try:
        return await until(check, timeout=timeout, step=0.05)
    except AssertionError:
        raise AssertionError(f"the page never showed {what}; it shows:\n"
                             f"{await asyncio.to_thread(lambda: driver.find_element('tag name', 'body').text)}") from None


async def test_status_page_lists_products_and_follows_a_refresh_live(db, browser, tmp_path):
    from dataflow.fabric import FileSourceConfig

    (tmp_path / "rates.json").write_text('{"eur": 1.1}')
    db.source("rates", FileSourceConfig(path=str(tmp_path / "rates.json"), watch=False))

    @db.product("stats", depends_on=["Order", "rates"], write_debounce=0)
    async def stats(ctx):
        return {"orders": await ctx.express.count("Order"), "rates": await ctx.source("rates").read()}

    @db.product("lookup", mode="parameterized", depends_on=["Order"])
    async def lookup(ctx, customer: str = "a"):
        return await ctx.express.count("Order", {"customer": customer})

    rt = await db.start(port=0)
    await until(lambda: "stats" in rt.entries)
    await asyncio.to_thread(browser.get, f"{rt.url}/")

    await _wait(browser, lambda d: _text(d, "#live") == "live", "a live event stream")
    await _wait(browser, lambda d: _text(d, "#product-stats .cached-at"), "the stats product")
    assert _text(browser, "#product-stats .mode") == "materialized"
    assert _text(browser, "#product-stats .freshness") == "fresh"
    assert _text(browser, "#product-lookup .mode") == "parameterized"
    assert _text(browser, "#product-lookup .freshness") == "on_demand"
    assert _text(browser, "#source-rates .kind") == "file" and _text(browser, "#source-rates .circuit") == "closed"
    assert _text(browser, "#source-rates .last-success") not in (None, "never")
    assert _text(browser, "#status") == "healthy"
    before = _text(browser, "#product-stats .cached-at")
    assert before == rt.entries["stats"].iso and _text(browser, "#product-stats .refreshes") == "0"
    # the age ticks on the page by itself
    await _wait(browser, lambda d: float(_text(d, "#product-stats .age") or 0) >= 1.0, "the age growing")
    age_before = float(_text(browser, "#product-stats .age"))
    await asyncio.to_thread(browser.execute_script, "window.__same_page = 42")

    await db.express.create("Order", {"customer": "a"})
    await until(lambda: rt.entries["stats"].value["orders"] == 1)
    after = rt.entries["stats"].iso
    await _wait(browser, lambda d: _text(d, "#product-stats .cached-at") == after, "the new cached-at")
    assert after != before
    assert _text(browser, "#product-stats .refreshes") == "1"
    assert _text(browser, "#product-stats .freshness") == "fresh"
    assert float(_text(browser, "#product-stats .age")) < age_before
    assert await asyncio.to_thread(browser.execute_script, "return window.__same_page") == 42  # no reload
