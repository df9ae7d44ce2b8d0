"""Whatever bytes an answer writes to the result channel, the parent's verdict is a failed
verdict, never an exception: through ``run_code``, the ``code`` environment's verify and the
wrapper every stage calls (an exception there stops the run, and every resume after it, since
the answer stays in samples.jsonl)."""

from __future__ import annotations

import pytest

from evoforge.envs import get_env
from evoforge.envs.verify import safe_verify
from evoforge.sandbox import _parse_defensively, run_code
from tests.helpers.sandbox import LIMITS, attack

CHANNEL = 3
"""The result channel's descriptor in the sandbox (tests/sandbox/test_escape.py checks it)."""
LOAD_OK = '{"load": null}\n'
FORGED = {
    "deep nesting (RecursionError)": "[" * 100_000 + "]" * 100_000 + "\n",
    "deep nesting inside a record": LOAD_OK + '{"call": 0, "output": ' + "[" * 50_000 + "\n",
    "a number past the digit limit": LOAD_OK + '{"call": 0, "output": ' + "9" * 9000 + "}\n",
    "NaN as the call index": LOAD_OK + '{"call": NaN, "output": "4"}\n',
    "true as the call index": LOAD_OK + '{"call": true, "output": "4"}\n',
    "a float as the call index": LOAD_OK + '{"call": 0.0, "output": "4"}\n',
    "Infinity as the output": LOAD_OK + '{"call": 0, "output": Infinity}\n',
    "an object as the output": LOAD_OK + '{"call": 0, "output": {"a": 1}}\n',
    "a list as the load record": '{"load": ["x"]}\n',
    "not an object": "[1, 2, 3]\n",
    "a bare string": '"x"\n',
    "invalid UTF-8": "\xff\xfe\x80\n",
    "UTF-16": '{"load": null}\n'.encode("utf-16").decode("latin-1") + "\n",
    "NUL bytes": '{"load": null}\x00\n',
    "a gigantic string": '{"load": "' + "x" * 200_000 + '"}\n',
    "past the byte cap": "x" * (LIMITS.output_kb * 1024 + 10) + "\n",
    "many empty lines": "\n" * 100_000,
    "duplicate keys": LOAD_OK + '{"call": 0, "output": "4", "output": "5"}\n',
}


def forge(payload: str) -> str:
    """An answer that writes ``payload`` (its latin-1 bytes) to the result channel and exits
    before the runner writes anything of its own."""
    return (
        f"import os\ndata = {payload!r}.encode('latin-1')\n"
        f"while data:\n    data = data[os.write({CHANNEL}, data):]\nos._exit(0)\n"
    )


@pytest.mark.parametrize("name", list(FORGED))
def test_forged_records_give_a_failed_verdict_never_an_exception(name):
    attack(forge(FORGED[name]))  # fails, with feedback, and returns


def test_records_the_runner_never_writes_are_refused():
    for name in ("deep nesting (RecursionError)", "NaN as the call index", "UTF-16"):
        result = run_code(forge(FORGED[name]), "f", [[2]], LIMITS)
        assert "result channel was tampered with" in (result.crashed or ""), (name, result)
    result = run_code(forge(FORGED["a float as the call index"]), "f", [[2]], LIMITS)
    assert result.matches(["4"]) == [False]  # "call": 0.0 is not call 0


def test_the_parser_survives_what_no_sandbox_needs_to_send():
    """The parser alone, on bytes the runner never writes: each is a tampered channel."""
    from evoforge.sandbox import SandboxResult

    for data in (
        b"[" * 1_000_000 + b"\n",
        b'{"load": null}\n{"call": 0, "output": "' + b"\xed\xa0\x80" + b'"}\n',  # a surrogate
        b'{"load": ' + b"1" * 100_000 + b"}\n",
        b'{"load": "\\ud800"}\n',
    ):
        result = SandboxResult("f", [[1]])
        problem = _parse_defensively(data, result)
        assert problem or result.load_error is not None, data[:40]


def test_the_code_environment_fails_the_answer_and_the_run_goes_on():
    env = get_env("code")
    task = env.tasks("train", 1, seed=0)[0]
    for name in ("deep nesting (RecursionError)", "deep nesting inside a record", "invalid UTF-8"):
        response = f"```python\n{forge(FORGED[name])}```"
        verdict = env.verify(task, response)
        assert not verdict.passed and verdict.score == 0 and verdict.feedback, name
        # what every stage calls on resume: it returns, it does not stop the run
        assert not safe_verify(env, task, response).passed
    for damaged in (None, 12, ["x"], {"code": "x"}):  # a response field edited in samples.jsonl
        verdict = safe_verify(env, task, damaged)
        assert not verdict.passed and "not text" in verdict.feedback
