"""Nodes of the second half of a round: train, sync, evaluate, promote."""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

from evoforge.agents.serving import cluster
from evoforge.agents.serving.types import GenRequest, Sampling
from evoforge.loops.evaluate import decide
from evoforge.loops.nodes_refine import evaluate_all
from evoforge.loops.rundir import read_json, read_jsonl, write_json, write_jsonl
from evoforge.loops.runtime import Runtime, node
from evoforge.loops.state import RunState
from evoforge.loops.train import Trainer, TrainSettings


def start_trainer(rt: Runtime):
    """The trainer actor, named like the servers; it holds a GPU when the cluster has one."""
    import ray

    if rt.trainer is None:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        name = f"evoforge/{rt.run_id}/trainer/0"
        cluster.claim_name(name)
        rt.trainer = (
            ray.remote(Trainer)
            .options(name=name, num_cpus=1, num_gpus=gpus)
            .remote(rt.config.serving.threads)
        )
    return rt.trainer


def stop_trainer(rt: Runtime) -> None:
    import ray

    if rt.trainer is not None:
        ray.kill(rt.trainer)
        rt.trainer = None


def train_settings(rt: Runtime) -> TrainSettings:
    t = rt.config.train
    return TrainSettings(
        algorithm=t.algorithm,
        learning_rate=t.learning_rate,
        epochs=t.epochs,
        batch_size=t.batch_size,
        beta=t.beta,
        sft_weight=t.sft_weight,
        lora=t.lora,
        lora_r=t.lora_r,
        max_length=t.max_length,
        seed=rt.config.seed,
        threads=rt.config.serving.threads,
        env=rt.config.env,
        max_completion_length=rt.config.generation.max_tokens,
    )


def _remote(ref):
    import ray

    from evoforge.agents.serving.pool import unwrap

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        raise unwrap(e) from None


PROBE_TASKS = 8


