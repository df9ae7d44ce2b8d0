"""The GPU layout planned before a run starts (no Ray: the plan is arithmetic on the config)."""

from __future__ import annotations

import pytest

from evoforge.agents.serving.placement import plan
from evoforge.config import load_config
from evoforge.errors import ConfigError, EvoforgeError


def layout(overrides, gpus, node_gpus=None, pools=1):
    return plan(load_config(None, overrides), pools, gpus, node_gpus or [gpus])


def test_no_gpus_is_cpu_only():
    p = layout([], 0)
    assert p.mode == "cpu" and p.replica.actor_gpus == 0 and p.trainer_gpus == 0
    assert p.describe().startswith("placement: cpu")


def test_one_gpu_colocates_servers_and_trainer_by_shares():
    p = layout([], 1)
    assert p.mode == "colocate" and p.colocated
    assert p.replica.actor_gpus + p.trainer_gpus == pytest.approx(1.0)
    assert "servers sleep while it trains" in p.describe()


def test_two_gpus_separate_server_and_trainer():
    p = layout([], 2)
    assert (p.mode, p.replica.actor_gpus, p.trainer_gpus) == ("separate", 1.0, 1.0)


def test_eight_gpus_tensor_parallel_replicas_and_workers():
    p = layout(
        ["backend=vllm", "serving.replicas=3", "serving.tensor_parallel_size=2", "train.workers=2"],
        8,
    )
    assert p.mode == "separate" and p.serving_gpus() == 6
    assert (p.replica.bundles, p.replica.gpus_per_bundle) == (2, 1.0)
    assert p.replica.actor_gpus == 0  # vLLM's tensor-parallel workers take the bundles' GPUs
    assert "3 replica(s) x 2 GPU(s)" in p.describe()
    colocated = layout(
        [
            "backend=vllm",
            "serving.replicas=4",
            "serving.tensor_parallel_size=2",
            "train.workers=8",
            "train.batch_size=8",
        ],
        8,
    )
    assert colocated.mode == "colocate" and colocated.trainer_gpus == 0.5


@pytest.mark.parametrize(
    "overrides, gpus, message",
    [
        (["serving.placement=separate"], 1, "placement separate needs 2 GPUs .* the cluster has 1"),
        (["serving.replicas=3"], 2, "placement colocate needs 3 GPUs .* the cluster has 2"),
        (
            ["backend=vllm", "serving.tensor_parallel_size=2"],
            0,
            "needs GPUs but the cluster has none",
        ),
        (["train.workers=2", "train.strategy=fsdp"], 0, "fsdp needs GPUs"),
    ],
)
def test_more_than_the_cluster_has_is_one_line(overrides, gpus, message):
    with pytest.raises(EvoforgeError, match=message) as e:
        layout(overrides, gpus)
    assert "\n" not in str(e.value)


def test_tensor_parallel_group_must_fit_one_node():
    with pytest.raises(EvoforgeError, match="needs 4 GPUs on one node but the largest node has 2"):
        layout(["backend=vllm", "serving.tensor_parallel_size=4"], 8, [2, 2, 2, 2])


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["backend=hf", "serving.tensor_parallel_size=2"], "needs backend=vllm"),
        (["train.workers=3", "train.batch_size=4"], "multiple of train.workers=3"),
        (["train.strategy=fsdp"], "set train.workers >= 2"),
    ],
)
def test_static_checks(overrides, message):
    with pytest.raises(ConfigError, match=message):
        layout(overrides, 8)
