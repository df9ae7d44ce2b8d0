"""Shared fixtures: the tiny model, one Ray cluster per test session, markers."""

from __future__ import annotations

import importlib.util
import os
import subprocess

import pytest

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config, items):
    import torch

    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    no_vllm = pytest.mark.skip(reason="vLLM is not importable here")
    has_vllm = importlib.util.find_spec("vllm") is not None
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


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster for the whole session (starting one costs ~5 s)."""
    from evoforge.agents.serving import cluster

    info = cluster.connect()
    yield info
    cluster.shutdown()


@pytest.fixture
def small_disk(tmp_path):
    """A 128 MiB tmpfs: a disk that can really fill up (needs root to mount; skipped without)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=128m", "tmpfs", str(disk)], capture_output=True
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)
