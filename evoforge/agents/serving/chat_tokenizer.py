"""Prompt tokens counted in the driver without importing transformers.

The driver counts prompt tokens (preflight's budgets, a multi-turn run's room for the next turn)
but serves and trains nothing itself; importing transformers and torch for that cost ~3.5 s of
every `evoforge run` and `resume` on 2 cores. A model directory with a ``tokenizer.json`` and a
plain chat template is read here with the ``tokenizers`` library and jinja2, rendered the way
transformers renders it (same sandbox, filters and globals, the special tokens as variables), so
the counts equal the engines'. Anything else falls back to transformers' AutoTokenizer.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

GENERATION_BLOCK = re.compile(r"\{%-?\s*generation\s*-?%\}")
SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token")


class ChatTokenizer:
    """The tokenizer and chat template of a model directory, with the slice of transformers'
    tokenizer API that prompt_ids uses (``chat_template``, ``apply_chat_template``, calling it)."""

    def __init__(self, tokenizer_file: Path, chat_template: str, special: dict[str, str]) -> None:
        from tokenizers import Tokenizer

        self.chat_template = chat_template
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._template = _compile(chat_template)
        self._special = special

    def apply_chat_template(
        self, messages, tools=None, add_generation_prompt: bool = False, tokenize: bool = True
    ) -> list[int] | str:
        """The rendered chat (``tokenize=False``) or its token ids, as transformers gives them."""
        text = self._template.render(
            messages=list(messages),
            tools=list(tools) if tools is not None else None,
            documents=None,
            add_generation_prompt=add_generation_prompt,
            **self._special,
        )
        return self._tokenizer.encode(text, add_special_tokens=False).ids if tokenize else text

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {
            "input_ids": self._tokenizer.encode(text, add_special_tokens=add_special_tokens).ids
        }


def load_chat_tokenizer(model_path: str) -> Any:
    """A ChatTokenizer for ``model_path`` when it holds a ``tokenizer.json`` and one plain chat
    template; else transformers' AutoTokenizer (named templates, a slow tokenizer, a template
    that marks generation blocks)."""
    path = Path(model_path)
    config_file, tokenizer_file = path / "tokenizer_config.json", path / "tokenizer.json"
    if config_file.is_file() and tokenizer_file.is_file():
        config = json.loads(config_file.read_text())
        template = config.get("chat_template")
        if template is None and (path / "chat_template.jinja").is_file():
            template = (path / "chat_template.jinja").read_text()
        special = {k: _token_text(config[k]) for k in SPECIAL_TOKENS if config.get(k) is not None}
        if isinstance(template, str) and not GENERATION_BLOCK.search(template):
            return ChatTokenizer(tokenizer_file, template, special)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path)


def _token_text(token: str | dict) -> str:
    return token["content"] if isinstance(token, dict) else token


def _compile(template: str):
    """The template in transformers' jinja environment (chat_template_utils), less its
    generation-block tracker, which only assistant masks use."""
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)
