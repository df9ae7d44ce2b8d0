import json

import pytest

from evoforge.agents.rollout import Edit, replay, rollout
from evoforge.agents.serving.engine_base import chat_for, prompt_ids, template_supports_tools
from evoforge.agents.serving.types import GenResult, Sampling
from evoforge.agents.turn_pairs import dpo_rows, sft_rows, turn_pair
from evoforge.envs import get_env
from evoforge.envs.multiturn import first_failed_turn
from evoforge.errors import EvoforgeError


def call(c):
    return f"<tool_call>{json.dumps({'name': c['name'], 'arguments': c['arguments']})}</tool_call>"


class ScriptedServer:
    """A model that plays each task's expected calls in turn, then answers; optionally wrong
    on tasks whose index is odd (an unknown unit, then no answer)."""

    def __init__(self, tasks, wrong_odd=False):
        self.tasks = {t.id: t for t in tasks}
        self.wrong_odd = wrong_odd
        self.calls: list[list] = []

    def generate(self, requests):
        self.calls.append(requests)
        out = []
        for r in requests:
            key, turn = r.id.rsplit("#", 1)
            task = self.tasks[key.split("/rollout")[0]]
            expected = task.metadata["calls"]
            if self.wrong_odd and int(task.id.split("/")[-1]) % 2:
                text = call({"name": "convert_units", "arguments": {"value": 1}})
            elif int(turn) < len(expected):
                text = f"Calling.\n{call(expected[int(turn)])}"
            else:
                text = f"The answer is {task.metadata['answer']}."
            out.append(GenResult(r.id, [text], 10, [5], ["stop"]))
        return out


SAMPLING = Sampling(temperature=0.7, max_tokens=64)


def test_rollouts_advance_together_one_server_call_per_turn():
    env = get_env("tools")
    tasks = env.tasks("train", 7, 0)  # one of each type: 1 to 3 calls before the answer
    server = ScriptedServer(tasks)
    trajs = rollout(server, env, tasks, SAMPLING, max_turns=6, seed=1)
    assert all(t.ended == "answer" and env.verify(t.task, t.messages).passed for t in trajs)
    longest = max(len(t.metadata["calls"]) for t in tasks) + 1
    assert len(server.calls) == longest  # one batched call per turn, for every live trajectory
    live = [sum(len(t.turns) > k for t in trajs) for k in range(longest)]
    assert [len(batch) for batch in server.calls] == live and live[0] == 7
    first = server.calls[0][0]
    assert first.tools and first.tools[0]["function"]["name"] == "calculate"
    assert first.sampling.seed is not None
    # deterministic: the same seed gives the same requests and trajectories
    again = ScriptedServer(tasks)
    assert [t.to_json() for t in rollout(again, env, tasks, SAMPLING, 6, seed=1)] == [
        t.to_json() for t in trajs
    ]
    assert [r.sampling.seed for r in again.calls[1]] == [r.sampling.seed for r in server.calls[1]]
    other = ScriptedServer(tasks)
    rollout(other, env, tasks, SAMPLING, 6, seed=2)
    assert [r.sampling.seed for r in other.calls[0]] != [r.sampling.seed for r in server.calls[0]]


def test_max_turns_samples_and_bad_settings():
    env = get_env("tools")
    tasks = env.tasks("train", 2, 0)
    server = ScriptedServer(tasks, wrong_odd=True)
    trajs = rollout(server, env, tasks, SAMPLING, max_turns=3, samples=2)
    assert [t.key for t in trajs] == [f"{t.id}/rollout/{i}" for t in tasks for i in (0, 1)]
    # the wrong samples write the same refused call every turn: a loop, ended at its repeat
    assert [t.ended for t in trajs] == ["answer", "answer", "repeated", "repeated"]
    assert len(server.calls) == 2 and all(len(t.turns) == 2 for t in trajs[2:])
    assert "convert_units: arguments" in trajs[2].turns[0].errors[0]
    short = rollout(ScriptedServer(tasks, wrong_odd=True), env, tasks, SAMPLING, 1, samples=2)
    assert [t.ended for t in short] == ["max_turns"] * 4
    with pytest.raises(EvoforgeError, match="samples=N"):
        rollout(server, env, tasks, Sampling(temperature=1.0, max_tokens=8, n=2), 3)
    with pytest.raises(EvoforgeError, match="gives no tools"):
        rollout(server, get_env("arithmetic"), tasks, SAMPLING, 3)


class Guessing(ScriptedServer):
    """A model that writes each call, then guesses its result and calls again on the guess."""

    def generate(self, requests):
        out = super().generate(requests)
        for res in out:
            text = res.texts[0]
            if "<tool_call>" in text:
                res.texts[0] = f"{text}\nThe result is 2.\n{text}\nThe answer is 2."
        return out


