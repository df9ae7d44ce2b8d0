"""``env=verifiers:MODULE[:NAME]``: a `verifiers <https://github.com/PrimeIntellect-ai/verifiers>`_
taskset, as it is, as a single-turn environment (optional extra ``verifiers``, pinned to 0.4.0).

verifiers 0.4 keeps its whole stack in ``verifiers.v1``: a ``Taskset`` whose ``load()`` yields
``Task`` objects (a ``TaskData`` with the prompt, the system prompt and the task's own fields),
scored by the task's ``@vf.reward(weight=...)`` methods on a ``vf.Trace``. A response is scored
the way verifiers' own ``replay`` command re-scores a stored trace: offline, ``Task.score(trace)``
without a runtime, on a trace holding the task's prompt and the response as the one sampled
assistant turn. The weighted sum of the rewards is the score (cut to [0, 1]; the sum itself is in
``details["reward"]``), ``passed`` is that sum at or above ``data.pass_threshold``, and every
reward's value and weight is in the details and the feedback.

Not supported yet, each refused with a one-line error naming the part: tool servers
(``toolsets``), tasks that need a container (``NEEDS_CONTAINER``, an ``image``, ``setup``/
``finalize`` hooks), rewards that need a runtime, judges (they call a model), and prompts that are
not text (no prompt, images, tool calls). Harness-driven rollouts: docs/serving-openai-endpoint.md.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import itertools
import json
import math
import random
import threading
import zlib
from typing import Any

from evoforge.envs.base import Task, Verdict, check_split
from evoforge.errors import EvoforgeError

PREFIX = "verifiers:"
VERSION = "0.4.0"
"""The verifiers release this adapter is written and tested against (its ``verifiers.v1`` API)."""
HELDOUT_EVERY = 5
"""One task in this many (by a stable hash of its prompt) is heldout."""
MAX_TASKS = 10_000
"""An infinite taskset (``INFINITE = True``) is read up to this many tasks."""
_HOOKS = ("setup", "finalize", "stage_verifier")


def import_verifiers() -> Any:
    """``verifiers.v1``, or a one-line error saying how to install the pinned version."""
    try:
        import verifiers
        import verifiers.v1 as vf
    except ImportError as e:
        raise EvoforgeError(
            f"env=verifiers:... needs the package verifiers=={VERSION} ({type(e).__name__}: "
            f"{e}); install it with `.venv/bin/pip install 'evoforge[verifiers]'`"
        ) from None
    if verifiers.__version__ != VERSION:
        raise EvoforgeError(
            f"env=verifiers:... is written for verifiers {VERSION} (its verifiers.v1 API); "
            f"found {verifiers.__version__}; install it with `.venv/bin/pip install "
            f"verifiers=={VERSION}`"
        )
    return vf


def _is_taskset_class(obj: Any, vf: Any) -> bool:
    return inspect.isclass(obj) and issubclass(obj, vf.Taskset) and obj is not vf.Taskset


def _instantiate(cls: type, vf: Any) -> Any:
    from verifiers.v1.utils.generic import concrete_type

    config = concrete_type(cls, vf.TasksetConfig, origin=vf.Taskset) or vf.TasksetConfig
    return cls(config())


def load_taskset(spec: str) -> Any:
    """The Taskset that ``MODULE[:NAME]`` names: NAME a Taskset subclass or a function returning
    one; without NAME the module's ``load_taskset()``, else its only Taskset subclass."""
    vf = import_verifiers()
    module_name, _, attr = spec.partition(":")
    label = f"{PREFIX}{spec}"
    if not module_name:
        raise EvoforgeError(f"env '{label}' must be written verifiers:MODULE[:NAME]")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise EvoforgeError(f"env '{label}': failed to import: {type(e).__name__}: {e}") from e
    if attr:
        if not hasattr(module, attr):
            raise EvoforgeError(f"env '{label}': module '{module_name}' has no attribute '{attr}'")
        obj = getattr(module, attr)
    elif callable(own := getattr(module, "load_taskset", None)) and own is not vf.load_taskset:
        obj = own
    else:
        found = sorted(
            name
            for name, v in vars(module).items()
            if _is_taskset_class(v, vf)
            and v.__module__ == module.__name__
            and not inspect.isabstract(v)
        )
        if len(found) != 1:
            what = f"{len(found)} ({', '.join(found)})" if found else "no"
            raise EvoforgeError(
                f"env '{label}': module '{module_name}' defines {what} Taskset subclasses and no "
                "load_taskset(); name one: verifiers:MODULE:NAME"
            )
        obj = getattr(module, found[0])
    if inspect.isclass(obj) and not _is_taskset_class(obj, vf):
        raise EvoforgeError(
            f"env '{label}': '{attr}' is a class but not a verifiers.v1 Taskset subclass; name "
            "a Taskset subclass or a function returning one"
        )
    try:
        taskset = _instantiate(obj, vf) if inspect.isclass(obj) else obj()
        if _is_taskset_class(taskset, vf):
            taskset = _instantiate(taskset, vf)
    except EvoforgeError:
        raise
    except Exception as e:
        raise EvoforgeError(
            f"env '{label}': the taskset failed to construct: {type(e).__name__}: {e}"
        ) from e
    if not isinstance(taskset, vf.Taskset):
        raise EvoforgeError(
            f"env '{label}': '{attr or 'load_taskset'}' gave {type(taskset).__name__}, not a "
            "verifiers.v1 Taskset (a subclass, or a function returning one)"
        )
    return taskset


