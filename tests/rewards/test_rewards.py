import json
import math

import pytest

from evoforge.envs import get_env
from evoforge.errors import EvoforgeError
from evoforge.rewards import WeightedReward, as_trl, env_reward_function, verdict_reward


def test_verdict_reward_and_weighted_sum_metrics():
    env = get_env("arithmetic")
    task = env.tasks("train", 1, 0)[0]
    right = f"The answer is {task.metadata['answer']}."
    score = verdict_reward(env)
    length = lambda t, r: min(1.0, len(r) / 100)  # noqa: E731
    combo = WeightedReward({"correct": (score, 1.0), "length": (length, 0.5)})
    assert combo(task, right) == pytest.approx(1.0 + 0.5 * len(right) / 100)
    combo(task, "no")
    m = combo.metrics()
    assert m["reward/correct"] == 0.5 and combo.calls == 2


def test_nan_reward_is_an_error_not_a_zero():
    env = get_env("arithmetic")
    combo = WeightedReward({"nan": (lambda t, r: math.nan, 1.0)})
    with pytest.raises(EvoforgeError, match="returned NaN"):
        combo(env.tasks("train", 1, 0)[0], "x")


def test_trl_signature():
    env = get_env("arithmetic")
    tasks = env.tasks("train", 2, 0)
    fn = env_reward_function("arithmetic")
    completions = [
        [{"role": "assistant", "content": f"The answer is {t.metadata['answer']}."}]
        for t in tasks[:1]
    ]
    completions.append([{"role": "assistant", "content": "The answer is -1."}])
    out = fn(
        prompts=[t.messages for t in tasks],
        completions=completions,
        task=[json.dumps(t.to_json()) for t in tasks],
    )
    assert out == [1.0, 0.0]
    assert as_trl(verdict_reward(env)).__name__ == "arithmetic_score"


def test_grpo_reward_holds_the_verifier_to_its_time_limit():
    import json
    import time

    import pytest

    from evoforge.envs.verify import VerifyTimeout

    fn = env_reward_function("tests.helpers.plugins:HangingVerify", None, 0.5)
    task = json.dumps({"id": "t", "messages": [{"role": "user", "content": "q"}]})
    assert fn(prompts=["q"], completions=["fine"], task=[task]) == [1.0]
    start = time.monotonic()
    with pytest.raises(VerifyTimeout, match="environment 'bad'.*within 0.5 s on task 't'"):
        fn(prompts=["q"], completions=["hang"], task=[task])
    assert time.monotonic() - start < 5
