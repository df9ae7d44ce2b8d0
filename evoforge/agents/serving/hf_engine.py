"""transformers ``generate``, batched with left padding: the dependable engine everywhere."""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from pathlib import Path

from evoforge.agents.serving.engine_base import (
    EngineBase,
    configure_threads,
    cut_at_stop,
    safetensors_files,
)
from evoforge.agents.serving.types import GenRequest, GenResult
from evoforge.errors import ModelError

_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


def safetensors_index(path: str) -> dict[Path, tuple[int, dict[str, dict]]]:
    """file -> (offset of its data section, {tensor name: header entry}) for a safetensors
    directory (one file or shards).

    The format is an 8-byte little-endian header length, a JSON header with each tensor's dtype,
    shape and byte range, then the data; reading the header ourselves lets load_weights read each
    tensor straight into the live parameter."""
    index: dict[Path, tuple[int, dict[str, dict]]] = {}
    for f in safetensors_files(path):
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        header.pop("__metadata__", None)
        # a truncated file is refused before any parameter is touched
        need = 8 + n + max((e["data_offsets"][1] for e in header.values()), default=0)
        if f.stat().st_size < need:
            raise ModelError(f"{f} ends early (truncated weights); re-save the model")
        index[f] = (8 + n, header)
    return index


def read_into(param, file: Path, base: int, entry: dict, fh) -> None:
    """Read one tensor from an open safetensors file into ``param`` in place.

    Same dtype and shape: one read from the page cache into the parameter's memory, no temporary
    tensor (about a third of the time of load_file + copy_, docs/benchmarks.md). Otherwise the
    bytes go through a temporary tensor and a dtype-converting copy."""
    import torch

    begin, end = entry["data_offsets"]
    dtype = getattr(torch, _DTYPES.get(entry["dtype"], ""), None)
    if dtype is None:
        raise ModelError(f"{file}: tensor dtype {entry['dtype']} is not supported for sync")
    fh.seek(base + begin)
    direct = (
        param.device.type == "cpu"
        and param.dtype == dtype
        and list(param.shape) == entry["shape"]
        and param.is_contiguous()
    )
    target = param.data if direct else torch.empty(entry["shape"], dtype=dtype)
    view = memoryview(target.view(-1).view(torch.uint8).numpy())
    done = 0
    while done < end - begin:  # a large read may come back short
        got = fh.readinto(view[done:])
        if not got:
            raise ModelError(f"{file} ends early (truncated weights); re-save the model")
        done += got
    if not direct:
        param.data.copy_(target.reshape(param.shape).to(param.dtype))


class HFEngine(EngineBase):
    """A causal LM served with ``model.generate``; requests with equal sampling share a batch."""

    backend = "hf"

    def __init__(
        self, model_path: str, *, max_model_len: int, batch_size: int, threads: int, dtype: str
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
        if self.device == "cpu":
            # transformers leaves CPU parameters as copy-on-write maps of the safetensors file:
            # the first in-place load then page-faults through all of them (4x slower than the
            # next), and a file truncated under the server would crash it (SIGBUS). One copy at
            # start gives the engine memory of its own (docs/benchmarks.md, sync).
            with torch.no_grad():
                for param in self.model.parameters():
                    param.data = param.data.clone()
        self.batch_size = batch_size
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def sleep(self) -> bool:
        """On a GPU: weights to CPU memory and the CUDA cache emptied, for a colocated trainer."""
        if self.device != "cuda":
            return False
        import torch

        self.model.to("cpu")
        torch.cuda.empty_cache()
        return True

    def wake(self) -> None:
        if self.device == "cuda":
            self.model.to("cuda")

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
                text, stopped = cut_at_stop(self._decode(toks, encoded[j], r.prefix), s.stop)
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

    def _decode(self, toks: list[int], prompt: list[int], prefix: str) -> str:
        """The text of generated tokens; after a forced prefix, decoded in the context of the
        prompt's last tokens so that a tokenizer that drops a leading space when decoding alone
        (sentencepiece) gives the continuation exactly as vLLM's detokenizer does."""
        decode = self.tokenizer.decode
        if not prefix:
            return decode(toks, skip_special_tokens=True)
        context = prompt[-8:]
        head = decode(context, skip_special_tokens=True)
        full = decode(context + toks, skip_special_tokens=True)
        return (
            full[len(head) :] if full.startswith(head) else decode(toks, skip_special_tokens=True)
        )

    def load_weights(self, path: str) -> None:
        """Copy a safetensors directory into the live parameters (same model object, no restart)."""
        import torch

        index = safetensors_index(path)
        entries = {name: e for _, header in index.values() for name, e in header.items()}
        params = dict(self.model.named_parameters())
        missing = [n for n in params if n not in entries and not self._is_tied(n)]
        unknown = [n for n in entries if n not in params]
        shapes = [
            n for n in entries if n in params and list(params[n].shape) != entries[n]["shape"]
        ]
        if missing or unknown or shapes:
            raise ModelError(
                f"weights in '{path}' do not fit the served model (missing {missing[:3]}, "
                f"unexpected {unknown[:3]}, other shapes {shapes[:3]}); sync weights of the "
                "same architecture"
            )
        with torch.no_grad():
            for file, (base, header) in index.items():
                with open(file, "rb", buffering=0) as fh:
                    for name, entry in header.items():
                        read_into(params[name], file, base, entry, fh)
        self.weights_path = path
        self.weights_version += 1

    def _is_tied(self, name: str) -> bool:
        return name == "lm_head.weight" and bool(
            getattr(self.model.config, "tie_word_embeddings", False)
        )
