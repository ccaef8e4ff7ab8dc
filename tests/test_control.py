"""The positive control: a control row in the grid, and the page and findings saying, on top,
whether it passed (and so whether a "0 of N" can be read)."""

import json

import pytest

from analysis.control import banner, controls, is_control, passes
from analysis.findings import findings
from analysis.load import final_rows, load_experiment
from analysis.report import build
from ganrf.sweep.experiments import CONTROL, Space, SpaceError, build_grid
from tests.test_analysis import ok, trial


def test_the_control_is_the_notes_discriminator_on_seeds_of_its_own():
    grid = build_grid(Space(experiments=("onelayer", CONTROL), rfs=(5,), seeds=2))
    control = [p for p in grid if p.experiments == (CONTROL,)]
    assert [p.seed for p in control] == [1000, 1001]
    (design,) = {p.design for p in control}
    assert design.spec_string == "conv5s2,conv5s2"
    assert (design.rf, design.head, [la.channels for la in design.layers]) == (
        13,
        "image",
        [64, 128],
    )
    assert sorted(p.seed for p in grid if p.experiments == ("onelayer",)) == [0, 1]
    # its own seeds whatever the preset asks of the questions, and the pilot's on request
    pilot = build_grid(Space(experiments=(CONTROL,), seeds=3, control_seed=100))
    assert [p.seed for p in pilot] == [100, 101, 102]


def test_the_control_ignores_the_question_flags():
    grid = build_grid(Space(experiments=(CONTROL,), rfs=(3,), depths=(4,), heads=("patch",)))
    assert [p.design.spec_string for p in grid] == ["conv5s2,conv5s2"]
    assert grid[0].design.head == "image"
    with pytest.raises(SpaceError, match="unknown experiment 'contrl'"):
        build_grid(Space(experiments=("contrl",)))


@pytest.mark.parametrize(
    ("k", "n", "passed"),
    [(2, 3, True), (3, 3, True), (1, 3, False), (2, 2, True), (1, 2, False), (0, 0, False)],
)
def test_a_level_passes_at_two_thirds_of_the_seeds(k, n, passed):
    assert passes(k, n) is passed


def control_trial(e, i, *, lax, success, share, fid):
    """Control seed 1000 + i, judged as given, in experiment folder ``e``."""
    judged = {"metric/recognisable": lax, "metric/success": success}
    judged["metric/recognisable_share"] = share
    trial(e, f"control-s{1000 + i}", rf=13, depth=2, seed=1000 + i, layers="conv5s2,conv5s2",
          experiment=CONTROL, results=[ok(fid, **judged)])  # fmt: skip


def _run(tmp_path, control_lax, *, preset="questions", control_success=(0, 0, 0)):
    """A judged run: onelayer rf 1 and rf 5 (two seeds, none recognisable), and the control
    (rf 13 at depth 2, three seeds) with the given verdicts."""
    e = tmp_path / f"mnist_rf-{preset}"
    e.mkdir(parents=True)
    (e / "sweep.json").write_text(json.dumps({"flags": {"preset": preset}}))
    for rf, fid in ((1, 100), (5, 40)):
        for seed in (0, 1):
            judged = {"metric/recognisable": 0, "metric/recognisable_share": 0.1 * rf}
            trial(
                e, f"rf{rf}-s{seed}", rf=rf, depth=1, seed=seed, results=[ok(fid + seed, **judged)]
            )
    for i, (lax, win) in enumerate(zip(control_lax, control_success)):
        control_trial(e, i, lax=lax, success=win, share=0.5 + 0.05 * i, fid=20 + i)
    return final_rows(load_experiment(e))


