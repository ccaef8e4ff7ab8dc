"""Headless Chromium for the page's test and benchmark (Debian's ``chromium``, driven by
Playwright with ``executable_path``: no browser download)."""

from __future__ import annotations

import os
import shutil

# Without the background-networking flags Chromium keeps dialling hosts a closed network refuses.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
# True once plotly has drawn every chart on the page (each sets data-rendered="1" when it has; the
# page draws those on screen first and the others in the background, with no scrolling needed).
ALL_CHARTS_DRAWN = (
    "document.querySelectorAll('.chart').length > 0 && document.querySelectorAll('.chart').length"
    " === document.querySelectorAll('.chart[data-rendered=\"1\"]').length"
)


def find_chromium() -> str | None:
    return (
        os.environ.get("GANRF_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


# True once the page's script has run (sorting, filters, slider, controls work) and every chart
# on the first screen is drawn: what a reader sees and can use.
FIRST_SCREEN_DRAWN = (
    "document.body?.dataset.ready === '1' && [...document.querySelectorAll('.chart')].every(c => {"
    " const r = c.getBoundingClientRect();"
    " return r.width === 0 || r.bottom <= 0 || r.top >= innerHeight || c.dataset.rendered === '1';"
    " })"
)
