"""``ganrf score``: every bad input is one sentence and exit 2; a good one gives every report key,
with both levels, as one JSON object."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ganrf.cli import main
from ganrf.tools.score import load_images

DIGITS = Path(__file__).parent / "data" / "real_digits.npz"


def one_sentence_exit_2(argv, capsys, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganrf score: error: ") and "\n" not in err, err
    assert match in err, err


@pytest.mark.parametrize(
    "array, match",
    [
        (np.zeros((4, 28, 27), np.uint8), "has shape (4, 28, 27)"),
        (np.zeros((4, 3, 28, 28), np.uint8), "expected (N, 28, 28) or (N, 1, 28, 28)"),
        (np.zeros((28, 28), np.float32), "has shape (28, 28)"),
        (np.zeros((0, 28, 28), np.uint8), "holds no images"),
        (np.full((4, 28, 28), 255.0, np.float32), "float values from 255 to 255"),
        (np.full((4, 28, 28), -0.5, np.float32), "expected float in [0, 1]"),
        (np.full((4, 28, 28), np.nan, np.float32), "float values from nan"),
        (np.zeros((4, 28, 28), np.int64), "dtype int64"),
    ],
)
def test_a_wrong_array_is_one_sentence_and_exit_2(tmp_path, capsys, array, match):
    path = tmp_path / "x.npy"
    np.save(path, array)
    one_sentence_exit_2(["score", str(path)], capsys, match)


def test_missing_not_an_array_and_not_an_image_are_one_sentence(tmp_path, capsys):
    one_sentence_exit_2(["score", str(tmp_path / "nope.npy")], capsys, "does not exist")
    (tmp_path / "a.txt").write_text("hello")
    one_sentence_exit_2(["score", str(tmp_path / "a.txt")], capsys, "neither a .npy / .npz")
    (tmp_path / "b.npy").write_text("not numpy")
    one_sentence_exit_2(["score", str(tmp_path / "b.npy")], capsys, "not a readable NumPy")
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 28, 28)), b=np.zeros((2, 28, 28)))
    one_sentence_exit_2(["score", str(tmp_path / "two.npz")], capsys, "holds 2 arrays (a, b)")
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    one_sentence_exit_2(["score", str(pngs)], capsys, "holds no .png images")
    (pngs / "0.png").write_bytes(b"not a png")
    one_sentence_exit_2(["score", str(pngs)], capsys, "0.png is not an image")


def test_a_png_of_another_size_is_refused(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.zeros((32, 28), np.uint8)).save(tmp_path / "0.png")
    one_sentence_exit_2(["score", str(tmp_path)], capsys, "is 28x32 pixels; expected 28x28")


def test_arrays_and_pngs_load_to_the_same_floats(tmp_path):
    from PIL import Image

    with np.load(DIGITS) as d:
        u8 = d["test"][:5]
    np.save(tmp_path / "u8.npy", u8[:, None])
    np.savez(tmp_path / "f.npz", images=u8.astype(np.float64) / 255)
    for i, img in enumerate(u8):
        Image.fromarray(img).save(tmp_path / f"{i}.png")
    a, b, c = (load_images(tmp_path / f) for f in ("u8.npy", "f.npz", "."))
    assert a.shape == (5, 28, 28) and a.dtype == np.float32 and a.max() == 1.0
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_array_equal(a, c)


def test_without_real_mnist_it_names_data_root(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((8, 28, 28), np.uint8))
    one_sentence_exit_2(
        ["score", str(tmp_path / "x.npy"), "--data-root", str(tmp_path / "empty")],
        capsys,
        "pass --data-root DIR",
    )


def test_json_holds_every_report_key_and_both_levels(tmp_path, capsys, monkeypatch):
    """Real digits (the committed 300) stand as MNIST: both levels say yes."""
    from tests.test_data import _idx

    monkeypatch.setenv("GANRF_CACHE", str(tmp_path / "cache"))
    with np.load(DIGITS) as d:
        train, test = d["train"], d["test"]
    raw = tmp_path / "m" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, imgs in (("train", train), ("t10k", test)):
        _idx(raw / f"{split}-images-idx3-ubyte", imgs.tobytes(), imgs.shape, 0x803)
        _idx(raw / f"{split}-labels-idx1-ubyte", bytes(len(imgs)), (len(imgs),), 0x801)
    np.save(tmp_path / "x.npy", train[:150])
    assert (
        main(["score", str(tmp_path / "x.npy"), "--data-root", str(tmp_path / "m"), "--json"]) == 0
    )
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert captured.err == (
        "ganrf score: warning: 150 images: FID-like and KID read high (KID can go below 0) on so "
        "few, KID's subsets are all the whole set (its std reads 0), and neither level is judged "
        "below 2,000 samples (both were calibrated on 2,000 and 10,000); compare only sets of the "
        "same size (trials score 2,000)\n"
    )
    expected = {
        "metric/feature_net", "metric/samples", "metric/fid", "metric/fid_floor",
        "metric/fid_over_floor", "metric/kid_mean", "metric/kid_std", "metric/precision",
        "metric/recall", "metric/density", "metric/coverage", "metric/local_fid", "metric/ssim",
        "metric/classifier_score", "metric/class_count", "metric/class_kl",
        "metric/confident_share", "metric/success", "metric/recognisable",
        "metric/recognisable_share", "metric/recognisable_classes",
        "metric/swd", "metric/swd_l0",  # 28 px: one pyramid level
    }  # fmt: skip
    assert set(report) == expected
    assert report["metric/samples"] == 150
    # 150 real digits: a share is measured, but no verdict is given on a set this small
    assert report["metric/recognisable"] is None and report["metric/success"] is None
    assert report["metric/recognisable_share"] > 0.9
    assert main(["score", str(tmp_path / "x.npy"), "--data-root", str(tmp_path / "m")]) == 0
    table = capsys.readouterr().out
    assert "metric/recognisable_share" in table
    assert re.search(r"metric/success +not judged", table)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_too_few_images_are_one_sentence_before_any_metric(tmp_path, capsys, n):
    """torch's kthvalue error ended it before; no MNIST is needed to say so."""
    np.save(tmp_path / "x.npy", np.zeros((n, 28, 28), np.uint8))
    one_sentence_exit_2(
        ["score", str(tmp_path / "x.npy"), "--data-root", str(tmp_path / "none")],
        capsys,
        f"{n} image(s) are too few to score: precision, recall, density and coverage use each "
        "image's 5 nearest neighbours, so give at least 6 (trials score 2,000)",
    )


