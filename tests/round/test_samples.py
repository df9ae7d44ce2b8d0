"""The two kinds of sample (round/samples.py) on a server that always writes the same text: a
single-turn environment's answers and a multi-turn environment's trajectories go through the same
operations into rows of the same shape, without Ray."""

from __future__ import annotations

import pytest

from evoforge.agents.guidance import Guidance
from evoforge.agents.prompts import transcript
from evoforge.agents.roles import Roles
from evoforge.agents.search import SearchSettings, TreeSearch
from evoforge.agents.serving.types import Sampling
from evoforge.agents.turn_search import TrajectorySearch
from evoforge.config import Config, load_config
from evoforge.envs import Verdict
from evoforge.round.samples import Answers, SampleKind, Trajectories, kind_for
from evoforge.round.stages.answer_pairs import AnswerPairs
from evoforge.round.stages.critique import search_roots
from evoforge.round.stages.pairs import sampled_pairs
from evoforge.round.stages.trajectory_pairs import TrajectoryPairs
from evoforge.round.stages.trajectory_stats import trajectory_stats
from evoforge.storage.records import SampleVerdict
from evoforge.storage.store import RoundStore
from tests.envs.test_verify import Env, Server
from tests.helpers.multiturn import ParityChatEnv

SAMPLES = 2
"""generation.samples of every kind built here."""


def parity(task, response: str) -> Verdict:
    """A single-turn verifier like ParityChatEnv's: an answer of even length passes."""
    even = len(response) % 2 == 0
    return Verdict(score=float(even), passed=even, feedback="" if even else "odd length")


ENVS = {"answers": lambda: Env(parity), "trajectories": ParityChatEnv}
"""A single-turn and a multi-turn environment that pass the same texts."""


def kind_of(env, text: str) -> SampleKind:
    """The kind of sample of ``env``, its actor a server that always writes ``text``."""
    config = load_config(None, [f"generation.samples={SAMPLES}"])
    server = Server(text)
    kind = kind_for(env)
    roles = Roles.from_config(config, server, server, server, kind.trajectories)
    samples = kind(env, roles, config)
    samples.fits = None  # no tokenizer here: no context-window check
    return samples


def stored(kind: SampleKind, path, tasks) -> RoundStore:
    """A round store holding ``tasks`` and the kind's samples of them."""
    store = RoundStore(path)
    store.task_rows.write([t.to_json() for t in tasks])
    store.samples.write(kind.generate(tasks, "round0"))
    return store


def test_the_environment_decides_the_kind_of_sample():
    assert kind_for(Env(parity)) is Answers and not Answers.trajectories
    assert kind_for(ParityChatEnv()) is Trajectories and Trajectories.trajectories


def test_generate_stores_a_row_a_task_of_answers_or_trajectories(tmp_path):
    env = Env(parity)
    answers = kind_of(env, "ab")
    tasks = env.tasks("train", 2, 0)
    store = stored(answers, tmp_path / "answers", tasks)
    rows = store.samples.read()
    assert [(r.task_id, r.responses, r.trajectories) for r in rows] == [
        (t.id, ["ab"] * SAMPLES, None) for t in tasks
    ]
    assert answers.read(store) == {t.id: ["ab"] * SAMPLES for t in tasks}
    env = ParityChatEnv()
    trajectories = kind_of(env, "ab")
    tasks = env.tasks("train", 2, 0)
    store = stored(trajectories, tmp_path / "trajectories", tasks)
    rows = store.samples.read()
    assert [r.task_id for r in rows] == [t.id for t in tasks]
    assert all(r.responses is None and len(r.trajectories) == SAMPLES for r in rows)
    read = trajectories.read(store)
    assert [[x.key for x in xs] for xs in read.values()] == [
        [f"{t.id}/round0/{i}" for i in range(SAMPLES)] for t in tasks
    ]
    assert all(x.ended == "answer" and len(x.turns) == 2 for xs in read.values() for x in xs)


@pytest.mark.parametrize("text", ["ab", "abc"])
def test_both_kinds_verify_their_stored_samples_into_verdicts_of_one_shape(text, tmp_path):
    rows = {}
    for name, make_env in ENVS.items():
        env = make_env()
        kind = kind_of(env, text)
        tasks = env.tasks("train", 3, 0)
        store = stored(kind, tmp_path / name, tasks)
        rows[name] = kind.verify(store, store.tasks(), lambda n: None)
        assert [r.task_id for r in rows[name]] == [t.id for t in tasks]

    def shape(rs):
        return [[(v.passed, v.score) for v in r.verdicts] for r in rs]

    ok = text == "ab"
    assert shape(rows["answers"]) == shape(rows["trajectories"]) == [[(ok, float(ok))] * 2] * 3
    assert all(v.failed_turn is None for r in rows["answers"] for v in r.verdicts)
    turn = 1 if ok else 0  # the last turn when none went wrong, else the first odd one
    assert all(v.failed_turn == turn for r in rows["trajectories"] for v in r.verdicts)


