"""Writing a local file whole or not at all: the one atomic write every writer uses (run
folders, checkpoints, reference caches, the page and results.csv, downloaded data). Torch-free."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write the new file to.

    When the block ends normally the temporary file replaces ``path`` in one rename, so a
    reader (or a run killed mid-write) sees the old file or the new one, never half of one; when
    it raises, the temporary file is removed and ``path`` is left as it was. The folder must
    exist.

    Example::

        with atomic_path(folder / "results.csv") as tmp:
            frame.to_csv(tmp)
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # same folder: rename is atomic
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
