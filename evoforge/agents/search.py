"""Tree-search refinement (SPaR), level-synchronous across every task of a round.

Where we depart from the SPaR code: it searches one tree at a time with a pool of workers each
calling a server. Here one ``expand`` sends every frontier node of every task to the refiner as
one batch, and one ``judge`` sends every new node to the critic as one batch (k votes per node
as n=k samples of one request). The servers always see large batches, and identical responses
are never judged twice (a per-task cache).

BFS keeps the best ``keep`` children of each level; DFS follows the best child first and
backtracks (a stack per task), one node per task per level. A node whose value is above the
threshold is accepted and ends its task's search.

On a multi-turn environment a node holds a trajectory, and expanding it rewrites one turn and
replays the rest (turn_search.py, a subclass that overrides how children are made and verified).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from evoforge.agents.roles import Roles, representative
from evoforge.config import Config
from evoforge.envs.base import Environment, Task
from evoforge.envs.verify import safe_verify


@dataclass
class Node:
    id: str
    task_id: str
    parent: str | None
    depth: int
    response: str
    votes: list[str | None] = field(default_factory=list)
    critiques: list[str] = field(default_factory=list)
    judge_value: float | None = None
    verifier_score: float | None = None
    verifier_passed: bool | None = None
    verifier_loose: bool | None = None
    """The environment's loose check (IFEval's), when it has one; else equal to passed."""
    feedback: str = ""
    value: float | None = None
    status: str = "new"
    """new (unjudged), judged, expanded, accepted, or stopped (the refiner kept the turn it was
    shown: that branch ends unjudged, ToolACE-R's adaptive stop; multi-turn only)."""
    cached: bool = False
    """The judgement was reused from an identical response of the same task."""
    trajectory: dict[str, Any] | None = None
    """A multi-turn task's trajectory (``Trajectory.to_json(with_task=False)``); ``response`` is
    then its transcript (what the critic reads and the judgement cache is keyed by)."""
    turn: int | None = None
    """The assistant turn this node rewrote (a multi-turn refinement)."""
    failed_turn: int | None = None
    """The assistant turn a refinement of this node rewrites: the first one that went wrong
    (``envs.multiturn.first_failed_turn``); multi-turn only."""

    @property
    def critique(self) -> str:
        """The critique the refiner reads (the first that says no)."""
        return representative(self.critiques, self.votes)


@dataclass
class Tree:
    task_id: str
    root: str
    nodes: list[str] = field(default_factory=list)
    frontier: list[str] = field(default_factory=list)
    stack: list[str] = field(default_factory=list)
    accepted: str | None = None
    done: bool = False
    reason: str = ""
    best_value: float = -1.0
    budget_used: int = 0
    stopped: int = 0
    """Refinements that kept their turn (multi-turn adaptive stop): branches that ended there."""


@dataclass
class SearchState:
    """Everything the search needs to continue, JSON-serializable (the graph checkpoints it)."""

    level: int = 0
    trees: dict[str, Tree] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    judge_calls: int = 0
    expand_calls: int = 0
    cache_hits: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "judge_calls": self.judge_calls,
            "expand_calls": self.expand_calls,
            "cache_hits": self.cache_hits,
            "trees": [asdict(t) for t in self.trees.values()],
            "nodes": [asdict(n) for n in self.nodes.values()],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SearchState:
        s = cls(
            level=d["level"],
            judge_calls=d["judge_calls"],
            expand_calls=d["expand_calls"],
            cache_hits=d["cache_hits"],
        )
        s.trees = {t["task_id"]: Tree(**t) for t in d["trees"]}
        s.nodes = {n["id"]: Node(**n) for n in d["nodes"]}
        return s

    def active(self) -> list[Tree]:
        return [t for t in self.trees.values() if not t.done]

    def pending(self) -> list[Node]:
        """Nodes created by the last expand and not judged yet."""
        return [n for n in self.nodes.values() if n.status == "new"]


@dataclass(frozen=True)
class SearchSettings:
    """How the search runs; see SearchConfig for what each field means (its defaults live there)."""

    strategy: str
    children: int
    keep: int
    max_depth: int
    threshold: float
    node_budget: int
    value: str
    adaptive_stop: bool
    use_env_feedback: bool

    @classmethod
    def from_config(cls, config: Config) -> SearchSettings:
        s = config.search
        return cls(
            strategy=s.strategy,
            children=s.children,
            keep=s.keep,
            max_depth=s.max_depth,
            threshold=s.threshold,
            node_budget=s.node_budget,
            value=s.value,
            adaptive_stop=s.adaptive_stop,
            use_env_feedback=config.refiner.use_env_feedback,
        )


def combine_value(
    mode: str, judge: float | None, verifier: float | None, judge_weight: float = 1.0
) -> float | None:
    """The node value: judge votes, the verifier's score, or their mean with the judge weighted
    by its measured reliability (``judge_weight``, 0 = benched); None: nothing to go on."""
    if mode == "judge":
        return judge
    if mode == "verifier" or judge is None or judge_weight <= 0:
        return verifier if verifier is not None else (judge if mode == "both" else None)
    if verifier is None:
        return judge
    return (judge_weight * judge + verifier) / (judge_weight + 1.0)


def _rank(v: float | None) -> float:
    return -1.0 if v is None else v


class TreeSearch:
    """Batched tree search over the failed answers of a round."""

    def __init__(
        self,
        roles: Roles,
        env: Environment,
        tasks: dict[str, Task],
        settings: SearchSettings,
        judge_weight: float = 1.0,
    ) -> None:
        """``judge_weight``: the judge's share of a node's value (its kappa against the verifier
        this round; 1.0 trusts it fully, as SPaR does; 0 benches it: no critic calls at all)."""
        self.roles, self.env, self.tasks, self.s = roles, env, tasks, settings
        self.judge_weight = judge_weight
        self.use_judge = settings.value == "judge" or (
            settings.value == "both" and judge_weight > 0
        )
        self._judged: dict[tuple[str, str], Node] = {}

    # -- scoring shared with the critique step ---------------------------------------------
    def score(self, nodes: list[Node], progress=None) -> int:
        """Judge (unless the judge is benched) and verify ``nodes``: one critic call for all
        uncached ones; a node already carrying a verdict is not verified again. Returns cache
        hits."""
        by_key: dict[tuple[str, str], Node] = {}
        fresh, hits = [], 0
        for n in nodes:
            key = (n.task_id, n.response)
            if key in self._judged:
                self._copy_judgement(self._judged[key], n)
                hits += 1
            elif key in by_key:  # duplicate within this batch: judge once
                hits += 1
            else:
                by_key[key] = n
                fresh.append(n)
        if self.use_judge:
            judgements = self.roles.judge(
                [(n.id, self.tasks[n.task_id], n.response) for n in fresh], progress
            )
            for n, j in zip(fresh, judgements, strict=True):
                n.votes, n.critiques, n.judge_value = j.votes, j.critiques, j.value
        elif progress is not None:
            progress(len(fresh))
        for n in fresh:
            if n.verifier_score is None:
                self._verify(n)
            n.value = combine_value(
                self.s.value, n.judge_value, n.verifier_score, self.judge_weight
            )
            self._judged[(n.task_id, n.response)] = n
        for n in nodes:
            if (
                n.status == "new"
                and n.value is None
                and n is not self._judged.get((n.task_id, n.response))
            ):
                self._copy_judgement(self._judged[(n.task_id, n.response)], n)
            n.status = "judged"
        return hits

    def _verify(self, n: Node) -> None:
        v = safe_verify(self.env, self.tasks[n.task_id], n.response)
        n.verifier_score, n.verifier_passed, n.feedback = float(v.score), v.passed, v.feedback
        n.verifier_loose = bool(v.details.get("loose", v.passed))

    @staticmethod
    def _copy_judgement(src: Node, dst: Node) -> None:
        dst.votes, dst.critiques, dst.judge_value = (
            list(src.votes),
            list(src.critiques),
            src.judge_value,
        )
        dst.verifier_score, dst.verifier_passed, dst.verifier_loose, dst.feedback = (
            src.verifier_score,
            src.verifier_passed,
            src.verifier_loose,
            src.feedback,
        )
        dst.failed_turn = src.failed_turn
        dst.value, dst.cached = src.value, True

    # -- the search ---------------------------------------------------------------------------
    def start(self, roots: list[Node]) -> SearchState:
        """Trees for judged root nodes (the failed originals)."""
        state = SearchState()
        for r in roots:
            state.nodes[r.id] = r
            t = Tree(task_id=r.task_id, root=r.id, nodes=[r.id], best_value=_rank(r.value))
            if self.s.strategy == "bfs":
                t.frontier = [r.id]
            else:
                t.stack = [r.id]
            if self.s.max_depth < 1 or self.s.node_budget < 1:
                t.done, t.reason = True, "no search budget (max_depth or node_budget is 0)"
            state.trees[r.task_id] = t
        return state

    def bind(self, state: SearchState) -> None:
        """Rebuild the judgement cache from a (resumed) state."""
        self._judged.update(
            {
                (n.task_id, n.response): n
                for n in state.nodes.values()
                if n.status != "new" and not n.cached
            }
        )

    def planned_expansions(self, state: SearchState) -> int:
        """How many nodes the next ``expand`` will refine (for progress bars)."""
        total = 0
        for t in state.active():
            frontier = (t.stack[-1:] if t.stack else []) if self.s.strategy == "dfs" else t.frontier
            left = self.s.node_budget - t.budget_used
            for _ in frontier:
                if min(self.s.children, left) <= 0:
                    break
                left -= min(self.s.children, left)
                total += 1
        return total

    def expand(self, state: SearchState, progress=None) -> int:
        """One refiner call for the frontier of every active tree; returns nodes created."""
        counts, parents = [], []
        for t in state.active():
            if self.s.strategy == "dfs":
                t.frontier = [t.stack.pop()] if t.stack else []
            left = self.s.node_budget - t.budget_used
            for nid in t.frontier:
                k = min(self.s.children, left)
                if k <= 0:
                    break
                left -= k
                counts.append(k)
                parents.append(state.nodes[nid])
        children = self.children(parents, counts, progress) if parents else []
        state.expand_calls += 1 if parents else 0
        created = 0
        for parent, kids in zip(parents, children, strict=True):
            parent.status = "expanded" if parent.status != "accepted" else parent.status
            tree = state.trees[parent.task_id]
            for child in kids:
                state.nodes[child.id] = child
                tree.nodes.append(child.id)
                tree.budget_used += 1
                tree.stopped += child.status == "stopped"
                created += 1
        return created

    def feedback(self, n: Node) -> str:
        """The environment's feedback the refiner reads (none when switched off)."""
        return n.feedback if self.s.use_env_feedback else ""

    def children(self, parents: list[Node], counts: list[int], progress=None) -> list[list[Node]]:
        """``counts[i]`` refinements of each parent, from one refiner call."""
        items = [
            (p.id, self.tasks[p.task_id], p.response, p.critique, self.feedback(p)) for p in parents
        ]
        outputs = self.roles.refine(items, counts, progress)
        return [
            [
                Node(
                    id=f"{p.id}.{j}",
                    task_id=p.task_id,
                    parent=p.id,
                    depth=p.depth + 1,
                    response=text,
                )
                for j, text in enumerate(texts)
            ]
            for p, texts in zip(parents, outputs, strict=True)
        ]

    def judge(self, state: SearchState, progress=None) -> int:
        """One critic call for every new node, then accept, prune and pick the next frontier."""
        new = state.pending()
        if new:
            state.judge_calls += 1
        state.cache_hits += self.score(new, progress)
        by_tree: dict[str, list[Node]] = {}
        for n in new:
            by_tree.setdefault(n.task_id, []).append(n)
        for t in state.active():
            self._advance(t, sorted(by_tree.get(t.task_id, []), key=lambda n: -_rank(n.value)))
        state.level += 1
        return len(new)

    def acceptable(self, n: Node) -> bool:
        """A node ends its task's search when its value is above the threshold and the verifier,
        where there is one, does not fail it (a failing refinement would make no pair)."""
        return n.value is not None and n.value > self.s.threshold and n.verifier_passed is not False

    def _advance(self, t: Tree, children: list[Node]) -> None:
        best = children[0] if children else None
        winner = next((c for c in children if self.acceptable(c)), None)
        if winner is not None:
            winner.status = "accepted"
            t.accepted, t.done, t.reason, t.frontier = winner.id, True, "accepted", []
            t.best_value = max(t.best_value, _rank(winner.value))
            return
        plateau = best is None or _rank(best.value) <= t.best_value
        if best is not None:
            t.best_value = max(t.best_value, _rank(best.value))
        open_children = [c for c in children if c.depth < self.s.max_depth]
        if self.s.strategy == "bfs":
            t.frontier = [c.id for c in open_children[: self.s.keep]]
        else:
            t.stack.extend(c.id for c in reversed(open_children[: self.s.keep]))  # best on top
            t.frontier = []
        if t.budget_used >= self.s.node_budget:
            t.done, t.reason = True, "node budget spent"
        elif self.s.adaptive_stop and plateau:
            t.done, t.reason = True, "adaptive stop: value did not rise"
        elif self.s.strategy == "bfs" and not t.frontier:
            kept = not children and t.stopped
            t.done, t.reason = (
                True,
                ("adaptive stop: the refiner kept the turn" if kept else "max depth reached"),
            )
        elif self.s.strategy == "dfs" and not t.stack:
            t.done, t.reason = True, "tree exhausted"

    def run(self, roots: list[Node]) -> SearchState:
        """The whole search in one go (the graph runs the same steps as separate nodes)."""
        state = self.start(roots)
        while state.active():
            if self.expand(state) == 0:
                for t in state.active():
                    t.done, t.reason = True, "nothing left to expand"
                break
            self.judge(state)
        return state
