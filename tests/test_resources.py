"""GPU shares and pack sizes, counted from every dataset's own models."""

import pytest

from ganrf.models import build_discriminator, build_generator
from ganrf.sweep import resources
from ganrf.sweep.experiments import Space, build_grid
from ganrf.sweep.trial import Trial

MNIST = {"schedule.batch_size": 256}
IMAGENET = {
    "data.dataset": "imagenet",
    "data.image_size": 128,
    "data.channels": 3,
    "g.kind": "dcgan",
    "schedule.batch_size": 128,
}


def _trial(base, rf=5, image_size=28, in_channels=1) -> Trial:
    (point,) = build_grid(
        Space(experiments=("onelayer",), rfs=(rf,), image_size=image_size, in_channels=in_channels)
    )
    return Trial.make(base, point)


@pytest.mark.parametrize(
    "base, size, channels",
    [(MNIST, 28, 1), (IMAGENET, 128, 3), (IMAGENET | {"g.width": 0.5}, 128, 3)],
)
def test_footprint_counts_the_trials_own_models(base, size, channels):
    trial = _trial(base, image_size=size, in_channels=channels)
    cfg = trial.config
    g = build_generator(
        cfg.g.kind,
        noise_dim=cfg.g.noise_dim,
        image_size=size,
        channels=channels,
        width=cfg.g.width,
    )
    d = build_discriminator(trial.design)
    params, acts = resources.model_footprint(trial)
    assert params == sum(p.numel() for m in (g, d) for p in m.parameters())
    # D: conv map, its LeakyReLU and the flattened copy (64 x H x W each), then one score
    d_acts = 3 * 64 * size * size + 1
    assert acts - 2 * d_acts > 0  # the rest is G's activations


def test_notes_mnist_models_have_the_notes_sizes():
    trial = _trial(MNIST)
    params, acts = resources.model_footprint(trial)
    # G: dense 100 -> 7*7*256 without bias, BN, ConvT 256->128 k5, BN, ConvT 128->64 k5, BN,
    # ConvT 64->1 k5 (no biases), the notes' generator; D: conv5 64 + dense over 64*28*28.
    g = 100 * 12544 + 2 * 12544 + 256 * 128 * 25 + 2 * 128 + 128 * 64 * 25 + 2 * 64 + 64 * 25
    d = 64 * 25 + 64 + 64 * 28 * 28 + 1
    assert params == g + d


def test_gpu_share_grows_with_the_dataset_and_model():
    mnist = resources.gpu_fraction([_trial(MNIST)], 80e9)
    imagenet = resources.gpu_fraction([_trial(IMAGENET, image_size=128, in_channels=3)], 80e9)
    assert mnist == 1 / 8  # the floor: eight small MNIST trials share a card
    assert imagenet > mnist
    assert resources.gpu_fraction([_trial(IMAGENET, image_size=128, in_channels=3)], 8e9) == 1.0


def test_pack_size_fills_the_card_and_no_more():
    trials = [_trial(MNIST)] * 64
    one = resources.gpu_need_bytes(trials[:1])
    k = resources.auto_pack_size(trials, 80e9)
    assert 1 < k <= 32
    assert resources.gpu_need_bytes(trials[:k]) <= 0.9 * 80e9
    assert k == 32 or resources.gpu_need_bytes(trials[: k + 1]) > 0.9 * 80e9
    assert resources.auto_pack_size(trials, one / 0.9) == 1  # room for one: no packing


@pytest.mark.parametrize(
    "gpus, asked, expected, warned",
    [
        (0, None, {"cpu": 6}, False),  # a CPU node: every core, one trial after another
        (0, 2.0, {"cpu": 6}, True),  # GPUs asked where there are none: said, not ignored
        (0, 0.0, {"cpu": 6}, False),
        (4, 0.5, {"cpu": 1, "gpu": 0.5}, False),
        (4, 0.0, {"cpu": 6}, False),
    ],
)
def test_trial_resources_and_gpus_asked_of_a_cpu_cluster(
    gpus, asked, expected, warned, monkeypatch, caplog
):
    import ganrf.sweep.raytune.tune as gtune

    monkeypatch.setattr(gtune.ray, "cluster_resources", lambda: {"CPU": 6.0, "GPU": float(gpus)})
    monkeypatch.setattr(gtune, "node_cpus", lambda: 6)
    with caplog.at_level("WARNING", logger="ganrf.sweep.raytune.tune"):
        got = gtune.resources_for([], cpus_per_trial=None, gpus_per_trial=asked)
    assert got == expected
    said = [r.getMessage() for r in caplog.records]
    assert said == (
        ["--gpus-per-trial 2: the Ray cluster has no GPU, so the trials run on CPUs"]
        if warned
        else []
    )
