"""cluster/gpu.yaml against Ray's own launcher schema (offline), its security promises, and a
sweep on a simulated two-node cluster that loses a node mid-run."""

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ganrf.sweep.raytune.cluster import ClusterConfigError, check_cluster_config, security_problems
from tests.conftest import forget_ray_token

ROOT = Path(__file__).resolve().parents[1]
YAML = ROOT / "cluster" / "gpu.yaml"


def raw():
    return yaml.safe_load(YAML.read_text())


def write(tmp_path, config) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_gpu_yaml_is_valid_for_rays_launcher():
    config = check_cluster_config(YAML)  # Ray's prepare_config + validate_config, offline
    assert config["head_node_type"] == "head"
    assert set(config["available_node_types"]) == {"head", "gpu_worker"}
    assert config["available_node_types"]["gpu_worker"]["max_workers"] == 4
    assert config["docker"]["image"] == "rayproject/ray:2.60.0-py311-gpu"


def test_pinned_versions_match_pyproject():
    text = YAML.read_text()
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ray_spec = next(d for d in deps if d.startswith("ray["))
    assert "ray:2.60.0-py311" in text and ">=2.40" in ray_spec and "<3" in ray_spec
    assert '"torch==2.14.1"' in text and any(d.startswith("torch>=2.6,<2.15") for d in deps)


def _broken(change):
    config = raw()
    change(config)
    return config


BROKEN = [
    ("typo'd key", lambda c: c.update({"max_worker": c.pop("max_workers")}), "max_worker"),
    (
        "min above max",
        lambda c: c["available_node_types"]["gpu_worker"].update(min_workers=3, max_workers=2),
        "min_workers 3 above its max_workers 2",
    ),
    (
        "unknown head type",
        lambda c: c.update(head_node_type="gpu_head"),
        "head_node_type` must be one of `available_node_types",
    ),
    ("wrong type", lambda c: c.update(idle_timeout_minutes="soon"), "is not of type"),
]


