"""The layout keeps its promises (docs/architecture.md): imports point one way, ganrf's
sub-packages keep their order, no module imports another in a circle (lazy imports inside
functions and modules named by strings included), the torch-free core stays torch-free, only the
Tune adapter runs Ray, no module but runs.py names a run file, no file grows past 400 lines
and no function past 80."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ganrf", "analysis")

# What analysis/ may read from ganrf: the torch-free core (README).
TORCH_FREE_CORE = {
    "ganrf",
    "ganrf.config",
    "ganrf.runs",
    "ganrf.storage",
    "ganrf.design",
    "ganrf.design.rf",
    "ganrf.design.window",
    "ganrf.design.values",
    "ganrf.design.report",
    "ganrf.design.norms",
    "ganrf.design.designs",
    "ganrf.design.search",
    "ganrf.design.resnet",
    "ganrf.design.resnet_search",
    "ganrf.sweep",
    "ganrf.sweep.trial",
    "ganrf.sweep.experiments",
    "ganrf.metrics.spec",
}
# Modules that import Ray: the Tune adapter and what it hands Tune (the trainable, its progress
# callbacks, the trackers' logger callbacks); ganrf.sweep.raytune.cluster borrows only the
# launcher's config checks. All of them, and only they, live in ganrf.sweep.raytune.
RAY_PACKAGE = "ganrf.sweep.raytune"
RAY_MODULES = {
    "ganrf.sweep.raytune.tune",
    "ganrf.sweep.raytune.trainable",
    "ganrf.sweep.raytune.progress",
    "ganrf.sweep.raytune.trackers",
    "ganrf.sweep.raytune.tensorboard",
    "ganrf.sweep.raytune.samples",
    "ganrf.sweep.raytune.cluster",
}
# No source file grows past this many lines, and no function past MAX_FUNCTION_LINES (tests
# excepted).
MAX_LINES = 400
MAX_FUNCTION_LINES = 80
LINE_LIMITED = ("ganrf", "analysis", "sweeps", "scripts")


# Files whose long functions are being split elsewhere, left out of the function check until
# then (test_the_function_exceptions_are_still_needed says when one is no longer needed).
def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _top_level(tree: ast.Module):
    """The statements that run when the module is imported: not function bodies, not
    ``if TYPE_CHECKING:`` blocks."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo += node.orelse
            continue
        yield node
        todo += [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.stmt)]


def imports(path: Path, known: set[str], *, lazy: bool = True) -> set[str]:
    """Every module ``path`` imports, at the top or (``lazy``) inside a function: ``from a
    import b`` counts as ``a.b`` when that is a module, else as ``a``; with ``lazy``, a string
    that names a module counts too (``importlib.import_module`` of a registry or lazy map)."""
    found = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree) if lazy else _top_level(tree):
        if lazy and isinstance(node, ast.Constant) and node.value in known and "." in node.value:
            found.add(node.value)  # a module named by a string: importlib.import_module(...)
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            found |= subs or {node.module}
    return found


def graph(*, lazy: bool = True) -> dict[str, set[str]]:
    src = sources()
    return {name: imports(path, set(src), lazy=lazy) for name, path in src.items()}


