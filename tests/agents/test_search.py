"""Tree search against a scripted ModelServer: order, pruning, threshold, budget, cache, batching."""

from __future__ import annotations

import re

import pytest

from evoforge.agents.roles import Roles
from evoforge.agents.search import Node, SearchSettings, SearchState, TreeSearch, combine_value
from evoforge.agents.serving.types import GenResult, Sampling
from evoforge.envs import Task, Verdict


class ScriptedServer:
    """Critic: 'Verdict: yes' for responses whose score (the number after 's=') is above 0.5.
    Refiner: child j of a response with score s gets score s + step[j]; texts encode the path."""

    def __init__(self, steps=(0.1, 0.3, 0.05), abstain_marker="???", repeat=False):
        self.repeat = repeat  # refinements copy their parent's text exactly
        self.calls: list[list] = []
        self.steps = steps
        self.abstain_marker = abstain_marker

    def generate(self, requests):
        self.calls.append(requests)
        out = []
        for r in requests:
            text = r.messages[-1]["content"]
            if text.startswith("You are a strict judge"):
                resp = text.split("Response:\n", 1)[1].split("\n\nList each", 1)[0]
                if self.abstain_marker in resp:
                    texts = ["no verdict here"] * r.sampling.n
                else:
                    s = float(re.search(r"s=([\d.]+)", resp).group(1))
                    texts = [f"check...\nVerdict: {'yes' if s > 0.5 else 'no'}"] * r.sampling.n
            else:
                resp = text.split("Response:\n", 1)[1].split("\n\nCritique:", 1)[0]
                s = float(re.search(r"s=([\d.]+)", resp).group(1))
                name = resp.split(" ")[0]
                texts = [
                    f"<response>{resp}</response>"
                    if self.repeat
                    else f"<response>{name}.{j} s={s + self.steps[j % len(self.steps)]:.2f}</response>"
                    for j in range(r.sampling.n)
                ]
            out.append(
                GenResult(
                    id=r.id,
                    texts=texts,
                    prompt_tokens=1,
                    completion_tokens=[1] * len(texts),
                    finish_reasons=["stop"] * len(texts),
                )
            )
        return out

    def load_weights(self, path):
        pass

    def info(self):
        raise NotImplementedError


class ScoreEnv:
    name = "score"

    def tasks(self, split, n, seed):
        return [
            Task(id=f"t{i}", messages=({"role": "user", "content": f"task {i}"},)) for i in range(n)
        ]

    def verify(self, task, response):
        m = re.search(r"s=([\d.]+)", response)
        s = min(1.0, float(m.group(1))) if m else 0.0
        return Verdict(score=s, passed=s > 0.5, feedback="" if s > 0.5 else "too low")


def search_settings(**kw) -> SearchSettings:
    """The settings these tests were written for, with ``kw`` changed."""
    base = dict(
        strategy="bfs",
        children=3,
        keep=2,
        max_depth=3,
        threshold=0.5,
        node_budget=12,
        value="both",
        adaptive_stop=False,
        use_env_feedback=True,
    )
    return SearchSettings(**(base | kw))


def make(settings: SearchSettings, server=None, n_tasks=2):
    server = server or ScriptedServer()
    env = ScoreEnv()
    tasks = {t.id: t for t in env.tasks("train", n_tasks, 0)}
    roles = Roles(
        actor=server,
        critic=server,
        refiner=server,
        actor_sampling=Sampling(temperature=0.7, max_tokens=32),
        critic_sampling=Sampling(temperature=0.8, max_tokens=32, n=3),
        refiner_sampling=Sampling(temperature=0.8, max_tokens=32),
    )
    return TreeSearch(roles, env, tasks, settings), server, tasks


def roots(search, tasks, score=0.1):
    nodes = [
        Node(id=f"{tid}#0", task_id=tid, parent=None, depth=0, response=f"{tid}#0 s={score:.2f}")
        for tid in tasks
    ]
    search.score(nodes)
    return nodes


