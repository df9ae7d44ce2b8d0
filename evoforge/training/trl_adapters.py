"""TRL as evoforge uses it: rows in TRL's formats, trainer configs, and one way to fit a trainer.

Why the TRL defaults are overridden: DPOConfig defaults to ``gradient_checkpointing=True`` (every
forward recomputed in backward) and ``bf16=True``, and runs a reference model at every step. On
CPU we turn the first two off and precompute the reference log-probs once per round
(``precompute_ref_log_probs``), and on CPU replace TRL's fused LM head with a dense one over the
labelled positions (see lm_head.py; docs/benchmarks.md has the measured step times).

- dpo: sigmoid DPO plus an SFT (NLL) term on chosen (``loss_type=["sigmoid", "sft"]``), the SFT
  weight from config, as SPaR's small SFT term and Iterative RPO's NLL term.
- sft: completions only (the refiner's data, chosen answers).
- grpo, rloo: the round's prompts with the environment's verifier as reward.

With several workers (``world`` > 1, under Ray Train) each takes ``batch_size / world`` examples
of every optimizer step, so the global batch is the one a single worker would use. Checkpoints
(``train.checkpoint_steps``) are the transformers Trainer's own: weights, optimizer, scheduler,
RNG per rank, and the trainer state with its log history.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from evoforge.training.settings import TrainSettings

CPU_TOKENS_PER_PASS = 2048
"""Auto micro-batches on a CPU keep a forward/backward pass within this many tokens at
``train.max_length``: activations grow with the tokens of a pass (float32, ~1.6 MB a token for the
default 135M model: 8 rows of 1024 tokens held 13 GB), and the trainer shares the machine with the
servers."""


def micro_batch(s: TrainSettings, cuda: bool, world: int = 1, rows_per_example: int = 1) -> int:
    """Examples per forward/backward pass of one worker: ``train.micro_batch_size``, or (0) on a
    CPU the most that keep a pass within CPU_TOKENS_PER_PASS (``rows_per_example``: 2 for DPO's
    chosen and rejected; 0: never split, as GRPO and RLOO score one generation batch a pass), on
    a GPU the worker's whole batch. Always a divisor of that batch, so that every optimizer step
    sees exactly ``train.batch_size`` examples."""
    batch = max(1, s.batch_size // world)
    if rows_per_example == 0:
        return batch
    want = s.micro_batch_size or (
        batch if cuda else CPU_TOKENS_PER_PASS // (rows_per_example * s.max_length)
    )
    want = max(1, min(batch, want))
    return max(d for d in range(1, want + 1) if batch % d == 0)


def common_args(
    s: TrainSettings, out: str, cuda: bool, world: int = 1, rows_per_example: int = 1
) -> dict[str, Any]:
    """TrainingArguments shared by every algorithm; ``world``: the data-parallel workers;
    ``rows_per_example``: sequences of one example in a pass (micro_batch). ``train.precision``
    is resolved here, in the process that trains (see precision.py)."""
    from evoforge.training.precision import resolve

    sharded = (
        dict(fsdp="full_shard auto_wrap", fsdp_config={"use_orig_params": True})
        if s.strategy == "fsdp" and world > 1
        else {}
    )
    micro = micro_batch(s, cuda, world, rows_per_example)
    return dict(
        output_dir=out,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=max(1, s.batch_size // world) // micro,
        num_train_epochs=s.epochs,
        learning_rate=s.learning_rate,
        seed=s.seed,
        data_seed=s.seed,
        report_to=[],
        save_strategy="steps" if s.checkpoint_steps else "no",
        save_steps=s.checkpoint_steps or 500,
        save_total_limit=2,  # the newest may be cut short by a kill; the one before is whole
        logging_steps=1,
        gradient_checkpointing=False,
        bf16=resolve(s.precision, cuda) == "bf16",  # mixed: float32 weights, bf16 autocast
        fp16=False,
        use_cpu=not cuda,
        dataloader_num_workers=0,
        lr_scheduler_type="constant",
        warmup_steps=0,
        disable_tqdm=True,
        **sharded,
    )


def _as_messages(side: str | list[dict[str, str]]) -> list[dict[str, str]]:
    return side if isinstance(side, list) else [{"role": "assistant", "content": side}]


def _row(prompt, completions: dict[str, Any], tools, native: bool) -> dict[str, Any]:
    """A conversational row; a multi-turn example (``tools``, or a tool message) is rendered as
    the engines showed it to the model (agents/turn_pairs.py)."""
    from evoforge.agents.turn_pairs import chat_row

    sides = {k: _as_messages(v) for k, v in completions.items()}
    multi = tools is not None or any(
        m.get("role") == "tool" for m in [*prompt, *(m for v in sides.values() for m in v)]
    )
    if not multi:
        return {"prompt": prompt, **sides}
    return chat_row(list(prompt), sides, tools or (), native)


def native_tools(tokenizer) -> bool:
    """Whether the tokenizer's chat template renders tools (rows then carry a tools column)."""
    from evoforge.agents.serving.engine_base import template_supports_tools

    return template_supports_tools(tokenizer)


