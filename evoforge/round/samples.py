"""What a sample is, decided once per environment: an answer of a single-turn environment, or a
trajectory of a multi-turn one (an environment that gives tools, envs/multiturn.py).

The runtime picks the kind of its environment once (``kind_for``, ``Runtime.samples``) and the
round's stages only call the kind's batched operations, never asking which kind it is: sample the
round's tasks, read the samples back, verify them, sample under guidance, say what the samples
did, give a search root its sample, make the round's pairs and rows, search the failed ones,
answer held-out tasks. What the stages choose (which tasks, which pairs, which roots) is the same
for both kinds.

On trajectories: the samples advance together turn by turn, one batched server call per turn
(agents/rollout.py), seeded by their keys; a trajectory ends when its next prompt would not fit the
context window; a verdict also names the turn a refinement would rewrite; the search rewrites that
turn and replays the rest (agents/turn_search.py); pairs and rows come from trajectory_pairs.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cached_property
from typing import Any, ClassVar

from evoforge.agents.guidance import Guidance
from evoforge.agents.prompts import transcript
from evoforge.agents.roles import Roles
from evoforge.agents.rollout import Edit, Fits, guided_rollout, replay, rollout
from evoforge.agents.search import Node, SearchSettings, TreeSearch
from evoforge.agents.serving.types import GenRequest, Sampling, generate
from evoforge.agents.turn_search import TrajectorySearch
from evoforge.config import Config
from evoforge.envs.base import Task
from evoforge.envs.multiturn import Trajectory, first_failed_turn, is_multiturn
from evoforge.envs.verify import safe_verify
from evoforge.round.stages.answer_pairs import AnswerPairs, PairBuilder
from evoforge.round.stages.trajectory_pairs import TrajectoryPairs
from evoforge.round.stages.trajectory_stats import trajectory_stats
from evoforge.storage.records import GuidedRow, SampleVerdict, TaskSamples, TaskVerdicts
from evoforge.storage.store import RoundStore

Hold = Callable[[Node, int], None]
"""(search root, index of its sample among its task's) -> fills in what the root holds beyond
its text."""

Items = Sequence[tuple[Task, Guidance]]
"""(task, guidance) pairs to sample under guidance (explore.py)."""


def answer_verdict(env: Any, task: Task, text: str) -> SampleVerdict:
    """The verdict of one answer."""
    return SampleVerdict.of(safe_verify(env, task, text))


def trajectory_verdict(env: Any, t: Trajectory) -> SampleVerdict:
    """The verdict of a whole trajectory and the turn a refinement would rewrite."""
    v = safe_verify(env, t.task, t.messages)
    return SampleVerdict.of(v, failed_turn=first_failed_turn(t, v))


def response_verdicts(
    env: Any, store: RoundStore, tasks: dict[str, Task], progress: Callable[[int], None]
) -> list[TaskVerdicts]:
    """The verdicts of a single-turn round's answers."""
    out = []
    for tid, texts in store.responses().items():
        vs = [answer_verdict(env, tasks[tid], x) for x in texts]
        out.append(TaskVerdicts(task_id=tid, verdicts=vs))
        progress(1)
    return out


def trajectory_verdicts(
    env: Any, store: RoundStore, tasks: dict[str, Task], progress: Callable[[int], None]
) -> list[TaskVerdicts]:
    """The verdicts of a multi-turn round's trajectories, each with the turn to rewrite."""
    out = []
    for tid, trajs in store.trajectories(tasks).items():
        vs = [trajectory_verdict(env, t) for t in trajs]
        out.append(TaskVerdicts(task_id=tid, verdicts=vs))
        progress(1)
    return out


class SampleKind(ABC):
    """What a sample of one environment is, and the batched operations the stages ask of the
    samples."""

    trajectories: ClassVar[bool]
    """The samples are trajectories (the critic and the refiner take their multi-turn
    templates)."""

    def __init__(self, env: Any, roles: Roles, config: Config, model_path: str = "") -> None:
        """``model_path``: the actor's starting weights, whose tokenizer counts a trajectory's
        next prompt against the context window."""
        self.env, self.roles, self.config, self.model_path = env, roles, config, model_path

    @abstractmethod
    def steps(self, items: int, samples: int) -> tuple[int, str]:
        """The progress bar of sampling ``samples`` per item: its total and its unit."""

    @abstractmethod
    def generate(self, tasks: list[Task], key: str, progress=None) -> list[TaskSamples]:
        """``generation.samples`` samples of each task, seeded by ``key``, a task a row."""

    @abstractmethod
    def read(self, store: RoundStore, tasks: dict[str, Task] | None = None) -> dict[str, list]:
        """The round's samples as ``generate`` made them, by task."""

    @abstractmethod
    def verify(
        self, store: RoundStore, tasks: dict[str, Task], progress: Callable[[int], None]
    ) -> list[TaskVerdicts]:
        """The verdict on every stored sample, a task a row, in the order of the samples."""

    @abstractmethod
    def explore(self, items: Items, samples: int, key: str, progress=None) -> list[GuidedRow]:
        """``samples`` guided samples per (task, guidance) item, each verified against the plain
        task, a row per item."""

    def stats(self, samples: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """What the samples did: (counts for the stage's line, entries for metrics.json)."""
        return {}, {}

    def root_hold(self, store: RoundStore) -> Hold | None:
        """What a search root holds beyond its text, taken from the round's samples (None:
        nothing)."""
        return None

    @abstractmethod
    def pairs(self, store: RoundStore, tasks: dict[str, Task], turn_only: bool) -> PairBuilder:
        """The maker of the round's pairs, RFT rows and refiner rows from its samples."""

    @abstractmethod
    def search(
        self, tasks: dict[str, Task], settings: SearchSettings, judge_weight: float
    ) -> TreeSearch:
        """The tree search over the round's failed samples."""

    @abstractmethod
    def heldout(
        self, tasks: list[Task], sampling: Sampling, progress=None
    ) -> list[tuple[str, Any]]:
        """One sample of each held-out task: (its text as recorded, what the verifier reads)."""


class Answers(SampleKind):
    """A sample is one answer; the actor answers a task's samples in one request."""

    trajectories = False

    def steps(self, items: int, samples: int) -> tuple[int, str]:
        return items, "req"

    def generate(self, tasks: list[Task], key: str, progress=None) -> list[TaskSamples]:
        results = self.roles.answer(tasks, key=key, progress=progress)
        return [
            TaskSamples(task_id=x.id, responses=x.texts, tokens=x.completion_tokens)
            for x in results
        ]

    def read(self, store: RoundStore, tasks: dict[str, Task] | None = None) -> dict[str, list]:
        return store.responses()

    def verify(
        self, store: RoundStore, tasks: dict[str, Task], progress: Callable[[int], None]
    ) -> list[TaskVerdicts]:
        return response_verdicts(self.env, store, tasks, progress)

    def explore(self, items: Items, samples: int, key: str, progress=None) -> list[GuidedRow]:
        answers = self.roles.explore(list(items), samples, key=key, progress=progress)
        rows = []
        for (task, g), texts in zip(items, answers, strict=True):
            vs = [answer_verdict(self.env, task, x) for x in texts]
            rows.append(GuidedRow(task_id=task.id, kind=g.kind, responses=texts, verdicts=vs))
        return rows

    def pairs(self, store: RoundStore, tasks: dict[str, Task], turn_only: bool) -> AnswerPairs:
        return AnswerPairs(tasks, store.responses())

    def search(
        self, tasks: dict[str, Task], settings: SearchSettings, judge_weight: float
    ) -> TreeSearch:
        return TreeSearch(self.roles, self.env, tasks, settings, judge_weight=judge_weight)

    def heldout(
        self, tasks: list[Task], sampling: Sampling, progress=None
    ) -> list[tuple[str, Any]]:
        reqs = [GenRequest(t.messages, sampling, id=t.id) for t in tasks]
        return [(r.texts[0], r.texts[0]) for r in generate(self.roles.actor, reqs, progress)]


class Trajectories(SampleKind):
    """A sample is a multi-turn trajectory; all of a batch advance together turn by turn."""

    trajectories = True

    MIN_TURN_TOKENS = 16
    """A trajectory goes on only while its next prompt leaves this much room in the window."""

    @cached_property
    def fits(self) -> Fits:
        """Whether a prompt (messages, tool specs) leaves room for a turn in the context window,
        counted with the actor's tokenizer as the engines count it."""
        from evoforge.agents.serving.chat_tokenizer import load_chat_tokenizer
        from evoforge.agents.serving.engine_base import prompt_ids

        tok = load_chat_tokenizer(self.model_path)
        room = self.config.serving.max_model_len - self.MIN_TURN_TOKENS

        def fits(messages, tools) -> bool:
            return len(prompt_ids(tok, messages, tools)) < room

        return fits

    def _turns(self) -> dict[str, Any]:
        """What every rollout of the run shares: its turn limit, its seed, the context check, calls
        per turn."""
        return {
            "max_turns": self.config.generation.max_turns,
            "seed": self.config.seed,
            "fits": self.fits,
            "one_call": self.config.generation.one_call_per_turn,
        }

    def rollouts(
        self, tasks: Sequence[Task], sampling: Sampling, key: str, samples: int = 1, progress=None
    ) -> list[Trajectory]:
        """``samples`` trajectories per task (task-major), all advanced together turn by turn."""
        return rollout(
            self.roles.actor,
            self.env,
            tasks,
            replace(sampling, n=1),
            samples=samples,
            key=key,
            progress=progress,
            **self._turns(),
        )

    def replay(self, edits: Sequence[Edit]) -> list[Trajectory]:
        """The actor continues each edit's trajectory from its rewritten turn (sampled)."""
        return replay(
            self.roles.actor,
            self.env,
            edits,
            replace(self.roles.actor_sampling, n=1),
            **self._turns(),
        )

    def steps(self, items: int, samples: int) -> tuple[int, str]:
        return items * samples * self.config.generation.max_turns, "turn"  # turns at most

    def generate(self, tasks: list[Task], key: str, progress=None) -> list[TaskSamples]:
        samples = self.config.generation.samples
        trajs = self.rollouts(tasks, self.roles.actor_sampling, key, samples, progress)
        return RoundStore.trajectory_rows(trajs)

    def read(self, store: RoundStore, tasks: dict[str, Task] | None = None) -> dict[str, list]:
        return store.trajectories(tasks)

    def verify(
        self, store: RoundStore, tasks: dict[str, Task], progress: Callable[[int], None]
    ) -> list[TaskVerdicts]:
        return trajectory_verdicts(self.env, store, tasks, progress)

    def explore(self, items: Items, samples: int, key: str, progress=None) -> list[GuidedRow]:
        """Guided rollouts (``agents.rollout.guided_rollout``), item-major, a row per item."""
        trajs = guided_rollout(
            self.roles.actor,
            self.env,
            items,
            replace(self.roles.actor_sampling, n=1),
            samples=samples,
            key=key,
            progress=progress,
            **self._turns(),
        )
        rows = []
        for k, (task, g) in enumerate(items):
            group = trajs[k * samples : (k + 1) * samples]
            rows.append(
                GuidedRow(
                    task_id=task.id,
                    kind=g.kind,
                    trajectories=[t.to_json(with_task=False) for t in group],
                    tokens=[t.tokens for t in group],
                    verdicts=[trajectory_verdict(self.env, t) for t in group],
                )
            )
        return rows

    def stats(self, samples: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Turns and tool calls per sample (shown), and ``trajectories``: what they did
        (trajectory_stats.py); nothing when there is no sample."""
        if not samples:
            return {}, {}
        s = trajectory_stats(list(samples))
        shown = {k: s[k] for k in ("turns_per_sample", "tool_calls_per_sample")}
        return shown, {"trajectories": s}

    def root_hold(self, store: RoundStore) -> Hold:
        """A root holds its trajectory (its text is the transcript)."""
        trajs = store.trajectories()

        def hold(node: Node, i: int) -> None:
            node.trajectory = trajs[node.task_id][i].to_json(with_task=False)

        return hold

    def pairs(self, store: RoundStore, tasks: dict[str, Task], turn_only: bool) -> TrajectoryPairs:
        return TrajectoryPairs(self.env, store.trajectories(tasks), turn_only)

    def search(
        self, tasks: dict[str, Task], settings: SearchSettings, judge_weight: float
    ) -> TreeSearch:
        return TrajectorySearch(
            self.roles, self.env, tasks, settings, self.replay, judge_weight=judge_weight
        )

    def heldout(
        self, tasks: list[Task], sampling: Sampling, progress=None
    ) -> list[tuple[str, Any]]:
        """Greedy rollouts, recorded as their transcripts and verified whole."""
        trajs = self.rollouts(tasks, sampling, "eval", progress=progress)
        return [(transcript(x.messages, len(x.task.messages)), x.messages) for x in trajs]


def kind_for(env: object) -> type[SampleKind]:
    """The kind of sample of ``env``: trajectories where it gives tools, else answers."""
    return Trajectories if is_multiturn(env) else Answers