def test_bfs_levels_are_one_batched_call_each_for_all_tasks():
    search, server, tasks = make(
        search_settings(
            children=3, keep=2, max_depth=3, threshold=0.5, node_budget=99, value="judge"
        ),
        n_tasks=4,
    )
    rs = roots(search, tasks)
    server.calls.clear()
    state = search.run(rs)
    # Alternating refine/judge calls, each holding requests of every task.
    kinds = [
        "judge" if c[0].messages[-1]["content"].startswith("You are") else "refine"
        for c in server.calls
    ]
    assert kinds == ["refine", "judge"] * (len(kinds) // 2)
    for call in server.calls:
        assert {r.id.split("#")[0] for r in call} == set(tasks)
    assert state.expand_calls == state.judge_calls == len(kinds) // 2


def test_bfs_keeps_best_and_accepts_above_threshold():
    # scores: root 0.1; children 0.2, 0.4, 0.15 -> keep 0.4 and 0.2; grandchildren of 0.4: 0.5, 0.7 -> accept 0.7
    search, _, tasks = make(
        search_settings(
            children=3, keep=2, max_depth=3, threshold=0.5, node_budget=99, value="verifier"
        ),
        n_tasks=1,
    )
    state = search.run(roots(search, tasks))
    tree = state.trees["t0"]
    assert tree.reason == "accepted"
    acc = state.nodes[tree.accepted]
    assert acc.depth == 2 and acc.parent == "t0#0.1" and acc.value == pytest.approx(0.7)
    level1 = [n for n in state.nodes.values() if n.depth == 1]
    assert len(level1) == 3
    expanded = {n.id for n in state.nodes.values() if n.status == "expanded"}
    assert "t0#0.2" not in expanded  # pruned: third best at level 1


def test_threshold_stops_at_first_level_when_met():
    search, _, tasks = make(
        search_settings(children=3, keep=2, max_depth=3, threshold=0.5, value="verifier"), n_tasks=1
    )
    state = search.run(roots(search, tasks, score=0.3))  # child .1 gets 0.6
    assert state.trees["t0"].accepted == "t0#0.1" and state.level == 1


def test_dfs_follows_best_child_first_and_backtracks():
    server = ScriptedServer(steps=(0.01, 0.02, 0.0))
    search, server, tasks = make(
        search_settings(
            strategy="dfs",
            children=2,
            keep=2,
            max_depth=2,
            threshold=0.9,
            node_budget=99,
            value="verifier",
        ),
        server=server,
        n_tasks=1,
    )
    state = search.run(roots(search, tasks))
    order = [
        c[0].id for c in server.calls if not c[0].messages[-1]["content"].startswith("You are")
    ]
    # root, then its best child (.1), then (depth limit) backtrack to the sibling .0
    assert order == ["t0#0", "t0#0.1", "t0#0.0"]
    assert state.trees["t0"].reason == "tree exhausted"


def test_node_budget_limits_children():
    search, _, tasks = make(
        search_settings(
            children=3, keep=2, max_depth=5, threshold=0.99, node_budget=5, value="verifier"
        ),
        n_tasks=2,
    )
    state = search.run(roots(search, tasks))
    for t in state.trees.values():
        assert t.budget_used == 5 and len(t.nodes) == 6 and t.reason == "node budget spent"


def test_identical_responses_are_judged_once():
    server = ScriptedServer(repeat=True)
    search, server, tasks = make(
        search_settings(
            children=3, keep=1, max_depth=2, threshold=0.9, node_budget=99, value="judge"
        ),
        server=server,
        n_tasks=1,
    )
    state = search.run(roots(search, tasks))
    judged_texts = [
        r.messages[-1]["content"]
        for c in server.calls
        for r in c
        if r.messages[-1]["content"].startswith("You are")
    ]
    assert len(judged_texts) == len(set(judged_texts))
    assert len(judged_texts) == 1  # the root only: every refinement repeated it
    assert state.cache_hits == 3 + 3  # three children at each of two levels


def test_abstentions_are_not_read_as_no():
    server = ScriptedServer()
    search, _, tasks = make(search_settings(value="both"), server=server, n_tasks=1)
    n = Node(id="t0#0", task_id="t0", parent=None, depth=0, response="??? s=0.9")
    search.score([n])
    assert n.votes == [None, None, None] and n.judge_value is None
    assert n.value == pytest.approx(0.9)  # the verifier alone decides, abstentions are not zeros


def test_adaptive_stop_on_plateau():
    server = ScriptedServer(steps=(0.0, -0.05, 0.0))
    search, _, tasks = make(
        search_settings(
            children=3, keep=2, max_depth=3, threshold=0.9, value="verifier", adaptive_stop=True
        ),
        server=server,
        n_tasks=1,
    )
    state = search.run(roots(search, tasks, score=0.2))
    assert state.trees["t0"].reason.startswith("adaptive stop") and state.level == 1


def test_state_roundtrips_through_json():
    search, _, tasks = make(search_settings(children=2, max_depth=2, value="verifier"), n_tasks=2)
    s = search.start(roots(search, tasks))
    search.expand(s)
    again = SearchState.from_json(s.to_json())
    assert again.to_json() == s.to_json() and len(again.pending()) == 4


def test_combine_value():
    assert combine_value("both", 1.0, 0.0) == 0.5
    assert combine_value("both", None, 0.4) == 0.4
    assert combine_value("judge", None, 0.4) is None
