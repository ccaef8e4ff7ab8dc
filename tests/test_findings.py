"""The findings section: the notes' four questions answered with effect sizes and intervals."""

import pytest
from scipy import stats

from analysis.findings import Side, findings, welch
from analysis.load import final_rows, load_experiment
from analysis.report import build
from analysis.stats import configurations
from tests.test_analysis import ok, trial


def _exp(tmp_path):
    e = tmp_path / "mnist_rf-laptop"
    for rf, fids, wins in ((1, (100, 110), (0, 0)), (5, (30, 34), (1, 1)), (13, (32, 36), (1, 0))):
        for seed, (fid, win) in enumerate(zip(fids, wins)):
            trial(
                e,
                f"rf{rf}-s{seed}",
                rf=rf,
                depth=1,
                seed=seed,
                results=[ok(fid, **{"metric/success": win})],
            )
    # the same two-layer stack with either head, and rf 5 reached at depth 2
    for head, fids in (("image", (40, 44)), ("patch", (41, 43))):
        for seed, fid in enumerate(fids):
            trial(
                e,
                f"rf5-d2-{head}-s{seed}",
                rf=5,
                depth=2,
                seed=seed,
                head=head,
                layers="conv3,conv3",
                results=[ok(fid)],
            )
    return e


def test_welch_interval_matches_scipy():
    import pandas as pd

    a, b = [100.0, 110.0], [30.0, 34.0, 32.0, 36.0]
    diff, lo, hi = welch(
        Side("a", pd.Series(a), pd.Series(dtype=float)),
        Side("b", pd.Series(b), pd.Series(dtype=float)),
    )
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(72.0)
    assert (lo, hi) == pytest.approx((ref.low, ref.high), rel=1e-9)


def test_findings_answer_each_question_with_numbers(tmp_path):
    answers = dict(findings(final_rows(load_experiment(_exp(tmp_path)))))
    (q1,) = answers["1. Does the rf size matter?"]
    # every rf in order, t(1) = 12.706 x sd / sqrt(2): rf 1 105 ± 64, rf 5 32 ± 25, rf 13 34 ± 25;
    # then rf 1 against rf 13: +71, verdicts 0/2 against 1/2
    assert q1.startswith(
        "One conv layer, FID-like by rf: rf 1 105 ± 64 (n = 2), rf 5 32 ± 25 (n = 2), rf 13 34 ± "
        "25 (n = 2). Smallest against largest: rf 1 FID-like 105 against rf 13 34: difference +71"
    )
    assert "success 0/2 against 1/2" in q1
    (q2,) = answers["2. Same rf, different depth (rf-equivalent stacks)"]
    assert q2.startswith("rf 5") and "depth 1 FID-like 32 against depth 2 42" in q2
    (q4,) = answers["4. Image head vs patch head"]
    # 42 vs 42: the intervals overlap
    assert "patch head FID-like 42 against image head 42" in q4
    assert "not distinguishable at n = 2, 2" in q4
    assert answers["3. Same depth, different rf"] == ["No trials in these experiments speak to it."]


def test_one_seed_says_no_interval(tmp_path):
    e = tmp_path / "one"
    trial(e, "rf1", rf=1, depth=1, seed=0, results=[ok(90)])
    trial(e, "rf5", rf=5, depth=1, seed=0, results=[ok(30)])
    (q1,) = dict(findings(final_rows(load_experiment(e))))["1. Does the rf size matter?"]
    assert "n = 1, 1: too few seeds for an interval" in q1


def test_page_and_markdown_open_with_the_findings(tmp_path):
    page, md = build(load_experiment(_exp(tmp_path)))
    assert md.index("## Findings") < md.index("## Summary")
    assert "not distinguishable at n = 2, 2" in md
    assert page.index("Findings: the notes") < page.index("Summary: one row per configuration")


def test_heads_finding_says_each_discriminators_parameter_count(tmp_path):
    """A dense head adds a weight per pixel of the last feature map: the issue's smoke sweep
    compared an image-head D of 6,353 parameters with a patch-head D of 89."""
    import json

    e = tmp_path / "heads"
    for head, params, fids in (("image", 6353, (40, 44)), ("patch", 89, (41, 43))):
        for seed, fid in enumerate(fids):
            d = trial(e, f"{head}-s{seed}", rf=5, depth=2, seed=seed, head=head,
                      layers="conv3,conv3", results=[ok(fid)])  # fmt: skip
            design = json.loads((d / "design.json").read_text())
            design["discriminator"]["params"] = params
            (d / "design.json").write_text(json.dumps(design))
    (q4,) = dict(findings(final_rows(load_experiment(e))))["4. Image head vs patch head"]
    assert q4.endswith("D parameters: patch head 89, image head 6,353.")


def test_findings_count_both_levels_where_the_lax_one_was_measured(tmp_path):
    """Issue 20: the strict verdict (close to real digits) and the lax one (a number appears)
    side by side: rf 1's seeds fail both, rf 5's pass the lax level only (FID 60: no success)."""
    e = tmp_path / "two-levels"
    for rf, fid, lax in ((1, 100, 0), (5, 60, 1)):
        for seed in (0, 1):
            rec = {"metric/recognisable": lax, "metric/recognisable_share": 0.3 + 0.5 * lax}
            trial(e, f"rf{rf}-s{seed}", rf=rf, depth=1, seed=seed, results=[ok(fid, **rec)])
    (q1,) = dict(findings(final_rows(load_experiment(e))))["1. Does the rf size matter?"]
    assert q1.endswith("; verdict success 0/2 against 0/2, recognisable digits 0/2 against 2/2."), (
        q1
    )


def test_pieces_of_one_run_are_compared_across_their_folders(tmp_path):
    # the questions preset ran question 4's image heads in one folder and its patch heads in
    # another: the page said "No trials in these experiments speak to it"
    for seed, (img, patch) in enumerate(((30, 60), (34, 64))):
        trial(tmp_path / "part1", f"img-s{seed}", rf=5, depth=1, seed=seed, results=[ok(img)])
        trial(
            tmp_path / "part2",
            f"patch-s{seed}",
            rf=5,
            depth=1,
            seed=seed,
            head="patch",
            results=[ok(patch)],
            experiment="heads",
        )
    final = final_rows(load_experiment(tmp_path / "part1", tmp_path / "part2"))
    assert "experiment_name" not in configurations(final).fields
    (q4,) = dict(findings(final))["4. Image head vs patch head"]
    assert "patch head FID-like 62 against image head 32" in q4


def test_a_rerun_in_another_folder_is_never_pooled_with_the_first(tmp_path):
    # the same trials (rf, seeds) in two folders: the folder stays a field, seeds never doubled
    for folder, fid in (("first", 30), ("rerun", 50)):
        for seed in (0, 1):
            trial(tmp_path / folder, f"rf5-s{seed}", rf=5, depth=1, seed=seed, results=[ok(fid)])
    cf = configurations(final_rows(load_experiment(tmp_path / "first", tmp_path / "rerun")))
    assert cf.fields == ["experiment_name"]
    assert sorted(cf.summary("metric/fid")["n"]) == [2, 2]
