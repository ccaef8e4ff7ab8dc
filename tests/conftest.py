import pytest
import torch


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="run slow, real-data checks")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow real-data check: opt in with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _two_threads():
    # CI has two cores; keep tests honest about that and deterministic.
    torch.set_num_threads(2)
    yield


@pytest.fixture(scope="module")
def local_ray():
    """An embedded Ray started as the sweeps start it (ganrf.sweep.raytune.tune.init_ray), one CPU."""
    from ganrf.sweep.raytune import tune as gtune

    forget_ray_token()  # a cluster test may have read another home's token in this process
    gtune.init_ray(None, dashboard=False, num_cpus=1)
    import ray

    yield ray
    ray.shutdown()


def forget_ray_token() -> None:
    """Ray caches the first auth token a process reads (``~/.ray/auth_token`` under the ``HOME``
    of that moment); tests that change ``HOME`` make it read again."""
    from ray._raylet import AuthenticationTokenLoader

    AuthenticationTokenLoader.instance().reset_cache()
