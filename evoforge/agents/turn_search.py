"""The tree search on multi-turn trajectories: a node holds a trajectory, and expanding it rewrites
the turn that went wrong and lets the environment replay the rest.

- The turn to rewrite is the first one the verifier points at (``details["failed_turn"]``, else
  the first turn with a failed call, else the last: ``envs.multiturn.first_failed_turn``).
- The refiner reads the task with its tools, the conversation up to that turn and what came back
  from it (the turn marked), the critique of the whole trajectory and the environment's feedback,
  and writes the new turn. Writing ``NO CHANGE`` (or the turn unchanged) keeps the turn: that
  branch ends there, unjudged (ToolACE-R's adaptive stop: the model decides when to stop).
- Every rewritten turn of a level is replayed in one batch (``replay``: one server call per turn
  for all children of all trees), and the new trajectories are verified and judged like any node.

Levels stay synchronous: per level, one refiner call and one replay for every active tree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from evoforge.agents.parsing import keeps_turn
from evoforge.agents.prompts import transcript
from evoforge.agents.roles import Roles
from evoforge.agents.rollout import Edit
from evoforge.agents.search import Node, SearchSettings, TreeSearch
from evoforge.envs.base import Task
from evoforge.envs.multiturn import Trajectory, first_failed_turn, tool_map
from evoforge.envs.verify import safe_verify

Replay = Callable[[Sequence[Edit]], list[Trajectory]]
"""Continues each edit's trajectory from its rewritten turn (``agents.rollout.replay`` bound to
the actor's server, its sampling and ``max_turns``)."""


def trajectory_node(
    node_id: str, traj: Trajectory, parent: str | None = None, depth: int = 0
) -> Node:
    """A search node holding ``traj`` (its transcript as the response)."""
    return Node(
        id=node_id,
        task_id=traj.task.id,
        parent=parent,
        depth=depth,
        response=transcript(traj.messages, len(traj.task.messages)),
        trajectory=traj.to_json(with_task=False),
    )


class TrajectorySearch(TreeSearch):
    """Batched tree search over the failed trajectories of a round."""

    def __init__(
        self,
        roles: Roles,
        env,
        tasks: dict[str, Task],
        settings: SearchSettings,
        replay: Replay,
        judge_weight: float = 1.0,
    ) -> None:
        super().__init__(roles, env, tasks, settings, judge_weight)
        self.replay = replay
        self._specs: dict[str, tuple[dict, ...]] = {}

    def trajectory(self, n: Node) -> Trajectory:
        """The node's trajectory, with its task."""
        return Trajectory.from_json(n.trajectory, self.tasks[n.task_id])

    def specs(self, task_id: str) -> tuple[dict, ...]:
        if task_id not in self._specs:
            tools = tool_map(self.env, self.tasks[task_id])
            self._specs[task_id] = tuple(t.spec() for t in tools.values())
        return self._specs[task_id]

    def _verify(self, n: Node) -> None:
        traj = self.trajectory(n)
        v = safe_verify(self.env, traj.task, traj.messages)
        n.verifier_score, n.verifier_passed, n.feedback = float(v.score), v.passed, v.feedback
        n.verifier_loose = bool(v.details.get("loose", v.passed))
        n.failed_turn = first_failed_turn(traj, v)

    def children(self, parents: list[Node], counts: list[int], progress=None) -> list[list[Node]]:
        """One refiner call for the turn to rewrite of every parent, then one replay of every
        rewritten turn; a refinement that keeps its turn is a stopped child (no replay)."""
        trajs = [self.trajectory(p) for p in parents]
        prompts = [
            (
                p.id,
                self.roles.turn_refiner_prompt(
                    traj, p.failed_turn, p.critique, self.feedback(p), self.specs(p.task_id)
                ),
            )
            for p, traj in zip(parents, trajs, strict=True)
        ]
        outputs = self.roles.refine_prompts(prompts, counts, progress)
        kids: list[list[Node]] = []
        edits: list[Edit] = []
        replayed: list[Node] = []
        for p, traj, texts in zip(parents, trajs, outputs, strict=True):
            row = []
            for j, text in enumerate(texts):
                child = Node(
                    id=f"{p.id}.{j}",
                    task_id=p.task_id,
                    parent=p.id,
                    depth=p.depth + 1,
                    response=text,
                    turn=p.failed_turn,
                )
                if keeps_turn(text, traj.turn_text(p.failed_turn)):
                    child.status = "stopped"
                else:
                    edits.append(Edit(traj, p.failed_turn, text))
                    replayed.append(child)
                row.append(child)
            kids.append(row)
        for child, new in zip(replayed, self.replay(edits) if edits else [], strict=True):
            child.trajectory = new.to_json(with_task=False)
            child.response = transcript(new.messages, len(new.task.messages))
        return kids
