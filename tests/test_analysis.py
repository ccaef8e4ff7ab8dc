"""Analysis: experiment folders -> tidy frame -> charts with known values -> the page."""

import json
import sys

import pandas as pd
import pytest

from analysis.figures import fig_curves, fig_erf, fig_heads, fig_heatmap, fig_metric_vs
from analysis.load import final_rows, load_experiment, write_results_csv
from analysis.report import build, notes_table, write_report
from ganrf import runs
from ganrf.config import TrainConfig


def trial(
    exp,
    name,
    *,
    rf,
    depth,
    seed,
    head="image",
    results=(),
    error=False,
    layers=None,
    dataset="mnist",
):
    """A trial folder as the trainable writes it: config.json, design.json, meta.json, and Tune's
    result.json (and error.txt)."""
    d = exp / name
    layers = layers or f"conv{rf}"
    config = TrainConfig().to_dict() | {
        "data.dataset": dataset,
        "d.layers": layers,
        "d.head": head,
        "d.dropout": 0.0,
        "seed": seed,
        "optim.lr_d": 2e-4,
    }
    design = {
        "layers": layers,
        "channels": "64",
        "head": head,
        "norm": "none",
        "dropout": 0.0,
        "depth": depth,
        "rf": rf,
        "decision_rf": 28 if head == "image" else rf,
        "params": 1000,
        "table": f"layer table of {layers}",
    }
    generator = {"kind": "mnist", "noise_dim": 100, "width": 1.0, "params": 2_000, "layers": []}
    runs.write_trial_files(
        d,
        config=config,
        design={"discriminator": design, "generator": generator},
        meta={"meta.experiment": "onelayer"},
    )
    lines = []
    for i, r in enumerate(results, 1):
        lines.append(
            json.dumps(
                {
                    "progress/step": 100 * i,
                    "progress/epoch": float(i),
                    "training_iteration": i,
                    "time_total_s": 10.0 * i,
                    **r,
                }
            )
        )
    (d / "result.json").write_text("\n".join(lines) + ("\n" if lines else ""))
    if error:
        (d / "error.txt").write_text("Traceback: boom")
    return d


def ok(fid, status="finished", **kw):
    return {
        "metric/fid": fid,
        "metric/success": int(fid < 50),
        "metric/class_count": 10,
        "erf/size95": 9.0,
        "erf/size50": 5.0,
        "time/epoch_s": 2.0,
        "loss/d": 1.0,
        "status": status,
        **kw,
    }


@pytest.fixture
def exp(tmp_path):
    e = tmp_path / "mnist_rf-test"
    trial(e, "rf1-s0", rf=1, depth=1, seed=0, results=[ok(90, "running"), ok(80)])
    trial(e, "rf1-s1", rf=1, depth=1, seed=1, results=[ok(100, "running"), ok(100)])
    trial(e, "rf5-s0", rf=5, depth=1, seed=0, results=[ok(40, "running"), ok(30)])
    trial(e, "rf5-d2-s0", rf=5, depth=2, seed=0, layers="conv3,conv3", results=[ok(20)])
    trial(
        e,
        "rf5-d2-patch-s0",
        rf=5,
        depth=2,
        seed=0,
        head="patch",
        layers="conv3,conv3",
        results=[ok(10)],
    )
    trial(
        e,
        "rf3-diverged",
        rf=3,
        depth=1,
        seed=0,
        results=[
            ok(60, "running"),
            {"status": "diverged", "diverged_step": 137, "loss/d": float("nan")},
        ],
    )
    trial(e, "rf7-errored", rf=7, depth=1, seed=0, error=True)
    trial(e, "rf9-interrupted", rf=9, depth=1, seed=0, results=[ok(50, "running")])
    # raised once, was retried from its checkpoint and finished: Ray leaves error.txt behind
    trial(
        e, "rf11-retried", rf=11, depth=1, seed=0, results=[ok(45, "running"), ok(44)], error=True
    )
    return e


def test_load_keeps_every_trial_with_its_status(exp):
    frame = load_experiment(exp)
    assert len(frame) == 2 + 2 + 2 + 1 + 1 + 2 + 1 + 1 + 2  # trials x evaluations; errored: one row
    final = final_rows(frame).set_index("trial")
    assert final.loc["rf1-s0", "trial_status"] == "finished"
    assert final.loc["rf3-diverged", "trial_status"] == "diverged"
    assert final.loc["rf3-diverged", "diverged_step"] == 137
    assert final.loc["rf7-errored", "trial_status"] == "errored"
    assert final.loc["rf9-interrupted", "trial_status"] == "running"
    assert final.loc["rf11-retried", "trial_status"] == "finished"
    assert final.loc["rf5-s0", "metric/fid"] == 30 and final.loc["rf5-s0", "rf"] == 5


def test_page_builds_when_no_trial_ever_evaluated(tmp_path):
    exp = tmp_path / "all-diverged"
    trial(exp, "rf1", rf=1, depth=1, seed=0, results=[{"status": "diverged", "diverged_step": 1}])
    trial(exp, "rf5", rf=5, depth=1, seed=0, error=True)
    page, md = build(load_experiment(exp))
    assert "1 diverged" in page and "1 errored" in page


