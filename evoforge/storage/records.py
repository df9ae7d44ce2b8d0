"""Typed records of what flows between a round's stages, one class per kind of row.

A record is one row of a round's JSON-lines file (store.py reads and writes them; nothing else
turns them into JSON). ``to_row()`` gives the row exactly as the run writes it: its keys in the
order its fields are declared, an optional field (``optional()``) left out when it is None, a
nested record as its own row; ``from_row()`` reads it back, and keeps any key it does not know in
``extra``, which ``to_row()`` writes after the known keys, so a row another writer extended
survives a read and a write.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Self

from evoforge.envs.base import Verdict
from evoforge.errors import EvoforgeError

Messages = list[dict[str, Any]]
"""Chat messages as rows hold them: {role, content, ...} each."""


def optional(**kw: Any) -> Any:
    """A field left out of the row when it is None (present only in some rows)."""
    return field(default=None, metadata={"omit_none": True}, **kw)


def records_of(cls: type[Record]) -> Any:
    """A field holding a list of ``cls`` records (a list of their rows in the row)."""
    return field(metadata={"items": cls})


@dataclass(frozen=True, kw_only=True)
class Record:
    """A row of a round file (see the module docstring)."""

    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    """Keys of the row this class does not know, kept as they were (written last)."""

    def to_row(self) -> dict[str, Any]:
        """The row as the run writes it."""
        row: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (value is None and f.metadata.get("omit_none")):
                continue
            row[f.name] = [x.to_row() for x in value] if "items" in f.metadata else value
        return row | self.extra

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Self:
        """The record of a row (as ``to_row`` writes it, or an earlier evoforge did)."""
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        kw: dict[str, Any] = {}
        for name, f in known.items():
            if name in row:
                items = f.metadata.get("items")
                kw[name] = [items.from_row(x) for x in row[name]] if items else row[name]
            elif f.default is MISSING and f.default_factory is MISSING:
                raise EvoforgeError(f"a {cls.__name__} row has no {name!r}: {row}")
        return cls(**kw, extra={k: v for k, v in row.items() if k not in known})


@dataclass(frozen=True, kw_only=True)
class Pair(Record):
    """A preference pair the round trains on (pairs.jsonl), as TRL's DPO reads it."""

    id: str
    """``task id|source|key``: unique in the round."""
    task_id: str
    """The task both sides answer."""
    source: str
    """Where it came from: sampled, guided, refined or partial (pairs.SOURCES)."""
    prompt: Messages
    """The task's messages, or (multi-turn) every message the two trajectories share."""
    chosen: str | Messages
    """The preferred answer, or (multi-turn) the preferred continuation's messages."""
    rejected: str | Messages
    """The other answer or continuation."""
    tools: list[dict[str, Any]] | None = optional()
    """Multi-turn: the task's tools as function specs, so the trainer renders them."""
    turn: int | None = optional()
    """Multi-turn: the first assistant turn where the two trajectories differ."""
    chosen_score: float
    """The verifier's score of the chosen side."""
    rejected_score: float
    """The verifier's score of the rejected side."""
    edit_distance: int
    """Word edit distance between the two sides' texts."""
    guidance: str | None = optional()
    """Guided pairs: the kind of guidance the chosen answer was sampled under."""
    depth: int | None = optional()
    """Refined pairs: the depth of the accepted refinement in its tree."""


@dataclass(frozen=True, kw_only=True)
class SftRow(Record):
    """A rejection-sampling fine-tuning row (sft.jsonl): a passing answer after its prompt."""

    task_id: str
    """The task it answers."""
    source: str
    """sampled, guided or refined."""
    turn: int | None = optional()
    """Multi-turn: the assistant turn this row trains (its prefix is ``messages``)."""
    messages: Messages
    """The prompt: the task's messages, or (multi-turn) the trajectory before the turn."""
    completion: str
    """The answer (or the turn) trained on."""
    tools: list[dict[str, Any]] | None = optional()
    """Multi-turn: the task's tools as function specs."""


@dataclass(frozen=True, kw_only=True)
class RefinerRow(Record):
    """A training row of the refiner (refiner.jsonl): a refinement step or an agreeing judgement."""

    kind: str
    """``refinement`` (a step of a successful chain) or ``judgement`` (a critique that agreed
    with the verifier)."""
    task_id: str
    """The task refined or judged."""
    node_id: str
    """The search node (or ``task_id@sample`` for a calibration judgement)."""
    messages: Messages
    """The refiner's or the critic's prompt."""
    completion: str
    """What it wrote."""


