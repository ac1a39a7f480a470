"""The architecture as a checked contract: every module of psc_eval (models/ and
baselines/ included, installed as psc_eval.models / psc_eval.baselines) belongs to one
layer and imports only from its own layer or below, counting every import statement,
inside functions too (a function-level import may delay an edge, never hide a back-edge).
A new module must be placed in LAYERS, or this test fails.

(import-linter states the same kind of contract, but it builds its graph from the
package's folder and cannot see psc_eval.models / psc_eval.baselines, which are mapped
from other folders; this test reads the three folders itself.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"psc_eval": ROOT / "psc_eval", "psc_eval.models": ROOT / "models",
           "psc_eval.baselines": ROOT / "baselines"}

# lowest first; names are psc_eval's top-level modules and packages ("" = psc_eval itself)
LAYERS = (
    ("infrastructure", {"errors", "paths", "progress", "io", "dist", "registry", "methods",
                        "allocator"}),
    ("colour, data, configs, checkpoints", {"color", "data", "config", "checkpoint",
                                            "shipped", "identity"}),
    ("metrics, judges, training, colorizer protocol",
     {"metrics", "judge", "training", "colorizer", "colorize", "predictions", ""}),
    ("the paper's model and the baselines (plug-ins of the protocols)",
     {"models", "baselines"}),
    ("evaluation: runner, cache, results", {"runner", "cache", "results", "summary"}),
    ("experiments, report, study, testing",
     {"experiments", "report", "study", "testing"}),
    ("command line", {"cli"}),
)
RANK = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}


def modules() -> dict[str, Path]:
    out = {}
    for pkg, folder in FOLDERS.items():
        for p in folder.rglob("*.py"):
            rel = p.relative_to(folder).with_suffix("").parts
            if rel[-1] == "__init__":
                rel = rel[:-1]
            out[".".join((pkg, *rel))] = p
    return out


def top(module: str) -> str | None:
    """'psc_eval.metrics.miou' -> 'metrics'; 'psc_eval' -> ''; other packages -> None."""
    parts = module.split(".")
    if parts[0] != "psc_eval":
        return None
    return parts[1] if len(parts) > 1 else ""


def imports(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every import statement of a file, relative ones resolved."""
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target))
    return out


def _where(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in modules() if top(m) not in RANK)
    assert not unplaced, f"place these modules in LAYERS: {unplaced}"


def test_no_import_points_up_a_layer():
    bad = []
    for module, path in modules().items():
        here = RANK[top(module)]
        for line, target in imports(module, path):
            t = top(target)
            if t is None or t not in RANK:
                continue
            if RANK[t] > here:
                bad.append(f"{_where(path)}:{line} {module} ({LAYERS[here][0]}) "
                           f"imports {target} ({LAYERS[RANK[t]][0]})")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_the_core_imports_no_model_at_import_time():
    """Module-level statements of psc_eval/ never import psc_eval.models / .baselines
    (they are reached through the method records); function-level imports of them are
    allowed only above the plug-in layer (the experiments run the paper's model)."""
    bad = []
    for module, path in modules().items():
        if top(module) in ("models", "baselines"):
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for line, target in imports(module, path):
                    if line == node.lineno and top(target) in ("models", "baselines"):
                        bad.append(f"{_where(path)}:{line} imports {target}")
    assert not bad, bad


def test_the_contract_can_fail(tmp_path, monkeypatch):
    """A planted back-edge (the runner importing the report) is caught."""
    fake = tmp_path / "psc_eval"
    fake.mkdir()
    (fake / "runner.py").write_text("def f():\n    from .report.build import write_report\n")
    monkeypatch.setitem(FOLDERS, "psc_eval", fake)
    with pytest.raises(AssertionError, match=r"runner.py:2 psc_eval.runner .* imports "
                                             r"psc_eval.report.build"):
        test_no_import_points_up_a_layer()


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of psc_eval it imports (any statement, inside functions too);
    ``from pkg import name`` is an edge to pkg.name where that is a module, else to pkg."""
    mods = modules()
    graph: dict[str, set[str]] = {}
    for module, path in mods.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom):
                (_, base), = [x for x in imports(module, path) if x[0] == node.lineno][:1]
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    edges.add(sub if sub in mods else base)
        graph[module] = {e for e in edges if e in mods and e != module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[str]:
    cycles, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                cycles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    return cycles


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a -> b -> c -> a"]