def test_a_turn_ends_at_its_first_call_unless_turns_hold_several():
    env = get_env("tools")
    tasks = env.tasks("train", 7, 0)
    server = Guessing(tasks)
    trajs = rollout(server, env, tasks, SAMPLING, max_turns=6, seed=1)
    assert all(r.sampling.stop == ("</tool_call>",) for batch in server.calls for r in batch)
    assert all(env.verify(t.task, t.messages).passed for t in trajs)  # the guesses are gone
    assert all(len(r.calls) <= 1 for t in trajs for r in t.turns)
    several = Guessing(tasks)
    trajs = rollout(several, env, tasks, SAMPLING, max_turns=6, seed=1, one_call=False)
    assert all(not r.sampling.stop for batch in several.calls for r in batch)
    assert max(len(r.calls) for t in trajs for r in t.turns) == 2
    assert "The result is 2." in trajs[0].turn_text(0)


def test_replay_from_a_rewritten_turn_and_the_pair_it_makes():
    env = get_env("tools")
    tasks = [t for t in env.tasks("train", 14, 0) if t.tags[0] == "lookup_convert"]
    server = ScriptedServer(tasks)
    good = rollout(server, env, tasks, SAMPLING, max_turns=5)[0]
    task = good.task
    # a bad trajectory: the second call used the wrong unit
    c1, c2 = task.metadata["calls"]
    wrong = dict(c2, arguments=dict(c2["arguments"], to_unit="in"))
    [bad] = replay(server, env, [Edit(good, 1, call(wrong))], SAMPLING, max_turns=5)
    assert bad.messages[: good.turns[1].index] == good.messages[: good.turns[1].index]
    assert len(good.turns) == 3 and good.ended == "answer"  # the original is unchanged
    verdict = env.verify(task, bad.messages)
    assert not verdict.passed and first_failed_turn(bad, verdict) == 1
    # the refiner rewrites turn 1; the environment replays from there
    n = len(server.calls)
    [fixed] = replay(server, env, [Edit(bad, 1, call(c2))], SAMPLING, max_turns=5)
    assert len(server.calls) == n + 1  # only the answer turn was generated
    assert env.verify(task, fixed.messages).passed
    [same] = replay(ScriptedServer(tasks), env, [Edit(bad, 1, call(c2))], SAMPLING, 5)
    assert same.to_json() == fixed.to_json() and fixed.key.startswith(bad.key + "/t1-")

    pair = turn_pair(bad, verdict.score, fixed, 1.0)
    assert pair.turn == 1 and pair.prompt == good.prefix(1)
    assert pair.chosen == fixed.continuation(1) and pair.rejected == bad.continuation(1)
    assert pair.chosen[0]["content"] == call(c2) and pair.chosen[-1]["role"] == "assistant"
    with pytest.raises(EvoforgeError, match="score the same"):
        turn_pair(bad, 0.5, fixed, 0.5)
    with pytest.raises(EvoforgeError, match="do not differ"):
        turn_pair(fixed, 0.0, fixed, 1.0)


def _pair():
    env = get_env("tools")
    tasks = [t for t in env.tasks("train", 7, 0) if t.tags[0] == "lookup_convert"]
    server = ScriptedServer(tasks)
    good = rollout(server, env, tasks, SAMPLING, max_turns=5)[0]
    [bad] = replay(server, env, [Edit(good, 1, "The answer is 3.")], SAMPLING, 5)
    return env, good, turn_pair(good, 1.0, bad, 0.0)


def test_rows_in_trl_formats(tiny_path):
    from transformers import AutoTokenizer

    env, good, pair = _pair()
    specs = [t.spec() for t in env.tools(good.task)]
    tok = AutoTokenizer.from_pretrained(tiny_path)
    assert not template_supports_tools(tok)
    [row] = dpo_rows([pair], specs, native_tools=False)
    assert set(row) == {"prompt", "chosen", "rejected"}
    assert row["prompt"][0]["role"] == "system" and "lookup_city" in row["prompt"][0]["content"]
    assert [m["role"] for m in row["chosen"]] == ["assistant", "user", "assistant"]
    assert row["rejected"] == [{"role": "assistant", "content": "The answer is 3."}]
    # the prompt is exactly what the engine showed the model at that turn
    shown, _ = chat_for(tok, pair.prompt, specs)
    assert row["prompt"] == shown
    ids = tok.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True)
    assert prompt_ids(tok, pair.prompt, specs) == list(ids["input_ids"])
    [step] = dpo_rows([pair], specs, native_tools=False, turn_only=True)
    assert len(step["chosen"]) == 1 and step["prompt"] == row["prompt"]
    [native] = dpo_rows([pair], specs, native_tools=True)
    assert native["prompt"] == pair.prompt and json.loads(native["tools"]) == specs
    [sft] = sft_rows([pair], specs, native_tools=False)
    assert sft["completion"] == row["chosen"] and sft["prompt"] == row["prompt"]


