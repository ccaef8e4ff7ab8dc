"""The page's text around the charts (analysis/report.py): the smoke-preset banner."""

import json

import pytest

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


def test_the_notes_column_says_only_what_the_judges_found():
    """Not the evaluator's argmax, which names a class for every blob: the judges' share and
    the classes among the samples they call digits, by seed; and each verdict level counted."""
    import pandas as pd

    from analysis.notes import judged_note, verdict_counts

    rows = pd.DataFrame(
        {
            "seed": [1, 0],
            "metric/recognisable_share": [0.27, 0.254],
            "metric/recognisable_classes": [9.0, 8.0],
            "metric/class_count": [10.0, 10.0],  # the argmax count: never said
            "metric/success": [0, 0],
            "metric/recognisable": [1, 0],
        }
    )
    assert judged_note(rows) == (
        "judges call 25%, 27% of samples digits, covering 8, 9 of the 10 classes (by seed)"
    )
    assert (
        judged_note(rows.iloc[:1])
        == "judges call 27% of samples digits, covering 9 of the 10 classes"
    )
    assert verdict_counts(rows) == "success 0 of 2, recognisable 1 of 2"
    assert verdict_counts(rows.drop(columns="metric/recognisable")) == "success 0 of 2"
    assert verdict_counts(rows.drop(columns=["metric/recognisable", "metric/success"])) == ""


def _close_means(exp):
    """Two configurations whose FID means (120.489 and 120.467) both read "120.5"."""
    for rf, fids in ((1, (120.488, 120.490)), (5, (120.466, 120.468))):
        for seed, fid in enumerate(fids):
            trial(exp, f"rf{rf}-s{seed}", rf=rf, depth=1, seed=seed, results=[ok(fid)])
    return exp


def _column(page: str, table_start: str, header: str) -> list[tuple[str, str]]:
    """(data-v, text) of one column of the first table after ``table_start``."""
    import re

    table = page[page.index(table_start) :]
    table = table[: table.index("</table>")]
    heads = re.findall(r"<th>(.*?)</th>", table)
    col = heads.index(header)
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])
    cells = [re.findall(r'<td(?: data-v="([^"]*)")?>(.*?)</td>', r)[col] for r in rows]
    return cells


def test_tables_carry_each_number_in_full_for_sorting(tmp_path):
    page, _ = build(load_experiment(_close_means(tmp_path / "close")))
    fid = _column(page, "Summary: one row per configuration", "FID-like (evaluator features)")
    assert [t for _, t in fid] == ["120.5 ± 0.013"] * 2  # t(0.975, 1) x 0.001 = 0.0127
    assert [float(v) for v, _ in fid] == pytest.approx([120.489, 120.467], abs=1e-9)
    notes_fid = _column(page, "<h3>close", "fid")
    assert [float(v) for v, _ in notes_fid] == pytest.approx([120.489, 120.467], abs=1e-9)
    assert [float(v) for v, _ in _column(page, "<h3>close", "rf size")] == [1.0, 5.0]
