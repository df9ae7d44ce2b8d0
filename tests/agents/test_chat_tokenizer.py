"""The driver's prompt-token counts without transformers equal transformers' own, on both shipped
models and on a template that renders tools; what it cannot render falls back to transformers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evoforge.agents.serving.chat_tokenizer import ChatTokenizer, load_chat_tokenizer
from evoforge.agents.serving.engine_base import prompt_ids
from evoforge.envs.multiturn import tool_map
from evoforge.envs.registry import get_env
from tests.helpers.models import TOOLS_TEMPLATE, with_chat_template
from tests.helpers.runs import REPO


def _chats() -> list[tuple[list, list]]:
    """(messages, tool specs): instruction prompts, tool tasks with a reply and a tool result,
    a system turn, text far from ASCII."""
    out = [(t.messages, []) for t in get_env("instructions").tasks("heldout", 6, 3)]
    tools = get_env("tools")
    for task in tools.tasks("train", 4, 1):
        specs = [t.spec() for t in tool_map(tools, task).values()]
        turns = [
            *task.messages,
            {"role": "assistant", "content": '<tool_call>{"name": "add", "arguments": {}}'},
            {"role": "tool", "content": '{"error": "missing a"}'},
        ]
        out += [(task.messages, specs), (turns, specs)]
    out.append(
        (
            [
                {"role": "system", "content": "Réponds en français; «guillemets» 😀"},
                {"role": "user", "content": "  trailing spaces \n\n and tabs\t"},
            ],
            [],
        )
    )
    return out


@pytest.mark.parametrize("which", ["tiny", "default", "tools template"])
def test_counts_equal_transformers(which, tiny_path, default_path, tmp_path):
    from transformers import AutoTokenizer

    path = {"tiny": tiny_path, "default": default_path}.get(which) or with_chat_template(
        tiny_path, tmp_path / "model", TOOLS_TEMPLATE
    )
    light, full = load_chat_tokenizer(path), AutoTokenizer.from_pretrained(path)
    assert isinstance(light, ChatTokenizer)
    for messages, specs in _chats():
        assert prompt_ids(light, messages, specs) == prompt_ids(full, messages, specs)
        assert prompt_ids(light, messages, specs, "<tool_call>") == prompt_ids(
            full, messages, specs, "<tool_call>"
        )


def test_a_template_it_cannot_render_falls_back_to_transformers(tiny_path, tmp_path):
    template = (
        "{% for m in messages %}{% generation %}{{ m.content }}{% endgeneration %}{% endfor %}"
    )
    model = with_chat_template(tiny_path, tmp_path / "model", template)
    assert not isinstance(load_chat_tokenizer(model), ChatTokenizer)


def test_the_driver_plans_a_run_without_importing_transformers():
    """`evoforge plan` runs the whole preflight (budgets included) in the driver's process."""
    code = (
        "import sys\n"
        "from evoforge.cli import main\n"
        "rc = main(['plan', 'model=tiny', 'backend=hf', 'env=tools', 'eval.guard_env='])\n"
        "assert rc in (0, None), rc\n"
        "assert 'transformers' not in sys.modules and 'torch' not in sys.modules\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "plan: ok" in out.stdout + out.stderr
