"""The README's answers: generated from results folders by analysis.answers, and checked."""

import json
import shutil
from pathlib import Path

import pytest
from scipy import stats

from analysis import answers
from tests.test_analysis import ok, trial
from tests.test_control import control_trial

ROOT = Path(__file__).resolve().parents[1]
ONELAYER = {  # rf -> (FID-like by seed, recognisable share by seed, recognisable verdict by seed)
    1: ((100, 110, 105), (0.10, 0.12, 0.14), (0, 0, 0)),
    5: ((40, 44, 42), (0.40, 0.45, 0.50), (0, 0, 0)),
    13: ((30, 34, 32), (0.55, 0.60, 0.65), (1, 1, 0)),
}


def _results(tmp_path, control=(1, 1, 1)):
    e = tmp_path / "results" / "onelayer"
    e.mkdir(parents=True)
    (e / "sweep.json").write_text(json.dumps({"flags": {"preset": "questions"}}))
    for rf, (fids, shares, verdicts) in ONELAYER.items():
        for seed, (fid, share, v) in enumerate(zip(fids, shares, verdicts)):
            judged = {
                "metric/recognisable": v,
                "metric/recognisable_share": share,
                "metric/fid_over_floor": fid / 2,
                "metric/success": 0,
            }
            trial(e, f"rf{rf}-s{seed}", rf=rf, depth=1, seed=seed, results=[ok(fid, **judged)])
    c = tmp_path / "results" / "control"
    c.mkdir()
    (c / "sweep.json").write_text(json.dumps({"flags": {"preset": "questions"}}))
    for i, v in enumerate(control):
        control_trial(c, i, lax=v, success=0, share=0.6, fid=20)
    return tmp_path / "results"


def test_each_question_is_a_sentence_with_its_effect_interval_verdicts_and_control(tmp_path):
    block = answers.generate([str(_results(tmp_path))])
    fid = stats.ttest_ind([30, 34, 32], [100, 110, 105], equal_var=False).confidence_interval()
    share = stats.ttest_ind([0.55, 0.6, 0.65], [0.1, 0.12, 0.14], equal_var=False)
    share = share.confidence_interval()
    q1 = next(line for line in block.splitlines() if line.startswith("One conv layer"))
    assert q1 == (
        "One conv layer, image head, rf 13 against rf 1 (seeds per configuration: 3, 3, 3): "
        f"FID-like 105 -> 32, difference -73 [{fid.low:+.3g}, {fid.high:+.3g}]; recognisable "
        f"share 0.12 -> 0.60, difference +0.48 [{share.low:+.2f}, {share.high:+.2f}] (Welch "
        "95%). Recognisable level: rf 1 0/3, rf 5 0/3, rf 13 2/3; success level: rf 1 0/3, "
        "rf 5 0/3, rf 13 0/3. Control (questions): recognisable 3 of 3, success 0 of 3, passed."
    )
    # every configuration in order, beside the notes' own verdict; t(2) = 4.303
    assert (
        "| conv1 (rf 1) | 1,000 | 3 | 105 ± 12 | 52.5 | 0.10, 0.12, 0.14 | 0/3 | 0/3 | no number |"
        in block
    )
    assert (
        "| conv13 (rf 13) | 1,000 | 3 | 32 ± 5 | 16.0 | 0.55, 0.60, 0.65 | 2/3 | 0/3 | like the two-layer rf 13 |"
        in block
    )
    assert block.index("(rf 1)") < block.index("(rf 5)") < block.index("(rf 13)")
    # the questions that did not run say so; the control's trials answer none of them
    assert block.count("Not run yet: no finished trials of this question") == 3


def test_a_failed_control_is_said_beside_every_answer(tmp_path):
    block = answers.generate([str(_results(tmp_path, control=(1, 0, 0)))])
    assert "The control did not pass: the verdicts of this run cannot say which rf works." in block
    assert "Control (questions): recognisable 1 of 3, success 0 of 3, did not pass." in block