@pytest.mark.parametrize("what, change, match", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_copies_are_caught(tmp_path, what, change, match):
    with pytest.raises(ClusterConfigError, match=match):
        check_cluster_config(write(tmp_path, _broken(change)))


def test_malformed_yaml_one_sentence(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("cluster_name: x\n  max_workers: [1, 2\n")
    with pytest.raises(ClusterConfigError, match=r"not valid YAML at line \d+"):
        check_cluster_config(path)


def test_importing_the_checks_is_cheap():
    code = (
        "import sys, ganrf.sweep.raytune.cluster; "
        "print(sorted({'ray', 'yaml', 'jsonschema'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_checking_first_leaves_ray_on_token_auth():
    """Ray reads its auth mode when first imported; the check may be that first import."""
    code = (
        "import os, ganrf.sweep.raytune.cluster as c; "
        "c.check_cluster_config(c.Path(os.environ['Y'])); "
        "from ray._raylet import AuthenticationMode as M, get_authentication_mode as mode; "
        "print(mode() == M.TOKEN)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")} | {"Y": str(YAML)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr[-2000:]


@pytest.mark.parametrize("how", ["module gone", "functions gone"])
def test_ray_moving_its_private_checks_fails_in_one_sentence(monkeypatch, capsys, how):
    import ray.autoscaler._private.util as util

    if how == "module gone":
        monkeypatch.setitem(sys.modules, "ray.autoscaler._private.util", None)
    else:
        monkeypatch.delattr(util, "validate_config")
    with pytest.raises(RuntimeError, match=r"ray\.autoscaler\._private\.util") as e:
        check_cluster_config(YAML)
    assert not isinstance(e.value, ClusterConfigError)  # Ray's fault, not the YAML's
    assert str(e.value).count(". ") == 0 and "pyproject.toml" in str(e.value)

    from ganrf.cli import main

    assert main(["cluster-check", str(YAML)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("ganrf cluster-check: error: checking a cluster YAML needs")
        and len(err.strip().splitlines()) == 1
    )


def test_cluster_check_cli(tmp_path, capsys, monkeypatch):
    from ganrf.cli import main

    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("x" * 32)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(ROOT)  # file_mounts' "." is this checkout
    assert main(["cluster-check", str(YAML)]) == 0
    assert "valid for Ray" in capsys.readouterr().out
    assert (
        main(
            ["cluster-check", str(write(tmp_path, _broken(lambda c: c.update(head_node_type="x"))))]
        )
        == 2
    )


def test_cluster_check_on_a_machine_without_a_token(tmp_path, capsys, monkeypatch):
    """A new laptop has no ~/.ray/auth_token, which cluster/gpu.yaml copies to every node:
    `ray up` would fail midway, so the check says so first."""
    from ganrf.cli import main

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(ROOT)
    assert main(["cluster-check", str(YAML)]) == 2
    out, err = capsys.readouterr()
    assert "valid for Ray" in out
    assert err.strip().splitlines()[-1] == (  # after Ray's own INFO line
        "ganrf cluster-check: error: `ray up` would stop here: file_mounts copies "
        "~/.ray/auth_token to every node and it does not exist on this machine; run "
        "`ray get-auth-token --generate` once to make the cluster's token"
    )


def test_security_promises_hold():
    assert security_problems(raw()) == []


@pytest.mark.parametrize(
    "change, match",
    [
        (
            lambda c: c["provider"]["security_group"]["IpPermissions"].append(
                {
                    "FromPort": 6379,
                    "ToPort": 6379,
                    "IpProtocol": "tcp",
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                }
            ),
            "exposes 6379 \\(GCS\\)",
        ),
        (
            lambda c: c["provider"]["security_group"]["IpPermissions"].append(
                {
                    "FromPort": 0,
                    "ToPort": 65535,
                    "IpProtocol": "tcp",
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                }
            ),
            "8265 \\(dashboard\\)",
        ),
        (
            lambda c: c.update(
                head_start_ray_commands=[
                    x.replace("127.0.0.1", "0.0.0.0") for x in c["head_start_ray_commands"]
                ]
            ),
            "--dashboard-host=127.0.0.1",
        ),
        (
            lambda c: c.update(
                worker_start_ray_commands=[
                    x.replace("RAY_AUTH_MODE=token ", "") for x in c["worker_start_ray_commands"]
                ]
            ),
            "without RAY_AUTH_MODE=token",
        ),
        (lambda c: c["provider"].pop("security_group"), "must allow SSH \\(22\\) and nothing else"),
    ],
)
def test_security_lint_catches_each_broken_promise(tmp_path, change, match):
    config = copy.deepcopy(raw())
    change(config)
    assert any(__import__("re").search(match, p) for p in security_problems(config)), (
        security_problems(config)
    )
    with pytest.raises(ClusterConfigError):
        check_cluster_config(write(tmp_path, config))


# -- a simulated two-node cluster on one machine ---------------------------------------------


def _rows(trial: Path) -> list[dict]:
    """The trial's reports, as the trainable writes them to storage at each report."""
    from ganrf.runs import read_trial

    return read_trial(trial).results


# Ray 2.60 waits RAY_gcs_server_port_wait_time_s (default 30 s; ray/_private/node.py,
# start_gcs_server) for the GCS to write its port file, and as many ~1 s tries to connect to it;
# a loaded 2-core CI machine once ran out of the 30 s. The raylet's own 30 s registration wait
# is fixed, so a start that still fails is retried once, from scratch.
RAY_START_WAIT_S = 120
RAY_START_WAIT_ENV = "RAY_gcs_server_port_wait_time_s"  # Ray's spelling, lower case and all


def generate_token(home: Path) -> Path:
    """What the README tells a user to run once before starting a cluster by hand."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "get-auth-token", "--generate"]
    subprocess.run(cmd, env=env | {"HOME": str(home)}, capture_output=True, check=True)
    return home / ".ray" / "auth_token"


def start_cluster(monkeypatch, workers: int = 2, attempts: int = 2, home: Path | None = None):
    """A simulated cluster: a head without CPUs and ``workers`` one-CPU nodes with a fake GPU
    each, given a generous start-up wait and one retry.

    ``home``: a fresh home folder for the cluster and everything started after it (the sweep's
    driver), given a token as a user makes one (:func:`generate_token`). A new machine has no
    ``~/.ray/auth_token``; with none, the GCS of a token cluster aborts at once."""
    # The sweep's driver runs Ray with token authentication (ganrf/sweep/raytune/__init__.py); a
    # cluster started without it refuses the driver's workers, whose actors then die before they start.
    # Ray reads the mode when it is first imported in this process, which may have been by any
    # test module: the cluster's services inherit os.environ, this process's client does not.
    import ray.cluster_utils
    from ray._raylet import AuthenticationMode, get_authentication_mode

    assert get_authentication_mode() == AuthenticationMode.TOKEN, (
        "Ray was imported before ganrf.sweep"
    )

    if home is not None:
        if not (home / ".ray" / "auth_token").exists():
            generate_token(home)
        monkeypatch.setenv("HOME", str(home))
        forget_ray_token()  # this process is the cluster's first client

    monkeypatch.setenv(RAY_START_WAIT_ENV, str(RAY_START_WAIT_S))
    for attempt in range(1, attempts + 1):
        cluster = ray.cluster_utils.Cluster(initialize_head=False)
        try:
            cluster.add_node(num_cpus=0)  # the head
            nodes = [cluster.add_node(num_cpus=1, num_gpus=1) for _ in range(workers)]
            cluster.wait_for_nodes(timeout=RAY_START_WAIT_S)
            return cluster, nodes
        except Exception:
            cluster.shutdown()
            if attempt == attempts:
                raise


def test_cluster_start_waits_long_and_retries_once(monkeypatch):
    import os

    import ray.cluster_utils

    calls, clusters = [], []

    class Flaky:  # fails like the CI run: the head's first start times out on the port file
        def __init__(self, initialize_head):
            assert initialize_head is False
            self.down = False
            clusters.append(self)

        def add_node(self, **kw):
            calls.append((kw, os.environ.get(RAY_START_WAIT_ENV)))
            if len(calls) == 1:
                raise RuntimeError("Timed out waiting for file /tmp/ray/session/gcs_server_port")
            return f"node{len(calls)}"

        def wait_for_nodes(self, timeout):
            assert timeout == RAY_START_WAIT_S

        def shutdown(self):
            self.down = True

    monkeypatch.setattr(ray.cluster_utils, "Cluster", Flaky)
    cluster, nodes = start_cluster(monkeypatch)
    assert nodes == ["node3", "node4"] and cluster is clusters[1] and not cluster.down
    assert clusters[0].down  # the failed start was shut down before the retry
    assert [kw for kw, _ in calls] == [{"num_cpus": 0}, {"num_cpus": 0}] + [
        {"num_cpus": 1, "num_gpus": 1}
    ] * 2
    assert {wait for _, wait in calls} == {"120"}

    calls.clear()
    monkeypatch.setattr(Flaky, "add_node", lambda self, **kw: calls.append(kw) or 1 / 0)
    with pytest.raises(ZeroDivisionError):  # a second failure is the test's failure
        start_cluster(monkeypatch)
    assert len(calls) == 2


def test_a_fresh_home_gets_a_token_as_the_readme_says(tmp_path):
    token = generate_token(tmp_path)
    assert len(token.read_text().strip()) >= 32  # Ray's random token, in Ray's default place


@pytest.fixture(scope="module")
def ray_home(tmp_path_factory) -> Path:
    """A home folder as a new machine has it, for this module's clusters: no token until
    :func:`start_cluster` makes one, as a user would."""
    return tmp_path_factory.mktemp("home")


def test_joining_without_the_clusters_token_is_one_sentence(tmp_path, monkeypatch, ray_home):
    """A driver on a machine without the token, joining a token cluster: one sentence, exit 2,
    nothing on disk."""
    cluster, _ = start_cluster(monkeypatch, workers=0, home=ray_home)
    address = cluster.address
    try:
        bare = tmp_path / "driver-home"
        bare.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
        run = subprocess.run(
            [sys.executable, str(ROOT / "sweeps" / "mnist_rf.py"), "--smoke-test"]
            + ["--address", address, "--storage-path", str(tmp_path / "runs")],
            env=env | {"HOME": str(bare)},
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
    finally:
        cluster.shutdown()
    err = run.stderr.strip()
    assert run.returncode == 2 and len(err.splitlines()) == 1, run.stderr[-2000:]
    assert err.startswith(f"mnist_rf.py: error: cannot join the Ray cluster at {address}")
    assert "no authentication token was found" in err and "~/.ray/auth_token" in err
    runs = tmp_path / "runs"  # checked writable before Ray joins, and left empty
    assert not runs.exists() or not any(runs.iterdir())


def test_sweep_on_two_nodes_survives_losing_one(tmp_path, monkeypatch, ray_home):
    # A fresh home, as on a new machine: the cluster runs on a token made as the README says.
    cluster, nodes = start_cluster(monkeypatch, home=ray_home)
    exp = tmp_path / "two-nodes"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "sweeps" / "mnist_rf.py"),
            "--smoke-test",
            "--address",
            cluster.address,
            "--gpus-per-trial",
            "1",
            "--pack",  # one trial per Tune trial: this test is about losing a node
            "1",
            "--max-failures",
            "3",
            "--storage-path",
            str(tmp_path),
            "--name",
            "two-nodes",
            "--set",
            "schedule.steps=80",
            "--set",
            "schedule.eval_every_steps=8",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        victim = survivor = None
        deadline = time.time() + 180
        while victim is None and time.time() < deadline:  # a node whose trial is mid-run
            for trial in exp.glob("rf*") if exp.exists() else []:
                rows = _rows(trial)
                if rows and rows[-1]["status"] == "running" and list(trial.glob("checkpoint_*")):
                    node_id = rows[-1]["node/id"]
                    victim = next(n for n in nodes if n.node_id == node_id)
                    survivor = next(n for n in nodes if n is not victim)
                    killed_trial, steps_before = trial, [r["progress/step"] for r in rows]
                    break
            time.sleep(0.1)
        assert victim is not None, "no trial was caught mid-run"
        cluster.remove_node(victim)
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        cluster.shutdown()

    trials = sorted(exp.glob("rf*"))
    first_nodes = {_rows(t)[0]["node/id"] for t in trials}
    assert first_nodes == {n.node_id for n in nodes}  # the two trials started on both nodes
    rows = _rows(killed_trial)
    steps = [r["progress/step"] for r in rows]
    assert steps[-1] == 80 and rows[-1]["status"] == "finished"
    assert steps == sorted(set(steps)) and steps[: len(steps_before)] == steps_before  # resumed
    assert rows[-1]["node/id"] == survivor.node_id  # finished on the node that was left
    table = pd.read_csv(exp / "results.csv")
    assert len(table) == 2 and set(table["trial_status"]) == {"finished"}
