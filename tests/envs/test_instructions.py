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


def test_unseen_phrasings_appear_only_in_heldout():
    from evoforge.envs.instructions import SEEN_EVERY
    from evoforge.envs.instructions.constraints import CONSTRAINTS

    env = get_env("instructions")
    train = env.tasks("train", 3000, 0)
    heldout = env.tasks("heldout", 500, 0)
    for t in train:
        assert t.metadata["group"] == "seen"
        for c in t.metadata["constraints"]:
            assert BY_ID[c["type"]].phrasings[c["phrasing"]] in BY_ID[c["type"]].seen()
    for i, t in enumerate(heldout):
        want = "seen" if i % SEEN_EVERY == 0 else "unseen"
        assert t.metadata["group"] == want
        pool = "seen" if want == "seen" else "unseen"
        for c in t.metadata["constraints"]:
            phr = BY_ID[c["type"]].phrasings[c["phrasing"]]
            assert phr in getattr(BY_ID[c["type"]], pool)()
    # every phrasing of every type is used somewhere, and the texts differ
    used = {(c["type"], c["phrasing"]) for t in train + heldout for c in t.metadata["constraints"]}
    assert used == {(c.id, i) for c in CONSTRAINTS for i in range(len(c.phrasings))}
    for c in CONSTRAINTS:
        assert len(set(c.phrasings)) == len(c.phrasings) and len(c.unseen()) >= 2


def test_described_constraint_is_in_the_prompt_and_layouts_vary():
    env = get_env("instructions")
    tasks = env.tasks("train", 400, 0)
    layouts = set()
    for t in tasks:
        for c in t.metadata["constraints"]:
            assert BY_ID[c["type"]].describe(c["params"], c["phrasing"]) in t.prompt
        assert t.metadata["request"] in t.prompt
        layouts.add(
            "requirements"
            if "Requirements:" in t.prompt
            else "request first"
            if t.prompt.startswith(t.metadata["request"])
            else "request last"
        )
    assert layouts == {"requirements", "request first", "request last"}
