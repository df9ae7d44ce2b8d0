"""The refiner's training rows of a round (SPaR trains the refiner on its successful refinement
chains and on the judgements that agreed with the verifier)."""

from __future__ import annotations

from typing import Any

from evoforge.agents.roles import Roles
from evoforge.agents.search import SearchState
from evoforge.envs.base import Task
from evoforge.round.stages.answer_pairs import AnswerPairs, PairBuilder
from evoforge.storage.records import RefinerRow


def refiner_data(
    tasks: dict[str, Task],
    state: SearchState,
    roles: Roles,
    calibration: list[dict[str, Any]] = (),
    samples: dict[str, list[str]] | None = None,
    builder: PairBuilder | None = None,
) -> list[RefinerRow]:
    """SPaR trains the refiner on successful refinement chains and on judgements.

    - refinement: each step on the path root -> accepted node, when the accepted node passes
      the verifier: (refiner prompt for the parent, the child's response);
    - judgement: critiques whose verdict agrees with the verifier, on search nodes and on the
      answers the judge was calibrated on (so the judge keeps learning while it is benched).

    ``builder`` gives a refinement step's prompt and new text (default: of answers; a
    trajectory's is the prompt for the rewritten turn and the new turn).
    """
    builder = builder or AnswerPairs(tasks, samples or {})
    out = []
    for tree in state.trees.values():
        if tree.accepted is None or not state.nodes[tree.accepted].verifier_passed:
            continue
        task = tasks[tree.task_id]
        node = state.nodes[tree.accepted]
        while node.parent is not None:
            parent = state.nodes[node.parent]
            messages, new = builder.refinement(roles, task, parent, node)
            out.append(
                RefinerRow(
                    kind="refinement",
                    task_id=task.id,
                    node_id=node.id,
                    messages=messages,
                    completion=f"<response>\n{new}\n</response>",
                )
            )
            node = parent
    for n in state.nodes.values():
        if n.cached or n.verifier_passed is None:
            continue
        want = "yes" if n.verifier_passed else "no"
        agreeing = [c for c, v in zip(n.critiques, n.votes, strict=True) if v == want]
        if agreeing:  # one judgement per node: the first that reached the verifier's verdict
            out.append(
                RefinerRow(
                    kind="judgement",
                    task_id=n.task_id,
                    node_id=n.id,
                    messages=roles.critic_prompt(tasks[n.task_id], n.response),
                    completion=agreeing[0],
                )
            )
    for c in calibration:
        want = "yes" if c["passed"] else "no"
        agreeing = [x for x, v in zip(c["critiques"], c["votes"], strict=True) if v == want]
        if agreeing and samples is not None:
            answer = samples[c["task_id"]][c["sample"]]
            out.append(
                RefinerRow(
                    kind="judgement",
                    task_id=c["task_id"],
                    node_id=f"{c['task_id']}@{c['sample']}",
                    messages=roles.critic_prompt(tasks[c["task_id"]], answer),
                    completion=agreeing[0],
                )
            )
    return out