def test_a_control_that_passes_says_which_verdicts_can_be_read(tmp_path):
    final = _run(tmp_path, (1, 1, 0))
    assert is_control(final).sum() == 3
    c = controls(final)["questions"]
    assert c.counts == {"metric/recognisable": (2, 3), "metric/success": (0, 3)}
    ((passed, text),) = banner(final)
    assert passed
    assert text == (
        "Preset questions: the control, the notes' discriminator (conv5s2,conv5s2: rf 13, image "
        "head), drew recognisable digits in 2 of 3 seeds (share of recognisable samples 0.50, "
        "0.55, 0.60) and passed the strict success level in 0 of 3. The control passed the "
        "recognisable level: this run's recognisable verdicts can say which rf works; it did not "
        "pass the success level, so the success verdicts cannot."
    )
    page, md = build(load_experiment(tmp_path / "mnist_rf-questions"))
    top = page.index('<p class="control control-pass">')
    assert top < page.index("Findings: the notes") and f"**{text}**" in md
    assert "<h3>Positive control</h3>" in page


def test_a_control_that_fails_says_the_verdicts_cannot_speak(tmp_path):
    final = _run(tmp_path, (1, 0, 0))
    ((passed, text),) = banner(final)
    assert not passed
    assert text.endswith(
        "drew recognisable digits in 1 of 3 seeds (share of recognisable samples 0.50, 0.55, "
        "0.60) and passed the strict success level in 0 of 3. The control did not pass: the "
        "verdicts of this run cannot say which rf works."
    )
    page, _ = build(load_experiment(tmp_path / "mnist_rf-questions"))
    assert '<p class="control control-fail">' in page


def test_a_judged_run_without_a_control_says_so_and_an_unjudged_one_says_nothing(tmp_path):
    final = _run(tmp_path, ())
    ((passed, text),) = banner(final)
    assert not passed and "no positive control trained" in text
    assert text.endswith("so the verdicts of this run cannot say which rf works.")
    unjudged = final.assign(**{"metric/recognisable": float("nan")})
    assert banner(unjudged) == []


def test_the_control_answers_no_question(tmp_path):
    """Its rf 13 at depth 2 would otherwise be a same-depth contrast with a question's rf 5."""
    final = _run(tmp_path, (1, 1, 1))
    e = tmp_path / "mnist_rf-questions"
    for seed in (0, 1):
        trial(
            e, f"rf5-d2-s{seed}", rf=5, depth=2, seed=seed, layers="conv3,conv3", results=[ok(30)]
        )
    final = final_rows(load_experiment(e))
    answers = dict(findings(final))
    (q2,) = answers["2. Same rf, different depth (rf-equivalent stacks)"]
    assert q2.startswith("rf 5") and "rf 13" not in q2
    assert answers["3. Same depth, different rf"] == ["No trials in these experiments speak to it."]
    (q1,) = answers["1. Does the rf size matter?"]
    assert q1.startswith("One conv layer, FID-like by rf: rf 1 100 ± 6.4 (n = 2), rf 5 40")
    assert "Smallest against largest: rf 1 FID-like 100 against rf 5 40.5: difference" in q1


def test_the_summary_counts_each_verdict_and_shows_the_share(tmp_path):
    """A verdict is the seeds that passed ("success 0 ± 0" read as a measurement)."""
    from analysis.stats import configurations, summary_display, summary_table

    final = _run(tmp_path, (1, 1, 0), control_success=(1, 0, 0))
    shown = summary_display(summary_table(configurations(final)))
    control = shown[shown["layers"] == "conv5s2,conv5s2"].iloc[0]
    assert control["recognisable digits (share, classes)"] == "2 of 3"
    assert control["success (FID/floor, precision, coverage)"] == "1 of 3"
    # shares 0.50, 0.55, 0.60: mean 0.55, t(2) 4.303 x 0.05 / sqrt(3) = 0.124
    assert control["share of samples that are recognisable digits"] == "0.55 ± 0.12"
    rf1 = shown[shown["layers"] == "conv1"].iloc[0]
    assert rf1["recognisable digits (share, classes)"] == "0 of 2"
