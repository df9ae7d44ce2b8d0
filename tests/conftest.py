"""Shared fixtures: the tiny model, one Ray cluster per test session, markers."""

from __future__ import annotations

import importlib.util
import os

import pytest

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config, items):
    import torch

    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    no_vllm = pytest.mark.skip(reason="vLLM is not importable here")
    has_vllm = importlib.util.find_spec("vllm") is not None
    # Prometheus checks first: Ray's metrics agent keeps at most 2000 series per metric per node
    # (OpenTelemetry's default cardinality limit), and by the end of a suite the runs on the
    # session cluster have used them up, so a late run's node counts would never be exported.
    items.sort(key=lambda item: item.path.name != "test_telemetry.py")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(no_gpu)
        if "vllm" in item.keywords and not has_vllm:
            item.add_marker(no_vllm)


@pytest.fixture(scope="session")
def tiny_path() -> str:
    from evoforge.agents.models import resolve_model

    return resolve_model("tiny").path


@pytest.fixture(scope="session")
def default_path() -> str:
    from evoforge.agents.models import resolve_model

    return resolve_model("default").path


_SESSION_CLUSTER: list = []  # the session's ClusterInfo once a test has asked for it


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster for the whole session (starting one costs ~5 s)."""
    from evoforge.agents.serving import cluster

    info = cluster.connect()
    _SESSION_CLUSTER.append(info)
    yield info
    _SESSION_CLUSTER.clear()
    cluster.shutdown()


@pytest.fixture(autouse=True)
def _session_cluster_survives():
    """Fail the test that stopped the session's cluster, not the dozens after it: this process
    started that cluster, so an in-process ray.shutdown() anywhere takes it down for good."""
    yield
    if _SESSION_CLUSTER:
        import ray

        assert ray.is_initialized(), "this test stopped the session's Ray cluster (ray.shutdown)"


@pytest.fixture(scope="session")
def killed_at_train1(ray_cluster, tmp_path_factory):
    """The crash tests' 2-round tiny run (helpers.runs.run_args) SIGKILLed at the start of round
    1's training (round 0 done, round 1's pairs written), its actors gone, then moved: no path
    inside may point to where it was. Tests take a copy (shutil.copytree)."""
    from tests.helpers.runs import cli, pause_and_kill, run_args, wait_no_evoforge_actors

    base = tmp_path_factory.mktemp("killed")
    proc = cli(
        run_args(base / "run", ray_cluster.address),
        env={"EVOFORGE_DEBUG_DELAY": "train@1=300"},
        start_new_session=True,
    )
    pause_and_kill(proc)
    assert wait_no_evoforge_actors() == []
    moved = base / "moved"
    os.rename(base / "run", moved)
    return moved


@pytest.fixture
def small_disk(tmp_path):
    """A 128 MiB tmpfs (tests.helpers.disk.small_tmpfs); skipped where none can be mounted."""
    from tests.helpers.disk import small_tmpfs

    with small_tmpfs(tmp_path / "disk") as why_not:
        if why_not:
            pytest.skip(why_not)
        yield tmp_path / "disk"
