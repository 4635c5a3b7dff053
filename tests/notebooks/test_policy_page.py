"""The policy page (`make policy`: notebooks/policy.ipynb served by Voilà) in a real browser: it
loads, a slider moved and Simulate pressed re-run the office and the sentence changes with the
setting, a broken limit is said in red, the frontier comes with the sentence of the settings shown,
and the answer exports as a one-page PNG."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, ROOT, free_port, wait_for_http

pytestmark = pytest.mark.timeout(400)

TINY = """extends: {base}
name: tiny_policy
horizon:
  warmup_months: 2
arrivals:
  per_day: 400
population:
  enterprises: 1500
inspectors:
  count: 12
"""


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("policy")
    (folder / "tiny.yaml").write_text(TINY.format(base=ROOT / "scenarios" / "baseline.yaml"))
    env = {
        **os.environ,
        "DOUBLERANDOM_POLICY_SCENARIO": str(folder / "tiny.yaml"),
        "DOUBLERANDOM_POLICY_WARM": str(folder / "warm"),
        "DOUBLERANDOM_POLICY_MONTHS": "1",
        "DOUBLERANDOM_POLICY_REPLICATIONS": "2",
        "DOUBLERANDOM_POLICY_WORKERS": "0",
    }
    port = free_port()
    voila = Path(sys.executable).with_name("voila")
    server = subprocess.Popen(
        [str(voila), "policy.ipynb", f"--port={port}", "--no-browser", "--Voila.ip=127.0.0.1"],
        cwd=ROOT / "notebooks", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", server)
        yield f"http://127.0.0.1:{port}/", folder
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_a_slider_change_reruns_the_office_and_changes_the_sentence(browser, page_url):
    url, folder = page_url
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(url, timeout=120_000)
    page.get_by_text("Press Simulate.").wait_for(timeout=120_000)
    share = page.locator(".noUi-handle").nth(2)  # inspectors, expected rate, random share
    sentence = page.locator(".answer .sentence")

    page.get_by_role("button", name="Simulate").click()
    sentence.wait_for(timeout=240_000)
    first = sentence.inner_text()
    assert "66% of it at random" in first and "violations a month [" in first

    share.focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")  # steps of 5 points
    moved = page.locator(".widget-readout").nth(2).inner_text()
    # the kernel holds the new share (the status line says so) before the press: the browser sends
    # a slider's value a moment after it moves, and a quick click could overtake it
    page.locator(".status").get_by_text(f"{moved} random share").wait_for(timeout=30_000)
    page.get_by_role("button", name="Simulate").click()
    page.wait_for_function(
        "first => document.querySelector('.answer .sentence').innerText !== first", arg=first, timeout=90_000
    )
    second = sentence.inner_text()
    assert moved != "66%" and f"{moved} of it at random" in second, (moved, second)

    # the tiny office's random sample cannot estimate compliance to ±0.5 points: said, in red
    breach = page.locator(".breach").first
    assert "monthly compliance estimate" in breach.inner_text() and "breaks the limit" in breach.inner_text()
    assert breach.evaluate("e => getComputedStyle(e).color") == "rgb(204, 0, 0)"

    # the frontier at the sliders' capacity, with the sentence of the settings shown, not the last run's
    page.locator(".noUi-handle").nth(0).focus()
    page.keyboard.press("ArrowLeft")
    fewer = page.locator(".widget-readout").nth(0).inner_text()
    page.locator(".status").get_by_text(f"settings now {fewer} inspectors").wait_for(timeout=30_000)
    page.get_by_role("button", name="Frontier at this capacity").click()
    page.locator(".frontier .recommendation").wait_for(timeout=240_000)
    assert "At a capacity of 3.2% of declarations" in page.locator(".frontier").inner_text()
    assert sentence.inner_text().startswith(f"With {fewer} inspectors,") and fewer != "12"

    page.get_by_role("button", name="Export report (PNG)").click()
    link = page.locator(".download a")
    link.wait_for(timeout=60_000)
    png = base64.b64decode(link.get_attribute("href").split(",", 1)[1])
    assert png.startswith(b"\x89PNG") and (folder / "policy-report.png").read_bytes() == png
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "policy-page.png"), full_page=True)
    page.close()