def test_trl_tokenizes_and_collates_the_rows(tiny_path, tmp_path):
    """TRL's DPO trainer takes the rows: the prompt is a prefix of both, and they collate."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    env, good, pair = _pair()
    specs = [t.spec() for t in env.tools(good.task)]
    tok = AutoTokenizer.from_pretrained(tiny_path)
    rows = dpo_rows([pair, pair], specs, native_tools=False)
    args = DPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], max_length=None)
    model = AutoModelForCausalLM.from_pretrained(tiny_path)
    trainer = DPOTrainer(
        model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok
    )
    out = trainer.train_dataset[0]
    ids = tok.apply_chat_template(rows[0]["prompt"], add_generation_prompt=True, tokenize=True)
    assert out["prompt_ids"] == list(ids["input_ids"])
    assert tok.decode(out["chosen_ids"]).count("<tool_response>") == 1
    assert tok.decode(out["rejected_ids"]).startswith("The answer is 3.")
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    assert batch["input_ids"].shape[0] == 4  # chosen and rejected of each row


def test_a_template_with_tool_support_gets_the_tools(tiny_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_path)
    tok.chat_template = (
        "{% for t in tools or [] %}TOOL {{ t.function.name }}\n{% endfor %}"
        "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    )
    assert template_supports_tools(tok)
    spec = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
    msgs = [{"role": "user", "content": "q"}, {"role": "tool", "name": "add", "content": "3"}]
    assert chat_for(tok, msgs, [spec]) == (msgs, [spec])
    text = tok.decode(prompt_ids(tok, msgs, [spec]))
    assert text.startswith("TOOL add\nuser: q\ntool: 3")


def test_tiny_model_rollouts_through_the_real_engine(tiny_path):
    """The real path: the tiny model in the HF engine, its replies parsed and run, verified."""
    from evoforge.agents.serving.hf_engine import HFEngine
    from evoforge.envs.verify import safe_verify

    class Counting(HFEngine):
        batches: list[int] = []

        def generate(self, requests):
            self.batches.append(len(requests))
            return super().generate(requests)

    engine = Counting(tiny_path, max_model_len=2048, batch_size=8, threads=0, dtype="auto")
    env = get_env("tools")
    tasks = env.tasks("train", 4, 0)
    sampling = Sampling(temperature=1.0, max_tokens=24)
    trajs = rollout(engine, env, tasks, sampling, max_turns=2, seed=3)
    assert len(engine.batches) == max(len(t.turns) for t in trajs) and engine.batches[0] == 4
    for t in trajs:
        assert t.done and t.messages[: len(t.task.messages)] == list(t.task.messages)
        v = safe_verify(env, t.task, t.messages)
        assert not v.passed and v.feedback  # a random model fails, with feedback in words
    again = rollout(engine, env, tasks, sampling, max_turns=2, seed=3)
    assert [t.to_json() for t in again] == [t.to_json() for t in trajs]
    # replay turn 0 with the right call: the engine writes turn 1 after the real tool result
    first = tasks[0].metadata["calls"][0]
    n = len(engine.batches)
    [b] = replay(engine, env, [Edit(trajs[0], 0, call(first))], sampling, max_turns=2, seed=3)
    assert len(engine.batches) == n + 1 and b.turns[0].calls and len(b.turns) == 2
    assert b.messages[len(tasks[0].messages) + 1]["role"] == "tool"


def test_a_rollout_resumed_from_saved_trajectories_ends_the_same():
    from evoforge.agents.rollout import advance
    from evoforge.envs.multiturn import Trajectory

    env = get_env("tools")
    tasks = env.tasks("train", 7, 0)
    whole = rollout(ScriptedServer(tasks), env, tasks, SAMPLING, max_turns=6, seed=1)

    class Crashing(ScriptedServer):
        def generate(self, requests):
            if len(self.calls) == 2:
                raise RuntimeError("killed")
            return super().generate(requests)

    trajs = [Trajectory.start(t, f"{t.id}/rollout/0") for t in tasks]
    with pytest.raises(RuntimeError):
        advance(Crashing(tasks), env, trajs, SAMPLING, max_turns=6, seed=1)
    saved = [json.loads(json.dumps(t.to_json())) for t in trajs]
    assert any(len(s["turns"]) == 2 and not s["ended"] for s in saved)
    resumed = advance(
        ScriptedServer(tasks), env, [Trajectory.from_json(s) for s in saved], SAMPLING, 6, seed=1
    )
    assert [t.to_json() for t in resumed] == [t.to_json() for t in whole]
