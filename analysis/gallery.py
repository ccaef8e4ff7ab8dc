"""The gallery: each trial's sample grids and ERF maps over training, as embedded thumbnails.

Every evaluation saves a sample grid (``samples/stepNNNNNNNN.png``) and an ERF map; the gallery
embeds the latest of each at full thumbnail size and, within a byte budget, earlier ones at a
smaller size, evenly spaced over training. A step slider shows, on every card, the latest image
at or before the chosen step.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pandas as pd

from analysis.figures import esc
from analysis.stats import Configs, fmt

THUMB_PX = 160  # the latest images
EARLIER_PX = 112  # earlier steps
MAX_STEPS = 8  # images per trial and kind on the slider, the latest included
BUDGET_BYTES = 7 * 2**20  # every image of a page, base64 included
# (img class the page's script fills, the label above it)
PANES = (
    ("samples", "samples (fixed noise)"),
    ("ERF", "ERF map of the conv stack"),
)


def thumb(path: Path, px: int = THUMB_PX, quality: int = 80) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((px, px))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=quality)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _artifacts(rows: pd.DataFrame) -> list[tuple[int, str | None, str | None]]:
    """(step, samples path, conv-stack ERF map path) of each evaluation that saved one."""
    rows = rows.sort_values("step")
    none = [None] * len(rows)
    out = []
    for step, s, e in zip(
        rows["step"],
        rows.get("artifact/samples", none),
        rows.get("artifact/erf_conv", none),
    ):
        s, e = (s if isinstance(s, str) else None), (e if isinstance(e, str) else None)
        if (s or e) and pd.notna(step):
            out.append((int(step), s, e))
    return out


def _spaced(items: list, k: int) -> list:
    """``k`` items evenly spaced over ``items`` (the last always among them)."""
    if k >= len(items):
        return items
    if k <= 1:
        return items[-1:]
    idx = sorted({round(i * (len(items) - 1) / (k - 1)) for i in range(k)})
    return [items[i] for i in idx]


class Images:
    """The page's embedded images, each once (``IMGS`` in the page)."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.index: dict[tuple[str, int], int] = {}
        self.bytes = 0

    def add(self, path: Path, px: int) -> int:
        key = (str(path), px)
        if key not in self.index:
            url = thumb(path, px, 80 if px == THUMB_PX else 70)
            if url is None:
                self.index[key] = -1
            else:
                self.index[key] = len(self.urls)
                self.urls.append(url)
                self.bytes += len(url)
        return self.index[key]


def gallery(frame: pd.DataFrame, configs: Configs, images: Images) -> tuple[str, dict]:
    """(the cards' HTML, the slider's data: steps and each card's frames)."""
    final = configs.final
    by_trial = dict(iter(frame.groupby("trial")))
    arts = {}
    for _, r in final.iterrows():
        rows = by_trial.get(r["trial"])
        arts[r["key"]] = (
            Path(r.get("trial_dir", "")),
            _artifacts(rows) if rows is not None else [],
        )
    frames: dict[str, list] = {}
    for key, (folder, items) in arts.items():  # the latest of every trial first
        if items:
            step, s, e = items[-1]
            frames[key] = [[step, *(images.add(folder / p, THUMB_PX) if p else -1 for p in (s, e))]]
    # an earlier step at EARLIER_PX costs about half the latest: fill what the budget leaves
    n_trials = max(1, len(frames))
    earlier = max(1, images.bytes // n_trials // 2)
    room = (BUDGET_BYTES - images.bytes) // (n_trials * earlier)
    k = int(max(0, min(MAX_STEPS - 1, room)))
    for key, (folder, items) in arts.items():
        for step, s, e in _spaced(items[:-1], k) if k else []:
            ids = [images.add(folder / p, EARLIER_PX) if p else -1 for p in (s, e)]
            frames[key].insert(-1, [step, *ids])
    steps = sorted({f[0] for fs in frames.values() for f in fs})
    cards = []
    order = final.sort_values(["cfg", "seed"], na_position="last")
    for _, r in order.iterrows():
        imgs = "".join(
            f'<span class="pane"><span class="lbl">{esc(name)}</span>'
            f'<img class="{kind}" alt="{esc(name)}" title="{esc(name)}">'
            f'<div class="noimg {kind}">no {kind}</div></span>'
            for kind, name in PANES
        )
        cards.append(
            f'<figure class="card" data-key="{esc(r["key"])}">{imgs}'
            f"<figcaption>{esc(r['cfg_label'])} · seed {esc(fmt(r['seed']))} · "
            f"{esc(r['trial_status'])}<br><span class=step></span></figcaption></figure>"
        )
    slider = (
        f'<label>step <input type="range" class="step-slider" min="0" max="{max(0, len(steps) - 1)}"'
        f' value="{max(0, len(steps) - 1)}"> <output></output></label>'
        if steps
        else "<p>no sample grids saved yet</p>"
    )
    return slider + f'<div class="gallery">{"".join(cards)}</div>', {
        "steps": steps,
        "frames": frames,
    }
