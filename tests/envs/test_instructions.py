from evoforge.envs import get_env
from evoforge.envs.instructions import requests
from evoforge.envs.instructions.constraints import BY_ID, compatible


def test_shipped_requests():
    assert len(requests("train")) + len(requests("heldout")) >= 200
    assert not set(requests("train")) & set(requests("heldout"))


def test_same_seed_same_tasks_other_seed_different():
    env = get_env("instructions")
    a, b, c = env.tasks("train", 50, 1), env.tasks("train", 50, 1), env.tasks("train", 50, 2)
    assert [t.to_json() for t in a] == [t.to_json() for t in b]
    assert [t.messages for t in a] != [t.messages for t in c]


def test_item_depends_only_on_seed_and_index():
    env = get_env("instructions")
    assert env.tasks("train", 30, 5)[17].to_json() == env.tasks("train", 18, 5)[17].to_json()


def test_splits_disjoint_on_10000_tasks():
    env = get_env("instructions")
    train = {t.prompt for t in env.tasks("train", 10_000, 0)}
    heldout = {t.prompt for t in env.tasks("heldout", 10_000, 0)}
    assert not train & heldout


def test_constraints_drawn_are_compatible_and_1_to_3():
    env = get_env("instructions")
    for t in env.tasks("train", 2000, 3):
        ids = [c["type"] for c in t.metadata["constraints"]]
        assert 1 <= len(ids) <= 3 and list(t.tags) == ids
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                assert compatible(BY_ID[a], BY_ID[b]), (a, b)


def test_verify_strict_loose_and_feedback():
    env = get_env("instructions")
    task = next(t for t in env.tasks("train", 500, 0) if list(t.tags) == ["no_comma"])
    ok = env.verify(task, "no commas in this answer")
    assert ok.passed and ok.score == 1.0 and ok.details["loose"] and not ok.feedback
    bad = env.verify(task, "a, b")
    assert not bad.passed and bad.score == 0.0 and "comma" in bad.feedback
