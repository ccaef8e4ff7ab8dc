"""The photo dataset (ganrf.data.photo): crops of the pictures scikit-image ships, nothing
downloaded, the same crops for the same seed."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
import torch

from ganrf.config import TrainConfig
from ganrf.data import DataError, check_data, load_training_images
from ganrf.data.photo import PHOTOS, load_photo, photo_crops


def test_every_photo_is_in_scikit_images_wheel():
    folder = resources.files("skimage.data")
    assert all((folder / name).is_file() for name in PHOTOS.values())


@pytest.mark.parametrize(
    ("key", "channels", "size", "shape"),
    [
        ("astronaut", 3, 128, (3, 128, 128)),
        ("chelsea", 3, 128, (3, 128, 192)),  # 451x300: the shorter side to 128
        ("camera", 1, 64, (1, 64, 64)),
        ("astronaut", 1, 0, (1, 512, 512)),  # as shipped, made grey
    ],
)
def test_photos_are_resized_by_their_shorter_side(key, channels, size, shape):
    p = load_photo(key, size, channels)
    assert p.dtype == torch.uint8 and tuple(p.shape) == shape


def test_as_shipped_is_the_picture_itself():
    from skimage import data

    np.testing.assert_array_equal(
        load_photo("astronaut", 0, 3).permute(1, 2, 0).numpy(), data.astronaut()
    )


def _where(crop: torch.Tensor, photo: torch.Tensor) -> list[tuple[int, int, bool]]:
    """Every (y, x, flipped) at which ``crop`` is cut from ``photo``."""
    s = crop.shape[-1]
    found = []
    for flipped, c in ((False, crop), (True, crop.flip(-1))):
        win = photo.unfold(1, s, 1).unfold(2, s, 1)  # (C, H-s+1, W-s+1, s, s)
        hits = (win == c[:, None, None]).all(-1).all(-1).all(0).nonzero().tolist()
        found += [(y, x, flipped) for y, x in hits]
    return found


def test_crops_are_cut_from_the_photo_half_of_them_flipped():
    crops = photo_crops("astronaut", 200, 32, photo_size=128, channels=3, seed=0)
    photo = load_photo("astronaut", 128, 3)
    assert crops.shape == (200, 3, 32, 32) and crops.dtype == torch.uint8
    places = [_where(c, photo) for c in crops[:40]]
    assert all(places)  # each crop is a window of the resized photo, or its mirror
    flipped = [p[0][2] for p in places if len({f for *_, f in p}) == 1]
    assert 10 <= sum(flipped) <= 30  # about half, from a seeded coin
    assert len({p[0][:2] for p in places}) > 35  # at many places
    unflipped = photo_crops("astronaut", 40, 32, photo_size=128, channels=3, seed=0, flip=False)
    assert all(any(not f for *_, f in _where(c, photo)) for c in unflipped[:10])


def test_the_same_seed_cuts_the_same_crops():
    a = photo_crops("astronaut,coffee", 16, 32, photo_size=96, channels=3, seed=4)
    b = photo_crops("astronaut,coffee", 16, 32, photo_size=96, channels=3, seed=4)
    c = photo_crops("astronaut,coffee", 16, 32, photo_size=96, channels=3, seed=5)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # photographs in turn: the even crops are the astronaut's, the odd ones the coffee's
    assert _where(a[0], load_photo("astronaut", 96, 3)) and _where(
        a[1], load_photo("coffee", 96, 3)
    )


def test_bad_photos_are_one_sentence():
    with pytest.raises(
        DataError,
        match=r"'astronaut,lena': lena is not a photograph .* choose from astronaut, chelsea",
    ):
        photo_crops("astronaut,lena", 4, 32, photo_size=128, channels=3, seed=0)
    with pytest.raises(DataError, match=r"32x32 px after data.photo_size 32, smaller than the 64"):
        photo_crops("astronaut", 4, 64, photo_size=32, channels=3, seed=0)


def _cfg(**kw) -> TrainConfig:
    base = {"data.dataset": "photo", "data.image_size": 32, "data.channels": 3, "g.kind": "dcgan"}
    return TrainConfig.from_dict({**base, "data.crops": 64, **kw})


def test_the_training_set_is_the_seeds_crops():
    cfg = _cfg()
    data = load_training_images(cfg.data, torch.device("cpu"), seed=3)
    want = photo_crops("astronaut", 64, 32, photo_size=128, channels=3, seed=3)
    assert data.num_images == 64 and torch.equal(data.images, want)
    check_data(cfg.data)  # nothing to fetch
    with pytest.raises(DataError, match="lena is not a photograph"):
        check_data(_cfg(**{"data.photo": "lena"}).data)


def test_the_reference_is_fixed_crops_apart_from_training():
    from ganrf.metrics.features import REFERENCE_SEED, reference_images

    ref, floor, key = reference_images(_cfg(seed=7), 20)
    want = photo_crops("astronaut", 20, 32, photo_size=128, channels=3, seed=REFERENCE_SEED)
    assert torch.equal(ref, want.float() / 127.5 - 1) and not torch.equal(ref, floor)
    assert key == ""


def test_an_evaluation_without_a_network_scores_pixels():
    from ganrf.metrics.evaluate import Evaluator

    cfg = _cfg(**{"eval.features": "none", "eval.samples": 24})
    ev = Evaluator(cfg, torch.device("cpu"))
    real = photo_crops("astronaut", 24, 32, photo_size=128, channels=3, seed=11).float() / 127.5 - 1
    got = ev.score_images(real)
    assert set(got) == {
        "metric/feature_net",
        "metric/samples",
        "metric/swd",
        "metric/swd_l0",
        "metric/swd_l1",
        "metric/ssim",
    }
    assert got["metric/feature_net"] == "none"
    from ganrf.metrics.swd import swd

    assert got["metric/swd_l1"] == pytest.approx(
        swd(ev.real_pixels.float() / 127.5 - 1, real)["l1"]
    )
    with pytest.raises(Exception, match="eval.features must be auto or none"):
        _cfg(**{"eval.features": "inception"}).validate()


def test_a_sweep_names_no_data_root_for_a_photo_it_cannot_have():
    from ganrf.sweep.plan import check_data as sweep_check

    with pytest.raises(DataError) as e:
        sweep_check(_cfg(**{"data.photo": "lena"}))
    assert str(e.value).startswith("data.photo 'lena': lena is not a photograph")
    assert "--data-root" not in str(e.value)  # the photo sweep reads nothing there
