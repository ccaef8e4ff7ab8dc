"""The analysis page in a real browser: headless Chromium (Debian's package, installed by
.ci/run) must draw every chart with no console error, including diverged and errored trials."""

import os

import pytest
from PIL import Image

from analysis.browser import ALL_CHARTS_DRAWN, ARGS, FIRST_SCREEN_DRAWN, find_chromium
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


def _arts(step):
    return {
        "artifact/samples": f"samples/step{step:08d}.png",
        "artifact/erf_conv": f"erf/step{step:08d}.png",
    }


def fixture_experiments(root):
    mnist = root / "mnist_rf-x"
    for rf, fid, head in ((1, 90, "image"), (5, 30, "image"), (5, 20, "patch")):
        for seed in (0, 1):
            d = trial(
                mnist,
                f"rf{rf}-{head}-s{seed}",
                rf=rf,
                depth=1,
                seed=seed,
                head=head,
                results=[ok(fid + 10, "running", **_arts(100)), ok(fid + seed, **_arts(200))],
            )
            for sub in ("samples", "erf"):
                (d / sub).mkdir()
                for step, grey in ((100, 10), (200, 40 * rf)):  # the slider's images differ
                    Image.new("L", (60, 60), color=grey).save(d / sub / f"step{step:08d}.png")
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


# the traces of a chart's means, or of the seed dots beside them (meta.role "seeds")
MEANS = "(t.meta || {}).role !== 'seeds'"
DOTS = "(t.meta || {}).role === 'seeds'"


def n_points(page, chart_id, which=MEANS):
    return page.evaluate(
        f"document.getElementById('{chart_id}').data.filter(t => {which})"
        ".reduce((n, t) => n + (t.x || []).length, 0)"
    )


def n_traces(page, chart_id, which=MEANS):
    return page.evaluate(f"document.getElementById('{chart_id}').data.filter(t => {which}).length")


def test_page_renders_every_chart_without_console_errors(browser, tmp_path):
    out = write_report(fixture_experiments(tmp_path), tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri())
    page.wait_for_function(FIRST_SCREEN_DRAWN, timeout=30_000)  # then the rest, unscrolled
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
    page.select_option("#dataset", "mnist")
    mnist = page.locator('section[data-dataset="mnist"]')
    sec = mnist.get_attribute("data-section")
    rf_chart = mnist.locator('.chart[data-title^="metric against rf"]').get_attribute("id")

    # a table header sorts the trial table
    table = mnist.locator("table.trials")
    table.locator("th", has_text="trial").first.click()
    names = table.locator("tbody tr td:first-child").all_inner_texts()
    assert names == sorted(names)
    table.locator("th", has_text="trial").first.click()
    assert table.locator("tbody tr td:first-child").all_inner_texts() == sorted(names)[::-1]

    # a filter narrows the table, the gallery and the charts
    before, dots = n_points(page, rf_chart), n_points(page, rf_chart, DOTS)
    assert (before, dots) == (3, 6)  # three configurations of two seeds each
    page.select_option(f'select[data-filter="head"][data-section="{sec}"]', "patch")
    page.wait_for_function(
        f"document.getElementById('{rf_chart}').data.reduce((n, t) => n + t.x.length, 0) < 9"
    )
    assert n_points(page, rf_chart) == 1  # the patch head's one configuration
    assert n_points(page, rf_chart, DOTS) == 2  # and its two seeds
    assert table.locator("tbody tr:visible").count() == 2
    visible = mnist.locator(".card:visible")
    assert visible.count() == 2 and all("head=patch" in t for t in visible.all_inner_texts())
    page.select_option(f'select[data-filter="head"][data-section="{sec}"]', "")
    # charts off screen are redrawn in the background: wait until every chart is current again
    page.wait_for_function(ALL_CHARTS_DRAWN, timeout=30_000)
    assert n_points(page, rf_chart) == before and n_points(page, rf_chart, DOTS) == dots

    # the gallery's step slider changes the image
    img = mnist.locator(".card img.samples").first
    latest = img.get_attribute("src")
    slider = mnist.locator(".step-slider")
    slider.evaluate("s => { s.value = 0; s.dispatchEvent(new Event('input')); }")
    assert (
        img.get_attribute("src") != latest
        and "step 100" in mnist.locator(".card").first.inner_text()
    )

    # the split-by control changes the number of traces
    box = mnist.locator(".chartbox", has=page.locator(f"#{rf_chart}"))
    every = n_traces(page, rf_chart)
    box.locator("select.split").select_option("depth")
    page.wait_for_function(
        f"document.getElementById('{rf_chart}').data.filter(t => {MEANS}).length !== {every}"
    )
    assert n_traces(page, rf_chart) == 1 and every == 2
    assert n_traces(page, rf_chart, DOTS) == 1  # a trace of seed dots beside each of means

    # the bars of the head chart start at 0, and each seed dot sits over its own bar
    bars = mnist.locator('.chart[data-title^="image head vs patch head"]').get_attribute("id")
    page.wait_for_function(ALL_CHARTS_DRAWN, timeout=30_000)
    drawn = page.evaluate(
        f"""(() => {{ const el = document.getElementById('{bars}');
        return {{y0: el._fullLayout.yaxis.range[0],
                 x: el.calcdata.map(cd => [...new Set(cd.map(p => p.x))])}}; }})()"""
    )
    assert drawn["y0"] == 0
    # traces: image bars, image dots, patch bars, patch dots; dots at their bars' offsets
    assert drawn["x"][1] == drawn["x"][0] and drawn["x"][3] == drawn["x"][2] != drawn["x"][0]

    # the summary table, and the diverged and errored trials in the report table
    assert page.locator("text=Summary: one row per configuration").count() == 1
    assert page.locator("text=diverged").count() >= 1 and page.locator("text=errored").count() >= 1
    assert errors == []


