"""Analysis: experiment folders -> tidy frame -> charts with known values -> the page."""

import json
import sys

import pandas as pd
import pytest

from analysis import figures as F
from analysis.load import final_rows, load_experiment, write_results_csv
from analysis.notes import notes_table
from analysis.report import build, write_report
from analysis.stats import configurations, summary_display, summary_table, t975
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
    experiment="onelayer",
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
        meta={"meta.experiment": experiment},
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
        "erf/conv_size95": 3.0,
        "erf/decision_size95": 9.0,
        "erf/conv_size50": 1.0,
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


def test_metric_vs_rf_means_and_intervals_skip_diverged(exp):
    cf = configurations(final_rows(load_experiment(exp)))
    fig = F.fig_metric_vs(cf, "rf", "metric/fid")  # one line per depth and head
    image = next(t for t in fig.data if t.name == "depth=1 · head=image")
    assert list(image.x) == [1, 5, 9, 11]  # rf 3 diverged, rf 7 errored: not averaged
    assert list(image.y) == [90, 30, 50, 44]  # rf 1: mean of 80 and 100
    # a 95% t interval over the two seeds, not a bare standard deviation
    assert image.error_y.array[0] == pytest.approx(12.706 * 10, abs=1e-2)
    assert image.error_y.array[1] is None  # one seed: the point, no interval
    assert "mean of 2 seeds" in image.hovertext[0] and "1 seed: no" in image.hovertext[1]


def pooling_fixture(root, two_experiments=False):
    """The issue's case: at rf 5 image-head FIDs 80 and 81 and patch-head FIDs 20 and 21, rf 3
    image-head FIDs 60 and 61; a second experiment's FID 10 at rf 3."""
    a = root / "A"
    for seed, fid in ((0, 60), (1, 61)):
        trial(a, f"rf3-image-s{seed}", rf=3, depth=1, seed=seed, results=[ok(fid)])
    for seed, fid in ((0, 80), (1, 81)):
        trial(a, f"rf5-image-s{seed}", rf=5, depth=1, seed=seed, results=[ok(fid)])
    for seed, fid in ((0, 20), (1, 21)):
        trial(a, f"rf5-patch-s{seed}", rf=5, depth=1, seed=seed, head="patch", results=[ok(fid)])
    if not two_experiments:
        return [a]
    b = root / "B"
    trial(b, "rf3-image-s0", rf=3, depth=1, seed=0, results=[ok(10)])
    return [a, b]


HALF = 12.706 * 0.5**0.5 / 2**0.5  # t(0.975, 1) x sd(80, 81) / sqrt(2)


def means(fig):
    """A mean chart's traces of means (not the seed dots beside them)."""
    return [t for t in fig.data if (t.meta or {}).get("role") != F.SEEDS]


def points(fig):
    """{(trace, x): (mean, half width, n)} of a mean chart."""
    out = {}
    for t in means(fig):
        for x, y, e, h in zip(t.x, t.y, t.error_y.array, t.hovertext):
            n = 1 if "1 seed: no interval" in h else int(h.split("mean of ")[1].split()[0])
            out[(t.name, x)] = (y, e, n)
    return out


def test_heads_are_never_pooled_in_one_experiment(tmp_path):
    frame = load_experiment(*pooling_fixture(tmp_path))
    cf = configurations(final_rows(frame))
    assert "head" in cf.fields and "seed" not in cf.fields
    got = points(F.fig_metric_vs(cf, "rf", "metric/fid"))
    assert got[("head=image", 5)] == (80.5, pytest.approx(HALF, abs=1e-3), 2)
    assert got[("head=patch", 5)] == (20.5, pytest.approx(HALF, abs=1e-3), 2)
    assert got[("head=image", 3)][:1] == (60.5,)
    assert len(got) == 3  # no 50.5 anywhere
    table = summary_table(cf).set_index(["rf", "head"])
    fid = "FID-like (evaluator features)"
    assert table.loc[(5, "image"), fid] == 80.5 and table.loc[(5, "patch"), fid] == 20.5
    assert table.loc[(5, "image"), "n"] == 2
    assert table.loc[(5, "image"), f"{fid} ±"] == pytest.approx(HALF, abs=1e-3)
    shown = summary_display(summary_table(cf))
    assert "80.5 ± 6.4" in set(shown[fid]) and "20.5 ± 6.4" in set(shown[fid])


def test_two_experiments_are_compared_not_pooled(tmp_path):
    frame = load_experiment(*pooling_fixture(tmp_path, two_experiments=True))
    cf = configurations(final_rows(frame))
    assert cf.fields[0] == "experiment_name"
    got = points(F.fig_metric_vs(cf, "rf", "metric/fid"))
    assert got[("experiment_name=A · head=image", 3)][:1] == (60.5,)
    # one seed: the point, no interval
    assert got[("experiment_name=B · head=image", 3)] == (10, None, 1)
    assert all(y != pytest.approx(43.667, abs=0.01) for y, _, _ in got.values())
    table = summary_table(cf)
    b = table[table["experiment_name"] == "B"]
    assert len(table) == 4 and b["n"].tolist() == [1]
    assert pd.isna(b["FID-like (evaluator features) ±"].item())
    page, md = build(frame)
    assert "## Summary: one row per configuration" in md.split("## A")[0]
    assert "| B " in md and "60.5 ± 6.4" in md and "Summary: one row per configuration" in page
    # the split-by control's variants: every field, or one field
    by_head = F.fig_metric_vs(cf, "rf", "metric/fid", "head")
    assert len(means(by_head)) == 2 and len(means(F.fig_metric_vs(cf, "rf", "metric/fid"))) == 3


