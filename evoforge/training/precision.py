"""The training precision: fp32, or bf16 mixed precision where the processor multiplies in bf16.

bf16 here is mixed precision: float32 master weights and optimizer state, matmuls in bfloat16
under autocast (the transformers Trainer's ``bf16=True``, which on CPU wraps every forward in
``torch.autocast("cpu", dtype=torch.bfloat16)``). ``auto`` picks it on CUDA GPUs with bf16 and on
CPUs with bf16 instructions (AVX512-BF16 or AMX, read from /proc/cpuinfo or torch's reported
capability), and float32 elsewhere: without them torch's bf16 matmul falls back to a scalar
kernel, about 30x slower than float32 on this project's 2-core AVX2 machine.

A forced ``bf16`` is honoured on any processor (emulated, with a warning in the run's placement
line): it is what the user asked for, and it lets the bf16 path be tested on every machine.
"""

from __future__ import annotations

from pathlib import Path

from evoforge.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
"""/proc/cpuinfo flags of CPUs whose bf16 matmuls beat float32 (oneDNN uses them)."""


def cpu_bf16_flag(cpuinfo: str | None = None) -> str | None:
    """The bf16 instruction set this CPU has (``amx_bf16``, ``avx512_bf16``), or None.

    ``cpuinfo``: the text of /proc/cpuinfo (read when None); where it is unreadable, torch's
    reported CPU capability (``AMX``/``AVX512_BF16`` in it) decides."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    for flag in CPU_BF16_FLAGS:
        if flag in flags:
            return flag
    if not flags:
        return _torch_capability_flag()
    return None


def _torch_capability_flag() -> str | None:
    import torch

    capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    if "AMX" in capability:
        return "amx_bf16"
    if "BF16" in capability:
        return "avx512_bf16"
    return None


def cuda_bf16() -> bool:
    """Whether the first CUDA GPU has native bf16 (Ampere and later)."""
    import torch

    return bool(
        torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    )


def resolve(requested: str, cuda: bool, cpuinfo: str | None = None) -> str:
    """``fp32`` or ``bf16``: what a trainer on this process's processor uses for ``requested``
    (``train.precision``); ``cuda``: whether it trains on a GPU."""
    if requested not in PRECISIONS:
        raise ConfigError(f"unknown train.precision '{requested}'; use {', '.join(PRECISIONS)}")
    if requested != "auto":
        return requested
    native = cuda_bf16() if cuda else cpu_bf16_flag(cpuinfo) is not None
    return "bf16" if native else "fp32"


def describe(requested: str, gpus: bool, cpuinfo: str | None = None) -> str:
    """One line for the run's start: the precision training will use and why. ``gpus``: the
    trainer runs on GPUs (their bf16 is checked by the trainer itself, on its GPU)."""
    if requested not in PRECISIONS:
        resolve(requested, False)  # the one-line error
    if gpus:
        if requested == "auto":
            return "training precision: bf16 mixed on GPUs with bf16, else fp32 (auto)"
        return f"training precision: {requested}" + (" mixed" if requested == "bf16" else "")
    flag = cpu_bf16_flag(cpuinfo)
    if requested == "auto":
        if flag:
            return f"training precision: bf16 mixed (auto: {flag} on this CPU)"
        return "training precision: fp32 (auto: no avx512_bf16/amx_bf16 on this CPU)"
    if requested == "bf16" and not flag:
        return (
            "training precision: bf16 mixed (forced; WARNING: this CPU has no avx512_bf16/"
            "amx_bf16, bf16 matmuls are emulated and far slower than fp32; "
            "train.precision=auto picks fp32 here)"
        )
    return f"training precision: {requested}" + (" mixed" if requested == "bf16" else "")
