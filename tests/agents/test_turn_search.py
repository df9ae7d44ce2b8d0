"""The tree search on trajectories against a scripted model: the turn that went wrong is rewritten,
the rest replayed in one batch per turn, the refiner's NO CHANGE ends a branch, and a search
serialized between expand and judge ends as an uninterrupted one."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from evoforge.agents.parsing import keeps_turn
from evoforge.agents.roles import Roles
from evoforge.agents.rollout import replay, rollout
from evoforge.agents.search import SearchSettings, SearchState
from evoforge.agents.serving.types import GenResult, Sampling
from evoforge.agents.turn_search import TrajectorySearch, trajectory_node
from evoforge.envs import get_env
from evoforge.envs.multiturn import first_failed_turn

SAMPLING = Sampling(temperature=0.7, max_tokens=64)
WRONG = {  # a wrong value for the first argument of a call that has one of these
    "field": "population",
    "to_unit": "in",
    "expression": "1 + 1",
    "days": 1,
    "date": "2000-01-01",
}


def call(c: dict) -> str:
    return f"<tool_call>{json.dumps({'name': c['name'], 'arguments': c['arguments']})}</tool_call>"


def wrong(c: dict) -> dict:
    args = dict(c["arguments"])
    key = next(k for k in WRONG if k in args)
    return dict(c, arguments=dict(args, **{key: WRONG[key]}))


class Scripted:
    """Actor: at turn k of a trajectory replayed r times it makes expected call k right if k < r,
    else wrong; after the calls it answers (right only if every call was). Refiner: writes the
    expected call of the marked turn, or NO CHANGE on the tasks in ``keep``. Critic: yes when
    the conversation ends with the right answer."""

    def __init__(self, tasks, keep=()):
        self.tasks = {t.id: t for t in tasks}
        self.keep = set(keep)
        self.calls: list[tuple[str, int]] = []  # (kind, requests) per server call

    def _kind(self, r) -> str:
        text = r.messages[-1]["content"]
        if text.startswith("An assistant is solving a task with tools"):
            return "refine"
        return "judge" if text.startswith("You are a strict judge") else "actor"

    def generate(self, requests):
        kinds = {self._kind(r) for r in requests}
        assert len(kinds) == 1, "one server call serves one role"
        kind = kinds.pop()
        self.calls.append((kind, len(requests)))
        return [
            GenResult(r.id, texts, 10, [3] * len(texts), ["stop"] * len(texts))
            for r in requests
            for texts in [getattr(self, kind)(r)]
        ]

    def actor(self, r) -> list[str]:
        key, turn = r.id.rsplit("#", 1)
        task = self.tasks["/".join(key.split("/")[:4])]
        calls, k, done = task.metadata["calls"], int(turn), len(re.findall(r"/t\d+-", key))
        if k < len(calls):
            return [call(calls[k] if k < done else wrong(calls[k]))]
        right = done >= len(calls)
        return [f"The answer is {task.metadata['answer'] if right else 3}."]

    def refine(self, r) -> list[str]:
        task = self.tasks[r.id.split("#")[0]]
        text = r.messages[-1]["content"]
        if task.id in self.keep:
            return ["<response>NO CHANGE</response>"] * r.sampling.n
        convo = text.split("Conversation:\n", 1)[1]
        turn = convo.split(">>> assistant:", 1)[0].count("assistant:")
        return [f"<response>{call(task.metadata['calls'][turn])}</response>"] * r.sampling.n

    def judge(self, r) -> list[str]:
        task = next(t for t in self.tasks.values() if t.prompt in r.messages[-1]["content"])
        ok = f"The answer is {task.metadata['answer']}." in r.messages[-1]["content"]
        return [f"Verdict: {'yes' if ok else 'no'}"] * r.sampling.n


def settings(**kw) -> SearchSettings:
    base = dict(
        strategy="bfs",
        children=2,
        keep=2,
        max_depth=3,
        threshold=0.5,
        node_budget=8,
        value="verifier",
        adaptive_stop=False,
        use_env_feedback=True,
    )
    return SearchSettings(**(base | kw))


def setup(keep_first=False, **kw):
    env = get_env("tools")
    tasks = [t for t in env.tasks("train", 14, 0) if t.tags[0] in ("lookup_convert", "date_chain")]
    server = Scripted(tasks, keep=[tasks[0].id] if keep_first else [])
    roles = Roles(
        actor=server,
        critic=server,
        refiner=server,
        actor_sampling=SAMPLING,
        critic_sampling=Sampling(temperature=0.8, max_tokens=16, n=2),
        refiner_sampling=Sampling(temperature=0.8, max_tokens=64),
        trajectories=True,
    )
    trajs = rollout(server, env, tasks, SAMPLING, max_turns=5, key="round0")

    def replay_fn(edits):
        return replay(server, env, edits, SAMPLING, max_turns=5)

    search = TrajectorySearch(roles, env, {t.id: t for t in tasks}, settings(**kw), replay_fn)
    roots = [trajectory_node(f"{t.task.id}#0", t) for t in trajs]
    return env, tasks, server, search, roots


def test_the_wrong_turn_is_rewritten_and_replayed_until_the_trajectory_passes():
    env, tasks, server, search, roots = setup()
    search.score(roots)
    assert all(r.verifier_passed is False and r.failed_turn == 0 for r in roots)
    state = search.start(roots)
    server.calls.clear()
    search.expand(state)
    # one refiner call for every tree, then one replay call per turn for all children
    kinds = [k for k, _ in server.calls]
    assert kinds[0] == "refine" and server.calls[0][1] == len(tasks)
    assert set(kinds[1:]) == {"actor"} and server.calls[1][1] == 2 * len(tasks)
    children = state.pending()
    assert len(children) == 2 * len(tasks) and all(c.turn == 0 for c in children)
    for c in children:  # the prefix before the rewritten turn is the root's, the turn is new
        traj = search.trajectory(c)
        root = search.trajectory(state.nodes[c.parent])
        assert traj.prefix(0) == root.prefix(0) and traj.turn_text(0) != root.turn_text(0)
    search.judge(state)
    assert all(c.failed_turn == 1 and not c.verifier_passed for c in children)
    while state.active():
        search.expand(state)
        search.judge(state)
    for t in state.trees.values():
        node = state.nodes[t.accepted]
        assert t.reason == "accepted" and node.depth == 2 and node.turn == 1
        traj = search.trajectory(node)
        assert env.verify(traj.task, traj.messages).passed
    assert state.expand_calls == 2 and state.judge_calls == 2  # one per level, for every tree


def test_no_change_ends_the_branch_unjudged():
    env, tasks, server, search, roots = setup(keep_first=True)
    search.score(roots)
    state = search.start(roots)
    search.expand(state)
    kept = state.trees[tasks[0].id]
    stopped = [state.nodes[n] for n in kept.nodes[1:]]
    assert stopped and all(n.status == "stopped" and n.trajectory is None for n in stopped)
    replays = sum(n for k, n in server.calls if k == "actor")
    search.judge(state)
    assert kept.done and kept.reason == "adaptive stop: the refiner kept the turn"
    assert kept.stopped == 2 and kept.accepted is None
    assert all(n.status == "stopped" for n in stopped)  # never judged
    assert not state.trees[tasks[1].id].done  # the other tree searches on
    assert replays == sum(n for k, n in server.calls if k == "actor")
    assert keeps_turn(" no change. ", "x") and keeps_turn("same", "same ")
    assert not keeps_turn("no changes needed here, call add", "x")


def test_the_judge_reads_the_trajectory_and_is_weighed_with_the_verifier():
    env, tasks, server, search, roots = setup(value="both")
    search.score(roots)
    judge = [k for k, _ in server.calls].count("judge")
    assert judge == 1 and all(r.votes == ["no", "no"] and r.value == 0.0 for r in roots)
    prompt = search.roles.critic_prompt(tasks[0], roots[0].response)[0]["content"]
    assert "Conversation:\nassistant: <tool_call>" in prompt and "tool lookup_city:" in prompt


def _run(search, roots, interrupt: bool) -> SearchState:
    search.score(roots)
    state = search.start(roots)
    while state.active():
        search.expand(state)
        if interrupt:  # written to disk after expand, read back by a fresh search
            state = SearchState.from_json(json.loads(json.dumps(state.to_json())))
            fresh = TrajectorySearch(
                search.roles, search.env, search.tasks, search.s, search.replay
            )
            fresh.bind(state)
            search = fresh
        search.judge(state)
    return state


def test_a_search_resumed_between_expand_and_judge_ends_the_same():
    a = _run(*setup()[3:], interrupt=False)
    b = _run(*setup()[3:], interrupt=True)
    assert a.to_json() == b.to_json()


def test_first_failed_turn_comes_from_the_verifier():
    env, tasks, server, search, roots = setup()
    traj = search.trajectory(roots[0])
    v = env.verify(traj.task, traj.messages)
    assert v.details["failed_turn"] == first_failed_turn(traj, v) == 0
    bad = replace(v, details={})
    assert first_failed_turn(traj, bad) == len(traj.turns) - 1  # no failed call: the last turn


@pytest.mark.parametrize("turn_only", [True, False])
def test_pairs_share_the_prefix_and_rows_render_the_tools(turn_only, tiny_path):
    from transformers import AutoTokenizer

    from evoforge.round.stages.trajectory_pairs import TrajectoryPairs
    from evoforge.storage.records import SampleVerdict
    from evoforge.training.trl_adapters import dpo_rows, sft_rows

    env, tasks, server, search, roots = setup()
    state = _run(search, roots, interrupt=False)
    trajs = {r.task_id: [search.trajectory(r)] for r in roots}
    tp = TrajectoryPairs(env, trajs, turn_only)
    tree = next(iter(state.trees.values()))
    task = search.tasks[tree.task_id]
    p = tp.nodes(task, "refined", state.nodes[tree.accepted], state.nodes[tree.root], "k")
    good, bad = search.trajectory(state.nodes[tree.accepted]), trajs[task.id][0]
    assert p.turn == 0 and p.prompt == list(task.messages)
    assert p.chosen[0]["content"] == good.turn_text(0)
    assert p.rejected[0]["content"] == bad.turn_text(0)
    assert len(p.chosen) == (1 if turn_only else len(good.continuation(0)))
    assert p.chosen_score == 1.0 > p.rejected_score
    assert [s["function"]["name"] for s in p.tools][0] == "calculate"
    tok = AutoTokenizer.from_pretrained(tiny_path)
    [row] = dpo_rows([p.to_row()], tok)
    assert row["prompt"][0]["role"] == "system" and "- calculate(" in row["prompt"][0]["content"]
    assert row["chosen"][0] == {"role": "assistant", "content": good.turn_text(0)}
    # RFT rows: every turn of the accepted refinement (its calls all ran), after its prefix
    verdicts = {
        t: [SampleVerdict(score=0.0, passed=False, loose=False, feedback="")] for t in trajs
    }
    texts = {t: ["x"] for t in trajs}
    rows = tp.rft_rows(texts, verdicts, state, per_task=2)
    assert len(rows) == sum(
        len(search.trajectory(state.nodes[t.accepted]).turns) for t in state.trees.values()
    )
    first = next(r for r in rows if r.task_id == task.id)
    assert first.messages == list(task.messages) and first.turn == 0
    [sft] = sft_rows([first.to_row()], tok)
    assert sft["completion"] == [{"role": "assistant", "content": good.turn_text(0)}]
    # a refined turn's refiner row: the prompt that marks the turn, the turn it wrote
    parent = state.nodes[state.nodes[tree.accepted].parent]
    messages, new = tp.refinement(search.roles, task, parent, state.nodes[tree.accepted])
    assert ">>> assistant:" in messages[0]["content"] and new == good.turn_text(1)
