"""Offline checks of a Ray cluster launcher YAML (cluster/gpu.yaml): ``ganrf cluster-check``.

Two kinds of check: Ray's own rules, applied as ``ray up`` applies them but without touching a
cloud, and this project's security promises (:func:`security_problems`). Importing this module is
cheap: yaml, jsonschema and Ray are imported inside the functions that need them.

Ray has no public, stable API that validates a launcher YAML offline. ``ray.autoscaler.sdk`` is
marked experimental (``@DeveloperAPI``); its ``fillout_defaults`` merges defaults only, and its
``bootstrap_config`` contacts the cloud provider. ``ray-schema.json`` alone misses the rules
``validate_config`` adds in code (e.g. ``head_node_type`` must be one of
``available_node_types``), and a TODO in Ray's autoscaler v2 means to retire it. So the one
private import lives in :func:`_ray_launcher_checks`, which fails with one sentence if Ray moves
it.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

RAY_PORTS = {6379: "GCS", 8265: "dashboard", 10001: "Ray client"}

_RAY_PRIVATE = "ray.autoscaler._private.util"


class ClusterConfigError(ValueError):
    """A cluster YAML that Ray's launcher would reject, or that breaks a security promise."""


def _ray_launcher_checks() -> tuple[Callable[[dict], dict], Callable[[dict], None]]:
    """Ray's ``prepare_config`` (defaults merged, setup commands merged, per-node-type worker
    bounds filled in) and ``validate_config`` (Ray's JSON schema plus its cross-field rules).

    PRIVATE RAY API: these are what ``ray up`` itself runs, and no public equivalent exists (see
    the module docstring). Keep every use of ``ray.autoscaler._private`` in this one function.

    Raises:
        RuntimeError: one sentence, when the installed Ray no longer provides them.
    """
    # This may be the process's first import of Ray, which reads the auth mode once, at import;
    # ganrf/sweep/raytune/__init__.py has set it (token authentication unless the user chose
    # otherwise).
    try:
        from ray.autoscaler._private.util import prepare_config, validate_config
    except ImportError as e:
        raise RuntimeError(
            f"checking a cluster YAML needs prepare_config and validate_config from Ray's private "
            f"{_RAY_PRIVATE}, which the installed Ray does not provide ({e}); install the Ray "
            f"version pinned in pyproject.toml, or update ganrf/sweep/raytune/cluster.py to where Ray moved them"
        ) from None
    return prepare_config, validate_config


def check_cluster_config(path: str | Path) -> dict[str, Any]:
    """Validate a cluster launcher YAML offline, as ``ray up`` would, plus our own promises.

    Runs Ray's own ``prepare_config`` and ``validate_config`` (:func:`_ray_launcher_checks`), then
    checks each node type's min_workers <= max_workers and :func:`security_problems`.

    Returns:
        The prepared config.

    Raises:
        ClusterConfigError: one sentence naming the file and what is wrong.
        RuntimeError: the installed Ray lacks the checks this relies on.
    """
    import jsonschema
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ClusterConfigError(f"cannot read {path} ({e.strerror})") from None
    except UnicodeDecodeError:
        raise ClusterConfigError(
            f"{path} is not a text file (not UTF-8); give the cluster YAML, e.g. cluster/gpu.yaml"
        ) from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ClusterConfigError(f"{path} is not valid YAML{line}; fix its syntax") from None
    if not isinstance(raw, dict):
        raise ClusterConfigError(f"{path} must be a YAML mapping of cluster settings")
    prepare_config, validate_config = _ray_launcher_checks()
    try:
        config = prepare_config(copy.deepcopy(raw))
        validate_config(config)
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "the top level"
        raise ClusterConfigError(f"{path}: {e.message} (at {where})") from None
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise ClusterConfigError(f"{path}: {e}") from None
    for name, node_type in config.get("available_node_types", {}).items():
        lo, hi = (
            node_type.get("min_workers", 0),
            node_type.get("max_workers", config["max_workers"]),
        )
        if lo > hi:
            raise ClusterConfigError(
                f"{path}: node type {name!r} has min_workers {lo} above its max_workers {hi}"
            )
    problems = security_problems(raw)
    if problems:
        raise ClusterConfigError(f"{path}: {problems[0]}")
    return config


def security_problems(raw: dict[str, Any]) -> list[str]:
    """What in a cluster YAML breaks the promises: SSH the only way in, Ray's ports closed to the
    world, the dashboard on loopback, token authentication on every node."""
    problems = []
    group = raw.get("provider", {}).get("security_group", {})
    perms = group.get("IpPermissions")
    if not perms:
        problems.append(
            "provider.security_group.IpPermissions must allow SSH (22) and nothing else"
        )
    for perm in perms or []:
        lo, hi = perm.get("FromPort"), perm.get("ToPort")
        if (lo, hi) != (22, 22):
            exposed = [
                f"{p} ({n})" for p, n in RAY_PORTS.items() if lo is None or lo <= p <= (hi or lo)
            ]
            what = f"; it exposes {', '.join(exposed)}" if exposed else ""
            problems.append(
                f"security group opens ports {lo}-{hi}; only SSH (22) may come in{what}"
            )
    starts = raw.get("head_start_ray_commands", []) + raw.get("worker_start_ray_commands", [])
    ray_starts = [c for c in starts if "ray start" in c]
    if not ray_starts:
        problems.append("no 'ray start' command found in head/worker_start_ray_commands")
    for cmd in ray_starts:
        if "RAY_AUTH_MODE=token" not in cmd:
            problems.append(f"'{cmd.strip()[:60]}...' starts Ray without RAY_AUTH_MODE=token")
        if (
            "--head" in cmd
            and "--dashboard-host=127.0.0.1" not in cmd
            and "--include-dashboard=false" not in cmd
        ):
            problems.append("the head must start the dashboard with --dashboard-host=127.0.0.1")
    return problems


def missing_mounts(raw: dict[str, Any]) -> list[str]:
    """Local sources of ``file_mounts`` that do not exist on this machine: ``ray up`` would stop
    there. The usual one is ``~/.ray/auth_token`` on a machine that never made a token."""
    sources = (raw.get("file_mounts") or {}).values()
    return [src for src in sources if not Path(os.path.expanduser(str(src))).exists()]


def mount_hint(source: str) -> str:
    """What to do about a missing mount source, in words a user can act on."""
    if source.rstrip("/").endswith(".ray/auth_token"):
        return "run `ray get-auth-token --generate` once to make the cluster's token"
    return "create it, or remove it from file_mounts"
