"""train: the trainer actor trains the actor's weights on the round's data (TRL).

An SFT phase comes first: the round's passing samples and accepted refinements (rejection-sampling
fine-tuning, ``train.rft``) and, when the roles share one model (SPaR), the refiner's examples.
Then the algorithm: dpo on the pairs (DPO with an NLL term on chosen), sft on the RFT rows alone,
grpo and rloo on the round's tasks with the verifier as reward. A separate refiner model is
trained on its examples on its own. When training shares the servers' GPUs (placement colocate),
the servers sleep while it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from evoforge.round.nodes import StageResult, stage
from evoforge.round.runtime import Runtime
from evoforge.round.state import RunState
from evoforge.storage.records import RefinerRow
from evoforge.storage.store import RoundStore
from evoforge.training.settings import TrainSettings
from evoforge.training.trainer import step_progress


def training_plan(
    algorithm: str, rft: bool, store: RoundStore, refiner_mix: list[RefinerRow]
) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """(algorithm, its data, the SFT rows trained first) for this round, as the trainer reads
    them (the records' rows).

    A dpo round without pairs but with RFT rows trains those with SFT alone."""
    sft = [r.to_row() for r in store.sft.read()]
    mix = [r.to_row() for r in refiner_mix]
    if algorithm == "sft":
        return "sft", sft, mix
    if algorithm in ("grpo", "rloo"):
        return algorithm, store.task_rows.read(), mix
    pairs = [p.to_row() for p in store.pairs.read()]
    first = (sft if rft else []) + mix
    if not pairs and first:
        return "sft", first, []
    return "dpo", pairs, first


def refiner_examples(store: RoundStore, limit: int) -> list[RefinerRow]:
    """Successful refinement chains first (SPaR's main refiner signal), then judgements."""
    rows = sorted(store.refiner.read(), key=lambda r: r.kind != "refinement")
    return rows[:limit]


@contextmanager
def servers_asleep(rt: Runtime) -> Iterator[None]:
    """Colocated on shared GPUs: the servers hand their memory to the trainer while it runs."""
    colocated = rt.placement is not None and rt.placement.colocated
    slept = [p for p in rt.servers.pools() if colocated and p.sleep()]
    try:
        yield
    finally:
        for pool in slept:
            pool.wake()


def step_status(out_dirs: list[str]) -> str | None:
    """The phase and optimizer step a training into one of ``out_dirs`` has reached, e.g.
    "dpo step 3/15" (the trainer actor writes it after every step); None before it starts."""
    for out_dir in out_dirs:
        record = step_progress(out_dir)
        if record is not None:
            algo = str(record.get("phase", "")).partition("-")[2] or "train"
            return f"{algo} step {record.get('step')}/{record.get('max_steps')}"
    return None


def train_summary(rt: Runtime, state: RunState, store: RoundStore) -> StageResult:
    skipped = store.training_skipped()
    m = store.train_metrics.read() if store.train_metrics.exists() else {}
    # seconds inside the trainer actor's calls (load, train, save), for the round bench
    inside = (m.get("seconds") or 0.0) + (m.get("refiner", {}).get("seconds") or 0.0)
    return StageResult(
        counts={
            "skipped": bool(skipped),
            "steps": m.get("steps"),
            "loss": m.get("loss_last"),
            "trainer_seconds": round(inside, 2),
        },
        metrics={
            "train": {
                "skipped": skipped,
                **{k: m.get(k) for k in ("loss_first", "loss_last", "steps", "step_seconds")},
            }
        },
    )


@stage(reads=("task_rows",), writes=("train_metrics", "train_done"), summary=train_summary)
def train(rt: Runtime, state: RunState, store: RoundStore) -> dict[str, Any]:
    c, r = rt.config, state["round"]
    shared_refiner = rt.servers.refiner is rt.servers.actor
    refiner_rows = refiner_examples(store, c.train.max_refiner_examples)
    mix = refiner_rows if (c.train.refiner_data == "mix" and shared_refiner) else []
    algo, data, sft_mix = training_plan(c.train.algorithm, c.train.rft, store, mix)
    if not data:
        return {
            "train_done": {
                "skipped": f"no training data for {algo} this round (0 pairs, 0 RFT rows)"
            }
        }
    ref = rt.kept_weights(state) if c.train.reference == "round" else rt.base_model_path()
    settings = TrainSettings.from_config(c)
    rt.progress.line(
        f"[round {r}] training {algo} on {len(data)} examples"
        + (f" after SFT on {len(sft_mix)} examples" if sft_mix else "")
    )
    store.train_dir.mkdir(parents=True, exist_ok=True)
    label = f"round{r}/train"
    outs = [str(store.trained_model), str(store.trained_refiner)]
    with servers_asleep(rt), rt.progress.watch(label, lambda: step_status(outs)):
        start = rt.kept_weights(state)
        metrics = rt.trainer.train(
            label, algo, start, str(store.trained_model), data, settings, ref, sft_mix
        )
        if not shared_refiner and refiner_rows and c.train.refiner_data != "off":
            metrics["refiner"] = rt.trainer.train(
                label,
                "sft",
                rt.servers.refiner.info().weights_path,
                str(store.trained_refiner),
                [r.to_row() for r in refiner_rows],
                settings,
            )
    for where in metrics.get("resumed_from", []):
        rt.progress.line(f"[round {r}] training resumed at {where['phase']} step {where['step']}")
    rt.trainer.stop()  # its optimizer state and activations (GBs) go back to the machine
    if r + 1 < c.rounds:
        rt.trainer.prepare()  # a fresh one imports while this round evaluates and the next generates
    return {
        "train_metrics": metrics,
        "train_done": {"skipped": None, "seconds": metrics["seconds"]},
    }
