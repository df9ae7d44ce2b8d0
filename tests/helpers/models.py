"""Model directories made for tests."""

from __future__ import annotations

import shutil


def perturbed_copy(src: str, dest) -> str:
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dest)
    tensors = load_file(f"{dest}/model.safetensors")
    g = torch.Generator().manual_seed(0)
    tensors = {k: v + 0.5 * torch.randn(v.shape, generator=g) for k, v in tensors.items()}
    save_file(tensors, f"{dest}/model.safetensors", metadata={"format": "pt"})
    return str(dest)


TOOLS_TEMPLATE = (  # the prompt ends on a token boundary, so TRL keeps all of it
    "{% for t in tools or [] %}TOOL {{ t.function.name }}\n{% endfor %}"
    "{% for m in messages %}{{ m.role }}:\n{{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:\n{% endif %}"
)
"""A chat template that renders tools (the shipped models' templates do not)."""


def with_chat_template(src: str, dest, template: str) -> str:
    """A copy of the model directory ``src`` at ``dest`` whose tokenizer has ``template``."""
    from transformers import AutoTokenizer

    shutil.copytree(src, dest)
    tok = AutoTokenizer.from_pretrained(dest)
    tok.chat_template = template
    tok.save_pretrained(dest)
    return str(dest)