@dataclass(frozen=True, kw_only=True)
class SampleVerdict(Record):
    """The verifier's verdict on one sample, as the round keeps it."""

    score: float
    """Partial credit in [0, 1]."""
    passed: bool
    """Whether the answer passes (strict)."""
    loose: bool
    """Whether it passes the loose check (the verifier's ``details["loose"]``, else ``passed``)."""
    feedback: str
    """The verifier's feedback in words (what the refiner and guided exploration read)."""
    failed_turn: int | None = optional()
    """Multi-turn: the assistant turn a refinement would rewrite."""

    @classmethod
    def of(cls, v: Verdict, **kw: Any) -> SampleVerdict:
        """The record of an environment's verdict (``kw``: e.g. ``failed_turn``)."""
        loose = bool(v.details.get("loose", v.passed))
        return cls(score=v.score, passed=v.passed, loose=loose, feedback=v.feedback, **kw)


@dataclass(frozen=True, kw_only=True)
class TaskVerdicts(Record):
    """The verdicts of a task's samples (verdicts.jsonl), in the order of the samples."""

    task_id: str
    """The task."""
    verdicts: list[SampleVerdict] = records_of(SampleVerdict)
    """One verdict per sample."""


@dataclass(frozen=True, kw_only=True)
class EvalRecord(Record):
    """A greedy held-out answer and its verdict (eval_responses.jsonl)."""

    task_id: str
    """The held-out task."""
    group: str | None
    """The task's group (its metadata's ``group``), None when it has none."""
    response: str
    """The answer, or (multi-turn) the trajectory's transcript."""
    passed: bool
    """Strict pass."""
    loose: bool
    """Loose pass."""
    score: float
    """The verifier's score."""
    feedback: str
    """The verifier's feedback."""
    env: str | None = optional()
    """The environment evaluated (the main one or the forgetting guard); set when stored."""


@dataclass(frozen=True, kw_only=True)
class Evaluation(Record):
    """Held-out results of one set of weights and what promotion decided (eval.json)."""

    round: int
    """The round whose weights were evaluated (-1: the baseline, the starting model)."""
    kept: bool | None = None
    """Whether the round was kept; None until promotion decides (the baseline: True)."""
    unchanged: bool | None = optional()
    """True when the round trained nothing: the numbers are the last kept round's."""
    heldout: dict[str, dict[str, Any]]
    """Per environment (the main one, the guard): n, strict and loose pass rates with Wilson
    intervals, per type and per task group (evaluate.summarize)."""
    compare: dict[str, Any] | None = optional()
    """Rounds only: per environment, the paired comparison with ``baseline`` and ``last_kept``
    (delta, its 95% interval, McNemar's p, per task group)."""
    rollback_check: dict[str, int] | None = optional()
    """After a rollback: how many probe answers of the restored weights are identical."""
    reason: str | None = optional()
    """Why promotion kept or rolled back the round."""


@dataclass(frozen=True, kw_only=True)
class TaskSamples(Record):
    """The actor's samples of one task (samples.jsonl): answers, or a multi-turn environment's
    trajectories."""

    task_id: str
    """The task."""
    responses: list[str] | None = optional()
    """Single-turn: the sampled answers."""
    trajectories: list[dict[str, Any]] | None = optional()
    """Multi-turn: each trajectory as ``Trajectory.to_json(with_task=False)``."""
    tokens: list[int] | None = optional()
    """Completion tokens of each sample."""


@dataclass(frozen=True, kw_only=True)
class GuidedRow(Record):
    """The guided samples of one task under one kind of guidance (guided.jsonl), stored against
    the plain task (the guidance is not in them; a forced opening is part of each answer)."""

    task_id: str
    """The task."""
    kind: str
    """The guidance kind (agents/guidance.py KINDS)."""
    responses: list[str] | None = optional()
    """Single-turn: the guided answers."""
    trajectories: list[dict[str, Any]] | None = optional()
    """Multi-turn: the guided trajectories (``Trajectory.to_json(with_task=False)``)."""
    tokens: list[int] | None = optional()
    """Multi-turn: completion tokens of each trajectory."""
    verdicts: list[SampleVerdict] = records_of(SampleVerdict)
    """The verdict of each sample against the plain task, in order."""
