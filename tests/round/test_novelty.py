"""Rows an earlier kept round trained on are not trained again, through real round stores."""

from evoforge.envs.base import Task
from evoforge.round.stages.novelty import by_type, fingerprint, new_rows, trained_before
from evoforge.storage.records import Evaluation, Pair, SftRow
from evoforge.storage.store import RoundStore

PROMPT = [{"role": "user", "content": "q"}]


def sft(tid, text):
    return SftRow(task_id=tid, source="sampled", messages=PROMPT, completion=text)


def pair(tid, chosen, rejected):
    return Pair(
        id=f"{tid}|sampled|0-1",
        task_id=tid,
        source="sampled",
        prompt=PROMPT,
        chosen=chosen,
        rejected=rejected,
        chosen_score=1.0,
        rejected_score=0.0,
        edit_distance=1,
    )


def round_dir(path, kept, sft_rows, pairs):
    store = RoundStore(path)
    store.sft.write(sft_rows)
    store.pairs.write(pairs)
    store.eval.write(Evaluation(round=0, kept=kept, heldout={}))
    return store


def test_rows_of_kept_rounds_are_repeats_and_a_rolled_back_round_teaches_nothing(tmp_path):
    kept = round_dir(tmp_path / "0", True, [sft("a", "x")], [pair("a", "x", "y")])
    rolled = round_dir(tmp_path / "1", False, [sft("b", "z")], [pair("b", "z", "w")])
    seen = trained_before([kept, rolled])
    # another task id with the same content is still a repeat: content decides
    rows = [sft("c", "x"), sft("c", "z"), pair("c", "x", "y"), pair("c", "x", "y2")]
    out, repeated = new_rows(rows, seen)
    assert repeated == 2 and out == [rows[1], rows[3]]
    assert fingerprint(sft("a", "x")) != fingerprint(pair("a", "x", ""))


def test_new_rows_are_counted_per_task_type():
    tasks = {
        "a": Task("a", tuple(PROMPT), tags=("upper", "comma")),
        "b": Task("b", tuple(PROMPT), tags=("upper",)),
    }
    assert by_type([sft("a", "1"), sft("b", "2")], tasks) == {"comma": 1, "upper": 2}
