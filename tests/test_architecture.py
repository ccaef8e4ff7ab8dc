"""The layout keeps its promises (README, "The code: where things are"): imports point one way,
no module imports another in a circle (lazy imports inside functions included), the torch-free
core stays torch-free, only the Tune adapter runs Ray, and no file grows past 400 lines."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ganrf", "analysis")

# What analysis/ may read from ganrf: the torch-free core (README).
TORCH_FREE_CORE = {
    "ganrf",
    "ganrf.config",
    "ganrf.runs",
    "ganrf.design",
    "ganrf.design.rf",
    "ganrf.design.window",
    "ganrf.design.values",
    "ganrf.design.report",
    "ganrf.design.norms",
    "ganrf.design.designs",
    "ganrf.design.search",
    "ganrf.sweep",
    "ganrf.sweep.trial",
    "ganrf.sweep.experiments",
    "ganrf.metrics.spec",
}
# Modules that import Ray: the Tune adapter and what it hands Tune (its progress callbacks);
# ganrf.sweep.cluster borrows only the launcher's config checks.
RAY_MODULES = {"ganrf.sweep.tune", "ganrf.sweep.progress", "ganrf.sweep.cluster"}


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
    import b`` counts as ``a.b`` when that is a module, else as ``a``."""
    found = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree) if lazy else _top_level(tree):
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
