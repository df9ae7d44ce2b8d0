"""What every stage of a run shares: config, run directory, environments, servers, trainer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evoforge.agents.roles import Roles
from evoforge.agents.search import SearchSettings, TreeSearch
from evoforge.agents.serving.placement import Placement
from evoforge.config import Config
from evoforge.envs.base import Environment
from evoforge.progress import Progress
from evoforge.round.samples import SampleKind, kind_for
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
    trainer: TrainerActor
    """The run's trainer (trainer_for), started ahead by the runner."""
    placement: Placement | None = None
    """The run's GPU layout (None: a runtime built outside a run, e.g. by a benchmark)."""
    trackers: Any = None
    """The run's experiment trackers (driver/trackers.py), or None."""
    roles: Roles = field(init=False)
    samples: SampleKind = field(init=False)
    """What a sample of ``env`` is (an answer, or a trajectory where it gives tools) and the
    batched operations the stages ask of the samples (round/samples.py)."""
    guard_samples: SampleKind | None = field(init=False)
    """The same for ``guard`` (evaluated only), which may be of the other kind."""

    def __post_init__(self) -> None:
        s = self.servers
        trajectories = kind_for(self.env).trajectories
        self.roles = Roles.from_config(self.config, s.actor, s.critic, s.refiner, trajectories)
        self.samples = self._samples_of(self.env)
        self.guard_samples = self._samples_of(self.guard) if self.guard is not None else None

    def _samples_of(self, env: Environment) -> SampleKind:
        return kind_for(env)(env, self.roles, self.config, self.base_model_path())

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
        return self.samples.search(store.tasks(), settings, weight)

    def model_dir(self, round_: int) -> Path:
        return self.rd.model(round_)


def trainer_for(config: Config, run_id: str, placement: Placement | None) -> TrainerActor:
    """The run's trainer handle, with the GPU share ``placement`` gives training."""
    gpus = placement.trainer_gpus if placement else 0.0
    return TrainerActor(run_id, config.serving.threads, gpus, config.train.workers)
