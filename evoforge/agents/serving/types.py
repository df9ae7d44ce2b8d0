"""The data that crosses the server boundary, and the ModelServer protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

Message = dict[str, str]


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters of one request (the subset both engines honour identically).

    ``temperature`` and ``max_tokens`` have no default: they are settings of a role, taken from
    the config where their defaults live."""

    temperature: float
    """0 means greedy decoding."""
    max_tokens: int
    """Most new tokens; clipped to what is left of the context window."""
    top_p: float = 1.0
    """1.0 = no nucleus truncation."""
    n: int = 1
    """Completions per request."""
    seed: int | None = None
    """Fixes the sampling; the same request with the same seed gives the same text."""
    stop: tuple[str, ...] = ()
    """Generation ends before the first of these strings (not included in the text)."""

    @classmethod
    def greedy(cls, max_tokens: int) -> Sampling:
        """Greedy decoding (evaluation, probes)."""
        return cls(temperature=0.0, max_tokens=max_tokens)

    def batch_key(self) -> tuple:
        """Requests that share this key can run in one engine call."""
        return (self.temperature, self.top_p, self.max_tokens, self.n, self.stop)


@dataclass(frozen=True)
class GenRequest:
    """One prompt, as chat messages; ``id`` is the caller's key and comes back in the result."""

    messages: tuple[Message, ...] | list[Message]
    sampling: Sampling
    id: str = ""
    tools: tuple[dict, ...] = ()
    """Function specs of the tools the model may call (multi-turn environments); shown through the
    chat template when it supports tools, else in the system prompt (envs/multiturn.py)."""
    prefix: str = ""
    """Forced opening of the reply: the prompt is the chat template with the assistant turn
    opened, then this text; the model writes the continuation. The result's ``texts`` are the
    continuation only (``completion_tokens`` count generated tokens); the caller keeps
    ``prefix + text`` as the answer. Requests with different prefixes still batch together."""


@dataclass
class GenResult:
    """The completions of one request, in the order of ``n``."""

    id: str
    texts: list[str]
    prompt_tokens: int
    completion_tokens: list[int]
    finish_reasons: list[str]


@dataclass(frozen=True)
class ServerInfo:
    """What a server runs: engine, model, the weights loaded now, and which process holds it."""

    backend: str
    model_path: str
    weights_path: str
    device: str
    pid: int
    engine_id: str
    """Identifies the engine object; unchanged by ``load_weights`` (no restart)."""
    max_model_len: int
    weights_version: int
    """How many times ``load_weights`` has run."""


@runtime_checkable
class ModelServer(Protocol):
    """A model behind a few large batched operations (veRL's single-controller style)."""

    def generate(self, requests: list[GenRequest]) -> list[GenResult]: ...

    def load_weights(self, path: str) -> None: ...

    def info(self) -> ServerInfo: ...


def generate(server: ModelServer, requests: list[GenRequest], progress=None) -> list[GenResult]:
    """``server.generate``, or its chunked form with a progress callback when it has one."""
    if not requests:
        return []
    if progress is not None and hasattr(server, "generate_with_progress"):
        return server.generate_with_progress(requests, progress)
    return server.generate(requests)
