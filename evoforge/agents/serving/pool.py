"""A pool of server replicas, each a named Ray actor; one batch is split across them.

Actors are named ``evoforge/<run>/<role>/<i>`` so the Ray dashboard shows what is what.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from evoforge.agents.serving import cluster, placement
from evoforge.agents.serving.cluster import unwrap
from evoforge.agents.serving.memory import (
    ServerOutOfMemory,
    memory_detail,
    memory_hint,
    short_of_memory,
)
from evoforge.agents.serving.placement import ReplicaPlacement
from evoforge.agents.serving.types import GenRequest, GenResult, ServerInfo
from evoforge.config import Config
from evoforge.errors import EvoforgeError
from evoforge.telemetry import record_generation

log = logging.getLogger("evoforge")


@dataclass(frozen=True)
class ServerSpec:
    """Everything needed to start one replica; built from a Config (its defaults live there)."""

    model_path: str
    backend: str
    """hf, vllm, or auto (vLLM when it imports and starts, else hf)."""
    max_model_len: int
    hf_batch_size: int
    threads: int
    dtype: str
    memory_fraction: float
    kv_cache_gib: float
    seed: int
    start_timeout_s: float
    tensor_parallel_size: int
    sleep_mode: bool = False
    """vLLM: start with sleep mode, so the engine can hand its GPU memory to a colocated trainer."""

    @classmethod
    def from_config(cls, config: Config, model_path: str, backend: str = "") -> ServerSpec:
        """The spec of a replica serving ``model_path`` as ``config.serving`` says."""
        s = config.serving
        return cls(
            model_path=model_path,
            backend=backend or config.backend,
            max_model_len=s.max_model_len,
            hf_batch_size=s.hf_batch_size,
            threads=s.threads,
            dtype=s.dtype,
            memory_fraction=s.vllm_memory_fraction,
            kv_cache_gib=s.vllm_kv_cache_gib,
            seed=config.seed,
            start_timeout_s=s.vllm_start_timeout_s,
            tensor_parallel_size=s.tensor_parallel_size,
        )

    def engine_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of this backend's engine constructor."""
        common = dict(
            model_path=self.model_path,
            max_model_len=self.max_model_len,
            threads=self.threads,
            dtype=self.dtype,
        )
        if self.backend == "vllm":
            return common | dict(
                memory_fraction=self.memory_fraction,
                seed=self.seed,
                kv_cache_gib=self.kv_cache_gib,
                tensor_parallel_size=self.tensor_parallel_size,
                sleep_mode=self.sleep_mode,
            )
        return common | dict(batch_size=self.hf_batch_size)


def engine_class(backend: str) -> type:
    """The engine of a backend (imported here: vLLM and torch are heavy)."""
    if backend == "vllm":
        from evoforge.agents.serving.vllm_engine import VLLMEngine

        return VLLMEngine
    from evoforge.agents.serving.hf_engine import HFEngine

    return HFEngine


class ServerActor:
    """The body of a server actor: one engine, a few large batched operations."""

    def __init__(self, spec: ServerSpec, run: str = "", role: str = "") -> None:
        self.run, self.role = run, role
        self.busy = 0.0
        """Seconds spent inside the engine (generate, load_weights) since the actor started."""
        self.engine = engine_class(spec.backend)(**spec.engine_kwargs())

    def generate(self, requests: list[GenRequest], label: str = "") -> list[GenResult]:
        """``label`` is "round<N>/<node>", the driver's node this batch belongs to (for metrics)."""
        start = time.perf_counter()
        results = self.engine.generate(requests)
        self.busy += time.perf_counter() - start
        if self.run:
            record_generation(
                label,
                self.run,
                self.role,
                len(requests),
                sum(r.sampling.n for r in requests),
                sum(sum(r.completion_tokens) for r in results),
            )
        return results

    def load_weights(self, path: str) -> None:
        start = time.perf_counter()
        self.engine.load_weights(path)
        self.busy += time.perf_counter() - start

    def busy_seconds(self) -> float:
        return self.busy

    def sleep(self) -> bool:
        """Hand the engine's GPU memory back (a colocated trainer is about to run)."""
        return self.engine.sleep()

    def wake(self) -> None:
        self.engine.wake()

    def encode_all(self, requests: list[GenRequest]) -> list[list[int]]:
        """Prompt token ids as this engine builds them (benchmarks feed them to a raw engine)."""
        return [self.engine.encode(r) for r in requests]

    def info(self) -> ServerInfo:
        return self.engine.info()


