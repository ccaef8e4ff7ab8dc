"""Every quick command of the README and docs/ runs as written: `ganrf rf` and `ganrf designs`
(whose documented output must be what they print), and each sweep script's `--help` and
`--dry-run` (exit 0). Commands that train, download or need a placeholder filled are left out."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
QUICK = re.compile(
    r"^(ganrf (rf|designs) |python sweeps/\w+\.py .*(--dry-run|--help)|ganrf \w+ --help|"
    r"python -m analysis --help)"
)
PLACEHOLDER = re.compile(r"\b(NAME|DIR|DATA|PATH|FILE|PID|STORAGE)\b")


def commands() -> list[tuple[str, str, str | None]]:
    """(doc, command, documented output or None) of every quick command in a fenced block."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for lang, block in re.findall(r"```(\w*)\n(.*?)```", text, re.S):
            if lang == "console":
                for part in re.split(r"^\$ ", block, flags=re.M)[1:]:
                    cmd, _, out = part.partition("\n")
                    if QUICK.match(cmd) and not PLACEHOLDER.search(cmd):
                        found.append((doc.name, cmd, out))
            elif lang in ("bash", "sh", ""):
                for line in block.splitlines():
                    cmd = re.split(r"\s+#\s", line.strip())[0].strip()
                    quick = QUICK.match(cmd) and "--estimate" not in cmd
                    if quick and not PLACEHOLDER.search(cmd):
                        found.append((doc.name, cmd, None))
    return found


COMMANDS = commands()


def test_the_docs_have_quick_commands():
    assert len(COMMANDS) >= 5
    assert any(out for _, _, out in COMMANDS)  # some with their output shown


@pytest.mark.parametrize("doc,cmd,out", COMMANDS, ids=[c for _, c, _ in COMMANDS])
def test_a_documented_command_runs_as_written(doc, cmd, out):
    argv = shlex.split(cmd)
    if argv[0] == "ganrf":
        argv = [sys.executable, "-m", "ganrf", *argv[1:]]
    elif argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if out is None:
        assert run.returncode == 0, f"{doc}: {cmd}\n{run.stderr[-2000:]}"
        return
    printed = (run.stdout + run.stderr).rstrip("\n")
    # a line "..." in the docs stands for lines left out: the pieces appear in order, the first
    # at the start
    pieces = [p.strip("\n") for p in re.split(r"^\.\.\.$", out, flags=re.M)]
    assert printed.startswith(pieces[0]) if len(pieces) > 1 else printed == pieces[0].rstrip("\n")
    at = len(pieces[0])
    for piece in pieces[1:]:
        at = printed.find(piece, at)
        assert at >= 0, f"{doc}: {cmd}: {piece!r} not printed"


def test_the_docs_metric_table_is_the_registry():
    from ganrf.metrics import spec, table

    text = (ROOT / "docs" / "metrics.md").read_text()
    assert table.replaced(text) == text  # python -m ganrf.metrics.table --write docs/metrics.md
    rows = [r for r in table.table().splitlines()[2:]]
    assert len(rows) == len(spec.METRICS)
    share = next(r for r in rows if r.startswith("| `metric/recognisable_share`"))
    assert "| higher | [0, 1], cut 0.52 | yes | yes |" in share


def test_the_metric_table_check_says_when_it_differs(tmp_path, capsys):
    from ganrf.metrics import table

    doc = tmp_path / "m.md"
    doc.write_text(f"a\n{table.BEGIN}\n| stale |\n{table.END}\nb\n")
    assert table.main(["--check", str(doc)]) == 1
    assert table.main(["--write", str(doc)]) == 0 and table.main(["--check", str(doc)]) == 0
    assert doc.read_text().startswith(f"a\n{table.BEGIN}\n| key | label |")
    (tmp_path / "none.md").write_text("no markers")
    assert table.main(["--check", str(tmp_path / "none.md")]) == 2
    assert "markers" in capsys.readouterr().err