class TrainNodes:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def _probe(self) -> list[str]:
        """Greedy answers to a fixed set of heldout prompts: the fingerprint of the served weights."""
        c = self.rt.config
        tasks = self.rt.env.tasks("heldout", PROBE_TASKS, c.seed)
        reqs = [
            GenRequest(t.messages, Sampling(temperature=0.0, max_tokens=c.eval.max_tokens), id=t.id)
            for t in tasks
        ]
        return [r.texts[0] for r in self.rt.servers.actor.generate(reqs)]

    def _train_dir(self, state: RunState):
        d = self.rt.rdir(state) / "train"
        d.mkdir(parents=True, exist_ok=True)
        return d

    @node()
    def train(self, state: RunState) -> dict[str, Any]:
        rt, c = self.rt, self.rt.config
        d = self.rt.rdir(state)
        td = self._train_dir(state)
        done = td / "done.json"
        if not done.exists():
            pairs = read_jsonl(d / "pairs.jsonl")
            shared_refiner = rt.servers.refiner is rt.servers.actor
            refiner_rows = read_jsonl(d / "refiner.jsonl")
            # Successful refinement chains first (SPaR's main refiner signal), then judgements.
            refiner_rows.sort(key=lambda r: r["kind"] != "refinement")
            refiner_rows = refiner_rows[: c.train.max_refiner_examples]
            sft_mix = refiner_rows if (c.train.refiner_data == "mix" and shared_refiner) else []
            algo = c.train.algorithm
            if algo == "dpo":
                data = pairs
            elif algo == "sft":
                data = [{"messages": p["prompt"], "completion": p["chosen"]} for p in pairs]
            else:
                data = read_jsonl(d / "tasks.jsonl")
            if not data:
                write_json(done, {"skipped": f"no training data for {algo} this round (0 pairs)"})
            else:
                ref = (
                    rt.kept_weights(state) if c.train.reference == "round" else rt.base_model_path()
                )
                settings = train_settings(rt)
                rt.progress.line(
                    f"[round {state['round']}] training {algo} on {len(data)} examples"
                    + (f" + {len(sft_mix)} refiner SFT examples" if sft_mix else "")
                )
                trainer = start_trainer(rt)
                metrics = _remote(
                    trainer.train.options(name=f"round{state['round']}/train").remote(
                        algo,
                        rt.kept_weights(state),
                        str(td / "model"),
                        data,
                        settings,
                        ref,
                        sft_mix,
                    )
                )
                if not shared_refiner and refiner_rows and c.train.refiner_data != "off":
                    metrics["refiner"] = _remote(
                        trainer.train.options(name=f"round{state['round']}/train").remote(
                            "sft",
                            rt.servers.refiner.info().weights_path,
                            str(td / "refiner_model"),
                            refiner_rows,
                            settings,
                        )
                    )
                stop_trainer(rt)  # its optimizer state and activations (GBs) go back to the machine
                write_json(td / "metrics.json", metrics)
                write_json(done, {"skipped": None, "seconds": metrics["seconds"]})
        info = read_json(done)
        m = read_json(td / "metrics.json") if (td / "metrics.json").exists() else {}
        rt.update_metrics(
            state,
            train={
                "skipped": info["skipped"],
                "loss_first": m.get("loss_first"),
                "loss_last": m.get("loss_last"),
                "steps": m.get("steps"),
                "step_seconds": m.get("step_seconds"),
            },
        )
        # seconds inside the trainer actor's calls (load, train, save), for the round bench
        inside = (m.get("seconds") or 0.0) + (m.get("refiner", {}).get("seconds") or 0.0)
        return {
            "_counts": {
                "skipped": bool(info["skipped"]),
                "steps": m.get("steps"),
                "loss": m.get("loss_last"),
                "trainer_seconds": round(inside, 2),
            }
        }

    @node()
    def sync(self, state: RunState) -> dict[str, Any]:
        rt = self.rt
        td = self._train_dir(state)
        if read_json(td / "done.json")["skipped"]:
            return {"_counts": {"skipped": True}}
        probe_kept = rt.rdir(state) / "probe_kept.json"
        if not probe_kept.exists():
            write_json(probe_kept, self._probe())
        dest = rt.rd.model(state["round"])
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(td / "model", dest)  # same filesystem: atomic, no copy of the weights
        start = time.time()
        rt.servers.actor.load_weights(str(dest))
        if (td / "refiner_model").exists() and rt.servers.refiner is not rt.servers.actor:
            rt.servers.refiner.load_weights(str(td / "refiner_model"))
        secs = round(time.time() - start, 3)
        candidate = self._probe()
        kept = read_json(probe_kept)
        rt.update_metrics(
            state,
            sync_load_seconds=secs,
            probe_changed=sum(a != b for a, b in zip(kept, candidate, strict=True)),
        )
        # relative to the run directory: a moved or copied run directory still resumes
        return {"serving": str(dest.relative_to(rt.rd.path)), "_counts": {"load_seconds": secs}}

    @node()
    def evaluate(self, state: RunState) -> dict[str, Any]:
        rt = self.rt
        d = rt.rdir(state)
        out = d / "eval.json"
        if not out.exists():
            if read_json(self._train_dir(state) / "done.json")["skipped"]:
                last = self._last_eval(state)
                write_json(
                    out,
                    {
                        "round": state["round"],
                        "kept": None,
                        "unchanged": True,
                        "heldout": last["heldout"],
                    },
                )
            else:
                ev = evaluate_all(rt, f"round {state['round']} eval")
                write_jsonl(
                    d / "eval_responses.jsonl",
                    [r | {"env": e} for e, recs in ev["records"].items() for r in recs],
                )
                write_json(out, {"round": state["round"], "kept": None, "heldout": ev["heldout"]})
        h = read_json(out)["heldout"][rt.env.name]
        return {"_counts": {"strict": h["strict"], "loose": h["loose"], "n": h["n"]}}

    def _last_eval(self, state: RunState) -> dict[str, Any]:
        return read_json(self.rt.last_eval_path(state))

    @node()
    def promote(self, state: RunState) -> dict[str, Any]:
        rt, c = self.rt, self.rt.config
        r = state["round"]
        path = rt.rdir(state) / "eval.json"
        ev = read_json(path)
        last = self._last_eval(state)
        if ev.get("unchanged"):
            keep, gain, reason = (
                False,
                False,
                read_json(self._train_dir(state) / "done.json")["skipped"],
            )
        else:
            dec = decide(ev, last, rt.env.name, rt.guard.name if rt.guard else "", c.eval.tolerance)
            keep, gain, reason = dec.keep, dec.gain, dec.reason
        update: dict[str, Any] = {"round": r + 1}
        if keep:
            update["last_kept"] = r
        elif not ev.get("unchanged"):
            # Roll back: the servers reload the last kept weights in place; the rejected weights go.
            kept = rt.kept_weights(state)
            rt.servers.actor.load_weights(kept)
            shutil.rmtree(rt.rd.model(r), ignore_errors=True)
            last_kept = state.get("last_kept", -1)
            update["serving"] = (
                "" if last_kept < 0 else str(rt.rd.model(last_kept).relative_to(rt.rd.path))
            )
            # The rollback must restore the kept model exactly: same greedy answers as before sync.
            before = read_json(rt.rdir(state) / "probe_kept.json")
            after = self._probe()
            ev["rollback_check"] = {
                "n": len(before),
                "identical": sum(a == b for a, b in zip(before, after, strict=True)),
            }
        no_gain = 0 if gain else state.get("no_gain", 0) + 1
        update["no_gain"] = no_gain
        if c.eval.patience and no_gain >= c.eval.patience and r + 1 < state.get("rounds", 0):
            update["stop"], update["stop_reason"] = (
                True,
                f"{no_gain} rounds without a gain (eval.patience)",
            )
        if ev.get("kept") is None or "rollback_check" in ev:
            write_json(path, ev | {"kept": keep, "reason": reason})
        rt.update_metrics(state, kept=keep, promote_reason=reason)
        h = ev["heldout"][rt.env.name]
        return update | {"_counts": {"kept": keep, "strict": h["strict"], "reason": reason}}