def _requires_runtime(fn: Any) -> bool:
    param = inspect.signature(fn).parameters.get("runtime")
    return param is not None and param.default is inspect.Parameter.empty


def unsupported(task: Any, vf: Any) -> str:
    """What of a verifiers task evoforge cannot score offline yet, in words; '' when nothing."""
    kind = type(task).__name__
    if getattr(task, "NEEDS_CONTAINER", False) or task.data.image:
        return f"task type {kind} needs a container (NEEDS_CONTAINER or an image)"
    hooks = [h for h in _HOOKS if getattr(type(task), h) is not getattr(vf.Task, h)]
    if hooks:
        return (
            f"task type {kind} has {'/'.join(hooks)}() hooks, which run in a runtime (a container)"
        )
    if tools := type(task).toolsets(task.config):
        return f"task type {kind} has toolsets ({', '.join(type(t).__name__ for t in tools)})"
    rewards = task.hooks("reward")
    needs = [fn.__name__ for fn in rewards if _requires_runtime(fn)]
    if needs:
        return f"task type {kind}: reward(s) {', '.join(needs)} need a runtime"
    if task.config.judges:
        return f"task type {kind} has judges, which call a model"
    if not rewards:
        return f"task type {kind} has no @vf.reward method, so nothing scores an answer"
    return ""


def prompt_messages(data: Any, vf: Any) -> list[dict[str, str]]:
    """The task's system prompt and prompt as chat messages; ValueError for what is not text."""
    out = [{"role": "system", "content": data.system_prompt}] if data.system_prompt else []
    if data.prompt is None:
        raise ValueError("has no prompt (the user opens the conversation)")
    if isinstance(data.prompt, str):
        return [*out, {"role": "user", "content": data.prompt}]
    for m in data.prompt:
        if isinstance(m, vf.ToolMessage) or getattr(m, "tool_calls", None):
            raise ValueError("has tool calls or tool results in its prompt")
        if not isinstance(m.content, str) and any(
            not isinstance(p, vf.TextContentPart) for p in m.content or []
        ):
            raise ValueError("has a prompt that is not text (images)")
        out.append({"role": m.role, "content": vf.types.content_text(m.content)})
    return out