def findings_fixture(root):
    """rf 1 and rf 5 whose FID means (120.489, 120.467) both read "120.5", and rf 5 at depth 1
    and 2 with either head (the heatmap's two slices); every trial saved sample grids."""
    e = root / "mnist_rf-page"
    cells = [
        (1, 1, "image", "conv1", (120.488, 120.490)),
        (5, 1, "image", "conv5", (120.466, 120.468)),
        (5, 2, "image", "conv3,conv3", (60.0, 62.0)),
        (5, 1, "patch", "conv5", (40.0, 42.0)),
        (5, 2, "patch", "conv3,conv3", (20.0, 22.0)),
    ]
    for rf, depth, head, layers, fids in cells:
        for seed, fid in enumerate(fids):
            d = trial(e, f"rf{rf}-d{depth}-{head}-s{seed}", rf=rf, depth=depth, seed=seed,
                      head=head, layers=layers, results=[ok(fid, **_arts(200))])  # fmt: skip
            for sub in ("samples", "erf"):
                (d / sub).mkdir()
                Image.new("L", (60, 60), color=40 * rf).save(d / sub / "step00000200.png")
    return [e]


def test_findings_grids_numeric_sort_and_heatmap_filter(browser, tmp_path):
    out = write_report(findings_fixture(tmp_path), tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri())
    page.wait_for_function(ALL_CHARTS_DRAWN, timeout=30_000)

    # every finding with sides shows each seed's grid beside its sentence, drawn
    q1 = page.locator(".finding", has_text="1. Does the rf size matter?").locator("li.answer")
    grids = q1.locator(".sides img[data-img]")
    assert grids.count() == 2 + 2  # rf 1's two seeds, rf 5's two
    for i in range(grids.count()):
        assert grids.nth(i).is_visible()
        assert grids.nth(i).evaluate("i => i.complete && i.naturalWidth > 0")
    assert q1.locator("p").bounding_box()["y"] < grids.first.bounding_box()["y"]
    src = grids.first.evaluate("i => i.src")
    assert src.startswith("data:image/jpeg;base64,")

    # a click enlarges a grid across the screen (it is 96 px on the page); Escape closes it
    zoom = page.locator("#zoom")
    assert not zoom.is_visible()
    grids.first.click()
    assert zoom.is_visible() and zoom.locator("img").evaluate("i => i.src") == src
    big = zoom.locator("img").bounding_box()
    assert big["width"] >= 0.8 * 900 * 0.85 and big["width"] >= 5 * 96  # min(90vw, 85vh)
    assert grids.first.get_attribute("alt") in zoom.locator("figcaption").inner_text()
    page.keyboard.press("Escape")
    assert not zoom.is_visible()
    grids.nth(1).click()
    zoom.click()  # a click anywhere closes it too
    assert not zoom.is_visible()

    # at 800 px the page does not scroll sideways: wide tables scroll inside themselves
    # (charts follow the window once plotly's resize handler has run)
    page.set_viewport_size({"width": 800, "height": 900})
    page.wait_for_function("document.documentElement.scrollWidth <= 800", timeout=5_000)

    # the summary sorts by the number: 120.467 before 120.489 though both read "120.5"
    summary = page.locator("table.sortable").first
    header = summary.locator("th", has_text="FID-like (evaluator features)")
    col = header.evaluate("h => [...h.parentNode.children].indexOf(h)")
    rows = summary.locator("tbody tr")
    order = f"[...document.querySelector('table.sortable').tBodies[0].rows].map(r => r.cells[{col}].dataset.v)"
    header.click()
    assert [float(v) for v in page.evaluate(order)] == [21.0, 41.0, 61.0, 120.467, 120.489]
    header.click()
    assert [float(v) for v in page.evaluate(order)] == [120.489, 120.467, 61.0, 41.0, 21.0]
    assert rows.count() == 5

    # the heatmap follows the filters: head = patch shows the patch slice's cells
    section = page.locator('section[data-dataset="mnist"]')
    sec = section.get_attribute("data-section")
    heat = section.locator('.chart[data-title="rf x depth"]').get_attribute("id")
    cells = f"document.getElementById('{heat}').data[0].customdata"
    assert page.evaluate(cells) == [[120.489, 120.467], [None, 61.0]]  # rf 1, 5 x depth 1, 2
    page.select_option(f'select[data-filter="head"][data-section="{sec}"]', "patch")
    page.wait_for_function(f"JSON.stringify({cells}) === '[[41],[21]]'", timeout=10_000)
    box = section.locator(".chartbox", has=page.locator(f"#{heat}"))
    assert box.locator("select.split").input_value() == "head=patch"
    page.select_option(f'select[data-filter="depth"][data-section="{sec}"]', "2")
    page.wait_for_function(f"JSON.stringify({cells}) === '[[null],[21]]'", timeout=10_000)
    texts = page.evaluate(f"document.getElementById('{heat}').data[0].text")
    assert texts[1][0].startswith("21 ± ") and texts[1][0].endswith("n=2") and texts[0][0] is None
    assert errors == []