def internal(g: dict[str, set[str]]) -> dict[str, set[str]]:
    return {m: {d for d in deps if d in g and d != m} for m, deps in g.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    assert cycles(internal(graph())) == []


def test_the_circle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_lazy_imports_count(tmp_path):
    mod = tmp_path / "m.py"
    mod.write_text(
        "import os\nif TYPE_CHECKING:\n    import torch.nn\n"
        "def f():\n    from ganrf.design import rf\n    import torch\n"
    )
    assert imports(mod, {"ganrf.design.rf"}) == {"os", "torch.nn", "ganrf.design.rf", "torch"}
    assert imports(mod, {"ganrf.design.rf"}, lazy=False) == {"os"}


def test_ganrf_never_imports_analysis():
    bad = {
        m: sorted(d for d in deps if d.split(".")[0] == "analysis")
        for m, deps in graph().items()
        if m.startswith("ganrf")
    }
    assert {m: d for m, d in bad.items() if d} == {}


def test_analysis_reads_only_the_torch_free_core():
    g = graph()
    used = {d for m, deps in g.items() if m.startswith("analysis") for d in deps}
    assert {d for d in used if d.startswith("ganrf")} <= TORCH_FREE_CORE
    assert not {d for d in used if d.split(".")[0] in ("torch", "torchvision", "ray")}


def test_the_torch_free_core_imports_no_torch_or_ray():
    """At import time: a function may import torch for what only torch can do (tracing a
    module, packing), which analysis never asks for."""
    g = graph(lazy=False)
    seen, todo = set(), set(TORCH_FREE_CORE)
    while todo:  # everything importing the core imports
        m = todo.pop()
        seen.add(m)
        todo |= {d for d in g.get(m, ()) if d in g and d not in seen}
    heavy = {
        m: sorted(d for d in g[m] if d.split(".")[0] in ("torch", "torchvision", "ray"))
        for m in seen
    }
    assert {m: d for m, d in heavy.items() if d} == {}


def test_only_the_tune_adapter_runs_ray():
    g = graph()
    assert {
        m for m, deps in g.items() if any(d.split(".")[0] == "ray" for d in deps)
    } == RAY_MODULES


def long_files(root: Path, folders=LINE_LIMITED, limit: int = MAX_LINES) -> dict[str, int]:
    """The .py files under ``folders`` of ``root`` longer than ``limit`` lines, with their
    lengths."""
    out = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            n = len(path.read_text().splitlines())
            if n > limit:
                out[path.relative_to(root).as_posix()] = n
    return out


def test_no_file_is_longer_than_400_lines():
    assert long_files(ROOT) == {}


def test_the_line_count_finds_a_long_file(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "ok.py").write_text("x = 1\n" * 400)
    (tmp_path / "scripts" / "long.py").write_text("x = 1\n" * 401)
    assert long_files(tmp_path, ("scripts",)) == {"scripts/long.py": 401}


def long_functions(
    root: Path, folders=LINE_LIMITED, limit: int = MAX_FUNCTION_LINES
) -> dict[str, int]:
    """The functions (methods and nested ones too) in the .py files under ``folders`` of
    ``root`` longer than ``limit`` lines, decorators left out, as ``path:line name`` with their
    lengths."""
    out = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = node.end_lineno - node.lineno + 1
                    if n > limit:
                        out[f"{rel}:{node.lineno} {node.name}"] = n
    return out


def test_no_function_is_longer_than_80_lines():
    assert long_functions(ROOT) == {}


def test_the_function_count_finds_a_long_function(tmp_path):
    (tmp_path / "scripts").mkdir()
    ok = "def ok():\n" + "    x = 1\n" * 79  # lines 1-80
    method = "class A:\n    def long(self):\n" + "        x = 1\n" * 80  # def on line 83
    (tmp_path / "scripts" / "m.py").write_text(ok + "\n" + method)
    assert long_functions(tmp_path, ("scripts",)) == {"scripts/m.py:83 long": 81}


RUN_FOLDER_NAMES = {"sweep.json", "params.json", "config.json", "design.json", "meta.json"}


def literal_run_names(path: Path) -> set[str]:
    """The run-folder file names and the ``meta.name`` key that ``path`` spells out in code
    (docstrings and comments may name them)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.rsplit("/", 1)[-1]
            if text in RUN_FOLDER_NAMES or node.value == "meta.name":
                found.add(text if text in RUN_FOLDER_NAMES else node.value)
    return found


def test_run_folders_are_read_and_written_through_runs_only(tmp_path):
    """ganrf.runs names a run folder's files and keys once; everyone else uses its constants
    and readers (analysis/notes.py opened design.json itself, listing.py read sweep.json)."""
    spelled = {
        p.relative_to(ROOT).as_posix(): sorted(literal_run_names(p))
        for folder in LINE_LIMITED
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p.name != "runs.py" and literal_run_names(p)
    }
    assert spelled == {}
    mod = tmp_path / "m.py"
    mod.write_text('"""reads design.json"""\nx = f"{d}/design.json"\ny = k == "meta.name"\n')
    assert literal_run_names(mod) == {"design.json", "meta.name"}


def test_shared_names_have_one_definition():
    """The dataset, head and norm names are typed once; every list of them is that one."""
    import argparse

    from ganrf.config import DATASETS
    from ganrf.design.designs import HEADS, NORMS
    from ganrf.metrics import spec
    from ganrf.tools.train import add_parser

    assert not hasattr(spec, "ALL_DATASETS")
    assert spec.Metric("x", "x").datasets is DATASETS
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    train = parser._subparsers._group_actions[0].choices["train"]
    choices = {a.dest: a.choices for a in train._actions}
    assert choices["dataset"] is DATASETS
    assert choices["head"] is HEADS and choices["norm"] is NORMS


def run_file_literals(root: Path) -> list[str]:
    """Every string literal outside ``ganrf/runs.py`` that is a run folder's file name or meta
    key: the run-folder contract is named in one module, which every other asks."""
    from ganrf import runs

    names = {
        *runs.FETCHED,
        runs.ERROR_PICKLE,
        runs.EXPERIMENT_KEY,
        runs.NAME_KEY,
    }
    found = []
    for folder in LINE_LIMITED:
        for path in sorted((root / folder).rglob("*.py")):
            if path == root / "ganrf" / "runs.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in names:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.value!r}")
    return found


def test_no_module_but_runs_names_a_run_file():
    assert run_file_literals(ROOT) == []


# ganrf's layers, lowest first: a module imports only from its own layer or a lower one. Within
# the sweep package, the Ray-free core (trials, experiments, presets, plans) is below the Ray Tune
# adapter, which the sweep's command line (sweep.cli) hands a valid space.
LAYERS = (
    "storage",
    "design",
    "config",
    "runs",
    "data",
    "models",
    "metrics",
    "training",
    "tools",
    "sweep",
    "sweep.raytune",
    "sweep.cli",
    "cli",
    "__main__",
)


def layer(module: str) -> int:
    """The index in :data:`LAYERS` of the longest entry that ``module`` (``ganrf.X...``) is in."""
    parts = module.split(".")[1:]
    names = [".".join(parts[:n]) for n in range(len(parts), 0, -1)]
    return next(LAYERS.index(n) for n in names if n in LAYERS)


def upward_imports(g: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{m} -> {d}"
        for m, deps in internal(g).items()
        if m.startswith("ganrf.") and m != "ganrf"
        for d in deps
        if d.startswith("ganrf.") and layer(d) > layer(m)
    )


def test_the_sub_packages_keep_their_order():
    # every ganrf module belongs to a layer, and no import, lazy or by string, points up
    assert {m.split(".")[1] for m in sources() if m.startswith("ganrf.")} <= set(LAYERS)
    assert layer("ganrf.sweep.trial") < layer("ganrf.sweep.raytune.tune") < layer("ganrf.sweep.cli")
    assert upward_imports(graph()) == []


def test_the_order_test_sees_an_upward_import_even_by_string():
    g = graph()
    g["ganrf.design.rf"] = g["ganrf.design.rf"] | {"ganrf.training.loop"}
    assert upward_imports(g) == ["ganrf.design.rf -> ganrf.training.loop"]
    found = imports(ROOT / "ganrf" / "metrics" / "__init__.py", set(sources()))
    assert "ganrf.metrics.evaluate" in found  # named only in the lazy map, by string
    g["ganrf.sweep.plan"] = g["ganrf.sweep.plan"] | {"ganrf.sweep.raytune.tune"}
    assert "ganrf.sweep.plan -> ganrf.sweep.raytune.tune" in upward_imports(g)


def test_every_module_that_imports_ray_is_in_the_ray_package():
    # with test_only_the_tune_adapter_runs_ray: whatever imports Ray is in the package (which
    # also holds the reaper, which must not import Ray)
    assert {m for m in RAY_MODULES if not m.startswith(RAY_PACKAGE + ".")} == set()
    assert "ganrf.sweep.raytune.reaper" not in RAY_MODULES


def ray_free_sweep_modules() -> list[str]:
    """The modules of ganrf.sweep that import nothing of the Ray package when imported."""
    g = graph(lazy=False)
    out = []
    for m in sorted(g):
        if m.startswith(RAY_PACKAGE) or not (m == "ganrf.sweep" or m.startswith("ganrf.sweep.")):
            continue
        seen, todo = set(), {m}
        while todo:
            d = todo.pop()
            seen.add(d)
            todo |= {x for x in g.get(d, ()) if x in g and x not in seen}
        if not any(d.startswith(RAY_PACKAGE) for d in seen):
            out.append(m)
    return out


def _imported(modules: list[str]) -> dict:
    """Import ``modules`` in a fresh Python whose environment has no RAY_AUTH_MODE; what Ray's
    environment and ``sys.modules`` are then."""
    import json
    import os
    import subprocess
    import sys

    code = (
        "import importlib, json, os, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps({'mode': os.environ.get('RAY_AUTH_MODE'), 'ray': 'ray' in sys.modules}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_ray_free_sweep_modules_leave_ray_alone():
    """Importing a trial, the experiments, presets or plans (analysis/ does) neither imports Ray
    nor sets its auth mode; the Ray package sets it (token) and imports no Ray itself."""
    free = ray_free_sweep_modules()
    assert {"ganrf.sweep", "ganrf.sweep.trial", "ganrf.sweep.plan"} <= set(free)
    assert _imported(["ganrf.sweep.trial"]) == {"mode": None, "ray": False}
    assert _imported(free) == {"mode": None, "ray": False}
    assert _imported([RAY_PACKAGE]) == {"mode": "token", "ray": False}
