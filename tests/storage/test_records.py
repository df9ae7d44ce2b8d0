"""Typed round records keep their files byte for byte: key order, optional keys, unknown keys."""

import json

import pytest

from evoforge.errors import EvoforgeError
from evoforge.storage.records import (
    EvalRecord,
    Evaluation,
    GuidedRow,
    Pair,
    RefinerRow,
    SftRow,
    TaskSamples,
    TaskVerdicts,
)
from evoforge.storage.store import RoundStore

PROMPT = [{"role": "user", "content": "q"}]

# rows as the run wrote them before the records existed (key order included)
ROWS = {
    Pair: [
        {
            "id": "t|sampled|0-2",
            "task_id": "t",
            "source": "sampled",
            "prompt": PROMPT,
            "chosen": "a b",
            "rejected": "a c",
            "chosen_score": 1.0,
            "rejected_score": 0,
            "edit_distance": 1,
        },
        {
            "id": "t|guided|hint-0-1",
            "task_id": "t",
            "source": "guided",
            "prompt": PROMPT,
            "chosen": "A",
            "rejected": "a",
            "chosen_score": 1.0,
            "rejected_score": 0.0,
            "edit_distance": 1,
            "guidance": "hint",
        },
        {  # multi-turn: tools and turn sit between the sides and the scores
            "id": "t|refined|t#0.1",
            "task_id": "t",
            "source": "refined",
            "prompt": PROMPT,
            "chosen": [{"role": "assistant", "content": "x"}],
            "rejected": [{"role": "assistant", "content": "y"}],
            "tools": [],
            "turn": 0,
            "chosen_score": 1.0,
            "rejected_score": 0.0,
            "edit_distance": 1,
            "depth": 1,
        },
    ],
    SftRow: [
        {"task_id": "t", "source": "sampled", "messages": PROMPT, "completion": "A"},
        {
            "task_id": "t",
            "source": "refined",
            "turn": 1,
            "messages": PROMPT,
            "completion": "x",
            "tools": [{"type": "function"}],
        },
    ],
    RefinerRow: [
        {
            "kind": "judgement",
            "task_id": "t",
            "node_id": "t@0",
            "messages": PROMPT,
            "completion": "yes",
        }
    ],
    EvalRecord: [
        {
            "task_id": "h0",
            "group": None,
            "response": "A",
            "passed": True,
            "loose": True,
            "score": 1.0,
            "feedback": "",
            "env": "instructions",
        },
        {
            "task_id": "h1",
            "group": "unseen",
            "response": "a",
            "passed": False,
            "loose": True,
            "score": 0.5,
            "feedback": "lowercase",
            "env": "guard",
        },
    ],
    TaskSamples: [
        {"task_id": "t", "responses": ["a", "b"], "tokens": [1, 2]},
        {"task_id": "t", "trajectories": [{"messages": PROMPT, "turns": []}], "tokens": [3]},
    ],
    GuidedRow: [
        {
            "task_id": "t",
            "kind": "hint",
            "responses": ["A"],
            "verdicts": [{"score": 1.0, "passed": True, "loose": True, "feedback": ""}],
        },
        {
            "task_id": "t",
            "kind": "prefix",
            "trajectories": [{"messages": PROMPT, "turns": []}],
            "tokens": [4],
            "verdicts": [
                {"score": 0.0, "passed": False, "loose": False, "feedback": "x", "failed_turn": 0}
            ],
        },
    ],
    TaskVerdicts: [
        {
            "task_id": "t",
            "verdicts": [
                {"score": 1, "passed": True, "loose": True, "feedback": ""},
                {"score": 0.5, "passed": False, "loose": True, "feedback": "no comma"},
            ],
        },
        {  # multi-turn
            "task_id": "t",
            "verdicts": [
                {"score": 0.0, "passed": False, "loose": False, "feedback": "x", "failed_turn": 1}
            ],
        },
    ],
}


@pytest.mark.parametrize("cls", list(ROWS))
def test_rows_round_trip_byte_for_byte(cls):
    for row in ROWS[cls]:
        again = cls.from_row(row).to_row()
        assert json.dumps(again, ensure_ascii=False) == json.dumps(row, ensure_ascii=False)


def test_unknown_keys_survive_a_read_and_a_write(tmp_path):
    store = RoundStore(tmp_path / "000")
    row = ROWS[Pair][0] | {"note": {"from": "another writer"}}
    store.pairs.write([Pair.from_row(row)])
    [p] = store.pairs.read()
    assert p.extra == {"note": {"from": "another writer"}} and p.chosen == "a b"
    assert json.loads(store.pairs.path.read_text()) == row


def test_a_row_without_a_required_key_is_one_line():
    with pytest.raises(EvoforgeError, match="a SftRow row has no 'completion'"):
        SftRow.from_row({"task_id": "t", "source": "sampled", "messages": PROMPT})


def test_an_evaluation_keeps_its_key_order_through_promotion():
    heldout = {"env": {"n": 2, "strict": 0.5}}
    rows = [
        {"round": -1, "kept": True, "heldout": heldout},
        {"round": 1, "kept": None, "unchanged": True, "heldout": heldout, "compare": {}},
        {
            "round": 2,
            "kept": False,
            "heldout": heldout,
            "compare": {"baseline": {}, "last_kept": {}},
            "rollback_check": {"n": 2, "identical": 2},
            "reason": "env strict pass rate fell",
        },
    ]
    for row in rows:
        assert list(Evaluation.from_row(row).to_row().items()) == list(row.items())
