"""A trajectory's per-turn SFT rows train as one sequence with the same labelled tokens in the
same contexts (training/prefix_rows.py)."""

from __future__ import annotations

import pytest

from evoforge.training.prefix_rows import IGNORE, merge_prefix_rows


def _row(ids, labelled):
    return {"input_ids": ids, "labels": [t if i in labelled else IGNORE for i, t in enumerate(ids)]}


def test_a_prefix_row_is_labelled_inside_the_longer_row_and_others_stay():
    turn0 = _row([1, 2, 3, 4], {3})
    turn1 = _row([1, 2, 3, 4, 5, 6, 7], {6})
    other = _row([1, 2, 9, 4], {3})  # shares a start, but is no prefix: its own row
    alone = _row([8, 8], {1})
    out = merge_prefix_rows([turn0, alone, turn1, other])
    assert [r["input_ids"] for r in out] == [[8, 8], [1, 2, 3, 4, 5, 6, 7], [1, 2, 9, 4]]
    assert out[1]["labels"] == [IGNORE, IGNORE, IGNORE, 4, IGNORE, IGNORE, 7]
    assert out[2] == other and out[0] == alone
    assert merge_prefix_rows([]) == []


@pytest.mark.slow
def test_per_turn_rows_of_tool_trajectories_merge_with_identical_token_losses(tiny_path, tmp_path):
    """The real path: per-turn RFT rows of passing `tools` trajectories (a chain of three calls
    and an answer among them), tokenized by TRL's SFTTrainer as evoforge's trainer builds it;
    merged, each trajectory is one sequence, and every labelled token's log-prob under the
    model is the one it had in its own row."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from evoforge.config import load_config
    from evoforge.envs import get_env
    from evoforge.round.stages.trajectory_pairs import TrajectoryPairs
    from evoforge.training.settings import TrainSettings
    from evoforge.training.trl_adapters import build_trainer, common_args, sft_rows

    env = get_env("tools")
    trajs = env.demonstrations(7, 0)  # one task of each type
    assert max(len(t.turns) for t in trajs) == 4
    pairs = TrajectoryPairs(env, {t.task.id: [t] for t in trajs}, turn_only=True)
    rows = [r.to_row() for t in trajs for r in pairs.turn_rows(t, "guided")]
    assert len(rows) == sum(len(t.turns) for t in trajs)
    tok = AutoTokenizer.from_pretrained(tiny_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float32)
    s = TrainSettings.from_config(load_config(None, ["model=tiny", "train.max_length=2048"]))
    args = SFTConfig(
        **common_args(s, str(tmp_path / "w"), False), max_length=2048, completion_only_loss=True
    )
    trainer = build_trainer(SFTTrainer, model, args, sft_rows(rows, tok), tok, [])
    per_turn = trainer.train_dataset.to_list()
    merged = merge_prefix_rows(per_turn)
    assert len(merged) == len(trajs)

    def logprobs(row) -> dict[int, float]:
        ids = torch.tensor([row["input_ids"]])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].float()
        lp = torch.log_softmax(logits, -1)
        return {
            i: lp[i - 1, t].item() for i, t in enumerate(row["labels"]) if t != IGNORE and i > 0
        }

    whole = [logprobs(r) for r in merged]
    labelled = 0
    for row in per_turn:
        k = next(
            k
            for k, m in enumerate(merged)
            if m["input_ids"][: len(row["input_ids"])] == row["input_ids"]
        )
        for i, v in logprobs(row).items():
            assert whole[k][i] == pytest.approx(v, abs=1e-4)
            labelled += 1
    assert labelled == sum(len(w) for w in whole)  # no token gained or lost its label
