"""train.precision: auto picks bf16 only where the processor has bf16; forced bf16 is honoured
with a warning; the trainer's arguments and the run's start line follow the choice."""

from __future__ import annotations

import pytest

from evoforge.config import load_config
from evoforge.errors import ConfigError
from evoforge.training import precision
from evoforge.training.settings import TrainSettings
from evoforge.training.trl_adapters import common_args

AVX2_ONLY = """processor	: 0
vendor_id	: AuthenticAMD
flags		: fpu vme sse sse2 avx f16c avx2 bmi2 sha_ni
processor	: 1
flags		: fpu vme sse sse2 avx f16c avx2 bmi2 sha_ni
"""
AVX512_BF16 = AVX2_ONLY.replace("avx2 ", "avx2 avx512f avx512bw avx512_bf16 ")
AMX = AVX2_ONLY.replace("avx2 ", "avx2 avx512f amx_tile amx_bf16 amx_int8 ")
ARM = "processor	: 0\nFeatures	: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"


@pytest.mark.parametrize(
    "cpuinfo, flag",
    [(AVX2_ONLY, None), (AVX512_BF16, "avx512_bf16"), (AMX, "amx_bf16"), (ARM, None)],
    ids=["avx2", "avx512_bf16", "amx", "arm"],
)
def test_cpu_bf16_is_read_from_cpuinfo_flags(cpuinfo, flag):
    assert precision.cpu_bf16_flag(cpuinfo) == flag
    assert precision.resolve("auto", cuda=False, cpuinfo=cpuinfo) == ("bf16" if flag else "fp32")


def test_unreadable_cpuinfo_falls_back_to_torch_capability(monkeypatch):
    import torch

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512_BF16")
    assert precision.cpu_bf16_flag("") == "avx512_bf16"
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert precision.cpu_bf16_flag("") is None


def test_forced_precision_is_kept_and_cuda_auto_asks_the_gpu(monkeypatch):
    assert precision.resolve("fp32", cuda=False, cpuinfo=AMX) == "fp32"
    assert precision.resolve("bf16", cuda=False, cpuinfo=AVX2_ONLY) == "bf16"
    monkeypatch.setattr(precision, "cuda_bf16", lambda: True)
    assert precision.resolve("auto", cuda=True, cpuinfo=AVX2_ONLY) == "bf16"
    monkeypatch.setattr(precision, "cuda_bf16", lambda: False)  # a pre-Ampere GPU
    assert precision.resolve("auto", cuda=True, cpuinfo=AMX) == "fp32"
    with pytest.raises(ConfigError, match="unknown train.precision 'half'"):
        precision.resolve("half", cuda=False)


def test_start_line_names_the_choice_and_warns_on_emulated_bf16():
    assert precision.describe("auto", False, AVX512_BF16) == (
        "training precision: bf16 mixed (auto: avx512_bf16 on this CPU)"
    )
    assert "fp32 (auto: no avx512_bf16/amx_bf16" in precision.describe("auto", False, AVX2_ONLY)
    forced = precision.describe("bf16", False, AVX2_ONLY)
    assert "WARNING" in forced and "emulated" in forced and "train.precision=auto" in forced
    assert "WARNING" not in precision.describe("bf16", False, AMX)
    assert precision.describe("fp32", False, AMX) == "training precision: fp32"


def test_config_field_and_trainer_arguments(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="train.precision"):
        load_config(None, ["train.precision=fp16"])
    for requested, native, bf16 in [
        ("auto", False, False),
        ("auto", True, True),
        ("bf16", False, True),
        ("fp32", True, False),
    ]:
        monkeypatch.setattr(
            precision, "cpu_bf16_flag", lambda *_a, n=native: "amx_bf16" if n else None
        )
        s = TrainSettings.from_config(load_config(None, [f"train.precision={requested}"]))
        assert s.precision == requested
        args = common_args(s, str(tmp_path), cuda=False)
        assert args["bf16"] is bf16 and args["use_cpu"] and not args["fp16"], requested