def dpo_rows(pairs: list[dict[str, Any]], tokenizer=None) -> list[dict[str, Any]]:
    """Our pairs as TRL's conversational preference rows. A multi-turn pair (its shared messages
    as the prompt, list-valued chosen/rejected, its tools) is rendered for ``tokenizer``'s chat
    template: tools in a column when it renders them, else in the system prompt."""
    native = tokenizer is not None and native_tools(tokenizer)
    return [
        _row(
            p["prompt"], {"chosen": p["chosen"], "rejected": p["rejected"]}, p.get("tools"), native
        )
        for p in pairs
    ]


def sft_rows(examples: list[dict[str, Any]], tokenizer=None) -> list[dict[str, Any]]:
    """Our SFT examples ({messages, completion[, tools]}) as TRL prompt-completion rows."""
    native = tokenizer is not None and native_tools(tokenizer)
    rows = [
        _row(e["messages"], {"completion": e["completion"]}, e.get("tools"), native)
        for e in examples
    ]
    if native and any("tools" in r for r in rows):  # one schema for the whole dataset
        rows = [r if "tools" in r else r | {"tools": None} for r in rows]
    return rows


def _chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_chars(v) for k, v in value.items() if k != "role")
    if isinstance(value, list | tuple):
        return sum(_chars(v) for v in value)
    return 0


def length_grouped(rows: list[dict[str, Any]], batch: int, seed: int) -> list[dict[str, Any]]:
    """``rows`` in batches of similar length, the batches in a seeded random order.

    TRL pads each batch to its longest row (both sides of a pair to the longer one), so a batch
    that mixes a short and a long answer pays the long one for every row. Rows are sorted by
    their text's length (the prompt plus the longer side; characters stand in for tokens), cut
    into optimizer batches, and the batches shuffled, so the order of the round's data stays
    random batch by batch; train them with ``train_sampling_strategy="sequential"``. Not the
    default: `evoforge bench train` measured no gain on the default model (docs/benchmarks.md)."""
    import random

    def size(row: dict[str, Any]) -> int:
        sides = [_chars(row.get(k)) for k in ("chosen", "rejected", "completion")]
        return _chars(row.get("prompt")) + max(sides)

    ranked = sorted(range(len(rows)), key=lambda i: (size(rows[i]), i))
    batches = [ranked[i : i + batch] for i in range(0, len(ranked), batch)]
    random.Random(seed).shuffle(batches)
    return [rows[i] for b in batches for i in b]


def dpo_config(s: TrainSettings, work: str, cuda: bool, world: int = 1):
    """Sigmoid DPO plus an SFT term on chosen, reference log-probs computed once up front."""
    from trl import DPOConfig

    return DPOConfig(
        **common_args(s, work, cuda, world, rows_per_example=2),
        beta=s.beta,
        max_length=s.max_length,
        # TRL's precomputed log-probs are cached next to the dataset's files, which are per
        # process for in-memory rows: several workers compute the reference at every step.
        precompute_ref_log_probs=world == 1,
        loss_type=["sigmoid", "sft"],
        loss_weights=[1.0, s.sft_weight],
    )