def test_both_kinds_explore_into_guided_rows_of_one_shape(tmp_path):
    rows = {}
    for name, make_env in ENVS.items():
        env = make_env()
        tasks = env.tasks("train", 2, 0)
        items = [(t, Guidance("hint", "Hint: say something even.")) for t in tasks]
        rows[name] = kind_of(env, "abc").explore(items, 3, "round0/explore")
        assert [(r.task_id, r.kind, len(r.verdicts)) for r in rows[name]] == [
            (t.id, "hint", 3) for t in tasks
        ]
        assert not any(v.passed for r in rows[name] for v in r.verdicts)
    assert [r.responses for r in rows["answers"]] == [["abc"] * 3] * 2
    assert all(r.responses is None and len(r.trajectories) == 3 for r in rows["trajectories"])
    # read back, a guided record's samples are the answers or the trajectories themselves
    env = ParityChatEnv()
    store = RoundStore(tmp_path)
    store.task_rows.write([t.to_json() for t in env.tasks("train", 2, 0)])
    store.guided.write(rows["trajectories"])
    groups = store.guided_samples()
    assert all(g.samples is g.trajectories and len(g.samples) == 3 for g in groups)


def test_only_trajectories_say_what_their_samples_did():
    assert kind_of(Env(parity), "ab").stats(["ab", "abc"]) == ({}, {})
    env = ParityChatEnv()
    kind = kind_of(env, "ab")
    trajs = kind.rollouts(env.tasks("train", 2, 0), kind.roles.actor_sampling, "k", samples=2)
    shown, kept = kind.stats(trajs)
    assert kept == {"trajectories": trajectory_stats(trajs)}
    assert shown == {"turns_per_sample": 2.0, "tool_calls_per_sample": 0.0}
    assert kind.stats([]) == ({}, {})


def test_a_search_root_holds_its_trajectory_and_the_turn_to_rewrite(tmp_path):
    env = ParityChatEnv()
    kind = kind_of(env, "abc")
    tasks = env.tasks("train", 2, 0)
    store = stored(kind, tmp_path / "trajectories", tasks)
    verdicts = {r.task_id: r.verdicts for r in kind.verify(store, store.tasks(), lambda n: None)}
    roots = search_roots(store.sample_texts(), verdicts, 8, hold=kind.root_hold(store))
    trajs = kind.read(store)
    assert [r.task_id for r in roots] == [t.id for t in tasks]
    for r in roots:  # every sample fails alike: the first is the best
        assert r.trajectory == trajs[r.task_id][0].to_json(with_task=False)
        assert r.failed_turn == 0 and r.response.startswith("assistant: abc")
    env = Env(parity)
    answers = kind_of(env, "abc")
    store = stored(answers, tmp_path / "answers", env.tasks("train", 2, 0))
    assert answers.root_hold(store) is None
    verdicts = {r.task_id: r.verdicts for r in answers.verify(store, store.tasks(), lambda n: 0)}
    roots = search_roots(store.sample_texts(), verdicts, 8, hold=answers.root_hold(store))
    assert all(r.trajectory is None and r.failed_turn is None for r in roots)
    assert all(r.response == "abc" for r in roots)


def test_the_pair_builder_and_the_search_follow_the_kind(tmp_path):
    env = Env(parity)
    answers = kind_of(env, "ab")
    task = env.tasks("train", 1, 0)[0]
    store = stored(answers, tmp_path / "answers", [task])
    builder = answers.pairs(store, store.tasks(), turn_only=True)
    assert isinstance(builder, AnswerPairs)
    texts = ["a b c", "a b d", "x y z"]
    mixed = [
        SampleVerdict(score=float(ok), passed=ok, loose=ok, feedback="")
        for ok in (True, False, False)
    ]
    builder.texts[task.id] = texts
    assert sampled_pairs(task, texts, mixed, 2, builder.samples(task, mixed)) == sampled_pairs(
        task, texts, mixed, 2
    )
    env = ParityChatEnv()
    trajectories = kind_of(env, "ab")
    store = stored(trajectories, tmp_path / "trajectories", env.tasks("train", 1, 0))
    assert isinstance(trajectories.pairs(store, store.tasks(), True), TrajectoryPairs)
    settings = SearchSettings.from_config(Config())
    plain, turns = answers.search({}, settings, 0.5), trajectories.search({}, settings, 0.5)
    assert type(plain) is TreeSearch and isinstance(turns, TrajectorySearch)
    assert turns.replay == trajectories.replay
    assert plain.judge_weight == turns.judge_weight == 0.5


def test_both_kinds_answer_each_held_out_task_once():
    greedy = Sampling.greedy(8)
    env = Env(parity)
    tasks = env.tasks("heldout", 3, 0)
    assert kind_of(env, "ab").heldout(tasks, greedy) == [("ab", "ab")] * 3
    env = ParityChatEnv()
    tasks = env.tasks("heldout", 3, 0)
    out = kind_of(env, "ab").heldout(tasks, greedy)
    assert len(out) == 3
    for task, (text, messages) in zip(tasks, out, strict=True):
        assert messages[: len(task.messages)] == list(task.messages)
        assert text == transcript(messages, len(task.messages))
        assert [m["content"] for m in messages if m["role"] == "assistant"] == ["ab", "ab"]


def test_progress_counts_requests_for_answers_and_turns_for_trajectories():
    max_turns = Config().generation.max_turns
    assert kind_of(Env(parity), "ab").steps(3, 2) == (3, "req")
    assert kind_of(ParityChatEnv(), "ab").steps(3, 2) == (3 * 2 * max_turns, "turn")
