"""The findings as the page shows them: each answer with, beside it, what the generators drew.

The notes judged their GANs by eye, so each contrast of :mod:`analysis.findings` shows, per side
and per configuration, every seed's latest sample grid (drawn from the trial's fixed noise; read
from its folder by :func:`ganrf.runs.latest_sample_grid`). The grids are the gallery's latest
thumbnails: :class:`analysis.gallery.Images` embeds each image once, and the page's script fills
``img[data-img]`` from that one list, so showing them here costs no extra bytes where the gallery
shows the same step.
"""

from __future__ import annotations

import pandas as pd

from analysis.control import LAX, STRICT, controls, sentence
from analysis.figures import esc
from analysis.findings import Finding, Side
from analysis.gallery import THUMB_PX, Images
from analysis.stats import fmt
from ganrf import runs
from ganrf.metrics.spec import DIGITS, SWD_LEVELS, swd_span

# What tells one configuration of a side from another (a side may pool several).
CONFIG_FIELDS = ("layers", "rf", "depth", "head", "channels")


def config_label(row: dict) -> str:
    """A configuration in words: ``conv5 (rf 5, depth 1), image head, D 6,353 params``."""
    text = f"{fmt(row.get('layers'))} (rf {fmt(row.get('rf'))}, depth {fmt(row.get('depth'))})"
    text += f", {fmt(row['head'])} head" if fmt(row.get("head")) else ""
    params = row.get("params_d")
    return text + (
        f", D {int(params):,} params" if params is not None and not pd.isna(params) else ""
    )


def _seed_grid(row: dict, images: Images) -> str:
    latest = runs.latest_sample_grid(row["trial_dir"]) if row.get("trial_dir") else None
    seed = f"seed {esc(fmt(row.get('seed')))}"
    if latest is None:
        return f'<figure class="grid"><div class="noimg">no samples</div><figcaption>{seed}</figcaption></figure>'
    step, path = latest
    idx = images.add(path, THUMB_PX)
    if idx < 0:
        return f'<figure class="grid"><div class="noimg">unreadable</div><figcaption>{seed}</figcaption></figure>'
    alt = esc(f"samples of {config_label(row)}, seed {fmt(row.get('seed'))}, step {step}")
    return (
        f'<figure class="grid"><img data-img="{idx}" alt="{alt}" title="{alt}">'
        f"<figcaption>{seed} · step {step}</figcaption></figure>"
    )


def side_html(side: Side, images: Images) -> str:
    """One side of a contrast: its label, then per configuration a row of its seeds' grids."""
    rows = side.rows if side.rows is not None else pd.DataFrame()
    fields = [c for c in CONFIG_FIELDS if c in rows]
    configs: dict[tuple, list[dict]] = {}
    order = rows.sort_values([c for c in ("rf", "depth", "seed") if c in rows], kind="stable")
    for r in order.to_dict("records"):
        configs.setdefault(tuple(fmt(r[c]) for c in fields), []).append(r)
    parts = []
    for members in configs.values():
        grids = "".join(_seed_grid(r, images) for r in members)
        parts.append(
            f'<div class="config"><div class="lbl">{esc(config_label(members[0]))}</div>'
            f'<div class="seeds">{grids}</div></div>'
        )
    return f'<div class="side"><b>{esc(side.label)}</b>{"".join(parts)}</div>'


def finding_html(finding: Finding, images: Images) -> str:
    """One finding: its sentence, and beside it each side's latest samples."""
    sides = "".join(side_html(s, images) for s in finding.sides)
    grids = (
        f'<div class="sides" title="latest sample grid of each seed (fixed noise)">{sides}</div>'
        if sides
        else ""
    )
    return f'<li class="answer"><p>{esc(finding.text)}</p>{grids}</li>'


def real_html(final: pd.DataFrame, images: Images) -> str:
    """Real images laid out as the sample grids (``samples/real.png``, which trials save once:
    the reference set's digits), to judge the samples against; one per dataset of the page."""
    if "trial_dir" not in final:
        return ""
    figures = [
        _real_figure(rows, dataset, images)
        for dataset, rows in (final.groupby("dataset", sort=True) if "dataset" in final else [])
    ]
    figures = [f for f in figures if f]
    if not figures:
        return ""
    return (
        '<div class="finding real-samples"><h3>Real images, for comparison</h3>'
        f'<div class="seeds">{"".join(figures)}</div></div>'
    )


def _real_figure(rows: pd.DataFrame, dataset: str, images: Images) -> str:
    path = next((p for d in rows["trial_dir"].dropna() if (p := runs.real_grid(d))), None)
    idx = images.add(path, THUMB_PX) if path is not None else -1
    if idx < 0:
        return ""
    alt = esc(f"real {dataset} images, as the sample grids are laid out")
    return (
        f'<figure class="grid real"><img data-img="{idx}" alt="{alt}" title="{alt}">'
        f"<figcaption>real {esc(dataset)}</figcaption></figure>"
    )


