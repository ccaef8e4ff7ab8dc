"""Security promises: the local Ray refuses clients without its token and shows no dashboard;
cached statistics and checkpoints never unpickle code (checkpoints: tests/test_train.py)."""

import os
import subprocess
import sys

import psutil
import pytest
import torch

from ganrf.config import TrainConfig
from ganrf.metrics import Evaluator
from tests.test_architecture import RAY_MODULES


def _connect(gcs: str, env: dict) -> subprocess.CompletedProcess:
    code = f"import ray; ray.init(address={gcs!r}, logging_level='ERROR'); print('CONNECTED')"
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    return subprocess.run(
        [sys.executable, "-c", code], env=base | env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("module", sorted(RAY_MODULES))  # every module that imports Ray
def test_whichever_module_imports_ray_first_ray_runs_with_tokens(module):
    """Ray reads its auth mode once, at its first import in a process. The CI run on a fresh
    machine imported Ray first through ganrf.sweep.progress (tests/test_progress.py), before
    ganrf.sweep.tune set the mode: this process's client ran without tokens while the clusters it
    started inherited token mode, and every later Ray start failed. (Those modules are now in
    ganrf.sweep.raytune, whose __init__ sets the mode.)"""
    code = f"import importlib; importlib.import_module({module!r}); import ray._raylet as r\n"
    code += (
        "m = r.get_authentication_mode(); print('TOKEN' if m == r.AuthenticationMode.TOKEN else m)"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    run = subprocess.run([sys.executable, "-c", code], env=base, capture_output=True, text=True)
    assert run.stdout.strip() == "TOKEN", run.stderr[-2000:]
    # a user's own choice stands
    mine = subprocess.run(
        [sys.executable, "-c", code],
        env=base | {"RAY_AUTH_MODE": "disabled"},
        capture_output=True,
        text=True,
    )
    assert mine.returncode == 0 and mine.stdout.strip() != "TOKEN", mine.stderr[-2000:]


def test_local_ray_refuses_clients_without_its_token(local_ray, tmp_path):
    assert os.environ["RAY_AUTH_MODE"] == "token"
    gcs = local_ray._private.worker._global_node.gcs_address
    wrong = _connect(
        gcs, {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-token", "HOME": str(tmp_path)}
    )
    assert "CONNECTED" not in wrong.stdout and "InvalidAuthToken" in wrong.stderr
    right = _connect(gcs, {"RAY_AUTH_MODE": "token"})  # the token ray.init made, in ~/.ray
    assert "CONNECTED" in right.stdout, right.stderr[-2000:]


def test_local_ray_dashboard_listens_nowhere(local_ray):
    """Ray 2.60 keeps a minimal dashboard process even with include_dashboard=False; it must
    serve nothing."""
    session = local_ray._private.worker._global_node.get_session_dir_path()
    procs = [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and any(session in c for c in p.info["cmdline"])
    ]
    assert procs  # the session's own services were found
    dashboards = {
        p.pid for p in procs if any(c.endswith("dashboard.py") for c in p.info["cmdline"])
    }
    listeners = [c for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN]
    assert not [c for c in listeners if c.pid in dashboards]
    assert 8265 not in {c.laddr.port for c in listeners if c.pid in {p.pid for p in procs}}


def test_cached_statistics_with_pickled_code_are_refused(tmp_path, monkeypatch):
    from tests.test_data import fake_mnist

    monkeypatch.setenv("GANRF_CACHE", str(tmp_path / "cache"))
    fake_mnist(tmp_path / "data", n=64)
    cfg = TrainConfig.from_dict(
        {"data.root": str(tmp_path / "data"), "data.download": False, "eval.samples": 64}
    )
    Evaluator(cfg, torch.device("cpu"))
    (cached,) = (tmp_path / "cache").glob("ref-*.pt")
    pwned = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(pwned), "w"))

    torch.save({"features": Evil()}, cached)
    ev = Evaluator(cfg, torch.device("cpu"))  # refuses the file (weights_only), recomputes
    assert not pwned.exists()
    assert ev.ref["features"].shape == (64, 128)
