"""The files of one round, each named once and read and written through one typed accessor.

Stages never spell a file name: they ask the store for ``tasks``, ``responses``, the search
state, ``verdicts``, ``pairs``... Every write is atomic and recorded in the directory's manifest
(manifest.py), so a stage re-run after a crash finds each output complete or absent, ``exists()``
is how a stage knows its work is done, and a file deleted or changed after the run wrote it is a
one-line error wherever it is found or read. What flows between stages (samples, verdicts, pairs,
training rows, evaluations) is read and written as typed records (records.py): the store turns
them into rows and back, nothing else does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from evoforge.agents.prompts import transcript
from evoforge.agents.search import SearchState
from evoforge.envs.base import Task
from evoforge.envs.multiturn import Trajectory
from evoforge.storage.manifest import Manifest, round_dirs
from evoforge.storage.records import (
    EvalRecord,
    Evaluation,
    GuidedRow,
    Pair,
    Record,
    RefinerRow,
    SampleVerdict,
    SftRow,
    TaskSamples,
    TaskVerdicts,
)
from evoforge.storage.rundir import RunDir


@dataclass(frozen=True)
class _RunFile:
    path: Path
    manifest: Manifest

    def exists(self) -> bool:
        """Whether the run wrote this file (a damaged file is an error, not an absence)."""
        return self.manifest.exists(self.path)

    def _text(self) -> str:
        text = self.manifest.read_text(self.path)
        if text is None:
            raise self.manifest.missing(self.path)
        return text


@dataclass(frozen=True)
class JsonlFile(_RunFile):
    """One JSON-lines file of rows."""

    def read(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._text().splitlines() if line.strip()]

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        self.manifest.write_text(
            self.path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        )


R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class RecordFile(JsonlFile, Generic[R]):
    """One JSON-lines file of typed records (records.py), one a line."""

    record: type[R]
    """The class of its records."""

    def read(self) -> list[R]:  # type: ignore[override]
        return [self.record.from_row(r) for r in super().read()]

    def write(self, records: Iterable[R]) -> None:  # type: ignore[override]
        super().write(r.to_row() for r in records)


@dataclass(frozen=True)
class JsonFile(_RunFile):
    """One JSON document."""

    def read(self) -> Any:
        return json.loads(self._text())

    def write(self, obj: Any) -> None:
        self.manifest.write_text(self.path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@dataclass(frozen=True)
class RecordJsonFile(JsonFile, Generic[R]):
    """One JSON document holding one typed record (records.py)."""

    record: type[R]
    """The class of its record."""

    def read(self) -> R:
        return self.record.from_row(super().read())

    def write(self, record: R) -> None:  # type: ignore[override]
        super().write(record.to_row())


@dataclass(frozen=True)
class GuidedSamples:
    """The guided samples of one task under one kind of guidance, each with its verdict."""

    task_id: str
    kind: str
    """The guidance kind (agents/guidance.py KINDS)."""
    texts: list[str]
    """Each answer as stored (a forced opening included), or a trajectory's transcript."""
    verdicts: list[SampleVerdict]
    """The verdicts, in the order of the samples."""
    trajectories: list[Trajectory] | None = None
    """The trajectories themselves (multi-turn environments), else None."""

    @property
    def samples(self) -> list[str] | list[Trajectory]:
        """The samples themselves: the trajectories where there are, else the answers."""
        return self.trajectories if self.trajectories is not None else self.texts


def search_record(phase: str, state: SearchState) -> dict[str, Any]:
    """The search file's content: its phase ("judged" or "expanded") and its state."""
    return {"phase": phase, "state": state.to_json()}


