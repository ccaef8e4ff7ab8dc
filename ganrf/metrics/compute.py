"""The function of each registered metric, registered here by :func:`computes` (as stylegan2-ada's
``register_metric``): the evaluator reports every metric of :mod:`ganrf.metrics.spec` that has
one, in the registry's order. A function for a key the registry does not hold is refused when
this module is imported, in one sentence.

Each takes one :class:`~ganrf.metrics.evaluation.Evaluation` and returns its metric's value, or
None where the metric does not apply to it (no classifier, no local features, no
discriminator). What several metrics share (features, KID's subsets, the k-NN pass, the class
histogram, the ERF maps) is computed once by the evaluation; a metric made of others reads them
with ``ev.value(key)``.
"""

from __future__ import annotations

from collections.abc import Callable

from ganrf.metrics import evaluation, scores, spec
from ganrf.metrics.evaluation import Evaluation

Compute = Callable[[Evaluation], "float | int | None"]
COMPUTES: dict[str, Compute] = {}  # registry key -> its function, in the order registered


def computes(key: str) -> Callable[[Compute], Compute]:
    """Register the decorated function as the one that computes ``key``.

    Raises:
        ValueError: ``key`` is not in the registry (a typo), or has a function already.
    """

    def register(fn: Compute) -> Compute:
        name = getattr(fn, "__name__", repr(fn))
        if key not in spec.METRICS:
            raise ValueError(
                f"{name} computes {key!r}, which ganrf.metrics.spec does not register; register "
                "its label there first"
            )
        if key in COMPUTES:
            raise ValueError(f"{name} computes {key!r}, which {COMPUTES[key].__name__} computes")
        COMPUTES[key] = fn
        return fn

    return register


@computes("metric/fid")
def fid(ev: Evaluation) -> float | None:
    if ev.features is None:
        return None
    return scores.frechet_distance(ev.reference["features"], ev.features.features)


@computes("metric/fid_floor")
def fid_floor(ev: Evaluation) -> float | None:
    return None if ev.features is None else ev.evaluator.fid_floor


@computes("metric/fid_over_floor")
def fid_over_floor(ev: Evaluation) -> float | None:
    fid = ev.value("metric/fid")
    return None if fid is None else fid / ev.evaluator.fid_floor


@computes("metric/local_fid")
def local_fid(ev: Evaluation) -> float | None:
    if ev.features is None or ev.features.local is None or "local" not in ev.reference:
        return None
    return scores.frechet_distance(ev.reference["local"], ev.features.local)


@computes("metric/kid_mean")
def kid_mean(ev: Evaluation) -> float | None:
    return None if ev.kid is None else ev.kid[0]


@computes("metric/kid_std")
def kid_std(ev: Evaluation) -> float | None:
    return None if ev.kid is None else ev.kid[1]


def _prdc(name: str) -> Compute:
    def score(ev: Evaluation) -> float | None:
        return None if ev.prdc is None else ev.prdc[name]

    score.__name__ = score.__qualname__ = name
    return score


precision = computes("metric/precision")(_prdc("precision"))
recall = computes("metric/recall")(_prdc("recall"))
density = computes("metric/density")(_prdc("density"))
coverage = computes("metric/coverage")(_prdc("coverage"))


def _classes(name: str) -> Compute:
    def score(ev: Evaluation) -> float | None:
        return None if ev.classes is None else ev.classes[name]

    score.__name__ = score.__qualname__ = name
    return score


classifier_score = computes("metric/classifier_score")(_classes("classifier_score"))
class_count = computes("metric/class_count")(_classes("class_count"))
class_kl = computes("metric/class_kl")(_classes("class_kl"))
confident_share = computes("metric/confident_share")(_classes("confident_share"))


@computes("metric/swd")
def swd(ev: Evaluation) -> float | None:
    return None if ev.swd is None else ev.swd["mean"]


def _swd_level(k: int) -> Compute:
    def level(ev: Evaluation) -> float | None:
        return None if ev.swd is None else ev.swd.get(f"l{k}")

    level.__name__ = level.__qualname__ = f"swd_l{k}"
    return level


swd_l0 = computes("metric/swd_l0")(_swd_level(0))
swd_l1 = computes("metric/swd_l1")(_swd_level(1))
swd_l2 = computes("metric/swd_l2")(_swd_level(2))
swd_l3 = computes("metric/swd_l3")(_swd_level(3))
swd_l4 = computes("metric/swd_l4")(_swd_level(4))


@computes("metric/ssim")
def ssim(ev: Evaluation) -> float:
    return scores.mean_pairwise_ssim(ev.images)


@computes("metric/success")
def success(ev: Evaluation) -> int | None:
    """The digit verdict (:func:`ganrf.metrics.evaluation.success`): with a classifier only, as
    its thresholds were fixed on digits."""
    if ev.classes is None:
        return None
    keys = ("metric/fid_over_floor", "metric/precision", "metric/coverage")
    return evaluation.success({k: ev.value(k) for k in keys})


def _recognisable(key: str) -> Compute:
    def score(ev: Evaluation) -> float | int | None:
        return None if ev.recognisable is None else ev.recognisable[key]

    score.__name__ = score.__qualname__ = key.removeprefix("metric/")
    return score


recognisable = computes("metric/recognisable")(_recognisable("metric/recognisable"))
recognisable_share = computes("metric/recognisable_share")(
    _recognisable("metric/recognisable_share")
)
recognisable_classes = computes("metric/recognisable_classes")(
    _recognisable("metric/recognisable_classes")
)


def _erf(key: str) -> Compute:
    def size(ev: Evaluation) -> float | None:
        return None if ev.erf_values is None else ev.erf_values[key]

    size.__name__ = size.__qualname__ = key.removeprefix("erf/")
    return size


conv_size95 = computes("erf/conv_size95")(_erf("erf/conv_size95"))
conv_size50 = computes("erf/conv_size50")(_erf("erf/conv_size50"))
conv_radius95 = computes("erf/conv_radius95")(_erf("erf/conv_radius95"))
conv_radius50 = computes("erf/conv_radius50")(_erf("erf/conv_radius50"))
decision_size95 = computes("erf/decision_size95")(_erf("erf/decision_size95"))
decision_size50 = computes("erf/decision_size50")(_erf("erf/decision_size50"))
decision_radius95 = computes("erf/decision_radius95")(_erf("erf/decision_radius95"))
decision_radius50 = computes("erf/decision_radius50")(_erf("erf/decision_radius50"))
