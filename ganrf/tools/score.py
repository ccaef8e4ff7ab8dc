"""``ganrf score``: judge any set of 28x28 digit images the way a trial's samples are judged, or
compare any two image sets with no downloaded network.

ganrf score samples.npy --data-root DATA          # a table: every sample metric, both levels
ganrf score pngs/ --data-root DATA --json         # one JSON object keyed by the report keys
ganrf score fakes/ --reference reals/             # any size >= 16 px, grey or RGB: SWD, SSIM

With --reference, FAKE and REAL are each a folder of PNGs (one size) or a .npy / .npz array
(N, H, W), (N, C, H, W) or (N, H, W, C), uint8 0-255 or float in [0, 1], grey or RGB, at least
16 px a side, the two of one size and colour. It prints the multi-scale sliced Wasserstein
distance (Karras et al. 2018: 7x7 patches of each Laplacian pyramid level; level k's span 7 * 2^k
px) per level and their mean, x 10^3, lower is closer, and the mean pairwise SSIM of each set.

Without it, PATH is a ``.npy`` / ``.npz`` array of shape (N, 28, 28) or (N, 1, 28, 28), uint8 0-255 (white
ink on black, as MNIST) or float in [0, 1], or a folder of 28x28 PNGs. The pinned MNIST evaluator
scores them against its reference digits (real MNIST under --data-root), as ``Evaluator`` does
for a trial: FID-like and its floor, KID, precision / recall / density / coverage, local FID,
SSIM, the classifier scores, ``metric/success`` (strict: close to real digits) and
``metric/recognisable`` (lax: a number appears; with its share and class count).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# PRDC's k = 5 nearest neighbours (ganrf.metrics.scores) need 6 images; KID draws subsets of
# 1,000, and up to that every subset is the whole set (its std reads 0).
MIN_IMAGES = 6
KID_SUBSET = 1000
# Both levels' thresholds were calibrated on sets of 2,000 and 10,000 samples
# (scripts/calibrate_recognisable.py, scripts/metric_references.py): below that no verdict is
# given (6 blank images passed the strict level: every neighbour radius spans the whole set).
VERDICT_MIN = 2000
VERDICT_KEYS = ("metric/success", "metric/recognisable")
MAX_REFERENCE = 10_000  # the test split holds 10,000 digits: the reference is at most that


class ScoreInputError(ValueError):
    """Images ``ganrf score`` cannot read; the message is one sentence saying why."""


def _from_array(a: np.ndarray, where: str) -> np.ndarray:
    """``(N, 28, 28)`` float32 in [0, 1] from an array as the module doc describes."""
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3 or a.shape[1:] != (28, 28):
        raise ScoreInputError(
            f"{where} has shape {a.shape}; expected (N, 28, 28) or (N, 1, 28, 28)"
        )
    return _unit_range(a, where)


def _unit_range(a: np.ndarray, where: str) -> np.ndarray:
    """``a`` as float32 in [0, 1]: uint8 0-255 scaled, float checked to lie in [0, 1]."""
    if len(a) == 0:
        raise ScoreInputError(f"{where} holds no images")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if not np.issubdtype(a.dtype, np.floating):
        raise ScoreInputError(
            f"{where} has dtype {a.dtype}; expected uint8 0-255 or float in [0, 1]"
        )
    lo, hi = float(np.min(a)), float(np.max(a))
    if not (np.isfinite(lo) and np.isfinite(hi) and lo >= 0.0 and hi <= 1.0):
        raise ScoreInputError(
            f"{where} has float values from {lo:g} to {hi:g}; expected float in [0, 1] "
            "(or uint8 0-255)"
        )
    return a.astype(np.float32)


def _from_folder(folder: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise ScoreInputError(f"{folder} holds no .png images")
    out = []
    for f in files:
        try:
            with Image.open(f) as im:
                a = np.asarray(im.convert("L"))
        except (UnidentifiedImageError, OSError):
            raise ScoreInputError(f"{f} is not an image PIL can read") from None
        if a.shape != (28, 28):
            raise ScoreInputError(f"{f} is {a.shape[1]}x{a.shape[0]} pixels; expected 28x28")
        out.append(a)
    return np.stack(out).astype(np.float32) / 255.0


def load_images(path: str | Path) -> np.ndarray:
    """The images at ``path`` as ``(N, 28, 28)`` float32 in [0, 1].

    Raises:
        ScoreInputError: a missing path, an unreadable file, wrong shape, dtype or range, or no
            images.
    """
    p = Path(path)
    if not p.exists():
        raise ScoreInputError(f"{p} does not exist")
    if p.is_dir():
        return _from_folder(p)
    if p.suffix not in (".npy", ".npz"):
        raise ScoreInputError(f"{p} is neither a .npy / .npz array nor a folder of PNGs")
    return _from_array(_read_array(p), str(p))


def _read_array(p: Path) -> np.ndarray:
    try:
        loaded = np.load(p, allow_pickle=False)
    except Exception as e:
        raise ScoreInputError(f"{p} is not a readable NumPy file ({type(e).__name__})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            if len(loaded.files) != 1:
                raise ScoreInputError(
                    f"{p} holds {len(loaded.files)} arrays ({', '.join(loaded.files) or 'none'}); "
                    "expected exactly one"
                )
            loaded = loaded[loaded.files[0]]
    return loaded


def _as_nchw(a: np.ndarray, where: str) -> np.ndarray:
    """(N, H, W), (N, C, H, W) or (N, H, W, C) with C 1 or 3, as (N, C, H, W)."""
    if a.ndim == 3:
        return a[:, None]
    if a.ndim == 4 and a.shape[1] in (1, 3):
        return a
    if a.ndim == 4 and a.shape[3] in (1, 3):
        return a.transpose(0, 3, 1, 2)
    raise ScoreInputError(
        f"{where} has shape {a.shape}; expected (N, H, W), (N, C, H, W) or (N, H, W, C) with "
        "1 (grey) or 3 (RGB) channels"
    )


# PNG modes read as they are: 1-bit and 8-bit grey, RGB and palette (a folder mixing grey and
# RGB is read as RGB, each grey image repeated over the three channels).
READABLE_MODES = ("1", "L", "P", "RGB")


def _set_from_folder(folder: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise ScoreInputError(f"{folder} holds no .png images")
    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                if im.mode not in READABLE_MODES:  # 16-bit grey would clip, alpha be dropped
                    raise ScoreInputError(
                        f"{f} is a {im.mode} PNG; save the set as 8-bit grey or RGB "
                        "(no alpha channel)"
                    )
                images.append(im.convert("L" if im.mode in ("1", "L") else "RGB"))
        except (UnidentifiedImageError, OSError):
            raise ScoreInputError(f"{f} is not an image PIL can read") from None
    for f, im in zip(files, images):
        if im.size != images[0].size:
            raise ScoreInputError(
                f"{f} is {im.size[0]}x{im.size[1]} pixels and {files[0].name} "
                f"{images[0].size[0]}x{images[0].size[1]}; every image of a set must be one size"
            )
    mode = "RGB" if any(im.mode == "RGB" for im in images) else "L"
    return np.stack([_hwc(np.asarray(im.convert(mode))) for im in images]).transpose(0, 3, 1, 2)


def _hwc(a: np.ndarray) -> np.ndarray:
    return a[:, :, None] if a.ndim == 2 else a


def load_set(path: str | Path) -> np.ndarray:
    """Any image set at ``path`` for ``--reference`` scoring: a folder of PNGs (grey or RGB, one
    size) or a ``.npy`` / ``.npz`` array (N, H, W), (N, C, H, W) or (N, H, W, C), uint8 0-255
    or float in [0, 1], at least ``swd.MIN_LEVEL`` px a side: ``(N, C, H, W)`` float32 in
    [0, 1].

    Raises:
        ScoreInputError: a missing path, an unreadable file, a wrong shape, dtype or range, too
            small images, or no images.
    """
    from ganrf.metrics.swd import MIN_LEVEL

    p = Path(path)
    if not p.exists():
        raise ScoreInputError(f"{p} does not exist")
    if p.is_dir():
        a = _set_from_folder(p)
    elif p.suffix in (".npy", ".npz"):
        a = _as_nchw(_read_array(p), str(p))
    else:
        raise ScoreInputError(f"{p} is neither a .npy / .npz array nor a folder of PNGs")
    a = _unit_range(a, str(p))
    if min(a.shape[2:]) < MIN_LEVEL:
        raise ScoreInputError(
            f"{p} holds {a.shape[3]}x{a.shape[2]} images; SWD needs at least {MIN_LEVEL} px a side"
        )
    return np.ascontiguousarray(a)


def compare(fake: np.ndarray, real: np.ndarray) -> tuple[dict, list[str]]:
    """What needs no downloaded network, of ``fake`` against ``real`` (both ``(N, C, H, W)`` in
    [0, 1]): SWD per level and overall (:mod:`ganrf.metrics.swd`), and SSIM of each set (a
    collapse scores near 1); with the notes of what was not scored or was cut, one sentence
    each.

    Raises:
        ScoreInputError: the two sets differ in channels or size.
    """
    import torch

    from ganrf.metrics.scores import mean_pairwise_ssim
    from ganrf.metrics.swd import MAX_IMAGES, swd

    if fake.shape[1:] != real.shape[1:]:
        raise ScoreInputError(
            f"the sets differ: {_shape(fake)} images against {_shape(real)} in the reference; "
            "compare sets of one size and colour"
        )
    f, r = (torch.from_numpy(x) * 2 - 1 for x in (fake, real))
    n = min(len(f), len(r), MAX_IMAGES)
    notes = []
    if n < max(len(f), len(r)):
        first = "the first image" if n == 1 else f"the first {n:,} images"
        notes.append(
            f"SWD compares {first} of each set (it sorts equally many patches; "
            f"{MAX_IMAGES:,} at most)"
        )
    levels = swd(r, f)
    report = {f"metric/swd_l{k[1:]}": v for k, v in levels.items() if k != "mean"}
    report = {"metric/swd": levels["mean"], **report, "metric/samples": len(f)}
    for key, x, name in (("metric/ssim", f, "FAKE"), ("reference/ssim", r, "the reference")):
        if len(x) < 2:
            report[key] = None
            notes.append(
                f"SSIM of {name} is not scored: it compares pairs, so give 2 images or more"
            )
        else:
            report[key] = mean_pairwise_ssim(x)
    return report, notes


def _shape(a: np.ndarray) -> str:
    return f"{a.shape[3]}x{a.shape[2]} {'RGB' if a.shape[1] == 3 else 'grey'}"


def score(images: np.ndarray, data_root: str) -> dict:
    """Every sample metric of ``images`` ``(N, 28, 28)`` in [0, 1], with both levels.

    Raises:
        ScoreInputError: real MNIST (the FID reference) is not under ``data_root``.
    """
    import torch

    from ganrf.config import TrainConfig
    from ganrf.data import DataError
    from ganrf.metrics.evaluate import Evaluator

    n_ref = min(len(images), MAX_REFERENCE)
    cfg = TrainConfig.from_dict(
        {"data.root": data_root, "data.download": False, "eval.samples": n_ref}
    )
    try:
        ev = Evaluator(cfg, torch.device("cpu"))
    except DataError:
        raise ScoreInputError(
            f"the FID reference needs real MNIST and {Path(data_root) / 'MNIST' / 'raw'} does not "
            "hold its four *-ubyte files; pass --data-root DIR with DIR/MNIST/raw/*-ubyte "
            "(e.g. the folder a sweep downloaded to)"
        ) from None
    x = torch.from_numpy(images)[:, None] * 2 - 1  # (N, 1, 28, 28) in [-1, 1]
    return ev.score_images(x)


# Report keys of --reference that are no trial metric.
LABELS = {"reference/ssim": "mean pairwise SSIM of the reference set (high = alike)"}


def format_report(report: dict, missing: str = "not judged") -> str:
    from ganrf.metrics.spec import METRICS

    rows = []
    for key, value in report.items():
        label = METRICS[key].label if key in METRICS else LABELS.get(key, key.split("/", 1)[1])
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        shown = missing if value is None else shown
        rows.append(f"{key:<30} {shown:>12}  {label}")
    return "\n".join(rows)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "score",
        help="score 28x28 digits as a trial's samples are scored, or any image set against a "
        "reference (--reference: SWD per level, SSIM)",
        description=__doc__.replace("``", ""),  # the docstring's markup is not for a terminal
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", help=".npy / .npz array or a folder of PNGs")
    p.add_argument(
        "--reference",
        metavar="REAL",
        help="compare PATH with this image set (same layouts, grey or RGB, any size >= 16 px): "
        "SWD per pyramid level and overall, and SSIM, all without a downloaded network "
        "(default: score PATH as 28x28 digits against real MNIST)",
    )
    p.add_argument(
        "--data-root", default="data", help="folder holding MNIST/raw/*-ubyte (default data)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object keyed by report keys")
    p.set_defaults(func=run)


def check_size(n: int) -> str | None:
    """Refuse a set too small for a metric (one sentence); a warning (or None) for a small one."""
    if n < MIN_IMAGES:
        raise ScoreInputError(
            f"{n} image(s) are too few to score: precision, recall, density and coverage use "
            f"each image's 5 nearest neighbours, so give at least {MIN_IMAGES} (trials score 2,000)"
        )
    unjudged = (
        f"neither level is judged below {VERDICT_MIN:,} samples (both were calibrated on "
        "2,000 and 10,000)"
    )
    if n <= KID_SUBSET:  # at 1,000 too every subset is the whole set
        return (
            f"ganrf score: warning: {n} images: FID-like and KID read high (KID can go below 0) on "
            f"so few, KID's subsets are all the whole set (its std reads 0), and {unjudged}; "
            "compare only sets of the same size (trials score 2,000)"
        )
    if n < VERDICT_MIN:
        return (
            f"ganrf score: warning: {n} images: {unjudged}; compare only sets of the same size "
            "(trials score 2,000)"
        )
    return None


def run_reference(args: argparse.Namespace) -> int:
    try:
        fake, real = load_set(args.path), load_set(args.reference)
        report, notes = compare(fake, real)
    except ScoreInputError as e:
        print(f"ganrf score: error: {e}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"ganrf score: note: {note}", file=sys.stderr)
    print(json.dumps(report) if args.json else format_report(report, missing="not scored"))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.reference:
        return run_reference(args)
    try:
        images = load_images(args.path)
        warning = check_size(len(images))
        report = score(images, args.data_root)
    except ScoreInputError as e:
        print(f"ganrf score: error: {e}", file=sys.stderr)
        return 2
    if len(images) < VERDICT_MIN:
        report.update(dict.fromkeys(VERDICT_KEYS))  # null: not judged (the warning says why)
    if warning:
        print(warning, file=sys.stderr)
    print(json.dumps(report) if args.json else format_report(report))
    return 0
