"""What both engines share: chat templating, context-window checks, stop strings, threads."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from evoforge.agents.serving.types import GenRequest, Sampling, ServerInfo
from evoforge.envs.tool_prompt import text_chat
from evoforge.errors import ModelError, PromptTooLongError


def configure_threads(threads: int) -> None:
    """Ray sets OMP_NUM_THREADS=1 in actors; a CPU engine wants the machine's cores."""
    import torch

    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)


def safetensors_files(path: str) -> list[Path]:
    """The weight files of a model directory; a clear error when there are none."""
    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise ModelError(
            f"no *.safetensors weights in '{path}'; pass a directory written by save_pretrained"
        )
    return files


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop string; report whether one was found."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def template_supports_tools(tokenizer) -> bool:
    """Whether the tokenizer's chat template renders a ``tools`` argument."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):  # named templates: the default one is used
        template = template.get("default", "") or ""
    return "tools" in template


def chat_for(tokenizer, messages, tools=()) -> tuple[list, list | None]:
    """(messages, tools) as the chat template takes them: tools through the template when it
    supports them, else described in the system prompt with tool results as user turns."""
    if template_supports_tools(tokenizer):
        return list(messages), (list(tools) or None)
    if tools or any(m.get("role") == "tool" for m in messages):
        return text_chat(messages, tools), None
    return list(messages), None


def prompt_ids(tokenizer, messages, tools=(), prefix: str = "") -> list[int]:
    """Prompt token ids: the chat template with the assistant turn opened, then the tokens of
    ``prefix`` (the forced opening of the reply). The prefix is tokenized on its own so that the
    template's tokens stay exactly those of an unforced prompt: the model continues from the
    boundary where it would have started writing."""
    messages, tools = chat_for(tokenizer, messages, tools)
    ids = tokenizer.apply_chat_template(
        messages, tools=tools, add_generation_prompt=True, tokenize=True
    )
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    if prefix:
        return list(ids) + list(tokenizer(prefix, add_special_tokens=False)["input_ids"])
    return list(ids)


def too_long(
    task_id: str, n_tokens: int, max_model_len: int, answer_tokens: int = 0
) -> PromptTooLongError:
    room = f" plus {answer_tokens} answer tokens (generation.max_tokens)" if answer_tokens else ""
    return PromptTooLongError(
        f"prompt of '{task_id}' has {n_tokens} tokens{room} but the context window is "
        f"{max_model_len}; shorten the task or raise serving.max_model_len"
    )


class EngineBase:
    """Tokenizer-side logic, identical for every backend so that results are comparable."""

    backend = "base"
    device = "cpu"

    def __init__(self, model_path: str, max_model_len: int) -> None:
        from transformers import AutoTokenizer

        self.model_path = model_path
        self.weights_path = model_path
        self.weights_version = 0
        self.engine_id = uuid.uuid4().hex[:12]
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.max_model_len = max_model_len

    def encode(self, request: GenRequest) -> list[int]:
        """Prompt token ids: the chat template with the assistant turn opened (and the request's
        forced ``prefix`` after it)."""
        ids = prompt_ids(self.tokenizer, request.messages, request.tools, request.prefix)
        if len(ids) >= self.max_model_len:
            raise too_long(request.id, len(ids), self.max_model_len)
        return ids

    def info(self) -> ServerInfo:
        """Engine, model, current weights, and the identity of this engine object and process."""
        return ServerInfo(
            backend=self.backend,
            model_path=self.model_path,
            weights_path=self.weights_path,
            device=self.device,
            pid=os.getpid(),
            engine_id=self.engine_id,
            max_model_len=self.max_model_len,
            weights_version=self.weights_version,
        )

    def sleep(self) -> bool:
        """Free the engine's GPU memory for a colocated trainer; False when there is none to
        free (on CPU)."""
        return False

    def wake(self) -> None:
        """Take the memory back after ``sleep`` (weights are loaded after this)."""

    def budget(self, prompt_len: int, sampling: Sampling) -> int:
        """New tokens allowed: max_tokens clipped to what the context window has left."""
        return max(1, min(sampling.max_tokens, self.max_model_len - prompt_len))
