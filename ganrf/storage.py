"""Writing a file whole or not at all, on a local disk or an object store (a URI such as
``s3://bucket/runs``): the one atomic write every writer uses (run folders, checkpoints,
reference caches, the page and results.csv, downloaded data), and reading bytes back from either.
What the files of a run folder are called and mean is :mod:`ganrf.runs`'s. Torch-free."""

from __future__ import annotations

import contextlib
import os
import threading
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


def is_uri(path: str | Path) -> bool:
    return "://" in str(path)


def storage_root(path: str | Path) -> str:
    """A storage path as Tune should get it: a URI as given, a local folder made absolute."""
    return str(path).rstrip("/") if is_uri(path) else str(Path(path).resolve())


def filesystem(path: str | Path):
    """(pyarrow filesystem, path inside it) for a local folder or a URI."""
    import pyarrow.fs as pafs

    if is_uri(path):
        with reaching(path):  # no network, no such bucket, no credentials, an unknown scheme
            return pafs.FileSystem.from_uri(str(path))
    return pafs.LocalFileSystem(), str(Path(path).resolve())


class StorageError(OSError):
    """A storage URI that cannot be reached: one sentence saying which and what to do."""


@contextlib.contextmanager
def reaching(uri: str | Path) -> Iterator[None]:
    """Inside it, a failure to reach the object store at ``uri`` (pyarrow's OSError of many
    lines) is one :class:`StorageError` sentence; a missing path stays FileNotFoundError."""
    try:
        yield
    except (FileNotFoundError, StorageError):
        raise
    except OSError as e:
        if not is_uri(uri):
            raise
        raise StorageError(
            f"cannot reach {uri} ({_first_sentence(e)}); check the address, the network and "
            "the credentials, or copy the folder here and give its local path"
        ) from None


def _first_sentence(e: Exception) -> str:
    """pyarrow's error, shortened to its first clause (its AWS errors run to many lines)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text.split("; Details")[0].rstrip(".")


def read_bytes(uri: str | Path) -> bytes:
    fs, inner = filesystem(uri)
    with fs.open_input_stream(inner) as f:
        return f.read()


def read_text(uri: str | Path) -> str:
    return read_bytes(uri).decode()


def write_whole(fs, path: str, data: bytes) -> None:
    """Write ``data`` at ``path`` on the pyarrow filesystem ``fs``, making its folder, whole or
    not at all: a kill at any moment (a SIGKILL, the trial watchdog's ``os._exit``, a lost
    node) leaves the old file or the new one, never a cut one. On a local disk the bytes go to a
    temporary file beside it that one rename puts in its place; an object store's upload is
    whole by itself (the object appears only when its stream closes). Every run file is
    written through here."""
    folder, _, name = path.rpartition("/")
    fs.create_dir(folder, recursive=True)
    if fs.type_name != "local":
        with fs.open_output_stream(path) as f:
            f.write(data)
        return
    tmp = f"{folder}/.{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with fs.open_output_stream(tmp) as f:
            f.write(data)
        fs.move(tmp, path)  # rename(2): atomic within a folder
    except BaseException:
        with contextlib.suppress(OSError):
            fs.delete_file(tmp)
        raise


def write_text(uri: str | Path, text: str) -> None:
    """Write ``text`` at ``uri``, making its folder, whole or not at all (:func:`write_whole`)."""
    fs, inner = filesystem(uri)
    write_whole(fs, inner, text.encode())


def list_names(uri: str | Path) -> list[str]:
    """Names directly inside a folder (empty when it does not exist)."""
    import pyarrow.fs as pafs

    fs, inner = filesystem(uri)
    return sorted(
        i.base_name for i in fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
    )


def upload(local: Path, uri: str) -> None:
    """Copy one local file into the folder ``uri`` (it keeps its name), whole or not at all."""
    fs, root = filesystem(uri)
    write_whole(fs, f"{root.rstrip('/')}/{local.name}", local.read_bytes())