class RoundStore:
    """The files of one round directory (or of the baseline's)."""

    def __init__(self, path: Path) -> None:
        self.dir = path
        self.dir.mkdir(parents=True, exist_ok=True)
        m = self.manifest = Manifest(path)
        j, jl = (lambda name: JsonFile(path / name, m)), (lambda name: JsonlFile(path / name, m))

        def rec(name: str, record: type[R]) -> RecordFile[R]:
            return RecordFile(path / name, m, record)

        self.task_rows = jl("tasks.jsonl")
        """The round's training tasks (Task.to_json rows); read them with ``tasks()``."""
        self.samples = rec("samples.jsonl", TaskSamples)
        """The actor's samples, a task a row (records.TaskSamples): answers, or a multi-turn
        environment's trajectories. Read them with ``responses()``, ``trajectories()`` or
        ``sample_texts()``."""
        self.verdicts = rec("verdicts.jsonl", TaskVerdicts)
        """The verifier's verdict on every sample, a task a row (records.TaskVerdicts), in the
        order of the samples (multi-turn: each names ``failed_turn``, the turn a refinement
        rewrites)."""
        self.guided = rec("guided.jsonl", GuidedRow)
        """Guided samples of the tasks no sample passed, one row per (task, guidance kind)
        (records.GuidedRow). Read them with ``guided_samples()``."""
        self.critiques = jl("critiques.jsonl")
        """The critic's votes on the answers it judged: a calibration set, and the search roots."""
        self.judge = j("judge.json")
        """The judge measured against the verifier: accuracy, kappa, its weight, benched or not."""
        self.search_file = j("search.json")
        """The tree search's state and phase; read it with ``search()``."""
        self.tree = jl("tree.jsonl")
        """Every searched tree, node by node (for the report)."""
        self.pairs = rec("pairs.jsonl", Pair)
        """Preference pairs the round trains on, each with its source (records.Pair)."""
        self.sft = rec("sft.jsonl", SftRow)
        """Rejection-sampling fine-tuning rows: passing samples, passing guided samples and
        accepted refinements (records.SftRow)."""
        self.refiner = rec("refiner.jsonl", RefinerRow)
        """SFT examples for the refiner: refinement chains, agreeing judgements
        (records.RefinerRow)."""
        self.metrics = j("metrics.json")
        """Counts and seconds of the round, merged by ``update_metrics``."""
        self.eval = RecordJsonFile(path / "eval.json", m, Evaluation)
        """Held-out results of the weights the round produced, and the promotion decision
        (records.Evaluation)."""
        self.eval_responses = rec("eval_responses.jsonl", EvalRecord)
        """Every greedy held-out answer with its verdict (records.EvalRecord)."""
        self.probe_kept = j("probe_kept.json")
        """Greedy answers of the kept weights to fixed prompts (rollback must restore them)."""
        self.train_dir = path / "train"
        self.train_done = j("train/done.json")
        """Written when training finished or was skipped (``skipped`` says why)."""
        self.train_metrics = j("train/metrics.json")
        """The trainer's losses, steps and seconds."""
        self.trained_model = self.train_dir / "model"
        self.trained_refiner = self.train_dir / "refiner_model"

    def file(self, name: str) -> JsonFile | JsonlFile:
        """The round file a stage declares by ``name`` (an attribute of this store)."""
        f = getattr(self, name, None)
        if not isinstance(f, _RunFile):
            raise AttributeError(f"the round store has no file named {name!r}")
        return f

    # -- typed accessors ----------------------------------------------------------------------
    def tasks(self) -> dict[str, Task]:
        return {r["id"]: Task.from_json(r) for r in self.task_rows.read()}

    def responses(self) -> dict[str, list[str]]:
        """The sampled answers of a single-turn environment, by task."""
        return {r.task_id: r.responses or [] for r in self.samples.read()}

    def trajectories(self, tasks: dict[str, Task] | None = None) -> dict[str, list[Trajectory]]:
        """The sampled trajectories of a multi-turn environment, by task."""
        tasks = tasks if tasks is not None else self.tasks()
        return {
            r.task_id: [Trajectory.from_json(t, tasks[r.task_id]) for t in r.trajectories or ()]
            for r in self.samples.read()
        }

    @staticmethod
    def trajectory_rows(trajectories: Iterable[Trajectory]) -> list[TaskSamples]:
        """The samples of a multi-turn environment's trajectories (grouped by task, in order)."""
        by_task: dict[str, list[Trajectory]] = {}
        for t in trajectories:
            by_task.setdefault(t.task.id, []).append(t)
        return [
            TaskSamples(
                task_id=tid,
                trajectories=[t.to_json(with_task=False) for t in ts],
                tokens=[t.tokens for t in ts],
            )
            for tid, ts in by_task.items()
        ]

    def sample_texts(self) -> dict[str, list[str]]:
        """Each sample as text, by task: the answer, or a trajectory's transcript (what the
        critic reads and edit distances compare)."""
        rows = self.samples.read()
        if not rows or rows[0].responses is not None:
            return {r.task_id: r.responses or [] for r in rows}
        return {
            tid: [transcript(t.messages, len(t.task.messages)) for t in ts]
            for tid, ts in self.trajectories().items()
        }

    def guided_samples(self, tasks: dict[str, Task] | None = None) -> list[GuidedSamples]:
        """The round's guided samples, one record per (task, guidance kind), in stored order."""
        rows = self.guided.read()
        if rows and rows[0].trajectories is not None:
            tasks = tasks if tasks is not None else self.tasks()
        out = []
        for r in rows:
            trajs = None
            if r.trajectories is not None:
                task = tasks[r.task_id]  # type: ignore[index]
                trajs = [Trajectory.from_json(t, task) for t in r.trajectories]
                texts = [transcript(t.messages, len(task.messages)) for t in trajs]
            else:
                texts = r.responses or []
            out.append(GuidedSamples(r.task_id, r.kind, texts, r.verdicts, trajs))
        return out

    def verdict_lists(self) -> dict[str, list[SampleVerdict]]:
        """The verdicts of every sample, by task, in the order of the samples."""
        return {r.task_id: r.verdicts for r in self.verdicts.read()}

    def search(self) -> tuple[str, SearchState]:
        """The search's phase ("judged" or "expanded") and its state."""
        d = self.search_file.read()
        return d["phase"], SearchState.from_json(d["state"])

    def save_search(self, phase: str, state: SearchState) -> None:
        self.search_file.write(search_record(phase, state))

    def update_metrics(self, round_: int, **values: Any) -> None:
        """Merge ``values`` into metrics.json (dict values are merged key by key)."""
        current = self.metrics.read() if self.metrics.exists() else {"round": round_}
        for k, v in values.items():
            if isinstance(v, dict) and isinstance(current.get(k), dict):
                current[k].update(v)
            else:
                current[k] = v
        self.metrics.write(current)

    def training_skipped(self) -> str | None:
        """Why training was skipped this round, or None when it trained."""
        return self.train_done.read()["skipped"]


def run_store(rd: RunDir, round_: int) -> RoundStore:
    """The files of round ``round_`` of the run directory ``rd`` (-1: the baseline's)."""
    return RoundStore(rd.baseline if round_ < 0 else rd.round(round_))


def run_stores(rd: RunDir, baseline: bool = False) -> list[RoundStore]:
    """The files of each round the run made a directory for, in order (``baseline``: the
    baseline's first, when the run made it)."""
    return [RoundStore(d) for d in round_dirs(rd.path) if baseline or d != rd.baseline]


def evaluations(rd: RunDir) -> list[tuple[RoundStore, Evaluation]]:
    """The baseline's held-out results then each round's (those the run wrote), each with the
    files of its round."""
    return [(s, s.eval.read()) for s in run_stores(rd, baseline=True) if s.eval.exists()]