def lora_config(s: TrainSettings):
    if not s.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=s.lora_r, lora_alpha=2 * s.lora_r, target_modules="all-linear", task_type="CAUSAL_LM"
    )


class LossLog:
    """TRL's logged losses of every phase, in order. Read from the trainer's log history, which
    a resumed trainer restores from its checkpoint: the steps before a crash are kept."""

    def __init__(self) -> None:
        self.records: list[dict[str, float]] = []
        self.resumed: list[dict[str, Any]] = []
        """Per resumed phase: its name and the checkpoint step it continued from."""
        self.sequences: dict[str, int] = {}
        """Per phase: the training sequences its rows became (SFT: prefix rows merged)."""

    def add(self, history: list[dict[str, Any]]) -> None:
        for logs in history:
            if "loss" in logs:
                self.records.append(
                    {k: float(v) for k, v in logs.items() if isinstance(v, int | float)}
                )


def last_checkpoint(work: str) -> str | None:
    """The newest complete checkpoint under ``work``: trainer_state.json is written last, and
    not atomically, so one cut short (a kill or a full disk while it was written) marks its
    checkpoint incomplete, and the one before is used."""
    found = []
    for d in Path(work).glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", d.name)
        if m and _whole_json(d / "trainer_state.json"):
            found.append((int(m.group(1)), str(d)))
    return max(found)[1] if found else None


