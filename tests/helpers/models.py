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
