"""The one atomic write (ganrf/storage.py): whole or not at all."""

import pytest

from ganrf.storage import atomic_path


def test_the_new_file_replaces_the_old_one_whole(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("old")
    with atomic_path(path) as tmp:
        tmp.write_text("new")
        assert path.read_text() == "old"  # not yet: a reader sees the old file meanwhile
        assert tmp.parent == tmp_path and tmp != path
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_an_error_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "design.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="killed"), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["design.json"]


def test_every_writer_uses_it():
    """No module renames a .tmp file of its own (the five copies this replaced)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    own = sorted(
        p.relative_to(root).as_posix()
        for folder in ("ganrf", "analysis", "scripts")
        for p in (root / folder).rglob("*.py")
        if p.name != "storage.py"
        and any(s in p.read_text() for s in ('".tmp"', '.tmp")', "os.replace(", "tmp.replace("))
    )
    assert own == []
