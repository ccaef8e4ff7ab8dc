"""The findings' sample grids (analysis/samples.py) and their reader (ganrf.runs): each answer
shows, per side and configuration, every seed's latest grid, and the page embeds each image once.
Expected values come from the files the test writes (their grey levels), not from the code."""

import base64
import io
import re

import numpy as np
from PIL import Image

from analysis.findings import answered
from analysis.gallery import Images
from analysis.load import final_rows, load_experiment
from analysis.report import build
from analysis.samples import findings_html, real_html
from ganrf import runs
from tests.test_analysis import ok, trial

# (rf, seed) -> grey level of its latest grid (step 200); step 100's grid is black in every trial
GREY = {(1, 0): 20, (1, 1): 40, (5, 0): 60, (5, 1): 80, (13, 0): 100, (13, 1): 120}


def _exp(tmp_path, grids=True):
    e = tmp_path / "mnist_rf-x"
    for (rf, seed), grey in GREY.items():
        results = [
            ok(100 / rf + seed + 5, "running", **_art(100)),
            ok(100 / rf + seed, **_art(200)),
        ]
        d = trial(e, f"rf{rf}-s{seed}", rf=rf, depth=1, seed=seed, results=results)
        if grids:
            (d / "samples").mkdir()
            Image.new("L", (28, 28), 0).save(d / "samples" / "step00000100.png")
            Image.new("L", (28, 28), grey).save(d / "samples" / "step00000200.png")
    return e


def _art(step: int) -> dict:
    return {"artifact/samples": f"samples/step{step:08d}.png"}


def _grey(url: str) -> int:
    raw = base64.b64decode(url.split(",", 1)[1])
    with Image.open(io.BytesIO(raw)) as im:
        return round(float(np.asarray(im.convert("L")).mean()))


def test_sample_grids_are_read_by_step(tmp_path):
    d = tmp_path / "t"
    assert runs.sample_grids(d) == [] and runs.latest_sample_grid(d) is None
    (d / "samples").mkdir(parents=True)
    for name in ("step00000010.png", "step00000002.png", "notes.png", "stepx.png"):
        (d / "samples" / name).write_bytes(b"")
    assert runs.sample_grids(d) == [
        (2, d / "samples" / "step00000002.png"),
        (10, d / "samples" / "step00000010.png"),
    ]
    assert runs.latest_sample_grid(d) == (10, d / "samples" / "step00000010.png")


def test_each_finding_shows_every_seeds_latest_grid_per_configuration(tmp_path):
    answers = answered(final_rows(load_experiment(_exp(tmp_path))))
    images = Images()
    html = findings_html(answers, images)
    q1 = html[html.index("1. Does the rf size") : html.index("2. Same rf")]
    # rf 1, 5 and 13, each its own side: three configurations of two seeds, each at step 200
    sides = re.findall(r'<div class="side"><b>(.*?)</b>(.*?)</div></div></div>(?=<div|</div>)', q1)
    labels = re.findall(r'<div class="lbl">(.*?)</div>', q1)
    assert labels == [
        "conv1 (rf 1, depth 1), image head, D 1,000 params",
        "conv5 (rf 5, depth 1), image head, D 1,000 params",
        "conv13 (rf 13, depth 1), image head, D 1,000 params",
    ]
    assert [s[0] for s in sides] == ["rf 1", "rf 5", "rf 13"]
    shown = [int(i) for i in re.findall(r'<img data-img="(\d+)"', q1)]
    assert [_grey(images.urls[i]) for i in shown] == [20, 40, 60, 80, 100, 120]
    assert re.findall(r"<figcaption>(.*?)</figcaption>", q1) == [
        f"seed {s} · step 200" for s in (0, 1) * 3
    ]


def test_the_page_embeds_each_grid_once_and_fills_it_from_one_list(tmp_path):
    page, _ = build(load_experiment(_exp(tmp_path)))
    # six trials x (step 200 in the findings and the gallery, step 100 on the slider): 12 images
    assert page.count("data:image/jpeg;base64,") == 12
    assert page.count('<img data-img="') == 6
    assert 'querySelectorAll("img[data-img]")' in page


def test_a_trial_without_grids_says_so(tmp_path):
    html = findings_html(
        answered(final_rows(load_experiment(_exp(tmp_path, grids=False)))), Images()
    )
    assert html.count('<div class="noimg">no samples</div>') == 6


def test_gallery_cards_label_their_grid_and_erf_map(tmp_path):
    page, _ = build(load_experiment(_exp(tmp_path)))
    gallery = page[page.index('<div class="gallery">') :]
    cards = re.findall(r'<figure class="card".*?</figure>', gallery)
    assert len(cards) == 6
    for card in cards:
        labels = re.findall(r'<span class="lbl">(.*?)</span><img class="(\w+)"', card)
        assert labels == [
            ("samples (fixed noise)", "samples"),
            ("ERF map of the conv stack", "ERF"),
        ]