def vllm_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class ServerPool:
    """Replicas of one model for one role (or several roles sharing it). Implements ModelServer."""

    def __init__(
        self,
        run: str,
        role: str,
        spec: ServerSpec,
        replicas: int = 1,
        resources: ReplicaPlacement | None = None,
    ) -> None:
        self.run, self.role = run, role
        self.restarts = 0
        """Actors restarted after dying; reported in the round's metrics."""
        self.generated_tokens = 0
        """Completion tokens the pool's replicas returned since it started."""
        self.max_restarts = 2
        self.weights_path = spec.model_path
        self.task_label = ""
        """Names the Ray tasks of the next calls (the driver sets it to round/node)."""
        self.resources = resources or placement.default_replica()
        """What each replica asks Ray for (the run's placement plan decides it)."""
        self.groups: dict[int, object] = {}
        """Each replica's placement group, kept across restarts (GPU layouts only)."""
        backend, probe = spec.backend, None
        if backend == "auto":
            backend, probe = self._pick_backend(spec)
        self.spec = replace(spec, backend=backend)
        first = [probe] if probe is not None else []
        self.actors = first + [self._start(i, self.spec) for i in range(len(first), replicas)]
        self._wait_ready(self.actors, self.spec)

    def _start(self, i: int, spec: ServerSpec):
        import ray

        name = f"evoforge/{self.run}/{self.role}/{i}"
        cluster.claim_name(name)
        res = self.resources
        options: dict[str, Any] = dict(
            name=name, num_cpus=res.cpus, num_gpus=res.actor_gpus, max_concurrency=1
        )
        if res.gpus_per_bundle:  # a GPU replica holds its bundles in a placement group
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            if i not in self.groups:
                self.groups[i] = placement.reserve(res, name)
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                self.groups[i], 0, placement_group_capture_child_tasks=True
            )
        return ray.remote(ServerActor).options(**options).remote(spec, self.run, self.role)

    def _wait_ready(self, actors: list, spec: ServerSpec) -> None:
        """Wait until ``actors`` (replicas of ``spec``) have started; a failed start is one line,
        one killed for memory names the knob that sizes the server's memory."""
        import ray

        timeout = spec.start_timeout_s
        try:
            ray.get([a.info.remote() for a in actors], timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            for a in actors:
                ray.kill(a)
            raise EvoforgeError(
                f"model server did not start within {timeout:.0f} s; raise "
                "serving.vllm_start_timeout_s or use backend=hf"
            ) from None
        except ray.exceptions.RayError as e:
            for a in actors:
                ray.kill(a)
            if short_of_memory(e):
                hint = memory_hint(spec, self.resources.actor_gpus > 0, e)
                raise ServerOutOfMemory(
                    f"model server evoforge/{self.run}/{self.role} ({spec.backend}) was killed "
                    f"for memory, or could not get it, while starting ({memory_detail(e)}); "
                    f"{hint}, or use fewer serving.replicas"
                ) from None
            cause = getattr(e, "cause", None) or e
            err = unwrap(cause) if isinstance(cause, Exception) else cause
            if isinstance(err, EvoforgeError):
                raise err from None
            raise EvoforgeError(
                f"model server failed to start: {str(err).strip().splitlines()[-1][:300]}"
            ) from None

    def _pick_backend(self, spec: ServerSpec):
        """auto: vLLM when it imports and starts, else transformers; say which and why.

        Returns the backend and, for vLLM, the started probe actor (kept as replica 0).
        """
        if not vllm_importable():
            log.warning("backend=auto: vLLM is not installed; serving with transformers (hf)")
            return "hf", None
        probe = self._start(0, replace(spec, backend="vllm"))
        try:
            self._wait_ready([probe], replace(spec, backend="vllm"))
        except ServerOutOfMemory:
            raise  # the knob is the fix: falling back would hide it behind a slower engine
        except EvoforgeError as e:
            log.warning("backend=auto: vLLM did not start (%s); serving with transformers (hf)", e)
            return "hf", None
        log.warning("backend=auto: picked vLLM")
        return "vllm", probe

    # -- ModelServer ----------------------------------------------------------------------

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        """Split the batch into contiguous shares, one per replica; results in request order."""
        if not requests:
            return []
        size = -(-len(requests) // len(self.actors))
        return self._run([requests[i : i + size] for i in range(0, len(requests), size)], None)

    def generate_with_progress(
        self, requests: list[GenRequest], progress, chunk: int = 64
    ) -> list[GenResult]:
        """Like generate, in chunks of ``chunk`` requests spread round-robin over the replicas, calling
        ``progress(n_done_requests)`` as chunks finish (so long batches show a live bar)."""
        if len(requests) <= chunk:
            out = self.generate(requests)
            progress(len(out))
            return out
        return self._run(
            [requests[i : i + chunk] for i in range(0, len(requests), chunk)], progress
        )

    def _run(self, shares: list[list[GenRequest]], progress) -> list[GenResult]:
        """Run shares round-robin on the replicas. A share whose actor died (killed, OOM) is retried
        on a restarted actor that first reloads the weights the pool was serving."""
        import ray

        results: list[list[GenResult] | None] = [None] * len(shares)
        todo = list(range(len(shares)))
        for _attempt in range(self.max_restarts + 1):
            name = (
                f"{self.task_label}:{self.role}.generate"
                if self.task_label
                else f"{self.role}.generate"
            )
            refs = {
                self.actors[i % len(self.actors)]
                .generate.options(name=name)
                .remote(shares[i], self.task_label): i
                for i in todo
            }
            pending, failed = list(refs), []
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for r in ready:
                    try:
                        results[refs[r]] = ray.get(r)
                    except ray.exceptions.RayTaskError as e:
                        raise unwrap(e) from None
                    except (ray.exceptions.RayActorError, ray.exceptions.OutOfMemoryError):
                        failed.append(refs[r])  # died (killed for memory, too): restarted
                        continue
                    if progress is not None:
                        progress(len(results[refs[r]]))
            if not failed:
                out = [r for part in results for r in part]  # type: ignore[union-attr]
                self.generated_tokens += sum(sum(r.completion_tokens) for r in out)
                return out
            self._restart_dead()
            todo = failed
        raise EvoforgeError(
            f"model server '{self.role}' kept dying ({self.restarts} restarts); see the Ray "
            "dashboard's logs of evoforge actors (often out of memory: lower serving.vllm_kv_cache_gib)"
        )

    def _restart_dead(self) -> None:
        import ray

        for i, actor in enumerate(self.actors):
            try:
                ray.get(actor.info.remote(), timeout=60)
                continue
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                pass
            log.warning(
                "model server evoforge/%s/%s/%d died; restarting it", self.run, self.role, i
            )
            ray.kill(actor)
            self.actors[i] = self._start(i, self.spec)
            self._wait_ready([self.actors[i]], self.spec)
            if self.weights_path != self.spec.model_path:
                ray.get(self.actors[i].load_weights.remote(self.weights_path))
            self.restarts += 1

    def load_weights(self, path: str) -> None:
        """Every replica loads the same weights in place."""
        import ray

        self.weights_path = path
        try:
            ray.get([a.load_weights.remote(path) for a in self.actors])
        except ray.exceptions.RayTaskError as e:
            raise unwrap(e) from None

    def info(self) -> ServerInfo:
        return self.infos()[0]

    def sleep(self) -> bool:
        """Every replica hands its GPU memory back; False where the engines have none to give."""
        import ray

        return all(ray.get([a.sleep.remote() for a in self.actors]))

    def wake(self) -> None:
        import ray

        ray.get([a.wake.remote() for a in self.actors])

    def busy_seconds(self) -> float:
        """Seconds the replicas have spent inside their engines, summed (a restarted replica
        starts again from 0). A replica found dead here is restarted, as in a batch."""
        import ray

        try:
            return sum(ray.get([a.busy_seconds.remote() for a in self.actors]))
        except ray.exceptions.RayActorError:
            self._restart_dead()
            return sum(ray.get([a.busy_seconds.remote() for a in self.actors]))

    def infos(self) -> list[ServerInfo]:
        import ray

        return ray.get([a.info.remote() for a in self.actors])

    @property
    def backend(self) -> str:
        return self.spec.backend

    def shutdown(self) -> None:
        import ray
        from ray.util.placement_group import remove_placement_group

        for a in self.actors:
            ray.kill(a)
        self.actors = []
        for pg in self.groups.values():
            remove_placement_group(pg)
        self.groups = {}
