"""The analysis page in a real browser: headless Chromium (Debian's package, installed by
.ci/run) must draw every chart with no console error, including diverged and errored trials."""

import os

import pytest
from PIL import Image

from analysis.browser import ALL_CHARTS_DRAWN, ARGS, find_chromium
from analysis.report import write_report
from tests.test_analysis import ok, trial

CHROMIUM = find_chromium()


@pytest.fixture
def browser():
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("CI must test the page in Chromium, and none is installed: see .ci/run")
        pytest.skip("no chromium on this machine (CI installs it; apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def fixture_experiments(root):
    mnist = root / "mnist_rf-x"
    for rf, fid in ((1, 90), (5, 30)):
        for seed in (0, 1):
            d = trial(
                mnist,
                f"rf{rf}-s{seed}",
                rf=rf,
                depth=1,
                seed=seed,
                results=[
                    ok(
                        fid + 10,
                        "running",
                        **{"artifact/samples": "samples/a.png", "artifact/erf": "erf/a.png"},
                    ),
                    ok(
                        fid + seed,
                        **{"artifact/samples": "samples/a.png", "artifact/erf": "erf/a.png"},
                    ),
                ],
            )
            for sub in ("samples", "erf"):
                (d / sub).mkdir()
                Image.new("L", (60, 60), color=40 * rf).save(d / sub / "a.png")
    trial(
        mnist,
        "rf3-diverged",
        rf=3,
        depth=1,
        seed=0,
        results=[
            ok(70, "running"),
            {"status": "diverged", "diverged_step": 5, "loss/d": float("nan")},
        ],
    )
    trial(mnist, "rf7-errored", rf=7, depth=2, seed=0, error=True)
    celeba = root / "celeba_rf-x"
    trial(celeba, "rf9-s0", rf=9, depth=2, seed=0, results=[ok(40)], dataset="celeba")
    return [mnist, celeba]


def test_page_renders_every_chart_without_console_errors(browser, tmp_path):
    out = write_report(fixture_experiments(tmp_path), tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri())
    page.wait_for_function(ALL_CHARTS_DRAWN, timeout=30_000)
    n_charts = page.locator(".chart").count()
    assert n_charts >= 10  # two datasets' charts
    assert page.locator(".chart .main-svg").count() >= n_charts  # plotly drew into every one
    assert errors == []
    # the dataset switch shows one dataset's section at a time
    first = page.eval_on_selector("#dataset", "s => s.value")
    other = {"mnist": "celeba", "celeba": "mnist"}[first]
    assert page.locator(f'section[data-dataset="{first}"]').is_visible()
    assert not page.locator(f'section[data-dataset="{other}"]').is_visible()
    page.select_option("#dataset", other)
    assert page.locator(f'section[data-dataset="{other}"]').is_visible()
    assert not page.locator(f'section[data-dataset="{first}"]').is_visible()
    # the gallery filter
    page.select_option("#dataset", "mnist")
    page.select_option('select[data-filter="rf"][data-section="mnist"]', "5")
    visible = page.locator("#gallery-mnist .card:visible")
    assert visible.count() == 2 and all("rf 5" in t for t in visible.all_inner_texts())
    # the diverged and errored trials are in the report table
    assert page.locator("text=diverged").count() >= 1 and page.locator("text=errored").count() >= 1
    assert errors == []