def test_results_csv_one_row_per_trial(exp, tmp_path):
    path = write_results_csv(load_experiment(exp), tmp_path / "results.csv")
    df = pd.read_csv(path)
    assert len(df) == 9
    for col in (
        "layers",
        "rf",
        "decision_rf",
        "depth",
        "head",
        "seed",
        "metric/fid",
        "time/epoch_s",
        "trial_status",
    ):
        assert col in df.columns, col


def test_truncated_result_line_is_skipped_not_fatal(exp):
    f = exp / "rf5-s0" / "result.json"
    f.write_text(f.read_text() + '{"progress/step": 300, "metric/f')
    final = final_rows(load_experiment(exp)).set_index("trial")
    assert final.loc["rf5-s0", "metric/fid"] == 30


METRICS = [("metric/fid", "FID-like", True), ("metric/success", "success", False)]


def test_metric_vs_rf_means_and_spread_skip_diverged(exp):
    final = final_rows(load_experiment(exp))
    fig = fig_metric_vs(final, "rf", "depth", METRICS, "t")
    depth1 = next(t for t in fig.data if t.name == "depth 1")
    assert list(depth1.x) == [1, 5, 9, 11]  # rf 3 diverged, rf 7 errored: not averaged
    assert list(depth1.y) == [90, 30, 50, 44]  # rf 1: mean of 80 and 100
    assert depth1.error_y.array[0] == pytest.approx(14.142, abs=1e-3)  # std of 80, 100
    # the dropdown switches the metric: success means per rf
    success = fig.layout.updatemenus[0].buttons[1]
    assert success.label == "success" and list(success.args[0]["y"][0]) == [0, 1, 0, 1]


def test_heatmap_rf_by_depth(exp):
    final = final_rows(load_experiment(exp))
    fig = fig_heatmap(final[final["head"] == "image"], METRICS)
    z = pd.DataFrame(fig.data[0].z, index=fig.data[0].y, columns=fig.data[0].x)
    assert z.loc["1", "1"] == 90 and z.loc["2", "5"] == 20 and pd.isna(z.loc["2", "1"])


def test_heads_compare_same_stack(exp):
    final = final_rows(load_experiment(exp))
    fig = fig_heads(final[final["depth"] == 2], METRICS)
    by_name = {t.name: (list(t.x), list(t.y)) for t in fig.data}
    assert by_name == {"image head": (["conv3,conv3"], [20]), "patch head": (["conv3,conv3"], [10])}


def test_erf_chart_and_curves(exp):
    frame = load_experiment(exp)
    final = final_rows(frame)
    erf = fig_erf(final)
    assert {t.name for t in erf.data} >= {"ERF size (95% mass)", "decision rf", "= theoretical rf"}
    curves = fig_curves(frame, METRICS)
    assert len(curves.data) == 9  # one trace per trial
    rf1 = [t for t in curves.data if t.name == "rf1-s0"][0]
    assert list(rf1.y) == [90, 80]
    assert (
        rf1.line.color == [t for t in curves.data if t.name == "rf1-s1"][0].line.color
    )  # colour = rf


def test_notes_table_shape_and_results(exp):
    table = notes_table(final_rows(load_experiment(exp))).set_index("rf size")
    assert list(table.columns[:8]) == [
        "depth",
        "layers",
        "head",
        "epochs",
        "noise_dim",
        "time per epoch (s)",
        "result",
        "notes",
    ]
    assert table.loc["3x3", "result"] == "diverged" and "step 137" in table.loc["3x3", "notes"]
    assert table.loc["7x7", "result"] == "errored"
    assert table.loc["9x9", "noise_dim"] == 100


def test_page_escapes_user_strings(tmp_path):
    bad = "<img src=x onerror=alert(1)>"
    evil = tmp_path / bad
    trial(evil, f"rf1-{bad}", rf=1, depth=1, seed=0, results=[ok(50)], layers=f"conv1{bad}")
    page, md = build(load_experiment(evil))
    assert bad not in page  # not in the HTML, not in the chart data plotly renders
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_write_report_html_and_markdown(exp, tmp_path):
    out = write_report([exp], tmp_path / "r" / "report.html")
    text = out.read_text()
    assert text.count("<script>") >= 2 and "Plotly" in text
    assert 'id="fig0"' in text
    md = out.with_suffix(".md").read_text()
    assert "| rf size" in md and "diverged" in md


def test_cli(exp, tmp_path, capsys):
    from analysis.__main__ import main

    assert main([str(exp), "-o", str(tmp_path / "x.html"), "--csv", str(tmp_path / "x.csv")]) == 0
    assert (tmp_path / "x.html").exists() and (tmp_path / "x.csv").exists()
    assert main([str(tmp_path / "missing")]) == 2


def test_analysis_imports_neither_torch_nor_ray():
    import subprocess

    code = (
        "import sys, analysis.load, analysis.report, analysis.__main__; "
        "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
