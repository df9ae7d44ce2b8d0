"""GPU check: the paths a GPU user runs that need neither vLLM nor Ray, in minutes on one GPU.

    .venv/bin/python scripts/gpu_check.py [--model default|tiny|PATH] [--device cuda|cpu]

Checks, one line each (``ok`` or ``FAIL``, seconds, what was seen): the GPU has bf16; the
transformers engine generates in bf16 on cuda; one SFT step and one DPO step of the trainer
(evoforge.training.trainer, bf16 mixed precision) on cuda; the trained weights loaded in place
into the running engine (same parameter storage, new values, still generating); the LM head TRL
fuses on a GPU agrees with the dense head of training/lm_head.py. Exits 1 if any check failed.

``--device cpu`` hides the GPUs and runs the same checks on the CPU in float32 (a dry run of the
script's logic, for the tests; the bf16 and cuda assertions are skipped there).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PAIRS = [
    ("Name a colour.", "Blue.", "I like turtles, everywhere, always"),
    ("Say hello.", "Hello!", "no"),
    ("Count to three.", "1, 2, 3.", "Seven, four"),
    ("What is 2 + 2?", "4.", "Fish."),
]


class Checks:
    """Runs named checks, prints one line each, remembers failures."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def run(self, name: str, fn) -> Any:
        start = time.time()
        try:
            seen = fn()
        except Exception as e:  # a check's failure is reported, the next check still runs
            self.failed.append(name)
            last = (str(e).strip().splitlines() or [repr(e)])[-1][:300]
            print(
                f"FAIL {name} ({time.time() - start:.1f} s): {type(e).__name__}: {last}", flush=True
            )
            if os.environ.get("GPU_CHECK_TRACE"):
                traceback.print_exc()
            return None
        print(f"ok   {name} ({time.time() - start:.1f} s): {seen}", flush=True)
        return seen


def settings(precision: str, algorithm: str):
    from evoforge.config import load_config
    from evoforge.training.settings import TrainSettings

    overrides = [
        f"train.algorithm={algorithm}",
        f"train.precision={precision}",
        "train.batch_size=4",
        "train.checkpoint_steps=0",
        "train.max_length=256",
        "env=instructions",
    ]
    return TrainSettings.from_config(load_config(None, overrides))


def check_gpu(cuda: bool) -> str:
    import torch

    if not cuda:
        return "dry run on cpu (no GPU check)"
    assert torch.cuda.is_available(), "torch sees no CUDA GPU"
    assert torch.cuda.is_bf16_supported(), f"{torch.cuda.get_device_name(0)} has no bf16"
    from evoforge.training.precision import resolve

    assert resolve("auto", cuda=True) == "bf16", "train.precision=auto did not pick bf16"
    return f"{torch.cuda.get_device_name(0)}, bf16, torch {torch.__version__}"


def check_engine(path: str, cuda: bool):
    from evoforge.agents.serving.hf_engine import HFEngine

    engine = HFEngine(path, max_model_len=512, batch_size=8, threads=0, dtype="auto")
    param = next(engine.model.parameters())
    if cuda:
        assert param.device.type == "cuda", f"engine weights on {param.device}"
        assert str(param.dtype) == "torch.bfloat16", f"engine weights in {param.dtype}"
    texts = generate(engine)
    return engine, f"{param.dtype} on {param.device}: {texts[0][:40]!r}"


def generate(engine) -> list[str]:
    from evoforge.agents.serving.types import GenRequest, Sampling

    requests = [
        GenRequest(messages=[{"role": "user", "content": p}], sampling=Sampling(0.0, 8), id=str(i))
        for i, (p, _, _) in enumerate(PAIRS[:2])
    ]
    results = engine.generate(requests)
    assert all(r.completion_tokens[0] > 0 for r in results), "an empty completion"
    return [r.texts[0] for r in results]


def check_train(algorithm: str, path: str, out: str, precision: str, cuda: bool) -> str:
    from evoforge.training.trainer import Trainer

    trainer = Trainer(threads=0)
    assert trainer.cuda == cuda, f"trainer cuda={trainer.cuda}, expected {cuda}"
    if algorithm == "sft":
        data = [
            {"messages": [{"role": "user", "content": p}], "completion": c} for p, c, _ in PAIRS
        ]
        m = trainer.train("sft", path, out, data, settings(precision, "sft"))
    else:
        data = [
            {"prompt": [{"role": "user", "content": p}], "chosen": c, "rejected": r}
            for p, c, r in PAIRS
        ]
        m = trainer.train("dpo", path, out, data, settings(precision, "dpo"), ref_path=path)
    assert m["steps"] >= 1, f"{m['steps']} steps"
    assert m["precision"] == precision, f"trained in {m['precision']}, expected {precision}"
    assert m["loss_last"] is not None and math.isfinite(m["loss_last"]), f"loss {m['loss_last']}"
    assert (Path(out) / "model.safetensors").is_file() or list(Path(out).glob("*.safetensors"))
    return f"{m['steps']} step(s) in {m['precision']}, loss {m['loss_last']:.4f}, {m['seconds']} s"