def swd_text(rows: pd.DataFrame) -> str:
    """The SWD per level of ``rows`` (mean over their seeds) and their samples' mean pairwise
    SSIM (near 1: all alike, a collapse SWD can miss), in words: ``SWD x10^3 by structure size:
    7 px 12.3 · 14 px 8.1; mean 10.2; SSIM 0.12 (n = 2)``; "" without SWD."""
    levels = [k for k in range(SWD_LEVELS) if f"metric/swd_l{k}" in rows]
    parts = []
    for k in levels:
        v = rows[f"metric/swd_l{k}"].dropna()
        if len(v):
            parts.append(f"{swd_span(k)} px {v.mean():.3g}")
    if not parts:
        return ""
    mean = rows["metric/swd"].dropna()
    ssim = rows["metric/ssim"].dropna() if "metric/ssim" in rows else mean.iloc[:0]
    alike = f"; SSIM {ssim.mean():.2g}" if len(ssim) else ""  # near 1: all alike, a collapse
    return (
        f"SWD x10^3 by structure size: {' · '.join(parts)}; mean {mean.mean():.3g}{alike} "
        f"(n = {len(mean)})"
    )


def by_rf_html(final: pd.DataFrame, images: Images) -> str:
    """Per dataset without digit judges (photographs, faces, ImageNet: the notes' questions are
    MNIST's), one row per rf: real images, then each configuration of that rf (head, depth,
    layers) with its seeds' latest sample grids and its SWD per level, so a reader sees which
    structures each rf reproduces and at which scale the samples differ."""
    if "trial_dir" not in final or "rf" not in final or "dataset" not in final:
        return ""
    sections = []
    ok = final[final["trial_status"].isin(("finished", "running"))]
    for dataset, rows in ok.groupby("dataset", sort=True):
        if dataset in DIGITS or rows["rf"].nunique() < 2:
            continue
        real = _real_figure(rows, dataset, images)
        lines = []
        for rf, at_rf in rows.groupby("rf", sort=True):
            cells = []
            keys = [c for c in ("head", "depth", "layers") if c in at_rf]
            for _, config in at_rf.groupby(keys, sort=True):
                members = config.sort_values("seed").to_dict("records")
                grids = "".join(_seed_grid(r, images) for r in members)
                swd = swd_text(config)
                cells.append(
                    f'<div class="config"><div class="lbl">{esc(config_label(members[0]))}</div>'
                    f'<div class="seeds">{grids}</div>'
                    + (f'<div class="swd">{esc(swd)}</div>' if swd else "")
                    + "</div>"
                )
            lines.append(
                f'<div class="rf-row" data-rf="{esc(fmt(rf))}"><h4>rf {esc(fmt(rf))}</h4>'
                f'<div class="sides">{real}{"".join(cells)}</div></div>'
            )
        sections.append(
            f'<div class="finding by-rf" data-dataset="{esc(dataset)}"><h3>{esc(dataset)}: what '
            "each rf reproduces</h3><p>Per rf, real images beside each configuration's latest "
            "samples (every seed), and the sliced Wasserstein distance to real images per "
            "pyramid level: a level's 7 px patches span 7, 14, 28 ... px of the image, so a "
            "high distance at one size says the samples get structure of that size wrong "
            "(lower is closer); SSIM is the samples' mean pairwise similarity (near 1: all "
            "alike, a collapse).</p>"
            f"{''.join(lines)}</div>"
        )
    if not sections:
        return ""
    return "<h2>Samples by rf</h2>" + "".join(sections)


def findings_html(
    answers: list[tuple[str, list[Finding]]],
    images: Images,
    control: list[Finding] | None = None,
    real: str = "",
) -> str:
    """The page's findings section: real images laid out as the samples are (``real``,
    :func:`real_html`), the positive control (what passing looks like in this run,
    :mod:`analysis.control`), then each question, its answers with their samples."""
    if not answers and not control:  # no digits: no question (each rf row shows real images)
        return ""
    out = ["<h2>Findings: the notes' four questions</h2>"]
    out.append(
        "<p>Beside each answer: the latest sample grid of every seed of each configuration "
        "compared, drawn from the trial's fixed noise. Click a grid to see it full size.</p>"
    )
    if real:
        out.append(real)
    if control:
        items = "".join(finding_html(f, images) for f in control)
        out.append(
            f'<div class="finding control-samples"><h3>Positive control</h3><ul>{items}</ul></div>'
        )
    for title, found in answers:
        items = "".join(finding_html(f, images) for f in found)
        out.append(f'<div class="finding"><h3>{esc(title)}</h3><ul>{items}</ul></div>')
    return "".join(out)


def control_findings(final: pd.DataFrame) -> list[Finding]:
    """The control of each judged preset as a one-sided finding, so the page shows its seeds'
    sample grids above the questions' (what passing looks like in this run)."""
    out = []
    for preset, c in controls(final).items():
        if c is None:
            continue
        label = f"control ({preset})" if preset else "control"
        side = Side(label, c.rows["metric/fid"], c.rows[STRICT], c.rows, c.rows[LAX])
        out.append(Finding(sentence(preset, c), (side,)))
    return out
