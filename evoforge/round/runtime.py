"""What every stage of a run shares: config, run directory, environments, servers, trainer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from evoforge.agents.guidance import Guidance
from evoforge.agents.roles import Roles
from evoforge.agents.rollout import Edit, guided_rollout, replay, rollout
from evoforge.agents.search import SearchSettings, TreeSearch
from evoforge.agents.serving.placement import Placement
from evoforge.agents.serving.types import ModelServer, Sampling
from evoforge.agents.turn_search import TrajectorySearch
from evoforge.config import Config
from evoforge.envs.base import Environment, Task
from evoforge.envs.multiturn import Trajectory, is_multiturn
from evoforge.progress import Progress
from evoforge.round.servers import RoleServers
from evoforge.round.state import RunState
from evoforge.storage.rundir import RunDir
from evoforge.storage.store import RoundStore
from evoforge.training.actor import TrainerActor


@dataclass
class Runtime:
    """The single controller's handles: one per run, passed to every stage."""

    config: Config
    rd: RunDir
    env: Environment
    guard: Environment | None
    servers: RoleServers
    progress: Progress
    run_id: str
    placement: Placement | None = None
    """The run's GPU layout (None: a runtime built outside a run, e.g. by a benchmark)."""
    trackers: Any = None
    """The run's experiment trackers (driver/trackers.py), or None."""
    roles: Roles = field(init=False)
    trainer: TrainerActor = field(init=False)
    multiturn: bool = field(init=False)
    """The environment gives tools: samples are trajectories, searched turn by turn."""

    def __post_init__(self) -> None:
        s = self.servers
        self.multiturn = is_multiturn(self.env)
        self.roles = Roles.from_config(self.config, s.actor, s.critic, s.refiner, self.multiturn)
        gpus = self.placement.trainer_gpus if self.placement else 0.0
        self.trainer = TrainerActor(self.run_id, self.config.serving.threads, gpus)

    # -- multi-turn environments --------------------------------------------------------------
    MIN_TURN_TOKENS = 16
    """A trajectory goes on only while its next prompt leaves this much room in the window."""

    @cached_property
    def fits(self):
        """Whether a prompt (messages, tool specs) leaves room for a turn in the context window,
        counted with the actor's tokenizer as the engines count it."""
        from transformers import AutoTokenizer

        from evoforge.agents.serving.engine_base import prompt_ids

        tok = AutoTokenizer.from_pretrained(self.base_model_path())
        room = self.config.serving.max_model_len - self.MIN_TURN_TOKENS

        def fits(messages, tools) -> bool:
            return len(prompt_ids(tok, messages, tools)) < room

        return fits

    def rollouts(
        self,
        env,
        tasks: Sequence[Task],
        sampling: Sampling,
        key: str,
        samples: int = 1,
        progress=None,
        server: ModelServer | None = None,
    ) -> list[Trajectory]:
        """Trajectories of ``env`` on ``tasks``, all advanced together turn by turn."""
        return rollout(
            server or self.servers.actor,
            env,
            tasks,
            replace(sampling, n=1),
            samples=samples,
            key=key,
            progress=progress,
            **self._turns(),
        )

    def guided_rollouts(
        self, items: Sequence[tuple[Task, Guidance]], key: str, samples: int, progress=None
    ) -> list[Trajectory]:
        """``samples`` guided trajectories per (task, guidance) item, item-major (the actor
        samples as in generate; agents/rollout.guided_rollout)."""
        return guided_rollout(
            self.servers.actor,
            self.env,
            items,
            replace(self.roles.actor_sampling, n=1),
            samples=samples,
            key=key,
            progress=progress,
            **self._turns(),
        )

    def replay(self, edits: Sequence[Edit]) -> list[Trajectory]:
        """The actor continues each edit's trajectory from its rewritten turn (sampled)."""
        return replay(
            self.servers.actor,
            self.env,
            edits,
            replace(self.roles.actor_sampling, n=1),
            **self._turns(),
        )

    def _turns(self) -> dict[str, Any]:
        """What every rollout of the run shares: its turn limit, its seed, the context check."""
        return {
            "max_turns": self.config.generation.max_turns,
            "seed": self.config.seed,
            "fits": self.fits,
        }

    def store(self, state: RunState) -> RoundStore:
        """The files of the state's round."""
        return self.round_store(state["round"])

    def round_store(self, round_: int) -> RoundStore:
        """The files of round ``round_``."""
        return RoundStore(self.rd.round(round_))

    def baseline_store(self) -> RoundStore:
        return RoundStore(self.rd.baseline)

    def last_kept_store(self, state: RunState) -> RoundStore:
        """The files of the last kept round, or the baseline's."""
        k = state.get("last_kept", -1)
        return self.round_store(k) if k >= 0 else self.baseline_store()

    def base_model_path(self) -> str:
        return self.servers.models["actor"].path

    def kept_weights(self, state: RunState) -> str:
        """Weights of the last kept round, or the starting model."""
        k = state.get("last_kept", -1)
        return str(self.rd.model(k)) if k >= 0 else self.base_model_path()

    def serving_label(self, round_: int) -> str:
        """What the state records as the served weights: relative to the run directory, so a
        moved or copied run directory still resumes; empty = the starting model."""
        return "" if round_ < 0 else str(self.rd.model(round_).relative_to(self.rd.path))

    def tree_search(self, store: RoundStore) -> TreeSearch:
        """The round's tree search over its tasks, with the judge weighted as it earned."""
        weight = store.judge.read()["weight"] if store.judge.exists() else 1.0
        settings = SearchSettings.from_config(self.config)
        if self.multiturn:
            return TrajectorySearch(
                self.roles, self.env, store.tasks(), settings, self.replay, judge_weight=weight
            )
        return TreeSearch(self.roles, self.env, store.tasks(), settings, judge_weight=weight)

    def model_dir(self, round_: int) -> Path:
        return self.rd.model(round_)
