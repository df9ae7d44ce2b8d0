"""Every verdict is checked wherever it appears, and a verifier that raises, exits or hangs is a
one-line error naming the environment and the task, never a score."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from evoforge.agents.roles import Roles
from evoforge.agents.search import Node, SearchSettings, TreeSearch
from evoforge.agents.serving.types import GenResult
from evoforge.config import Config
from evoforge.envs import Task, Verdict
from evoforge.envs.check import CheckedEnv, check_env
from evoforge.envs.verify import FEEDBACK_CHARS, VerifyTimeout, safe_verify
from evoforge.errors import EvoforgeError
from evoforge.rewards import verdict_reward
from evoforge.round.samples import Answers
from evoforge.round.stages.evaluate import evaluate_env
from tests.helpers.runs import REPO


class Env:
    """A well-formed environment whose verify() returns ``verdict`` (or calls it)."""

    name = "probe"

    def __init__(self, verdict):
        self.verdict = verdict

    def tasks(self, split, n, seed):
        return [
            Task(id=f"{split}/{seed}/{i}", messages=({"role": "user", "content": f"{split} {i}"},))
            for i in range(n)
        ]

    def verify(self, task, response):
        return self.verdict(task, response) if callable(self.verdict) else self.verdict


class Server:
    """Answers every request with ``text`` (the critic's and the actor's answers alike)."""

    def __init__(self, text="Verdict: yes"):
        self.text = text

    def generate(self, requests):
        return [
            GenResult(
                id=r.id,
                texts=[self.text] * r.sampling.n,
                prompt_tokens=1,
                completion_tokens=[1] * r.sampling.n,
                finish_reasons=["stop"] * r.sampling.n,
            )
            for r in requests
        ]


BAD_VERDICTS = {
    "passed with score 0": (Verdict(score=0.0, passed=True), "passed=True with score 0.0"),
    "failed with score 1": (Verdict(score=1.0, passed=False), "passed=False with score 1.0"),
    "score above 1": (Verdict(score=1.5, passed=True), "score 1.5"),
    "negative score": (Verdict(score=-0.1, passed=False), "score -0.1"),
    "nan score": (Verdict(score=float("nan"), passed=False), "score nan"),
    "inf score": (Verdict(score=float("inf"), passed=True), "score inf"),
    "bool score": (Verdict(score=True, passed=True), "score True"),
    "passed not a bool": (Verdict(score=0.5, passed=1), "passed=1"),
    "details not a dict": (Verdict(score=0.5, passed=False, details=["x"]), "details of type list"),
    "feedback not a string": (Verdict(score=0.2, passed=False, feedback=None), "feedback of type"),
    "not a verdict": (0.5, "must return a Verdict"),
}


@pytest.mark.parametrize("case", sorted(BAD_VERDICTS))
def test_malformed_verdicts_are_errors_everywhere(case):
    """The same bad verdict is refused by safe_verify, the tree search, evaluation, GRPO's reward
    and check_env, each naming the environment."""
    verdict, message = BAD_VERDICTS[case]
    env = Env(verdict)
    task = env.tasks("train", 1, 0)[0]
    with pytest.raises(EvoforgeError, match="environment 'probe'") as info:
        safe_verify(env, task, "x")
    assert message in str(info.value) and "\n" not in str(info.value)

    roles = Roles.from_config(Config(), Server(), Server(), Server())
    search = TreeSearch(roles, env, {task.id: task}, SearchSettings.from_config(Config()))
    node = Node(id="n", task_id=task.id, parent=None, depth=0, response="x")
    with pytest.raises(EvoforgeError, match=message.split(" ")[0]):
        search.score([node])
    with pytest.raises(EvoforgeError, match="environment 'probe'"):
        evaluate_env(Answers(env, roles, Config()), 2, 0, 8)
    with pytest.raises(EvoforgeError, match="environment 'probe'"):
        verdict_reward(env)(task, "x")
    assert any(message in p for p in check_env(env, n=2).problems)


def test_raising_and_exiting_verifiers_are_errors_naming_the_task():
    def raising(task, response):
        raise KeyError("label")

    def exiting(task, response):
        sys.exit(3)

    env = Env(raising)
    task = env.tasks("train", 1, 0)[0]
    with pytest.raises(
        EvoforgeError, match=r"verify\(\) raised KeyError: 'label' on task 'train/0/0'"
    ):
        safe_verify(env, task, "x")
    # sys.exit inside a verifier under the time limit does not end the process
    with pytest.raises(
        EvoforgeError, match=r"verify\(\) raised RuntimeError: verify\(\) called sys.exit\(3\)"
    ):
        safe_verify(CheckedEnv(Env(exiting), 5.0), task, "x")


def test_verifiers_that_fail_only_on_hostile_answers_are_caught_by_check_env():
    """Techniques: an empty answer, whitespace only, non-ASCII and control characters, markup,
    and a long run of one character; each breaks a naive verifier somewhere."""

    def fail_if(condition, exc):
        def check(task, response):
            if condition(task, response):
                raise exc

        return check

    breakers = {
        "empty": fail_if(lambda t, r: not r, IndexError("string index out of range")),
        "whitespace": fail_if(lambda t, r: r and not r.strip(), ValueError("blank")),
        "non-ascii": fail_if(
            lambda t, r: not r.isascii(), UnicodeEncodeError("ascii", "é", 0, 1, "x")
        ),
        "nul": fail_if(lambda t, r: "\x00" in r, ValueError("embedded null character")),
        "braces": fail_if(lambda t, r: "{}" in r, KeyError("format")),
        "long": fail_if(lambda t, r: len(r) > 10_000, RecursionError("too deep")),
        "echo": fail_if(lambda t, r: r == t.prompt, AssertionError("echo")),
    }
    for name, breaks in breakers.items():

        def verify(task, response, breaks=breaks):
            breaks(task, response)
            return Verdict(score=0.0, passed=False, feedback="no")

        report = check_env(Env(verify), n=2)
        assert not report.ok, name
        assert "verify() raised" in report.problems[0] and "(response" in report.problems[0]


def test_long_feedback_is_cut():
    env = Env(Verdict(score=0.0, passed=False, feedback="why " * 10_000))
    v = safe_verify(env, env.tasks("train", 1, 0)[0], "x")
    assert len(v.feedback) < FEEDBACK_CHARS + 40 and v.feedback.endswith("(feedback cut)")


def test_a_hung_verifier_stops_the_wait_not_the_process():
    calls = []

    def slow_once(task, response):
        calls.append(response)
        if response == "hang":
            time.sleep(30)
        return Verdict(score=1.0, passed=True)

    env = CheckedEnv(Env(slow_once), 0.5)
    task = env.tasks("train", 1, 0)[0]
    start = time.monotonic()
    with pytest.raises(
        VerifyTimeout, match=r"did not return within 0.5 s on task 'train/0/0'"
    ) as info:
        safe_verify(env, task, "hang")
    assert time.monotonic() - start < 5 and "verify_timeout_s" in str(info.value)
    assert safe_verify(env, task, "fine").passed  # the next call gets a fresh worker
    report = check_env(CheckedEnv(Env(lambda t, r: time.sleep(30)), 0.3), n=2)
    assert any("did not return within 0.3 s" in p for p in report.problems)


def test_a_verifier_that_holds_the_gil_ends_the_process_with_its_traceback(tmp_path):
    """A catastrophic regular expression runs in C without releasing the GIL: no Python thread
    can stop waiting for it, so the C-level watchdog ends the process, naming the verifier."""
    script = tmp_path / "redos.py"
    script.write_text(
        textwrap.dedent(
            """
            import re
            from evoforge.envs import verify
            from evoforge.envs.check import CheckedEnv
            from tests.envs.test_verify import Env

            verify.WATCHDOG_GRACE_S = 1.0

            def redos(task, response):
                re.match(r"(a+)+$", "a" * 64 + "!")

            env = CheckedEnv(Env(redos), 0.5)
            verify.safe_verify(env, env.tasks("train", 1, 0)[0], "x")
            print("returned")
            """
        )
    )
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - start < 30
    assert proc.returncode == 1 and "returned" not in proc.stdout
    assert "Timeout" in proc.stderr and "redos" in proc.stderr


def test_time_limit_zero_calls_in_the_callers_thread():
    import threading

    seen = []
    env = CheckedEnv(
        Env(lambda t, r: seen.append(threading.current_thread()) or Verdict(1.0, True)), 0
    )
    safe_verify(env, env.tasks("train", 1, 0)[0], "x")
    assert seen == [threading.main_thread()]
