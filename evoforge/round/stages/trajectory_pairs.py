"""Pairs, RFT rows and refiner rows of a multi-turn round, made from trajectories.

- A pair of two trajectories of one task (a passing sample and the closest failing one, or an
  accepted refinement and its original) shares every message up to the first assistant turn
  where they differ: those messages are the prompt; chosen and rejected are the two
  continuations from there, or only the two differing turns with ``pairs.turn_only`` (no loss on
  what the environment said afterwards). Each pair carries the tools' specs, so that the trainer
  renders it as the model saw it.
- RFT rows: one row per assistant turn of a passing trajectory (the messages before the turn,
  the turn), leaving out turns whose calls failed; the model is trained on its own turns only.
- Refiner rows: the refiner's prompt for a rewritten turn and the turn it wrote.
"""

from __future__ import annotations

from evoforge.agents.roles import Roles
from evoforge.agents.search import Node, SearchState
from evoforge.agents.turn_pairs import prefer
from evoforge.envs.base import Task
from evoforge.envs.multiturn import Message, Trajectory, tool_map
from evoforge.errors import EvoforgeError
from evoforge.round.stages.pair_text import edit_distance, side_text
from evoforge.storage.records import Pair, SampleVerdict, SftRow


class TrajectoryPairs:
    """Makes the round's data from its sampled trajectories and searched trees."""

    def __init__(self, env, trajectories: dict[str, list[Trajectory]], turn_only: bool) -> None:
        self.env, self.trajectories, self.turn_only = env, trajectories, turn_only
        self._specs: dict[str, list[dict]] = {}

    def specs(self, task: Task) -> list[dict]:
        """The task's tools as function specs."""
        if task.id not in self._specs:
            self._specs[task.id] = [t.spec() for t in tool_map(self.env, task).values()]
        return self._specs[task.id]

    def pair(
        self,
        task: Task,
        source: str,
        win: Trajectory,
        ws: float,
        lose: Trajectory,
        ls: float,
        key: str,
    ) -> Pair | None:
        """The pair record of two trajectories (``win`` chosen); None when they never differ."""
        try:
            p = prefer(win, ws, lose, ls)
        except EvoforgeError:
            return None
        end = 1 if self.turn_only else None
        chosen, rejected = p.chosen[:end], p.rejected[:end]
        return Pair(
            id=f"{task.id}|{source}|{key}",
            task_id=task.id,
            source=source,
            prompt=p.prompt,
            chosen=chosen,
            rejected=rejected,
            tools=self.specs(task),
            turn=p.turn,
            chosen_score=ws,
            rejected_score=ls,
            edit_distance=edit_distance(side_text(chosen), side_text(rejected)),
        )

    def samples(self, task: Task, verdicts: list[SampleVerdict]):
        """The pair maker of a task's samples (``pairs.MakePair``)."""
        trajs = self.trajectories[task.id]

        def make(source: str, c: int, r: int, key: str) -> Pair | None:
            s = (verdicts[c].score, verdicts[r].score)
            return self.pair(task, source, trajs[c], s[0], trajs[r], s[1], key)

        return make

    def guided(self, task: Task, verdicts: list[SampleVerdict]):
        """The pair maker of a task's guided trajectories against its samples
        (``pairs.GuidedPair``)."""
        trajs = self.trajectories[task.id]

        def make(g, c: int, r: int, key: str) -> Pair | None:
            win, ws = g.trajectories[c], g.verdicts[c].score
            return self.pair(task, "guided", win, ws, trajs[r], verdicts[r].score, key)

        return make

    def nodes(self, task: Task, source: str, chosen: Node, rejected: Node, key: str) -> Pair | None:
        """The pair of two search nodes (an accepted refinement and its original)."""
        return self.pair(
            task,
            source,
            Trajectory.from_json(chosen.trajectory, task),
            chosen.verifier_score or 0.0,
            Trajectory.from_json(rejected.trajectory, task),
            rejected.verifier_score or 0.0,
            key,
        )

    def turn_rows(self, traj: Trajectory, source: str) -> list[SftRow]:
        """SFT rows of a passing trajectory: each turn whose calls all ran, after its prefix."""
        return [
            SftRow(
                task_id=traj.task.id,
                source=source,
                turn=k,
                messages=traj.prefix(k),
                completion=traj.turn_text(k),
                tools=self.specs(traj.task),
            )
            for k, record in enumerate(traj.turns)
            if not record.errors
        ]

    def rft_rows(
        self,
        texts: dict[str, list[str]],
        verdicts: dict[str, list[SampleVerdict]],
        state: SearchState,
        per_task: int,
        guided: list[tuple[str, Trajectory]] = (),
    ) -> list[SftRow]:
        """Turns of passing samples (distinct trajectories, up to ``per_task`` a task), of passing
        guided trajectories (``guided``: (task id, trajectory), already capped) and of accepted,
        verified refinements."""
        out = []
        for tid, trajs in self.trajectories.items():
            seen: set[str] = set()
            ok = []
            for i, v in enumerate(verdicts[tid]):
                if v.passed and texts[tid][i] not in seen:
                    seen.add(texts[tid][i])
                    ok.append(trajs[i])
            for traj in ok[:per_task]:
                out += self.turn_rows(traj, "sampled")
        for _, traj in guided:
            out += self.turn_rows(traj, "guided")
        for tree in state.trees.values():
            node = state.nodes[tree.accepted] if tree.accepted else None
            if node is not None and node.verifier_passed:
                task = self.trajectories[tree.task_id][0].task
                out += self.turn_rows(Trajectory.from_json(node.trajectory, task), "refined")
        return out

    def refinement(
        self, roles: Roles, task: Task, parent: Node, node: Node
    ) -> tuple[list[Message], str]:
        """The refiner's prompt for the turn ``node`` rewrote, and the turn it wrote."""
        before = Trajectory.from_json(parent.trajectory, task)
        after = Trajectory.from_json(node.trajectory, task)
        prompt = roles.turn_refiner_prompt(
            before, node.turn, parent.critique, parent.feedback, self.specs(task)
        )
        return prompt, after.turn_text(node.turn)