def test_check_fails_on_a_stale_readme_and_write_refreshes_it(tmp_path, capsys):
    results = str(_results(tmp_path))
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{answers.BEGIN}\nold\n{answers.END}\n\nafter\n")
    assert answers.main([results, "--check", str(readme)]) == 1
    assert "rerun with --write" in capsys.readouterr().err
    assert answers.main([results, "--write", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# x\n\n") and text.endswith("\n\nafter\n") and "old" not in text
    assert answers.main([results, "--check", str(readme)]) == 0


def test_a_readme_without_the_markers_is_one_sentence(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no block\n")
    with pytest.raises(SystemExit, match="no answers block"):
        answers.main([str(_results(tmp_path)), "--check", str(readme)])


def test_a_question_with_one_side_run_says_what_is_missing(tmp_path):
    """The heads question after its image-head trials ran (with rf at one layer) and before
    its patch-head ones."""
    results = _results(tmp_path)
    e = results / "onelayer"
    for d in e.iterdir():
        meta = d / "meta.json"
        if meta.exists():
            meta.write_text(json.dumps({"meta.experiment": "onelayer,heads"}))
    block = answers.generate([str(results)])
    heads = block[block.index("**4. Image head vs patch head**") :]
    assert "Not answered yet: only image head ran, so there is nothing to compare." in heads


def test_the_readme_answers_are_what_the_code_makes_of_the_committed_results(monkeypatch):
    monkeypatch.chdir(ROOT)  # the README names the results by their path in the repository
    readme = (ROOT / "README.md").read_text()
    assert answers.current_block(readme) == answers.generate(["results/mnist-questions"])


def test_a_trailing_slash_is_the_same_results_and_bad_paths_are_one_sentence(tmp_path):
    results = str(_results(tmp_path))
    readme = tmp_path / "README.md"
    readme.write_text(f"{answers.BEGIN}\n{answers.END}\n")
    assert answers.main([results, "--write", str(readme)]) == 0
    assert answers.main([results + "/", "--check", str(readme)]) == 0
    with pytest.raises(SystemExit, match="nope is not a folder; give results folders"):
        answers.main([str(tmp_path / "nope")])
    readme.write_text("# no block\n")
    with pytest.raises(SystemExit, match="no answers block"):
        answers.main([results, "--write", str(readme)])
    assert readme.read_text() == "# no block\n"


# --------------------------------------------------------------------------------------------
# The photo sweep's block (analysis.photo_answers)
# --------------------------------------------------------------------------------------------

PHOTO = {  # (rf, head, seed) -> SWD at levels 0 and 1
    (4, "image", 0): (200.0, 300.0),
    (4, "image", 1): (100.0, 100.0),
    (25, "image", 0): (50.0, 90.0),
    (4, "patch", 0): (40.0, 400.0),
    (25, "patch", 0): (60.0, 20.0),
}


def _photo_results(tmp_path):
    e = tmp_path / "results" / "photo"
    for (rf, head, seed), (l0, l1) in PHOTO.items():
        swd = {"metric/swd_l0": l0, "metric/swd_l1": l1, "metric/swd": (l0 + l1) / 2}
        layers = {4: "conv2s2,conv2s2", 25: "conv9s2,conv9s2"}[rf]
        trial(
            e,
            f"rf{rf}-{head}-s{seed}",
            rf=rf,
            depth=2,
            seed=seed,
            head=head,
            layers=layers,
            dataset="photo",
            experiment="heads",
            results=[ok(1.0, **swd, **{"metric/samples": 1500, "metric/ssim": l0 / 1000})],
        )
    return e


def test_the_photo_block_tabulates_swd_per_level_per_head_and_rf(tmp_path):
    from analysis import photo_answers

    e = _photo_results(tmp_path)
    short = photo_answers.generate([str(e)]).splitlines()
    assert short[0] == photo_answers.BEGIN and short[-1] == photo_answers.END
    # rf 4 mean over levels: (250 + 100) / 2 = 175; rf 25: 70
    assert "- image head, SWD x10^3 by rf: rf 4 175 · rf 25 70; lowest: overall rf 25 (70); " in (
        "\n".join(short)
    )
    assert (
        "7 px rf 25 (50); 14 px rf 25 (90). Mean pairwise SSIM of the samples (near 1: all "
        in (short[4])
    )
    assert short[4].endswith("a collapse): rf 4 0.15 · rf 25 0.05.")  # (0.2 + 0.1) / 2
    # the patch head: rf 4 best at 7 px, rf 25 at 14 px and overall
    assert short[5].startswith(
        "- patch head, SWD x10^3 by rf: rf 4 220 · rf 25 40; lowest: overall rf 25 (40); "
        "7 px rf 4 (40); 14 px rf 25 (20)."
    )
    block = photo_answers.generate([str(e)], tables=True).splitlines()
    assert (block[0], block[-1]) == photo_answers.TABLES
    assert (
        "5 finished trials, 1 or 2 seed(s) per configuration; SWD x10^3 of 1,024 samples"
        in block[2]
    )
    i = block.index("**image head** (lower is closer to real crops):")
    assert (
        block[i + 2]
        == "| rf | layers | D params | n | 7 px (level 0) | 14 px (level 1) | mean over levels | SSIM |"
    )
    # rf 4, two seeds: level 0 (200 + 100) / 2, level 1 (300 + 100) / 2, mean (250 + 100) / 2
    assert block[i + 4] == "| 4 | conv2s2,conv2s2 | 1,000 | 2 | 150 | 200 | 175 | 0.15 |"
    assert block[i + 5] == "| 25 | conv9s2,conv9s2 | 1,000 | 1 | 50 | 90 | 70 | 0.05 |"
    assert block[block.index("**patch head** (lower is closer to real crops):") + 4] == (
        "| 4 | conv2s2,conv2s2 | 1,000 | 1 | 40 | 400 | 220 | 0.04 |"
    )
    assert not any(
        "seed noise" in line for line in block + short
    )  # not every configuration has 1 seed


def test_the_photo_block_says_single_runs_have_no_interval(tmp_path):
    from analysis import photo_answers

    e = _photo_results(tmp_path)
    shutil.rmtree(e / "rf4-image-s1")
    block = photo_answers.generate([str(e)])
    assert "One seed per configuration: these are single runs, with no interval" in block


def test_the_readme_photo_block_is_what_the_code_makes_of_the_committed_results(monkeypatch):
    from analysis import photo_answers

    monkeypatch.chdir(ROOT)
    readme = (ROOT / "README.md").read_text()
    assert photo_answers.main(["results/photo-laptop", "--check", "README.md"]) == 0
    assert photo_answers.main(["results/photo-laptop", "--tables", "--check", "docs/photo.md"]) == 0
    assert photo_answers.BEGIN in readme


def test_the_typed_photo_sentences_are_what_the_committed_results_say():
    """The README's collapse sentence and docs/photo.md's reading of the samples are prose, not
    generated: their figures are checked here against results/photo-laptop."""
    from analysis.load import final_rows, load_experiment

    final = final_rows(load_experiment(ROOT / "results" / "photo-laptop"))
    by = final.set_index(["rf", "head"])
    ssim = by["metric/ssim"]
    collapsed = {k for k, v in ssim.items() if v > 0.5}
    assert collapsed == {(4, "image"), (4, "patch"), (7, "patch")}
    readme = (ROOT / "README.md").read_text()
    assert "rf 4 (both heads) and the rf-7 patch head collapse" in readme
    doc = " ".join((ROOT / "docs" / "photo.md").read_text().split())
    s = [f"{ssim[(4, 'image')]:.2f}", f"{ssim[(4, 'patch')]:.2f}", f"{ssim[(7, 'patch')]:.2f}"]
    assert f"(mean pairwise SSIM {s[0]} and {s[1]}: one repeated texture)" in doc
    assert f"the rf-7 patch head ({s[2]})" in doc
    l1 = by["metric/swd_l1"]
    patch = [f"{l1[(rf, 'patch')]:.0f}" for rf in (13, 4, 7)]
    assert f"(SWD {patch[0]} against {patch[1]} and {patch[2]} at level 1)" in doc
    image = by.xs("image", level="head")["metric/swd"].loc[[7, 13, 25]]
    assert f"between {image.min():.0f} and {image.max():.0f}" in doc
