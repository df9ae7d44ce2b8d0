"""The package's shape: layers only point down, no import cycles, small modules and functions,
and a run's files named only by the modules that own them.

Imports are read from the source (every ``import`` and ``from ... import`` of an evoforge module,
those inside functions included: a lazy import hides a cycle from Python, not from this test).
"""

from __future__ import annotations

import ast
import re
import tempfile
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "evoforge"

# Lower rank = lower layer. A module may import modules of its own rank or lower, never higher.
RANKS = {
    "errors": 0,
    "plugins": 0,
    "stats": 0,
    "telemetry": 0,
    "progress": 0,
    "monitoring": 0,
    "config": 0,
    "sandbox": 1,
    "envs": 2,
    "rewards": 3,
    "agents": 3,
    "training": 4,
    "storage": 5,
    "round": 6,
    "driver": 7,
    "bench": 8,
    "cli": 9,
    "__main__": 9,
    "__init__": 9,
}
# Same-rank packages that must not import each other either.
SEPARATE = {("rewards", "agents"), ("agents", "rewards")}
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path, known: set[str]) -> set[str]:
    """The evoforge modules ``path`` imports (a ``from pkg import mod`` counts as the module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for n in names:
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n.startswith("evoforge"):
                found.add(n)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    g = {}
    for name, path in mods.items():
        # a package's own __init__ importing its parent package is not an edge
        g[name] = {m for m in imports(path, known) if m != name and not name.startswith(m + ".")}
    return g


def test_layers_point_down():
    upward = []
    for mod, deps in graph().items():
        if mod == "evoforge":
            continue  # the public API re-exports from every layer
        a = top(mod)
        for dep in deps:
            b = top(dep)
            if dep == "evoforge" or RANKS[b] > RANKS[a] or (a, b) in SEPARATE:
                upward.append(f"{mod} -> {dep}")
    assert not upward, "imports that point up a layer:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    g = graph()
    color: dict[str, int] = defaultdict(int)
    cycles = []

    def visit(n: str, stack: list[str]) -> None:
        color[n] = 1
        for m in sorted(g.get(n, ())):
            if color[m] == 1:
                cycles.append(" -> ".join(stack[stack.index(m) :] + [n, m]))
            elif color[m] == 0:
                visit(m, stack + [n])
        color[n] = 2

    for n in sorted(g):
        if color[n] == 0:
            visit(n, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_every_module_has_a_rank():
    assert {top(m) for m in modules()} <= set(RANKS)


def test_modules_and_functions_stay_small():
    big = []
    for name, path in modules().items():
        lines = path.read_text().splitlines()
        if len(lines) > MAX_MODULE_LINES:
            big.append(f"{name}: {len(lines)} lines")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    big.append(f"{name}.{node.name}: {n} lines")
    assert not big, "split these by what they do:\n" + "\n".join(big)


def test_public_api():
    import evoforge

    assert sorted(evoforge.__all__) == sorted(
        ["Environment", "Task", "Verdict", "load_config", "register", "resume", "run"]
    )
    for name in evoforge.__all__:
        assert getattr(evoforge, name) is not None


def test_test_can_see_an_upward_import(tmp_path):
    """The import reader finds lazy imports (the kind that once hid a cycle)."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from evoforge.driver.runner import run\n")
    assert imports(f, set(modules())) == {"evoforge.driver.runner"}


def file_owners() -> dict[str, set[str]]:
    """The file names of a run directory, by the one module that may spell them: the round's
    files (every file of ``RoundStore``, read from the store itself so the list cannot drift)
    belong to storage/store.py, the run's own files (``RunDir``'s paths) to storage/rundir.py, the
    manifest's name to storage/manifest.py. Every other module asks them for a file:
    ``rt.round_store(r)``, ``store.run_store(rd, r)``, ``RunDir.events_path``..."""
    from evoforge.storage.manifest import NAME
    from evoforge.storage.rundir import RunDir
    from evoforge.storage.store import RoundStore, _RunFile

    with tempfile.TemporaryDirectory() as d:
        store, rd = RoundStore(Path(d)), RunDir(d)
        files = [f.path for f in vars(store).values() if isinstance(f, _RunFile)]
        paths = [getattr(rd, a) for a in dir(RunDir) if isinstance(getattr(RunDir, a), property)]
    return {
        "evoforge.storage.store": {p.name for p in files},
        "evoforge.storage.rundir": {p.name for p in paths if p.suffix},  # files, not directories
        "evoforge.storage.manifest": {NAME},
    }


def named_files(path: Path, names: set[str]) -> set[str]:
    """The ``names`` that a string literal of ``path`` spells as a file: the whole literal, or
    the end of a path or glob (``"metrics.json"``, ``p / "train" / "metrics.json"``,
    ``"*/eval.json"``, ``f"{d}/pairs.jsonl"``); docstrings and sentences that mention a file do
    not count."""
    if not names:
        return set()
    tree = ast.parse(path.read_text(), str(path))
    docs = {
        id(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
    }
    spelled = re.compile(r"(?:^|[/*])(" + "|".join(map(re.escape, sorted(names))) + r")$")
    found = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
            m = spelled.search(n.value.strip())
            if m:
                found.add(m.group(1))
    return found


def test_run_files_are_named_only_by_their_owners():
    owners = file_owners()
    assert {"pairs.jsonl", "metrics.json", "done.json"} <= owners["evoforge.storage.store"]
    assert {"meta.json", "events.jsonl"} <= owners["evoforge.storage.rundir"]
    every = set().union(*owners.values())
    named = {
        name: found
        for name, path in modules().items()
        if (found := named_files(path, every - owners.get(name, set())))
    }
    assert not named, (
        "read and write these through their owner (RoundStore, RunDir):\n"
        + "\n".join(f"{m}: {', '.join(sorted(f))}" for m, f in sorted(named.items()))
    )


def test_test_can_see_a_round_file_named_outside_the_store(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(
        '"""Reads metrics.json."""\n'
        "def f(d):\n"
        '    """Says pairs.jsonl."""\n'
        '    return d / "train" / "metrics.json", f"{d}/pairs.jsonl", "*/eval.json", "see tree.jsonl"\n'
    )
    names = {"metrics.json", "pairs.jsonl", "eval.json", "tree.jsonl"}
    assert named_files(f, names) == {"metrics.json", "pairs.jsonl", "eval.json"}
