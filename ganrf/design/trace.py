"""Tracing an ``nn.Module`` with torch.fx: what every node of its graph sees.

:func:`ganrf.design.receptive_field` hands a module here. ``torch.fx.symbolic_trace`` turns its
``forward`` into a graph (``torch.nn`` modules stay whole, as leaves; the user's own modules are
traced through), the graph is run once on zeros (BatchNorm statistics and the RNG state are
restored afterwards) so every op's concrete arguments and shapes are known, and each node's
:class:`~ganrf.design.values.Value` follows from its inputs' by the op's rule in
:mod:`ganrf.design.ops`. Branches are followed, not refused: an add or a concat is the union of
its branches' windows. What cannot be followed — control flow on tensor values, which fx cannot
trace, or an op without a rule — is refused with one sentence naming where.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from ganrf.design.ops import Call, find_rule, no_rule
from ganrf.design.report import NodeRF, build_report
from ganrf.design.rf import RFError, RFReport
from ganrf.design.values import Value, merge

__all__ = ["trace_module", "trace_nodes"]

_TORCH_DIR = str(Path(torch.__file__).parent)


def _user_frame(exc: BaseException) -> str:
    """``file:line in function: code`` of the last frame outside torch, where fx gave up."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _TORCH_DIR not in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    return f"{Path(f.filename).name}:{f.lineno} in {f.name}: `{(f.line or '').strip()}`"


class _NoRule(RFError):
    """An op without a rule (the message names its source line once traced with stacks)."""


class _Tracer(fx.Tracer):
    """fx's tracer that also keeps whole a subclass of a module with a rule (the project's
    ``ImageConv2d`` is an ``nn.Conv2d`` with a faster CPU backward, and its device check is not
    traceable): it is taken to compute what its base class computes."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return super().is_leaf_module(m, qualname) or find_rule("", m) is not None


def _graph(model: nn.Module, stacks: bool) -> fx.GraphModule:
    tracer = _Tracer()
    tracer.record_stack_traces = stacks  # a third of the tracing time: only to name a line
    try:
        graph = tracer.trace(model)
    except Exception as e:  # fx raises TraceError, TypeError, ... on what it cannot follow
        where = _user_frame(e)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RFError(
            f"torch.fx cannot trace {type(model).__name__}"
            f"{' at ' + where if where else ''} ({first}): the rf of a module is followed through "
            "its graph, and control flow that depends on tensor values has none; make the branch "
            "depend on a Python attribute fixed at construction, or compute that part's rf by hand"
        ) from None
    return fx.GraphModule(tracer.root, graph)


def _where(node: fx.Node) -> str:
    """``file:line`` of a node's source, from fx's recorded stack trace."""
    trace = node.meta.get("stack_trace") or ""
    lines = [
        ln.strip()
        for ln in trace.splitlines()
        if ln.strip().startswith("File ") and _TORCH_DIR not in ln
    ]
    if not lines:
        return ""
    parts = lines[-1].split(",")
    return f"{Path(parts[0][6:-1]).name}:{parts[1].split()[-1]}"


def _target_name(node: fx.Node) -> str:
    if node.op == "call_method":
        return str(node.target)
    return getattr(node.target, "__name__", str(node.target))


class _Follower(fx.Interpreter):
    """Runs the graph and, beside each node's result, what it sees."""

    def __init__(self, gm: fx.GraphModule, input_hw: tuple[int, int]) -> None:
        super().__init__(gm)
        self.input_hw = input_hw
        self.values: dict[fx.Node, Value] = {}
        self.nodes: list[NodeRF] = []
        self.norms: list[tuple[str, str]] = []
        self.placeholders = 0
        self.failed: RFError | None = None
        self.rows: set[fx.Node] = set()  # nodes with a table row

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        try:
            self.values[n] = value = self._value(n, result)
        except RFError as e:  # fx appends its own traceback to the message: keep the sentence
            self.failed = e
            raise
        if n.op.startswith("call_") and value.kind != "const" and n not in self.rows:
            self.nodes.append(NodeRF(self._name(n), value))  # a per-location op: its input's rf
        return result

    def _name(self, n: fx.Node) -> str:
        if n.op == "call_module":
            mod = self.module.get_submodule(str(n.target))
            return f"{n.target} ({type(mod).__name__})"
        return f"{n.name} ({_target_name(n)})"

    def _value(self, n: fx.Node, result: Any) -> Value:
        if n.op == "placeholder":
            if not isinstance(result, torch.Tensor):
                return Value("const")  # an optional argument left at its default (labels=None)
            self.placeholders += 1
            if self.placeholders > 1:
                raise RFError(f"the model takes a second input ({n.name}); trace a one-input model")
            return Value.image(self.input_hw)
        if n.op == "get_attr":
            return Value("const")
        if n.op == "output":
            return merge(self._values(n.args), "the output")

        if not _has_tensor(result):
            return Value("const")  # a shape, a dtype, a Python number
        values = tuple(self._value_of(a) for a in n.args)
        kw_values = {k: self._value_of(a) for k, a in n.kwargs.items()}
        live = [v for v in self._flat(values, kw_values) if v.kind != "const"]
        name = self._name(n)
        if not live:
            return Value("const")
        if live and all(v.kind == "whole" for v in live):
            size = tuple(result.shape[-2:]) if _is_map(result) else None
            return Value("whole", size=size, reason=live[0].reason, last=live[0].last)

        module = self.module.get_submodule(str(n.target)) if n.op == "call_module" else None
        target = type(module).__name__ if module is not None else _target_name(n)
        rule = find_rule(target, module)
        if rule is None:
            raise _NoRule(str(no_rule(name, _where(n))))
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        call = Call(name, target, args, kwargs, values, kw_values, result, module, self.norms)
        value, row = rule(call)
        if row is not None:
            self.rows.add(n)
            self.nodes.append(NodeRF(name, value, row.layer, row.kind, row.kernel, row.stride,
                                     row.padding, row.dilation))  # fmt: skip
        return value

    def _value_of(self, a: Any) -> Any:
        if isinstance(a, fx.Node):
            return self.values[a]
        if isinstance(a, (tuple, list)):
            return type(a)(self._value_of(x) for x in a)
        if isinstance(a, dict):
            return {k: self._value_of(x) for k, x in a.items()}
        return Value("const")

    def _values(self, args: Any) -> list[Value]:
        return [v for v in self._flat(self._value_of(args), {})]

    @staticmethod
    def _flat(values: Any, kw_values: dict) -> list[Value]:
        out, todo = [], [values, list(kw_values.values())]
        while todo:
            item = todo.pop()
            if isinstance(item, Value):
                out.append(item)
            elif isinstance(item, (tuple, list)):
                todo.extend(item)
            elif isinstance(item, dict):
                todo.extend(item.values())
        return out