def _run(coro: Any) -> Any:
    """Run a coroutine to its end, also from a thread whose event loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = asyncio.run(coro)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            out["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


class VerifiersTasksetEnv:
    """A verifiers taskset as an environment: its tasks, its rewards' weighted sum as the score."""

    def __init__(self, spec: str, pass_threshold: float = 1.0) -> None:
        if not 0.0 < pass_threshold <= 1.0:
            raise EvoforgeError(
                f"env=verifiers:... needs data.pass_threshold in (0, 1], got {pass_threshold}"
            )
        self.spec, self.pass_threshold = spec, pass_threshold
        self.name = f"{PREFIX}{spec}"
        self._load()

    def _load(self) -> None:
        vf = self._vf = import_verifiers()
        taskset = load_taskset(self.spec)
        kind = type(taskset).__name__
        if tools := type(taskset).toolsets(taskset.config):
            raise EvoforgeError(
                f"env '{self.name}': taskset {kind} has toolsets "
                f"({', '.join(type(t).__name__ for t in tools)}); MCP tool servers are not "
                "supported yet (a tool environment is a MultiTurnEnvironment: docs/environments.md)"
            )
        try:
            loaded = list(itertools.islice(iter(taskset), MAX_TASKS))
        except Exception as e:
            raise EvoforgeError(f"env '{self.name}': load() raised {type(e).__name__}: {e}") from e
        self.tasks_by_index: dict[int, Any] = {}
        self.messages: dict[int, list[dict[str, str]]] = {}
        self.split_indices: dict[str, list[int]] = {"train": [], "heldout": []}
        checked: dict[type, str] = {}
        for task in loaded:
            idx = task.data.idx
            if type(task) not in checked:
                checked[type(task)] = unsupported(task, vf)
            problem = checked[type(task)] or (
                f"task {idx} names a container image ({task.data.image})" if task.data.image else ""
            )
            if problem:
                raise EvoforgeError(f"env '{self.name}': {problem}; not supported yet")
            try:
                messages = prompt_messages(task.data, vf)
            except ValueError as e:
                raise EvoforgeError(
                    f"env '{self.name}': task {idx} {e}; not supported yet"
                ) from None
            self.tasks_by_index[idx], self.messages[idx] = task, messages
            text = json.dumps(messages, sort_keys=True)
            heldout = zlib.crc32(text.encode()) % HELDOUT_EVERY == 0
            self.split_indices["heldout" if heldout else "train"].append(idx)
        for split, idx in self.split_indices.items():
            if not idx:
                raise EvoforgeError(
                    f"env '{self.name}': its {len(loaded)} task(s) leave the {split} split empty "
                    f"(one prompt in {HELDOUT_EVERY}, by a stable hash, is heldout); load more tasks"
                )

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "pass_threshold": self.pass_threshold}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec, self.pass_threshold = state["spec"], state["pass_threshold"]
        self.name = f"{PREFIX}{self.spec}"
        self._load()

    def tasks(self, split: str, n: int, seed: int) -> list[Task]:
        """Up to ``n`` tasks of ``split``: its tasks shuffled by (split, seed), the first n."""
        check_split(self.name, split)
        order = list(self.split_indices[split])
        random.Random(f"{self.name}/{split}/{seed}").shuffle(order)
        return [self._task(i) for i in order[:n]]

    def _task(self, idx: int) -> Task:
        vt = self.tasks_by_index[idx]
        base = set(self._vf.TaskData.model_fields)
        own = vt.data.model_dump(mode="json", exclude=base - {"id", "name"}, exclude_none=True)
        return Task(
            id=f"{self.name}/{idx}",
            messages=tuple(self.messages[idx]),
            metadata={"index": idx, "key": vt.key, "data": own},
            tags=(type(vt).__name__,),
        )

    def trace(self, task: Task, response: str) -> Any:
        """A verifiers Trace of the task's prompt and ``response`` as its one sampled turn."""
        from verifiers.v1.configs.agent import AgentConfig

        vf = self._vf
        vt = self.tasks_by_index[task.metadata["index"]]
        messages = (
            [vf.SystemMessage(content=vt.data.system_prompt)] if vt.data.system_prompt else []
        )
        prompt = vt.data.prompt
        messages += [vf.UserMessage(content=prompt)] if isinstance(prompt, str) else list(prompt)
        messages.append(vf.AssistantMessage(content=response))
        nodes = [
            vf.MessageNode(parent=i - 1 if i else None, message=m, sampled=i == len(messages) - 1)
            for i, m in enumerate(messages)
        ]
        return vf.Trace(
            verifiers=vf.VersionInfo(version=VERSION),
            task=vf.TraceTask(type=type(vt).__name__, data=vt.data, key=vt.key, hash=vt.hash),
            agent=vf.AgentInfo(config=AgentConfig()),
            nodes=nodes,
            is_completed=True,
            ok=True,
        )

    def verify(self, task: Task, response: str) -> Verdict:
        idx = task.metadata.get("index")
        if (
            idx not in self.tasks_by_index
            or task.metadata.get("key") != self.tasks_by_index[idx].key
        ):
            raise EvoforgeError(
                f"env '{self.name}': task '{task.id}' is not a task of this taskset"
            )
        vt = self.tasks_by_index[idx]
        trace = self.trace(task, response)
        _run(vt.score(trace))
        rewards = {k: r for k, r in trace.rewards.items() if r is not None}
        bad = [k for k, r in rewards.items() if not math.isfinite(r.value)]
        if bad or len(rewards) != len(trace.rewards):
            raise EvoforgeError(
                f"env '{self.name}': reward(s) {', '.join(bad or sorted(trace.rewards))} of task "
                f"'{task.id}' gave no finite value; a reward must return a number"
            )
        total = sum(r.value for r in rewards.values())
        score = min(1.0, max(0.0, total))
        passed = total >= self.pass_threshold - 1e-9 and score > 0.0  # float sums
        values = ", ".join(f"{k}={r.score:g} (weight {r.weight:g})" for k, r in rewards.items())
        return Verdict(
            score=score,
            passed=passed,
            details={
                "reward": total,
                "rewards": {k: {"score": r.score, "weight": r.weight} for k, r in rewards.items()},
                "metrics": {k: v for k, v in trace.metrics.items() if v is not None},
                "loose": passed,
                "by_type": {t: passed for t in task.tags},
            },
            feedback=""
            if passed
            else f"rewards: {values}; weighted sum {total:g}, below the pass threshold "
            f"{self.pass_threshold:g}",
        )