def test_t_quantiles():
    assert t975(1) == 12.706 and t975(30) == 2.042
    assert t975(31) == pytest.approx(2.0395, abs=1e-3) and t975(120) == pytest.approx(
        1.980, abs=1e-3
    )


def test_set_keys_that_vary_become_fields(tmp_path):
    e = tmp_path / "lr"
    for lr in (1e-4, 2e-4):
        d = trial(e, f"rf1-lr{lr}", rf=1, depth=1, seed=0, results=[ok(50)])
        cfg = json.loads((d / "config.json").read_text())
        cfg.update({"optim.lr_d": lr, "data.root": f"/data/{lr}"})
        (d / "config.json").write_text(json.dumps(cfg))
    cf = configurations(final_rows(load_experiment(e)))
    assert cf.fields == ["optim.lr_d"]  # data.root is where the data is, not what it is


def test_heatmap_rf_by_depth_per_slice(exp):
    cf = configurations(final_rows(load_experiment(exp)))
    slices = [k for k, _ in F.heatmap_slices(cf)]
    assert any("head=image" in k for k in slices) and any("head=patch" in k for k in slices)
    image = next(k for k in slices if "head=image" in k)
    fig = F.fig_heatmap(cf, "metric/fid", image)
    cells = fig.data[0]  # every cell's mean (tests/test_charts.py: which are coloured)
    z = pd.DataFrame(cells.customdata, index=cells.y, columns=cells.x)
    assert z.loc["1", "1"] == 90 and pd.isna(z.loc["2", "1"])


def test_bars_compare_heads_of_the_same_stack(exp):
    final = final_rows(load_experiment(exp))
    cf = configurations(final[final["depth"] == 2])
    assert cf.fields == ["head", "decision_rf"] or "head" in cf.fields
    fig = F.fig_bars(cf, "metric/fid", "head")
    by_name = {t.name: list(t.y) for t in means(fig)}
    assert by_name == {"head=image": [20], "head=patch": [10]}


def test_erf_chart_and_curves_with_a_legend(exp):
    frame = load_experiment(exp)
    cf = configurations(final_rows(frame))
    erf = F.fig_erf(cf)
    names = {t.name for t in erf.data}
    assert names >= {"conv-stack ERF (95% mass)", "decision gradient (95% mass)", "decision rf"}
    conv = next(t for t in erf.data if t.name == "conv-stack ERF (95% mass)")
    assert set(conv.y) == {3.0}  # the fixture's conv-stack ERF, beside each theoretical rf
    curves = F.fig_curves(frame, cf, "metric/fid")
    assert len(curves.data) == 9  # one trace per trial, the same for every metric
    by_trial = {
        cf.final.loc[cf.final["key"] == t.meta["key"], "trial"].item(): t for t in curves.data
    }
    assert list(by_trial["rf1-s0"].y) == [90, 80]
    # one colour and one legend entry per configuration: the two rf 1 seeds share both
    a, b = by_trial["rf1-s0"], by_trial["rf1-s1"]
    assert a.line.color == b.line.color and a.name == b.name and a.showlegend != b.showlegend
    assert sum(bool(t.showlegend) for t in curves.data) == len({t.name for t in curves.data})


def test_axes_integer_ticks_discrete_colours_and_a_floor_on_tiny_ranges(tmp_path):
    e = tmp_path / "tiny"
    for rf in (1, 3):
        for depth in (1, 2):
            trial(
                e,
                f"rf{rf}-d{depth}",
                rf=rf,
                depth=depth,
                seed=0,
                results=[ok(119.8305 + 0.001 * rf, **{"time/epoch_s": 2.0 + depth})],
            )
    cf = configurations(final_rows(load_experiment(e)))
    fig = F.fig_metric_vs(cf, "rf", "metric/fid", "depth")
    assert list(fig.layout.xaxis.tickvals) == [1, 3]  # no 1.5
    lo, hi = fig.layout.yaxis.range
    assert hi - lo >= 0.02 * 119.8  # equal trials do not look different
    time_fig = F.fig_time(cf, "depth")
    assert [t.name for t in time_fig.data] == ["depth=1", "depth=2"]  # a legend, no colour bar
    assert all(not getattr(t.marker, "showscale", None) for t in time_fig.data)


def test_parcoords_over_the_varying_fields(exp):
    cf = configurations(final_rows(load_experiment(exp)))
    fig = F.fig_parcoords(cf, "metric/fid")
    labels = [d.label for d in fig.data[0].dimensions]
    assert labels[:-1] == cf.fields and "rf" in labels and "head" in labels
    assert len(fig.data[0].meta["keys"]) == len(fig.data[0].dimensions[0].values)


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


def test_held_fixed_leaves_out_keys_not_in_force():
    """The page's "held fixed" listed cuda_graph: True and schedule.epochs: 50 for a CPU run of
    3,000 steps; it lists what ``--dry-run`` lists."""
    from analysis.notes import hyperparameters

    base = {"schedule.steps": 3000, "schedule.epochs": 50, "schedule.eval_every": 1}
    base |= {"schedule.eval_every_steps": 1000, "cuda_graph": True, "meta.name": "x"}

    def held(**over):
        cfgs = [json.dumps(base | over | {"seed": s}) for s in (0, 1)]
        return hyperparameters(pd.DataFrame({"config": cfgs}))

    assert held(device="cpu") == {
        "device": "cpu",
        "schedule.eval_every_steps": 1000,
        "schedule.steps": 3000,
    }
    assert held(device="cuda")["cuda_graph"] is True  # in force on a GPU
    by_epochs = held(device="cpu", **{"schedule.steps": 0, "schedule.eval_every_steps": 0})
    assert by_epochs["schedule.epochs"] == 50 and by_epochs["schedule.eval_every"] == 1
