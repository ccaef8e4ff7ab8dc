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
# True once plotly has drawn every chart on the page (each sets data-rendered when it has).
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
