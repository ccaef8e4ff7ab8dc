"""The one rule for what a normalisation layer does to a discriminator's decision rf.

Traced modules (:mod:`ganrf.design.trace`) and designs (:mod:`ganrf.design.designs`) both apply it, so the
two cannot disagree. No torch here: a norm is named by its kind, a key of :data:`NORM_KINDS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ganrf.design.rf import RFError, RFReport

__all__ = ["NORM_KINDS", "apply_norms", "norm_reason"]

# Normalisations whose statistics reach past one location, by kind, as a reason names them.
NORM_KINDS = {
    "batch": "BatchNorm",  # in training mode, or without running statistics
    "instance": "InstanceNorm",
    "group": "GroupNorm",
    "layer": "LayerNorm",
    "localresponse": "LocalResponseNorm",
}


def norm_reason(kind: str, where: str = "") -> str:
    """Why a normalisation of ``kind`` (a key of :data:`NORM_KINDS`) run at the layer named
    ``where`` ("" for none) makes one decision depend on the whole input."""
    if kind not in NORM_KINDS:
        raise RFError(f"unknown normalisation kind {kind!r}; use one of {', '.join(NORM_KINDS)}")
    at = f" ({where})" if where else ""
    if kind == "batch":
        return f"BatchNorm in training mode{at} mixes every position and image"
    return f"{NORM_KINDS[kind]}{at} normalises over the whole map"


def apply_norms(rep: RFReport, norms: Sequence[tuple[str, str]]) -> RFReport:
    """``rep`` with the decision rf the normalisations ``norms`` leave: the one rule for both
    traced modules and designs.

    Args:
        rep: the report of the conv/pool stack and its head.
        norms: ``(kind, where)`` per normalisation layer that runs, in order; ``kind`` a key of
            :data:`NORM_KINDS` (BatchNorm counts only in training mode), ``where`` its name.

    Every kind makes one output depend on the whole input. A head that already does so (dense,
    global pooling) keeps its reason; otherwise the last BatchNorm names it, as it mixes the
    batch too, else the first other norm. BatchNorm also sets ``mixes_batch`` and adds a note.
    """
    reason = None
    mixes = rep.mixes_batch
    notes = list(rep.notes)
    for kind, where in norms:
        text = norm_reason(kind, where)
        if kind == "batch":
            reason, mixes = text, True
            notes.append(
                f"{where + ': ' if where else ''}BatchNorm in training mode mixes the whole batch "
                "and every position into each output; in eval mode it is a per-location affine map"
            )
        elif reason is None:
            reason = text
    if reason is None:
        return rep
    return replace(
        rep,
        decision_rf=(rep.input_shape[1], rep.input_shape[2]),
        decision_whole=True,
        decision_reason=rep.decision_reason if rep.decision_whole else reason,
        mixes_batch=mixes,
        notes=tuple(notes),
    )