def test_real_digits_are_shown_beside_the_findings_once_per_dataset(tmp_path):
    exp = _exp(tmp_path)
    # one trial saved the real grid (grey 200); the others are from before it was saved
    Image.new("L", (28, 28), 200).save(exp / "rf5-s1" / "samples" / runs.REAL_GRID)
    final = final_rows(load_experiment(exp))
    images = Images()
    html = findings_html(answered(final), images, real=real_html(final, images))
    block = html.split('<div class="finding real-samples">')[1].split("</div></div>")[0]
    assert "<h3>Real images, for comparison</h3>" in block
    (idx,) = re.findall(r'<img data-img="(\d+)"', block)
    assert _grey(images.urls[int(idx)]) == 200  # that trial's real grid, once
    assert "real mnist" in block
    # before any trial saved one, nothing is claimed
    assert real_html(final_rows(load_experiment(_exp(tmp_path / "old"))), Images()) == ""


def test_a_trial_saves_real_images_laid_out_as_its_samples(tmp_path):
    from torchvision.utils import save_image

    from ganrf.config import TrainConfig
    from ganrf.metrics.features import reference_images
    from ganrf.training.loop import train
    from tests.test_metric_registry import TINY

    # fewer ERF images than grid samples: the real grid still holds as many as the samples
    tiny = {**TINY, "eval.erf_images": 4, "eval.grid": 16}
    train(tiny, report=lambda m, ckpt: None, out_dir=tmp_path)
    real = runs.real_grid(tmp_path)
    assert real is not None and real.name == runs.REAL_GRID
    _, latest = runs.latest_sample_grid(tmp_path)
    cfg = TrainConfig.from_dict(tiny)
    ref, _, _ = reference_images(cfg, cfg.eval.samples)
    save_image(ref[:16], tmp_path / "want.png", nrow=4, normalize=True, value_range=(-1, 1))
    with Image.open(real) as r, Image.open(latest) as s, Image.open(tmp_path / "want.png") as w:
        assert r.size == s.size  # 16 images, 4 x 4, as the samples
        assert np.array_equal(np.asarray(r), np.asarray(w))  # the reference's first 16
    (tmp_path / "want.png").unlink()
    assert [p.name for p in sorted((tmp_path / runs.SAMPLES_DIR).glob("*.png"))] == [
        runs.REAL_GRID,
        "step00000002.png",
        "step00000004.png",
    ]


def test_each_rf_of_a_photo_sweep_shows_real_crops_samples_and_swd_per_level(tmp_path):
    from analysis.samples import by_rf_html

    e = tmp_path / "photo_rf-x"
    # (rf, head, seed) -> grey of its latest grid, and its SWD at levels 0 and 1
    grids = {
        (25, "patch", 0): (30, 10.0, 50.0),
        (25, "patch", 1): (50, 20.0, 70.0),
        (25, "patch", 2): (110, 60.0, 150.0),
        (4, "image", 0): (70, 100.0, 300.0),
        (4, "patch", 0): (90, 1.0, 2.0),
    }
    for (rf, head, seed), (grey, l0, l1) in grids.items():
        swd = {"metric/swd_l0": l0, "metric/swd_l1": l1, "metric/swd": (l0 + l1) / 2}
        swd["metric/ssim"] = grey / 1000
        d = trial(
            e,
            f"rf{rf}-{head}-s{seed}",
            rf=rf,
            depth=2,
            seed=seed,
            head=head,
            dataset="photo",
            experiment="heads",
            results=[ok(1.0, **_art(100), **swd)],
        )
        (d / "samples").mkdir()
        Image.new("L", (32, 32), grey).save(d / "samples" / "step00000100.png")
    Image.new("L", (32, 32), 200).save(e / "rf4-image-s0" / "samples" / runs.REAL_GRID)
    final = final_rows(load_experiment(e))
    images = Images()
    html = by_rf_html(final, images)
    assert "<h3>photo: what each rf reproduces</h3>" in html
    rows = html.split('<div class="rf-row"')[1:]
    assert [re.search(r'data-rf="(\d+)"', r).group(1) for r in rows] == ["4", "25"]
    greys = [[_grey(images.urls[int(i)]) for i in re.findall(r'data-img="(\d+)"', r)] for r in rows]
    assert greys == [[200, 70, 90], [200, 30, 50, 110]]  # real crops first, then each seed
    assert "rf 25, depth 2), patch head" in rows[1]
    # means over seeds (10, 20, 60: not the median 20), and the samples' SSIM
    assert "SWD x10^3 by structure size: 7 px 30 · 14 px 90; mean 60; SSIM 0.063 (n = 3)" in rows[1]
    assert "7 px 100 · 14 px 300; mean 200; SSIM 0.07 (n = 1)" in rows[0]
    assert "7 px 1 · 14 px 2; mean 1.5; SSIM 0.09 (n = 1)" in rows[0]
    # digits have the questions' findings instead: no such section
    assert by_rf_html(final_rows(load_experiment(_exp(tmp_path / "digits"))), Images()) == ""
