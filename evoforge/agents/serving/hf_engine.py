"""transformers ``generate``, batched with left padding: the dependable engine everywhere."""

from __future__ import annotations

from collections import defaultdict

from evoforge.agents.serving.engine_base import (
    EngineBase,
    configure_threads,
    cut_at_stop,
    safetensors_files,
)
from evoforge.agents.serving.types import GenRequest, GenResult
from evoforge.errors import ModelError


def read_safetensors_dir(path: str) -> dict:
    """All tensors of a safetensors model directory (one file or shards)."""
    from safetensors.torch import load_file

    tensors: dict = {}
    for f in safetensors_files(path):
        tensors.update(load_file(str(f)))
    return tensors


class HFEngine(EngineBase):
    """A causal LM served with ``model.generate``; requests with equal sampling share a batch."""

    backend = "hf"

    def __init__(
        self,
        model_path: str,
        max_model_len: int = 2048,
        batch_size: int = 16,
        threads: int = 0,
        dtype: str = "auto",
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        super().__init__(model_path, max_model_len)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cpu":
            configure_threads(threads)
        if dtype == "auto":
            dtype = "bfloat16" if self.device == "cuda" else "float32"
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype))
        self.model.to(self.device).eval()
        self.batch_size = batch_size
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        encoded = [self.encode(r) for r in requests]  # raises on a too-long prompt before any work
        results: list[GenResult | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            groups[r.sampling.batch_key()].append(i)
        for idxs in groups.values():
            idxs.sort(key=lambda i: len(encoded[i]))  # similar lengths together: less padding
            for start in range(0, len(idxs), self.batch_size):
                chunk = idxs[start : start + self.batch_size]
                for i, res in zip(
                    chunk,
                    self._generate_chunk([requests[i] for i in chunk], [encoded[i] for i in chunk]),
                    strict=True,
                ):
                    results[i] = res
        return results  # type: ignore[return-value]

    def _generate_chunk(
        self, requests: list[GenRequest], encoded: list[list[int]]
    ) -> list[GenResult]:
        import torch

        s = requests[0].sampling
        width = max(len(e) for e in encoded)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor(
            [[pad] * (width - len(e)) + e for e in encoded], device=self.device
        )
        attention = torch.tensor(
            [[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=self.device
        )
        kwargs = dict(
            max_new_tokens=self.budget(width, s),
            # greedy decoding is deterministic: one sequence per request, repeated n times below
            num_return_sequences=s.n if s.temperature > 0 else 1,
            pad_token_id=pad,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        if s.temperature > 0:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
            # transformers samples from the global generator: seed it from the requests' seeds so
            # the same batch with the same seeds reproduces.
            seeds = [r.sampling.seed for r in requests if r.sampling.seed is not None]
            if seeds:
                torch.manual_seed(hash(tuple(seeds)) % (2**31))
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if s.stop:
            kwargs.update(stop_strings=list(s.stop), tokenizer=self.tokenizer)
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        new = out[:, width:].tolist()
        results = []
        for j, r in enumerate(requests):
            texts, counts, reasons = [], [], []
            per_request = s.n if s.temperature > 0 else 1
            for k in range(s.n):
                toks = list(new[j * per_request + (k if per_request > 1 else 0)])
                ended = self.tokenizer.eos_token_id in toks
                if ended:
                    toks = toks[: toks.index(self.tokenizer.eos_token_id)]
                while toks and toks[-1] == pad:
                    toks.pop()
                text, stopped = cut_at_stop(
                    self.tokenizer.decode(toks, skip_special_tokens=True), s.stop
                )
                texts.append(text)
                counts.append(len(toks))
                reasons.append("stop" if ended or stopped else "length")
            results.append(
                GenResult(
                    id=r.id,
                    texts=texts,
                    prompt_tokens=len(encoded[j]),
                    completion_tokens=counts,
                    finish_reasons=reasons,
                )
            )
        return results

    def load_weights(self, path: str) -> None:
        """Copy a safetensors directory into the live parameters (same model object, no restart)."""
        import torch

        tensors = read_safetensors_dir(path)
        params = dict(self.model.named_parameters())
        missing = [n for n in params if n not in tensors and not self._is_tied(n)]
        unknown = [n for n in tensors if n not in params]
        if missing or unknown:
            raise ModelError(
                f"weights in '{path}' do not fit the served model (missing {missing[:3]}, "
                f"unexpected {unknown[:3]}); sync weights of the same architecture"
            )
        with torch.no_grad():
            for name, tensor in tensors.items():
                params[name].copy_(tensor.to(params[name].dtype))
        self.weights_path = path
        self.weights_version += 1

    def _is_tied(self, name: str) -> bool:
        return name == "lm_head.weight" and bool(
            getattr(self.model.config, "tie_word_embeddings", False)
        )
