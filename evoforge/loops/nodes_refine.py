"""Nodes of the first half of a round: plan, generate, critique, expand, judge, verify, pairs.

Each node reads its inputs from the run directory, calls agents/ or envs/ code, writes its
outputs atomically, and returns a small state update. A node whose output is already complete
(a resumed run) skips its work and returns the same update.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from evoforge.agents.roles import stable_seed
from evoforge.agents.search import Node, SearchState, TreeSearch
from evoforge.envs.base import Task
from evoforge.errors import EvoforgeError
from evoforge.loops.evaluate import evaluate_env, safe_verify
from evoforge.loops.pairs import PairRules, build_pairs, refiner_data
from evoforge.loops.rundir import read_json, read_jsonl, write_json, write_jsonl
from evoforge.loops.runtime import Runtime, node
from evoforge.loops.state import RunState


def evaluate_all(rt: Runtime, label: str) -> dict[str, Any]:
    """Heldout numbers of the weights the servers hold now, for the main and the guard env."""
    c = rt.config
    heldout, records = {}, {}
    envs = [(rt.env, c.eval.heldout_tasks)] + ([(rt.guard, c.eval.guard_tasks)] if rt.guard else [])
    for env, n in envs:
        with rt.progress.bar(f"{label}: {env.name}", n) as bar:
            heldout[env.name], records[env.name] = evaluate_env(
                rt.servers.actor, env, n, c.seed, c.eval.max_tokens, bar
            )
    return {"heldout": heldout, "records": records}


def select_tasks(
    pool: list[Task], n: int, fail_rates: dict[str, float] | None, rng: random.Random
) -> list[Task]:
    """Weighted sampling without replacement (Efraimidis-Spirakis): a task's weight is the mean
    failure rate of its types in the last evaluation (unseen types count as 0.5), plus a floor
    so strong types still appear. ``fail_rates=None`` is the uniform curriculum."""
    if fail_rates is None:
        return pool[:n]
    keyed = []
    for t in pool:
        rates = [fail_rates.get(tag, 0.5) for tag in t.tags] or [0.5]
        w = sum(rates) / len(rates) + 0.05
        keyed.append((rng.random() ** (1.0 / w), t))
    keyed.sort(key=lambda kt: -kt[0])
    return [t for _, t in keyed[:n]]


class RefineNodes:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def _search(self, state: RunState) -> TreeSearch:
        return TreeSearch(
            self.rt.roles, self.rt.env, self.rt.tasks(state), self.rt.search_settings()
        )

    def _load_search(self, state: RunState) -> tuple[dict[str, Any], SearchState]:
        d = read_json(self.rt.rdir(state) / "search.json")
        return d, SearchState.from_json(d["state"])

    def _save_search(self, state: RunState, phase: str, s: SearchState) -> None:
        write_json(self.rt.rdir(state) / "search.json", {"phase": phase, "state": s.to_json()})

    @node()
    def baseline(self, state: RunState) -> dict[str, Any]:
        """Heldout numbers of the starting model (the bar every round is compared with)."""
        path = self.rt.rd.baseline / "eval.json"
        if not path.exists():
            ev = evaluate_all(self.rt, "baseline eval")
            write_jsonl(
                self.rt.rd.baseline / "eval_responses.jsonl",
                [r | {"env": e} for e, recs in ev["records"].items() for r in recs],
            )
            write_json(path, {"round": -1, "kept": True, "heldout": ev["heldout"]})
        h = read_json(path)["heldout"][self.rt.env.name]
        return {"_counts": {"strict": h["strict"], "loose": h["loose"], "n": h["n"]}}

    @node()
    def plan(self, state: RunState) -> dict[str, Any]:
        rt, c = self.rt, self.rt.config
        out = rt.rdir(state) / "tasks.jsonl"
        if not out.exists():
            r = state["round"]
            ev_path = rt.last_eval_path(state)
            fail_rates = None
            if c.curriculum == "weakness" and ev_path.exists():
                by_type = read_json(ev_path)["heldout"][rt.env.name]["by_type"]
                fail_rates = {k: 1.0 - v["strict"] for k, v in by_type.items()}
            pool_n = c.tasks_per_round * (4 if fail_rates is not None else 1)
            pool = rt.env.tasks("train", pool_n, c.seed * 1000 + r)
            if not isinstance(pool, list) or not pool:
                raise EvoforgeError(
                    f"environment '{rt.env.name}' returned no train tasks; tasks() must return a "
                    "non-empty list of Task"
                )
            chosen = select_tasks(
                pool, c.tasks_per_round, fail_rates, random.Random(stable_seed(c.seed, "plan", r))
            )
            write_jsonl(out, [t.to_json() for t in chosen])
        tasks = rt.tasks(state)
        types = Counter(tag for t in tasks.values() for tag in t.tags)
        rt.update_metrics(state, tasks=len(tasks), task_types=dict(types), curriculum=c.curriculum)
        return {"level": 0, "failed": 0, "active": 0, "_counts": {"tasks": len(tasks)}}

    @node()
    def generate(self, state: RunState) -> dict[str, Any]:
        rt = self.rt
        out = rt.rdir(state) / "responses.jsonl"
        if not out.exists():
            tasks = list(rt.tasks(state).values())
            with rt.progress.bar(f"round {state['round']} generate", len(tasks)) as bar:
                results = rt.roles.answer(tasks, key=f"round{state['round']}", progress=bar)
            write_jsonl(
                out,
                [
                    {"task_id": r.id, "response": r.texts[0], "tokens": r.completion_tokens[0]}
                    for r in results
                ],
            )
        n = len(read_jsonl(out))
        rt.update_metrics(state, responses=n)
        return {"_counts": {"responses": n}}

    @node()
    def critique(self, state: RunState) -> dict[str, Any]:
        rt = self.rt
        out = rt.rdir(state) / "critiques.jsonl"
        if not out.exists():
            search = self._search(state)
            roots = [
                Node(
                    id=f"{r['task_id']}#0",
                    task_id=r["task_id"],
                    parent=None,
                    depth=0,
                    response=r["response"],
                )
                for r in read_jsonl(rt.rdir(state) / "responses.jsonl")
            ]
            with rt.progress.bar(f"round {state['round']} critique", len(roots)) as bar:
                search.score(roots, bar)
            thr = rt.config.search.threshold
            failed = [n for n in roots if n.value is None or n.value <= thr]
            s = search.start(failed)
            self._save_search(state, "judged", s)
            write_jsonl(
                out,
                [
                    {
                        "task_id": n.task_id,
                        "votes": n.votes,
                        "critiques": n.critiques,
                        "judge_value": n.judge_value,
                        "verifier_score": n.verifier_score,
                        "value": n.value,
                        "failed": n in failed,
                    }
                    for n in roots
                ],
            )
        rows = read_jsonl(out)
        _, s = self._load_search(state)
        failed = sum(r["failed"] for r in rows)
        abst = sum(v is None for r in rows for v in r["votes"])
        rt.update_metrics(state, failed=failed, critique_abstentions=abst)
        return {
            "failed": failed,
            "active": len(s.active()),
            "level": s.level,
            "_counts": {"judged": len(rows), "failed": failed, "abstentions": abst},
        }

    @node()
    def expand(self, state: RunState) -> dict[str, Any]:
        phase, s = self._load_search(state)
        if phase["phase"] != "expanded":
            search = self._search(state)
            search.bind(s)
            frontier = search.planned_expansions(s)
            with self.rt.progress.bar(
                f"round {state['round']} expand L{s.level + 1}", frontier
            ) as bar:
                search.expand(s, bar)
            self._save_search(state, "expanded", s)
        new = len(s.pending())
        return {
            "_counts": {"level": s.level + 1, "new_nodes": new, "active_trees": len(s.active())}
        }

    @node()
    def judge(self, state: RunState) -> dict[str, Any]:
        phase, s = self._load_search(state)
        if phase["phase"] != "judged":
            search = self._search(state)
            search.bind(s)
            with self.rt.progress.bar(
                f"round {state['round']} judge L{s.level + 1}", len(s.pending())
            ) as bar:
                search.judge(s, bar)
            self._save_search(state, "judged", s)
        accepted = sum(t.accepted is not None for t in s.trees.values())
        return {
            "active": len(s.active()),
            "level": s.level,
            "_counts": {
                "level": s.level,
                "accepted": accepted,
                "active_trees": len(s.active()),
                "cache_hits": s.cache_hits,
            },
        }

    @node()
    def verify(self, state: RunState) -> dict[str, Any]:
        rt = self.rt
        d = rt.rdir(state)
        out = d / "verdicts.jsonl"
        if not out.exists():
            tasks = rt.tasks(state)
            _, s = self._load_search(state)
            responses = {r["task_id"]: r["response"] for r in read_jsonl(d / "responses.jsonl")}
            rows = []
            for tid, task in tasks.items():
                orig = safe_verify(rt.env, task, responses[tid])
                tree = s.trees.get(tid)
                refined = None
                if tree is not None and tree.accepted is not None:
                    refined = safe_verify(rt.env, task, s.nodes[tree.accepted].response)
                rows.append(
                    {
                        "task_id": tid,
                        "original": _verdict(orig),
                        "refined": _verdict(refined) if refined else None,
                        "accepted_node": tree.accepted if tree else None,
                        "tree": "searched" if tree else "original passed the critique",
                    }
                )
            # Judge-verifier agreement over every judged response (cached duplicates excluded).
            crit = read_jsonl(d / "critiques.jsonl")
            judged = [
                (r["judge_value"], r["verifier_score"] == 1.0)
                for r in crit
                if r["judge_value"] is not None
            ]
            judged += [
                (n.judge_value, bool(n.verifier_passed))
                for n in s.nodes.values()
                if n.depth > 0 and not n.cached and n.judge_value is not None
            ]
            agree = sum((jv > 0.5) == vp for jv, vp in judged)
            trees = [
                {
                    "task_id": t.task_id,
                    "accepted": t.accepted,
                    "reason": t.reason,
                    "budget_used": t.budget_used,
                    "depth": max(s.nodes[n].depth for n in t.nodes),
                    "nodes": [_node_record(s.nodes[n]) for n in t.nodes],
                }
                for t in s.trees.values()
            ]
            write_jsonl(d / "tree.jsonl", trees)
            rt.update_metrics(
                state,
                judge_verifier_agreement=round(agree / len(judged), 4) if judged else None,
                judged_for_agreement=len(judged),
                original_pass_rate=round(
                    sum(r["original"]["passed"] for r in rows) / max(1, len(rows)), 4
                ),
                trees=len(trees),
                nodes_expanded=sum(t["budget_used"] for t in trees),
                accepted=sum(t["accepted"] is not None for t in trees),
                max_tree_depth=max((t["depth"] for t in trees), default=0),
                judge_calls=s.judge_calls,
                expand_calls=s.expand_calls,
                cache_hits=s.cache_hits,
            )
            write_jsonl(out, rows)
        m = read_json(d / "metrics.json")
        return {
            "_counts": {
                k: m.get(k)
                for k in ("original_pass_rate", "trees", "accepted", "judge_verifier_agreement")
            }
        }

    @node()
    def pairs(self, state: RunState) -> dict[str, Any]:
        rt = self.rt
        d = rt.rdir(state)
        out = d / "pairs.jsonl"
        if not out.exists():
            tasks = rt.tasks(state)
            _, s = self._load_search(state)
            verdicts = {r["task_id"]: r for r in read_jsonl(d / "verdicts.jsonl")}
            searched = {tid: _fill(v) for tid, v in verdicts.items() if tid in s.trees}
            rules = PairRules(rt.config.pairs.require_verifier, rt.config.pairs.max_length_ratio)
            pairs, dropped = build_pairs(tasks, s, searched, rules)
            write_jsonl(d / "refiner.jsonl", refiner_data(tasks, s, rt.roles, searched))
            dist = [p["edit_distance"] for p in pairs]
            rt.update_metrics(
                state,
                pairs_dropped=dropped,
                mean_edit_distance=round(sum(dist) / len(dist), 2) if dist else None,
            )
            write_jsonl(out, pairs)
        n = len(read_jsonl(out))
        refiner = Counter(r["kind"] for r in read_jsonl(d / "refiner.jsonl"))
        rt.update_metrics(state, pairs=n, refiner_examples=dict(refiner))
        return {
            "_counts": {
                "pairs": n,
                "refinements": refiner.get("refinement", 0),
                "judgements": refiner.get("judgement", 0),
            }
        }


def _verdict(v) -> dict[str, Any]:
    return {
        "score": v.score,
        "passed": v.passed,
        "loose": bool(v.details.get("loose", v.passed)),
        "feedback": v.feedback,
    }


def _fill(v: dict[str, Any]) -> dict[str, Any]:
    """A verdict row with a failing placeholder where no refinement was accepted."""
    return v if v["refined"] is not None else v | {"refined": {"score": 0.0, "passed": False}}


def _node_record(n: Node) -> dict[str, Any]:
    return {
        "id": n.id,
        "parent": n.parent,
        "depth": n.depth,
        "value": n.value,
        "judge_value": n.judge_value,
        "verifier_score": n.verifier_score,
        "votes": n.votes,
        "status": n.status,
        "cached": n.cached,
        "response": n.response,
    }