def test_the_control_banner_is_on_top_and_its_grids_are_drawn(browser, tmp_path):
    """A judged run whose control failed: the page opens with the sentence that its verdicts
    cannot say which rf works, above the findings, and shows the control's seeds' grids."""
    import json

    e = tmp_path / "mnist_rf-questions"
    e.mkdir()
    (e / "sweep.json").write_text(json.dumps({"flags": {"preset": "questions"}}))
    for name, rf, depth, layers, exp, seeds, lax in (
        ("rf1", 1, 1, "conv1", "onelayer", (0, 1), (0, 0)),
        ("rf5", 5, 1, "conv5", "onelayer", (0, 1), (0, 0)),
        ("control", 13, 2, "conv5s2,conv5s2", "control", (1000, 1001, 1002), (1, 0, 0)),
    ):
        for seed, v in zip(seeds, lax):
            judged = {"metric/recognisable": v, "metric/recognisable_share": 0.4, **_arts(200)}
            d = trial(e, f"{name}-s{seed}", rf=rf, depth=depth, seed=seed, layers=layers,
                      experiment=exp, results=[ok(30, **judged)])  # fmt: skip
            (d / "samples").mkdir()
            Image.new("L", (60, 60), color=200).save(d / "samples" / "step00000200.png")
    out = write_report([e], tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(out.as_uri())
    page.wait_for_function(ALL_CHARTS_DRAWN, timeout=30_000)
    banner = page.locator("p.control")
    assert banner.count() == 1 and banner.is_visible()
    assert "control-fail" in banner.get_attribute("class")
    assert banner.inner_text().endswith(
        "The control did not pass: the verdicts of this run cannot say which rf works."
    )
    findings = page.locator("h2", has_text="Findings: the notes").bounding_box()
    assert banner.bounding_box()["y"] < findings["y"]
    grids = page.locator(".control-samples .sides img[data-img]")
    assert grids.count() == 3
    for i in range(3):
        assert grids.nth(i).evaluate("i => i.complete && i.naturalWidth > 0")
    assert errors == []
