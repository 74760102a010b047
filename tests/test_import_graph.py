"""The floor plan holds: no import cycle between modules or between subpackages, no module
over 400 lines. Every import counts: at the top, inside a function, or under TYPE_CHECKING."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from testpaths import ROOT

PACKAGE = ROOT / "kohya_orchestrator"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            # `from pkg import mod` imports the module pkg.mod, not pkg's own code.
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        yield from (t for t in targets if t in MODULES and t != name)


GRAPH = {name: sorted(set(_imports(name, path))) for name, path in MODULES.items()}


def _cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One cycle of `graph` (as the list of its nodes), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _room(module: str) -> str:
    """The subpackage a module lives in (`kohya_orchestrator.lint.rules` -> `lint`), or the
    module itself at the top."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_no_import_cycle_between_modules() -> None:
    assert _cycle(GRAPH) is None


def test_no_import_cycle_between_subpackages() -> None:
    rooms: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        if module.endswith("__init__") or module == "kohya_orchestrator":
            continue
        here = _room(module)
        rooms.setdefault(here, set()).update(
            _room(t) for t in targets if _room(t) != here and t != "kohya_orchestrator"
        )
    assert _cycle({k: sorted(v) for k, v in rooms.items()}) is None


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert _cycle({"a": ["b"], "b": []}) is None


def test_no_module_over_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in MODULES.values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
