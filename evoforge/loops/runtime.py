"""What every stage of a run shares: config, run directory, environments, servers, trainer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evoforge.agents.roles import Roles
from evoforge.agents.search import SearchSettings, TreeSearch
from evoforge.config import Config
from evoforge.envs.base import Environment
from evoforge.loops.progress import Progress
from evoforge.loops.rundir import RunDir
from evoforge.loops.servers import RoleServers
from evoforge.loops.state import RunState
from evoforge.loops.store import RoundStore
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
    roles: Roles = field(init=False)
    trainer: TrainerActor = field(init=False)

    def __post_init__(self) -> None:
        s = self.servers
        self.roles = Roles.from_config(self.config, s.actor, s.critic, s.refiner)
        self.trainer = TrainerActor(self.run_id, self.config.serving.threads)

    def store(self, state: RunState) -> RoundStore:
        """The files of the state's round."""
        return RoundStore(self.rd.round(state["round"]))

    def baseline_store(self) -> RoundStore:
        return RoundStore(self.rd.baseline)

    def last_kept_store(self, state: RunState) -> RoundStore:
        """The files of the last kept round, or the baseline's."""
        k = state.get("last_kept", -1)
        return RoundStore(self.rd.round(k)) if k >= 0 else self.baseline_store()

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
        return TreeSearch(
            self.roles,
            self.env,
            store.tasks(),
            SearchSettings.from_config(self.config),
            judge_weight=weight,
        )

    def model_dir(self, round_: int) -> Path:
        return self.rd.model(round_)
