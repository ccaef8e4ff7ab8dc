"""The metric registry and each metric's function: registering an entry and its function is all it
takes for a trial to report it, and a function for a key the registry does not hold is refused
in one sentence when registered."""

import pytest
import torch

from ganrf.config import TrainConfig
from ganrf.metrics import compute, spec
from ganrf.metrics.evaluate import Evaluator
from ganrf.metrics.evaluation import Evaluation
from ganrf.models import build_discriminator
from ganrf.training.loop import train

TINY = {
    "data.dataset": "synthetic",
    "data.synthetic_size": 64,
    "schedule.batch_size": 16,
    "schedule.steps": 4,
    "schedule.eval_every_steps": 2,
    "g.width": 0.0625,
    "d.width": 0.125,
    "d.layers": "conv3",
    "eval.samples": 50,
    "eval.erf_images": 4,
    "device": "cpu",
}
CALLS: list[int] = []


def toy(ev: Evaluation) -> float:
    """A metric that only a test registers: the step plus a thousandth of the sample count."""
    CALLS.append(ev.step)
    return ev.step + len(ev.images) / 1000


def toy_tenfold(ev: Evaluation) -> float:
    """Made of another metric, as metric/fid_over_floor is of metric/fid."""
    return 10 * ev.value("metric/toy")


@pytest.fixture
def registry(monkeypatch):
    """The registry and its functions as shipped, restored after the test."""
    monkeypatch.setattr(spec, "METRICS", dict(spec.METRICS))
    monkeypatch.setattr(compute, "COMPUTES", dict(compute.COMPUTES))
    import ganrf.metrics.evaluate as evaluate

    monkeypatch.setattr(evaluate, "COMPUTES", compute.COMPUTES)
    CALLS.clear()
    return spec


def test_a_registered_metric_reaches_the_trial_report_with_no_other_edit(registry, tmp_path):
    registry.register(spec.Metric("metric/toy", "toy"))
    registry.register(spec.Metric("metric/toy_tenfold", "toy x 10"))
    compute.computes("metric/toy")(toy)
    compute.computes("metric/toy_tenfold")(toy_tenfold)
    reports = []
    last = train(TINY, report=lambda m, ckpt: reports.append(m), out_dir=tmp_path)
    assert [(r["progress/step"], r["metric/toy"], r["metric/toy_tenfold"]) for r in reports] == [
        (2, 2.05, 20.5),
        (4, 4.05, 40.5),
    ]
    assert last["metric/toy"] == 4.05
    assert CALLS == [2, 4]  # once per evaluation, though two metrics read it
    # after the shipped metrics, in the registry's order
    keys = [k for k in reports[-1] if k.startswith(("metric/", "erf/"))]
    assert keys[-2:] == ["metric/toy", "metric/toy_tenfold"]


def test_the_report_is_every_entry_with_a_function_in_registry_order():
    cfg = TrainConfig.from_dict({**TINY, "seed": 1})
    ev = Evaluator(cfg, torch.device("cpu"))
    d = build_discriminator(cfg.design())
    g = torch.nn.Sequential(
        torch.nn.Linear(100, 784), torch.nn.Tanh(), torch.nn.Unflatten(1, (1, 28, 28))
    )
    out = ev(g=g, d=d, cfg=cfg, device=torch.device("cpu"), out_dir=None, step=0)
    # a 28 px image has one SWD level (the pyramid stops above 16 px): swd_l1 ... do not apply
    coarser = {f"metric/swd_l{k}" for k in range(1, spec.SWD_LEVELS)}
    computed = [k for k in spec.METRICS if k in compute.COMPUTES and k not in coarser]
    assert list(out) == [*spec.INFO_KEYS, *computed]
    # 21 sample metrics (3 of them the second level, 2 SWD: its mean and level 0), 8 ERF sizes
    # and radii
    assert len(computed) == 29
    # losses and timings are the training loop's: the registry gives them no function
    assert set(spec.METRICS) - set(compute.COMPUTES) == {
        "time/epoch_s",
        "time/eval_s",
        "loss/d",
        "loss/g",
    }
    # without a discriminator (score_images), the ERF entries do not apply and are left out
    images = g(torch.randn(50, 100))
    assert list(ev.score_images(images)) == [
        *spec.INFO_KEYS,
        *(k for k in computed if k.startswith("metric/")),
    ]


def test_a_function_for_an_unregistered_key_is_one_sentence(registry):
    with pytest.raises(ValueError) as caught:
        compute.computes("metric/fdi")(toy)  # a typo of metric/fid
    assert str(caught.value) == (
        "toy computes 'metric/fdi', which ganrf.metrics.spec does not register; register its "
        "label there first"
    )
    assert "metric/fdi" not in compute.COMPUTES


def test_a_key_computed_twice_is_refused(registry):
    with pytest.raises(ValueError) as caught:
        compute.computes("metric/fid")(toy)
    assert str(caught.value) == "toy computes 'metric/fid', which fid computes"
    assert compute.COMPUTES["metric/fid"] is compute.fid


def test_every_function_is_registered_under_its_own_name():
    # the decorator stands beside each function: its key names it (compute.fid: metric/fid)
    for key, fn in compute.COMPUTES.items():
        assert key.split("/", 1)[1] == fn.__name__, key
        assert getattr(compute, fn.__name__) is fn, key


def test_metrics_that_read_each_other_in_a_loop_are_refused(registry):
    cfg = TrainConfig.from_dict(TINY)
    ev = Evaluator(cfg, torch.device("cpu"))
    ev.computes["metric/toy"] = lambda e: e.value("metric/toy_tenfold")
    ev.computes["metric/toy_tenfold"] = lambda e: e.value("metric/toy")
    with pytest.raises(RuntimeError, match="'metric/toy' reads itself through other metrics"):
        ev.score_images(torch.zeros(50, 1, 28, 28))
