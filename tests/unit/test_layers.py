"""The layers of src/grenadier only point down (docs/architecture.md), and import no cycle.

Every import counts, those inside functions too: a lazy import that points up is still a
dependency that points up.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import grenadier

#: top to bottom; a package may import its own modules and any package below it
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__main__",), ("cli",), ("exporters",), ("matrix",), ("runner",), ("phases",),
    ("report", "pytest_plugin"), ("options",), ("checks", "workload"), ("plugins",), ("project",),
    ("services",), ("releases", "state"), ("execute",), ("model",),
    ("host", "errors", "masking", "__init__"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
ROOT = Path(grenadier.__file__).parent


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """The grenadier modules ``path`` imports: ``from package import module`` is the module;
    ``from module import name``, the module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "grenadier"}


def _graph() -> dict[str, set[str]]:
    modules = {_module(path): path for path in ROOT.rglob("*.py")}
    return {name: {target for target in _imports(path, set(modules)) if target in modules}
            for name, path in modules.items()}


def _cycle(edges: dict[str, set[str]]) -> list[str]:
    """One cycle of ``edges`` (as the nodes it passes), or none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, nxt])):
                return cycle
        state[node] = 2
        return []

    for start in sorted(edges):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return []


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_package_has_a_layer() -> None:
    packages = {_package(module) for module in _graph()}
    assert packages - set(RANK) == set()


def test_imports_only_point_down() -> None:
    up = sorted(f"{module} -> {target}" for module, targets in _graph().items()
                for target in targets
                if RANK[_package(target)] < RANK[_package(module)])
    assert up == []


def test_packages_import_no_cycle() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in _graph().items():
        edges[_package(module)].update(_package(target) for target in targets)
        edges[_package(module)].discard(_package(module))
    assert _cycle(edges) == []


def test_modules_import_no_cycle() -> None:
    assert _cycle(_graph()) == []


def test_a_cycle_is_found() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_the_check_sees_an_import_that_points_up(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from grenadier.cli.main import main\n")
    assert "grenadier.cli.main" in _imports(bad, {"grenadier.cli.main"})
    assert RANK[_package("grenadier.cli.main")] < RANK[_package("grenadier.options.run")]