def check_load(engine, out: str) -> str:
    import torch
    from safetensors import safe_open

    name, param = next(
        (n, p) for n, p in engine.model.named_parameters() if n.endswith("down_proj.weight")
    )
    storage, before = param.data_ptr(), param.detach().clone()
    version = engine.weights_version
    engine.load_weights(out)
    with safe_open(str(next(Path(out).glob("*.safetensors"))), "pt") as f:
        trained = f.get_tensor(name).to(param.device, param.dtype)
    assert param.data_ptr() == storage, "the parameter was replaced, not loaded in place"
    assert torch.equal(param.detach(), trained), "the engine does not hold the trained weights"
    assert not torch.equal(before, trained), "training changed nothing"
    assert engine.weights_version == version + 1
    generate(engine)
    return f"{name} in place, weights_version {engine.weights_version}, still generates"


def check_lm_head(path: str, cuda: bool) -> str:
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from evoforge.training.lm_head import use_dense_lm_head

    device = "cuda" if cuda else "cpu"
    torch.manual_seed(0)
    ids = torch.randint(0, 1000, (3, 33), device=device)
    labels = ids.clone()
    labels[:, :10] = -100
    labels[2, 25:] = -100
    outs = []
    for dense in (False, True):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device)
        add_fused_lm_head(model, outputs=("log_probs", "entropy"))
        if dense:
            assert use_dense_lm_head(model)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=cuda):
            out = model(input_ids=ids, labels=labels, fused_lm_head=True)
        out.loss.backward()
        grad = model.get_output_embeddings().weight.grad.float().norm().item()
        outs.append((out.log_probs.float().detach(), out.loss.item(), grad))
    (fused, loss_f, grad_f), (dense_lp, loss_d, grad_d) = outs
    diff = (fused - dense_lp).abs().max().item()
    tol = 0.1 if cuda else 1e-3  # bf16 logits on the GPU: both heads round the same products
    assert diff <= tol, f"per-token log-probs differ by {diff:.4f} (> {tol})"
    assert abs(loss_f - loss_d) <= tol * max(1.0, abs(loss_f)), f"loss {loss_f} vs {loss_d}"
    assert abs(grad_f - grad_d) <= 0.05 * grad_f, f"LM head grad norm {grad_f} vs {grad_d}"
    return f"TRL fused vs dense head: max |dlogp| {diff:.2e}, loss {loss_f:.4f} vs {loss_d:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    if not cuda:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch is imported
    precision = "bf16" if cuda else "fp32"
    start = time.time()
    checks = Checks()
    from evoforge.agents.models import resolve_model

    path = checks.run("model", lambda: resolve_model(args.model).path)
    if path is None or checks.run("gpu", lambda: check_gpu(cuda)) is None:
        print(f"gpu_check: FAILED {checks.failed}", flush=True)
        return 1
    with tempfile.TemporaryDirectory(prefix="evoforge-gpu-check-") as tmp:
        found = checks.run("engine generates", lambda: check_engine(path, cuda))
        engine = found[0] if found else None
        sft, dpo = os.path.join(tmp, "sft"), os.path.join(tmp, "dpo")
        checks.run("sft step", lambda: check_train("sft", path, sft, precision, cuda))
        trained = checks.run("dpo step", lambda: check_train("dpo", path, dpo, precision, cuda))
        if engine is not None and trained is not None:
            checks.run("weights loaded in place", lambda e=engine: check_load(e, dpo))
        else:
            checks.failed.append("weights loaded in place")
            print("FAIL weights loaded in place: needs the engine and the dpo step", flush=True)
        engine = found = None  # free the GPU memory before the head check
        checks.run("lm head", lambda: check_lm_head(path, cuda))
    verdict = f"FAILED {checks.failed}" if checks.failed else "all passed"
    print(f"gpu_check ({args.device}, {args.model}): {verdict} in {time.time() - start:.0f} s")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
