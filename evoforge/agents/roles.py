"""The three roles as batched operations over a ModelServer: actor, critic (k votes), refiner.

Each role turns many items into one list of requests and makes one server call, so the
servers see large batches and the critic's prompts, which share long prefixes, hit the cache.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from evoforge.agents.guidance import Guidance, answer, guided_messages
from evoforge.agents.parsing import parse_refinement, parse_verdict, vote_value
from evoforge.agents.prompts import (
    FEEDBACK_LINE,
    NO_CRITIQUE,
    load_template,
    task_with_tools,
    transcript,
)
from evoforge.agents.serving.types import GenRequest, GenResult, ModelServer, Sampling, generate
from evoforge.config import Config
from evoforge.envs.base import Task
from evoforge.envs.multiturn import Message, Trajectory


def stable_seed(*parts: object) -> int:
    """A seed that depends only on ``parts`` (stable across processes, unlike hash())."""
    return zlib.crc32("/".join(map(str, parts)).encode()) & 0x7FFFFFFF


@dataclass(frozen=True)
class Judgement:
    """k sampled critiques of one response."""

    critiques: list[str]
    votes: list[str | None]
    """'yes', 'no', or None (abstained: no parseable verdict)."""

    @property
    def value(self) -> float | None:
        return vote_value(self.votes)

    @property
    def abstentions(self) -> int:
        return sum(v is None for v in self.votes)


def representative(critiques: list[str], votes: list[str | None]) -> str:
    """The critique to show the refiner: the first that says no, else the first."""
    return next(
        (c for c, v in zip(critiques, votes, strict=True) if v == "no"),
        critiques[0] if critiques else "",
    )


@dataclass
class Roles:
    """Bindings of the roles to servers and sampling settings."""

    actor: ModelServer
    critic: ModelServer
    refiner: ModelServer
    actor_sampling: Sampling
    critic_sampling: Sampling
    refiner_sampling: Sampling
    critic_template: str = ""
    """The critic's template text; empty means the built-in one."""
    refiner_template: str = ""
    """The refiner's template text; empty means the built-in one."""
    seed: int = 0
    trajectories: bool = False
    """The environment is multi-turn: the critic judges whole trajectories and the refiner
    rewrites one turn (their own built-in templates)."""

    def __post_init__(self) -> None:
        # Texts, not paths: from_config reads the files, so dataclasses.replace keeps working.
        multi = self.trajectories
        self.critic_template = self.critic_template or load_template("critic", "", multi)
        self.refiner_template = self.refiner_template or load_template("refiner", "", multi)

    @classmethod
    def from_config(
        cls,
        config: Config,
        actor: ModelServer,
        critic: ModelServer,
        refiner: ModelServer,
        trajectories: bool = False,
    ) -> Roles:
        """The roles on their servers, each sampling as its config section says;
        ``trajectories``: the environment is multi-turn."""
        g, c, r = config.generation, config.critic, config.refiner
        return cls(
            actor=actor,
            critic=critic,
            refiner=refiner,
            actor_sampling=Sampling(
                temperature=g.temperature, top_p=g.top_p, max_tokens=g.max_tokens, n=g.samples
            ),
            critic_sampling=Sampling(temperature=c.temperature, max_tokens=c.max_tokens, n=c.votes),
            refiner_sampling=Sampling(temperature=r.temperature, max_tokens=r.max_tokens),
            critic_template=load_template("critic", config.prompts.critic, trajectories),
            refiner_template=load_template("refiner", config.prompts.refiner, trajectories),
            seed=config.seed,
            trajectories=trajectories,
        )

    def _seeded(self, s: Sampling, *key: object) -> Sampling:
        from dataclasses import replace

        return replace(s, seed=stable_seed(self.seed, *key)) if s.temperature > 0 else s

    # -- actor -------------------------------------------------------------------------------
    def answer(self, tasks: list[Task], key: str = "answer", progress=None) -> list[GenResult]:
        reqs = [
            GenRequest(t.messages, self._seeded(self.actor_sampling, key, t.id), id=t.id)
            for t in tasks
        ]
        return generate(self.actor, reqs, progress)

    def explore(
        self, items: list[tuple[Task, Guidance]], n: int, key: str = "explore", progress=None
    ) -> list[list[str]]:
        """Guided samples of single-turn tasks: ``n`` answers per (task, guidance) item, in one
        server call. The model sees the guided prompt (agents/guidance.py) and is forced to open
        with ``guidance.prefix``; each returned answer is ``prefix + continuation``, to be stored
        against the plain ``task.messages``. Sampling as the actor's, seeded by (key, task id,
        kind). Multi-turn tasks go through ``agents.rollout.guided_rollout`` instead."""
        from dataclasses import replace

        reqs = [
            GenRequest(
                guided_messages(t, g),
                replace(self._seeded(self.actor_sampling, key, t.id, g.kind), n=n),
                id=f"{t.id}#{g.kind}",
                prefix=g.prefix,
            )
            for t, g in items
        ]
        out = generate(self.actor, reqs, progress)
        return [[answer(g, x) for x in res.texts] for (_, g), res in zip(items, out, strict=True)]

    # -- critic ------------------------------------------------------------------------------
    def critic_prompt(self, task: Task, response: str) -> list[dict[str, str]]:
        text = self.critic_template.format(instruction=task.prompt, response=response)
        return [{"role": "user", "content": text}]

    def judge(self, items: list[tuple[str, Task, str]], progress=None) -> list[Judgement]:
        """Judge (key, task, response) items; one server call for all, k votes each (n=k)."""
        reqs = [
            GenRequest(
                self.critic_prompt(t, r), self._seeded(self.critic_sampling, "judge", key), id=key
            )
            for key, t, r in items
        ]
        out = generate(self.critic, reqs, progress)
        return [
            Judgement(critiques=res.texts, votes=[parse_verdict(x) for x in res.texts])
            for res in out
        ]

    # -- refiner -----------------------------------------------------------------------------
    def refiner_prompt(
        self, task: Task, response: str, critique: str, feedback: str
    ) -> list[dict[str, str]]:
        fb = FEEDBACK_LINE.format(feedback=feedback) if feedback else ""
        text = self.refiner_template.format(
            instruction=task.prompt,
            response=response,
            critique=critique or NO_CRITIQUE,
            feedback=fb,
        )
        return [{"role": "user", "content": text}]

    def refine(
        self, items: list[tuple[str, Task, str, str, str]], children: list[int], progress=None
    ) -> list[list[str]]:
        """Refine (key, task, response, critique, feedback) items, ``children[i]`` samples each."""
        prompts = [(key, self.refiner_prompt(t, r, c, f)) for key, t, r, c, f in items]
        return self.refine_prompts(prompts, children, progress)

    def turn_refiner_prompt(
        self, traj: Trajectory, turn: int, critique: str, feedback: str, specs
    ) -> list[dict[str, str]]:
        """The refiner's prompt for assistant turn ``turn`` of a trajectory: the task with its
        tools, the conversation up to that turn and what came back from it, the turn marked."""
        t = traj.turns
        end = t[turn + 1].index if turn + 1 < len(t) else len(traj.messages)
        fb = FEEDBACK_LINE.format(feedback=feedback) if feedback else ""
        text = self.refiner_template.format(
            instruction=task_with_tools(traj.task.prompt, specs),
            response=transcript(traj.messages[:end], len(traj.task.messages), t[turn].index),
            critique=critique or NO_CRITIQUE,
            feedback=fb,
        )
        return [{"role": "user", "content": text}]

    def refine_prompts(
        self, items: list[tuple[str, list[Message]]], children: list[int], progress=None
    ) -> list[list[str]]:
        """Sample ``children[i]`` refinements of each (key, refiner prompt) in one server call."""
        from dataclasses import replace

        reqs = [
            GenRequest(
                prompt,
                replace(self._seeded(self.refiner_sampling, "refine", key), n=k),
                id=key,
            )
            for (key, prompt), k in zip(items, children, strict=True)
        ]
        out = generate(self.refiner, reqs, progress)
        return [[parse_refinement(x) for x in res.texts] for res in out]
