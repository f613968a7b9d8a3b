"""The module map stays untangled: no import cycles among app/ and backend/, and one owner of engine command lines.

Imports are read from the source (module level and inside functions; ``if TYPE_CHECKING:`` blocks left out, they
never run), so the check needs no imports of its own and sees lazy imports too. The packages of
``TYPE_CHECKED_TOO`` keep their ``TYPE_CHECKING`` imports in the graph: a cycle there is a tangle of concepts even
when it never runs (shared types live in a third module, e.g. backend/datasets/record.py).
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TYPE_CHECKED_TOO = ("backend.datasets",)


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("app", "backend"):
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def _imports(path: Path, known: set[str], type_checking: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = set() if type_checking else {
        id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
        and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING" for n in ast.walk(node)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names & known


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative enough for this size)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(path, set(modules)) - {name} for name, path in modules.items()}
    assert _cycles(graph) == []


def test_no_import_cycles_through_the_type_checked_packages_counting_type_checking_imports():
    modules = _modules()
    graph = {name: _imports(path, set(modules), name.startswith(TYPE_CHECKED_TOO)) - {name}
             for name, path in modules.items()}
    assert [cycle for cycle in _cycles(graph) if any(m.startswith(TYPE_CHECKED_TOO) for m in cycle)] == []


def test_the_ui_imports_nothing_from_the_backend_but_the_shared_schema():
    """app/ is an HTTP client of the API: of the backend it may only use backend.config (the run-config schema)."""
    modules = _modules()
    reaching = {name: sorted(m for m in _imports(path, set(modules)) if m.startswith("backend.")
                             and not m.startswith("backend.config"))
                for name, path in modules.items() if name.split(".")[0] == "app"}
    assert {name: found for name, found in reaching.items() if found} == {}


def test_one_module_outside_the_engine_writes_engine_command_lines():
    writers = sorted(name for name, path in _modules().items()
                     if name.split(".")[:2] != ["backend", "engine"] and '"backend.engine' in path.read_text(encoding="utf-8"))
    assert writers == ["backend.engine_process"]