def test_six_blank_images_get_no_verdict():
    # they passed the strict level: with 6 images every neighbour radius spans the set
    from ganrf.tools.score import VERDICT_MIN, check_size

    assert VERDICT_MIN == 2000
    assert "neither level is judged below 2,000 samples" in check_size(6)
    assert check_size(1999) == (
        "ganrf score: warning: 1999 images: neither level is judged below 2,000 samples (both "
        "were calibrated on 2,000 and 10,000); compare only sets of the same size (trials score "
        "2,000)"
    )
    assert check_size(2000) is None


# --------------------------------------------------------------------------------------------
# --reference: any two sets, SWD per level and SSIM, no downloaded network
# --------------------------------------------------------------------------------------------


def _crops(n, seed, size=32):
    from ganrf.data.photo import photo_crops

    return photo_crops("astronaut", n, size, photo_size=128, channels=3, seed=seed).numpy()


def _score_json(argv, capsys):
    assert main(["score", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_reference_scores_swd_per_level_and_ssim(tmp_path, capsys):
    import torch

    from ganrf.metrics.scores import mean_pairwise_ssim
    from ganrf.metrics.swd import swd

    fake, real = _crops(12, 0), _crops(16, 1)
    np.save(tmp_path / "fake.npy", fake)
    np.save(tmp_path / "real.npy", real.transpose(0, 2, 3, 1))  # (N, H, W, C) reads the same
    assert (
        main(
            [
                "score",
                str(tmp_path / "fake.npy"),
                "--reference",
                str(tmp_path / "real.npy"),
                "--json",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    got = json.loads(captured.out)
    assert "SWD compares the first 12 images of each set" in captured.err
    f, r = (torch.from_numpy(x).float() / 127.5 - 1 for x in (fake, real[:12]))
    want = swd(r, f)
    assert got == pytest.approx(
        {
            "metric/swd": want["mean"],
            "metric/swd_l0": want["l0"],
            "metric/swd_l1": want["l1"],
            "metric/samples": 12,
            "metric/ssim": mean_pairwise_ssim(f),
            "reference/ssim": mean_pairwise_ssim(torch.from_numpy(real).float() / 127.5 - 1),
        },
        rel=1e-5,
    )


def test_a_set_against_itself_is_zero_and_a_png_folder_reads_as_its_array(tmp_path, capsys):
    from PIL import Image

    crops = _crops(6, 2)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, c in enumerate(crops):
        Image.fromarray(c.transpose(1, 2, 0)).save(folder / f"{i:02d}.png")
    np.save(tmp_path / "same.npy", crops)
    got = _score_json([str(folder), "--reference", str(tmp_path / "same.npy")], capsys)
    assert got["metric/swd"] == 0.0 and got["metric/swd_l0"] == 0.0 and got["metric/swd_l1"] == 0.0
    assert got["metric/ssim"] == got["reference/ssim"]


def test_the_table_names_each_level_by_its_structure_size(tmp_path, capsys):
    np.save(tmp_path / "a.npy", _crops(4, 0, size=64)[:, :1])  # grey 64 px: three levels
    assert main(["score", str(tmp_path / "a.npy"), "--reference", str(tmp_path / "a.npy")]) == 0
    out = capsys.readouterr().out
    assert "metric/swd_l2" in out and "28 px structure (level 2, 1/4 size)" in out
    assert "metric/swd_l3" not in out


@pytest.mark.parametrize(
    "fake, real, match",
    [
        (
            np.zeros((4, 3, 32, 32), np.uint8),
            np.zeros((4, 1, 32, 32), np.uint8),
            "the sets differ: 32x32 RGB images against 32x32 grey",
        ),
        (
            np.zeros((4, 15, 15), np.uint8),
            np.zeros((4, 15, 15), np.uint8),
            "15x15 images; SWD needs at least 16 px",
        ),
        (
            np.zeros((4, 32, 32, 5), np.uint8),
            np.zeros((4, 32, 32), np.uint8),
            "with 1 (grey) or 3 (RGB) channels",
        ),
        (np.zeros((4, 32, 32), np.int32), np.zeros((4, 32, 32), np.uint8), "dtype int32"),
    ],
)
def test_reference_bad_sets_are_one_sentence(tmp_path, capsys, fake, real, match):
    np.save(tmp_path / "f.npy", fake)
    np.save(tmp_path / "r.npy", real)
    one_sentence_exit_2(
        ["score", str(tmp_path / "f.npy"), "--reference", str(tmp_path / "r.npy")], capsys, match
    )


def test_a_folder_of_two_sizes_is_one_sentence(tmp_path, capsys):
    from PIL import Image

    for name, size in (("a.png", 32), ("b.png", 20)):
        Image.new("RGB", (size, size)).save(tmp_path / name)
    np.save(tmp_path / "r.npy", np.zeros((2, 32, 32), np.uint8))
    one_sentence_exit_2(
        ["score", str(tmp_path), "--reference", str(tmp_path / "r.npy")],
        capsys,
        "b.png is 20x20 pixels and a.png 32x32",
    )


@pytest.mark.parametrize(
    ("mode", "value"), [("I;16", 40000), ("RGBA", (9, 9, 9, 128)), ("LA", (9, 128))]
)
def test_png_modes_that_would_clip_or_drop_alpha_are_one_sentence(tmp_path, capsys, mode, value):
    from PIL import Image

    Image.new(mode, (20, 20), value).save(tmp_path / "a.png")
    np.save(tmp_path / "r.npy", np.zeros((2, 20, 20), np.uint8))
    one_sentence_exit_2(
        ["score", str(tmp_path), "--reference", str(tmp_path / "r.npy")],
        capsys,
        f"a.png is a {mode} PNG; save the set as 8-bit grey or RGB (no alpha channel)",
    )


def test_one_image_has_swd_but_no_ssim(tmp_path, capsys):
    np.save(tmp_path / "one.npy", _crops(1, 0))
    np.save(tmp_path / "r.npy", _crops(3, 1))
    assert (
        main(["score", str(tmp_path / "one.npy"), "--reference", str(tmp_path / "r.npy"), "--json"])
        == 0
    )
    captured = capsys.readouterr()
    got = json.loads(captured.out)
    assert got["metric/ssim"] is None and got["metric/swd"] > 0
    assert "SSIM of FAKE is not scored: it compares pairs, so give 2 images or more" in captured.err
    assert "SWD compares the first image of each set" in captured.err
