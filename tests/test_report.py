"""The page's text around the charts (analysis/report.py): the smoke-preset banner."""

import json

from analysis.load import load_experiment
from analysis.report import build
from tests.test_analysis import ok, trial


def _sweep(exp, preset):
    trial(exp, "rf1-s0", rf=1, depth=1, seed=0, results=[ok(90)])
    trial(exp, "rf5-s0", rf=5, depth=1, seed=0, results=[ok(30)])
    (exp / "sweep.json").write_text(json.dumps({"flags": {"preset": preset}}))
    return exp


BANNER = '<p class="smoke">Smoke preset (mnist_rf-smoke):'


def test_a_smoke_sweeps_page_says_its_numbers_mean_nothing(tmp_path):
    page, md = build(load_experiment(_sweep(tmp_path / "mnist_rf-smoke", "smoke")))
    assert BANNER in page
    assert "say nothing about receptive fields" in page
    assert page.index(BANNER) < page.index("Findings: the notes")  # before any number
    assert md.splitlines()[4].startswith("**Smoke preset (mnist_rf-smoke):")


def test_a_laptop_sweeps_page_has_no_banner(tmp_path):
    page, md = build(load_experiment(_sweep(tmp_path / "mnist_rf-laptop", "laptop")))
    assert 'class="smoke"' not in page and "Smoke preset" not in md
