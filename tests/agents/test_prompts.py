"""Prompt template overrides: every way a template file can be wrong is a one-line ConfigError
when the config is checked, never a KeyError when the first critique is formatted."""

from __future__ import annotations

import pytest

from evoforge.agents.prompts import TEMPLATES, load_template
from evoforge.agents.roles import Roles
from evoforge.config import load_config
from evoforge.envs import Task
from evoforge.errors import ConfigError

BAD = {
    "a JSON example": ('Judge {instruction}\n{response}\nAnswer as {"ok": true}', 'has {"ok"}'),
    "a lone closing brace": ("{instruction} {response} }", "unbalanced braces"),
    "a lone opening brace": ("{instruction} {response} {", "unbalanced braces"),
    "a positional field": ("{instruction} {response} {0}", "has {0}"),
    "an empty field": ("{instruction} {response} {}", "has {}"),
    "attribute access": ("{instruction.__class__} {response}", "has {instruction.__class__}"),
    "an index": ("{instruction[0]} {response}", "has {instruction[0]}"),
    "a conversion": ("{instruction!r} {response}", "has {instruction!r}"),
    "a format spec": ("{instruction:>99999} {response}", "has {instruction:>99999}"),
    "a missing placeholder": ("{instruction} only", "lacks placeholder(s) {response}"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_templates_fail_when_loaded(case, tmp_path):
    text, message = BAD[case]
    path = tmp_path / "critic.txt"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_template("critic", str(path))
    msg = str(info.value)
    assert message in msg and "\n" not in msg
    assert "lacks" in message or "write a literal brace as {{ or }}" in msg


def test_doubled_braces_are_literal(tmp_path):
    path = tmp_path / "critic.txt"
    path.write_text('{instruction}\n{response}\nAnswer as {{"ok": true}}')
    roles = Roles.from_config(load_config(None, [f"prompts.critic={path}"]), None, None, None)
    task = Task(id="t", messages=({"role": "user", "content": "say {x}"},))
    text = roles.critic_prompt(task, "a {response} with braces")[0]["content"]
    assert text == 'say {x}\na {response} with braces\nAnswer as {"ok": true}'


def test_unreadable_template_files(tmp_path):
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe{instruction}")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_template("critic", str(binary))
    with pytest.raises(ConfigError, match="not found"):
        load_template("critic", str(tmp_path))  # a directory
    with pytest.raises(ConfigError, match="not found"):
        load_template("refiner", str(tmp_path / "missing.txt"))


def test_built_in_templates_pass_their_own_check(tmp_path):
    for role, text in TEMPLATES.items():
        path = tmp_path / f"{role}.txt"
        path.write_text(text)
        assert load_template(role, str(path)) == text