def _has_tensor(r: Any) -> bool:
    if isinstance(r, (tuple, list)):
        return any(_has_tensor(x) for x in r)
    return isinstance(r, torch.Tensor)


def _is_map(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.dim() >= 3


def trace_nodes(
    model: nn.Module, input_shape: tuple[int, int, int], *, stacks: bool = False
) -> tuple[list[NodeRF], Value, list[tuple[str, str]]]:
    """Every node's rf (in execution order; those that change what a unit sees have a
    ``layer``, the table's rows), the output's value and the normalisations that ran, for
    ``model`` on ``(C, H, W)`` inputs."""
    gm = _graph(model, stacks)
    mods = list(model.modules())
    bn_state = {
        m: (m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
        for m in mods
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        and m.track_running_stats
        and m.running_mean is not None
    }
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = torch.zeros((2, *input_shape), device=device, dtype=dtype)  # two: BatchNorm trains
    follower = _Follower(gm, (input_shape[1], input_shape[2]))
    rng = torch.get_rng_state()
    try:
        with torch.no_grad():
            follower.run(x)
    except RFError:
        if isinstance(follower.failed, _NoRule) and not stacks:
            return trace_nodes(model, input_shape, stacks=True)  # again, to name the source line
        if follower.failed is None:
            raise
        raise RFError(str(follower.failed).splitlines()[0]) from None
    except (RuntimeError, TypeError, ValueError) as e:  # the map vanished, shapes do not fit
        lines = [ln for ln in str(e).splitlines() if ln.strip()]
        at = next((ln.strip() for ln in lines if ln.startswith("While executing")), "")
        raise RFError(
            f"{type(model).__name__} does not run on a {tuple(input_shape)} input ({lines[0]}"
            f"{'; ' + at if at else ''}): give the input shape it is built for, or a larger one, "
            "and wrap a model with more inputs in one that takes the image alone"
        ) from None
    finally:
        torch.set_rng_state(rng)
        for m, (mean, var, nbt) in bn_state.items():
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(nbt)
    out_node = next(n for n in gm.graph.nodes if n.op == "output")
    return follower.nodes, follower.values[out_node], follower.norms


def trace_module(model: nn.Module, input_shape: tuple[int, int, int]) -> RFReport:
    """Receptive field of ``model`` on ``(C, H, W)`` inputs; see
    :func:`ganrf.design.receptive_field`."""
    nodes, out, norms = trace_nodes(model, input_shape)
    return build_report(input_shape, nodes, out, norms)