def _whole_json(path: Path) -> bool:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def debug_pause_callback(phase: str):
    """Fault-injection window for crash tests: EVOFORGE_DEBUG_DELAY="train_step@N[:ALGO]=SECONDS"
    pauses right after the checkpoint of optimizer step N (of the phase training ALGO, when
    given) is written, so that a test can kill the run in the middle of training at a known step.
    ``phase`` is the phase's checkpoint directory name, e.g. ``1-dpo``."""
    from transformers import TrainerCallback

    where, _, secs = os.environ.get("EVOFORGE_DEBUG_DELAY", "").partition("=")
    name, _, at = where.partition("@")
    step, _, algo = at.partition(":")
    if name != "train_step" or not step or not secs or (algo and not phase.endswith("-" + algo)):
        return None

    class _Pause(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step == int(step) and state.is_world_process_zero:
                print(f"evoforge debug: pausing after step {step}", file=sys.stderr, flush=True)
                time.sleep(float(secs))

    return _Pause()


def write_json_whole(path: str, obj: Any) -> None:
    """``obj`` as JSON at ``path``, through a rename: a reader sees the old file or the new one."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


PROGRESS_FILE = "progress.json"
"""Beside the phases' checkpoint directories: the running phase's optimizer step, for the
driver's progress line (training runs in another process, maybe on another node of a shared
run directory)."""


def step_progress_callback(path: str):
    """Writes {"phase", "step", "max_steps"} to ``path`` at the start of training and after every
    optimizer step (the first worker only; a rename, so a reader never sees half a file)."""
    from transformers import TrainerCallback

    class _StepProgress(TrainerCallback):
        def _write(self, args, state) -> None:
            if not state.is_world_process_zero:
                return
            record = {
                "phase": Path(args.output_dir).name,
                "step": state.global_step,
                "max_steps": state.max_steps,
            }
            with contextlib.suppress(OSError):  # best effort: a full disk fails the save instead
                write_json_whole(path, record)

        def on_train_begin(self, args, state, control, **kw):
            self._write(args, state)

        def on_step_end(self, args, state, control, **kw):
            self._write(args, state)

    return _StepProgress()


def clear_step_progress(path: str) -> None:
    """Forget the step an earlier training wrote at ``path`` (a killed run's, or the phase
    before): a phase that starts, resumed or not, shows its own steps, never a stale one."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def read_step_progress(path: str) -> dict[str, Any] | None:
    """What :func:`step_progress_callback` last wrote at ``path``, or None."""
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def no_final_checkpoint_callback():
    """Transformers saves a checkpoint (weights, optimizer: three times the model) at the last
    step whatever ``save_steps`` says; here the model is saved right after anyway, and the
    checkpoint would be deleted unread, so only the ``save_steps`` checkpoints are written."""
    from transformers import TrainerCallback

    class _NoFinalCheckpoint(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step >= state.max_steps and state.global_step % args.save_steps:
                control.should_save = False
            return control

    return _NoFinalCheckpoint()


def merged(model):
    """A LoRA-wrapped model with its adapter merged in (servers and the next stage want plain weights)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


@contextlib.contextmanager
def dense_lm_heads(trainer_cls):
    """While a ``trainer_cls`` is built, every LM head TRL fuses onto a model is replaced by the
    dense one (lm_head.py) right away. Its constructor also runs the DPO reference pass
    (``precompute_ref_log_probs``) and wraps the reference model's forward in the mixed-precision
    autocast: a head swapped after construction missed both (that pass ran TRL's CPU head, and
    a bf16 reference model lost its autocast)."""
    from evoforge.training.lm_head import use_dense_lm_head

    modules = {
        sys.modules[c.__module__]
        for c in trainer_cls.__mro__
        if hasattr(sys.modules.get(c.__module__), "add_fused_lm_head")
    }
    originals = {m: m.add_fused_lm_head for m in modules}

    def patched(original):
        def add(model, temperature: float = 1.0, **kw):
            original(model, temperature=temperature, **kw)
            use_dense_lm_head(model, temperature)

        return add

    for m, original in originals.items():
        m.add_fused_lm_head = patched(original)
    try:
        yield
    finally:
        for m, original in originals.items():
            m.add_fused_lm_head = original


def build_trainer(trainer_cls, model, args, rows: list[dict[str, Any]], tok, callbacks, **extra):
    """A TRL trainer on ``rows``; on CPU with the dense LM head (see lm_head.py)."""
    import torch
    from datasets import Dataset

    heads = contextlib.nullcontext() if torch.cuda.is_available() else dense_lm_heads(trainer_cls)
    with heads:
        return trainer_cls(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
            callbacks=callbacks,
            **extra,
        )


def fit(
    trainer_cls,
    model,
    args,
    rows: list[dict[str, Any]],
    tok,
    log: LossLog,
    merge_prefixes: bool = False,
    **extra,
):
    """Train one TRL trainer on ``rows`` and return the trained model; continues from the last
    complete checkpoint in ``args.output_dir`` when there is one. ``merge_prefixes`` (SFT): a
    tokenized row that is a prefix of another trains inside it (prefix_rows.py)."""
    from evoforge.training.prefix_rows import merged_dataset

    pause = debug_pause_callback(Path(args.output_dir).name)
    progress = os.path.join(os.path.dirname(args.output_dir), PROGRESS_FILE)
    clear_step_progress(progress)  # until this phase's first write: no step, not a stale one
    steps = step_progress_callback(progress)
    callbacks = [no_final_checkpoint_callback(), steps, *([pause] if pause else [])]
    trainer = build_trainer(trainer_cls, model, args, rows, tok, callbacks, **extra)
    if merge_prefixes:
        trainer.train_dataset = merged_dataset(trainer.train_dataset)
    log.sequences[Path(args.output_dir).name] = len(trainer.train_dataset)
    resume = last_checkpoint(args.output_dir) if args.save_strategy != "no" else None
    if resume:
        log.resumed.append(
            {"phase": Path(args.output_dir).name, "step": int(resume.rsplit("-", 1)[1])}
        )
    trainer.train(resume_from_checkpoint=resume)
    log.add(trainer.state.log_history)
    return trainer.model


def save_model(model, tokenizer, out_dir: str) -> None:
    """Plain safetensors for the servers."""
    model = merged(model)
    tmp = out_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.rename(tmp, out_dir)
