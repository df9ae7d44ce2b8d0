"""Turn-batched rollouts of a multi-turn environment, and replays from a rewritten turn.

All live trajectories advance together: each turn is ONE batched server call with one request per
live trajectory; the replies are parsed, their tool calls run in the environment, the results
appended, until every trajectory has answered, been ended by the environment, or reached
``max_turns``. Sampling seeds derive from (seed, trajectory key, turn), so a rollout is
deterministic given its seeds and replays of the same edit give the same continuation.

A guided rollout (:func:`guided_rollout`, agents/guidance.py) shows the model the task with a
guidance line and forces an opening on the first assistant turn; the trajectory records the plain
task messages and the turn with the opening kept, so verification and training see the plain
prompt.

With ``one_call`` (the default; ``generation.one_call_per_turn``) a turn ends at its first tool
call: generation stops at the call's closing tag and the tool's result comes next. A forced
opening that is already a whole call is the whole turn (nothing is generated after it).

A trajectory whose next prompt would not fit the context window (``fits``, when given, says; long
tool results can get there before ``max_turns``) ends as ``context`` instead of failing the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from evoforge.agents.guidance import Guidance, guided_messages
from evoforge.agents.roles import stable_seed
from evoforge.agents.serving.types import GenRequest, ModelServer, Sampling, generate
from evoforge.envs.base import Task
from evoforge.envs.multiturn import Tool, Trajectory, apply_turn, is_multiturn, tool_map
from evoforge.envs.toolcalls import CALL_CLOSE, closes_call, first_call
from evoforge.errors import EvoforgeError

Fits = Callable[[list[dict[str, str]], tuple[dict, ...]], bool]
"""Whether a prompt (messages, tool specs) leaves room for a turn in the context window."""


@dataclass(frozen=True)
class Edit:
    """Replace assistant turn ``turn`` of ``trajectory`` with ``text`` and continue from there."""

    trajectory: Trajectory
    turn: int
    text: str


def _check(env: object, sampling: Sampling, max_turns: int) -> None:
    if not is_multiturn(env):
        raise EvoforgeError(
            f"environment '{getattr(env, 'name', env)}' gives no tools(task); rollouts need a "
            "multi-turn environment (see evoforge.envs.multiturn)"
        )
    if sampling.n != 1:
        raise EvoforgeError(
            f"a rollout samples one reply per turn (sampling.n={sampling.n}); ask for more "
            "trajectories with samples=N instead"
        )
    if max_turns < 1:
        raise EvoforgeError(f"max_turns must be at least 1, got {max_turns}")


def advance(
    server: ModelServer,
    env: object,
    trajectories: Sequence[Trajectory],
    sampling: Sampling,
    max_turns: int,
    seed: int = 0,
    progress=None,
    fits: Fits | None = None,
    guidance: Mapping[str, Guidance] | None = None,
    one_call: bool = True,
) -> list[Trajectory]:
    """Run every live trajectory to its end, one batched server call per turn (in place).

    ``guidance`` maps a trajectory key to the guidance its prompts get (:func:`guided_rollout`);
    ``one_call`` ends a turn at its first tool call (module docstring)."""
    guidance = guidance or {}
    _check(env, sampling, max_turns)
    if one_call and CALL_CLOSE not in sampling.stop:
        sampling = replace(sampling, stop=(*sampling.stop, CALL_CLOSE))
    tools: dict[str, dict[str, Tool]] = {}
    for t in trajectories:
        if t.task.id not in tools:
            tools[t.task.id] = tool_map(env, t.task)
    specs = {tid: tuple(tool.spec() for tool in ts.values()) for tid, ts in tools.items()}
    while live := [t for t in trajectories if not t.done]:
        if fits is not None:
            for t in live:
                if t.turns and not fits(_seen(t, guidance.get(t.key)), specs[t.task.id]):
                    t.ended = "context"
                    t.turns[-1].errors.append(
                        "the conversation outgrew the context window; answer in fewer turns"
                    )
            live = [t for t in live if not t.done]
            if not live:
                break
        prefixes = {}
        for t in live:
            g = guidance.get(t.key)
            prefixes[t.key] = g.forced(len(t.turns)) if g is not None else ""
        whole = {k for k, p in prefixes.items() if one_call and closes_call(p)}
        asking = [t for t in live if t.key not in whole]
        requests = []
        for t in asking:
            turn = len(t.turns)
            s = sampling
            if s.temperature > 0:
                s = replace(s, seed=stable_seed(seed, t.key, turn))
            requests.append(
                GenRequest(
                    _seen(t, guidance.get(t.key)),
                    s,
                    id=f"{t.key}#{turn}",
                    tools=specs[t.task.id],
                    prefix=prefixes[t.key],
                )
            )
        replies = dict(
            zip([t.key for t in asking], generate(server, requests, progress), strict=True)
        )
        for t in live:
            res = replies.get(t.key)
            text = prefixes[t.key] + (res.texts[0] if res is not None else "")
            if one_call:
                text = first_call(text)
            record = apply_turn(env, t, text, max_turns, tools[t.task.id])
            record.tokens = res.completion_tokens[0] if res is not None else 0
    return list(trajectories)


def _seen(t: Trajectory, g: Guidance | None) -> list[dict[str, str]]:
    """The messages the model sees: the trajectory's, its task's part guided by ``g``."""
    if g is None or not g.text:
        return list(t.messages)
    return guided_messages(t.task, g) + [dict(m) for m in t.messages[len(t.task.messages) :]]


def rollout(
    server: ModelServer,
    env: object,
    tasks: Sequence[Task],
    sampling: Sampling,
    max_turns: int,
    seed: int = 0,
    samples: int = 1,
    key: str = "rollout",
    progress=None,
    fits: Fits | None = None,
    guidance: Mapping[str, Guidance] | None = None,
    one_call: bool = True,
) -> list[Trajectory]:
    """``samples`` trajectories per task (task-major order), advanced together turn by turn.

    Trajectory keys are ``{task.id}/{key}/{sample}``; a different ``key`` gives other samples.
    ``guidance`` maps a task id to the guidance of all its samples (see :func:`guided_rollout`)."""
    trajectories = [
        Trajectory.start(task, f"{task.id}/{key}/{i}") for task in tasks for i in range(samples)
    ]
    by_key = {t.key: guidance[t.task.id] for t in trajectories if t.task.id in (guidance or {})}
    return advance(
        server, env, trajectories, sampling, max_turns, seed, progress, fits, by_key, one_call
    )


def guided_rollout(
    server: ModelServer,
    env: object,
    items: Sequence[tuple[Task, Guidance]],
    sampling: Sampling,
    max_turns: int,
    seed: int = 0,
    samples: int = 1,
    key: str = "guided",
    progress=None,
    fits: Fits | None = None,
    one_call: bool = True,
) -> list[Trajectory]:
    """``samples`` guided trajectories per (task, guidance) item (item-major order), all advanced
    together: the model sees the task with ``guidance.text`` added to its user message, and its
    first assistant turn is forced to open with ``guidance.prefix`` (a later turn with its
    ``followups``). Each trajectory records the PLAIN task messages and the turns as written,
    the forced openings included, so it verifies and trains as an answer to the plain prompt.

    Trajectory keys are ``{task.id}/{key}-{kind}/{sample}``: each kind samples with its own seeds."""
    trajectories, by_key = [], {}
    for task, g in items:
        for i in range(samples):
            t = Trajectory.start(task, f"{task.id}/{key}-{g.kind}/{i}")
            trajectories.append(t)
            by_key[t.key] = g
    return advance(
        server, env, trajectories, sampling, max_turns, seed, progress, fits, by_key, one_call
    )


def replay(
    server: ModelServer,
    env: object,
    edits: Sequence[Edit],
    sampling: Sampling,
    max_turns: int,
    seed: int = 0,
    progress=None,
    fits: Fits | None = None,
    one_call: bool = True,
) -> list[Trajectory]:
    """Each edit's trajectory cut before its turn, the turn replaced by the edit's text (to its
    first call, with ``one_call``), and the rest played again (all edits batched turn by turn).
    The original trajectories are unchanged.

    The replayed branch's key is ``{parent key}/t{turn}-{crc of the text}``: the same edit gives
    the same key, so the same seeds and the same continuation."""
    _check(env, sampling, max_turns)
    branches = []
    for e in edits:
        b = e.trajectory.branch(e.turn, f"{e.trajectory.key}/t{e.turn}-{stable_seed(e.text):08x}")
        text = first_call(e.text) if one_call else e.text
        apply_turn(env, b, text, max_turns, tool_map(env, b.task))
        branches.append(b)
    return advance(server, env, branches, sampling, max_turns, seed, progress, fits, None, one_call)
