"""The house's shape, checked from the source with the standard library's `ast`.

Layers, top to bottom (an import may only point down, or stay inside its own package):
  function_app, functions/      triggers and the app
  shared/services/              use cases and the composition root
  mapping_store/                the mapping store and API keys (on Table Storage)
  shared/storage, shared/messaging, shared/dataverse   adapters (never each other)
  shared/platform/              settings, logs, errors, HTTP shaping, the one credential
  shared/domain/                pure: imports nothing of ours outside itself
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("function_app.py", "functions", "shared", "mapping_store")
MAX_COMPLEXITY = 15

# (package prefix, rank): a module may import modules of lower rank, or of its own package.
LAYERS: list[tuple[str, int]] = [
    ("function_app", 7),
    ("functions", 6),
    ("shared.services", 5),
    ("mapping_store", 4),
    ("shared.storage", 3),
    ("shared.messaging", 3),
    ("shared.dataverse", 3),
    ("shared.platform", 2),
    ("shared.domain", 1),
]


def _layer(module: str) -> tuple[str, int] | None:
    if module == "shared":
        return "shared", 0  # the bare package: its __init__ is empty
    for prefix, rank in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return prefix, rank
    return None


def _modules() -> Iterator[tuple[str, Path]]:
    for top in PRODUCTION:
        path = ROOT / top
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in files:
            parts = file.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, file


def _imports(module: str, file: Path) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import of ours, at any depth in the file."""
    tree = ast.parse(file.read_text(), str(file))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _layer(alias.name):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{file}:{node.lineno}: relative import; name the module in full"
            base = node.module or ""
            if not _layer(base) and base != "shared":
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield (candidate if _layer(candidate) and _is_module(candidate) else base), node.lineno


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _graph() -> dict[str, set[str]]:
    return {module: {target for target, _ in _imports(module, file)} - {module} for module, file in _modules()}


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for module, file in _modules():
        source = _layer(module)
        assert source is not None, f"{module} belongs to no layer"
        for target, line in _imports(module, file):
            found = _layer(target)
            assert found is not None, f"{file}:{line} imports {target}, which belongs to no layer"
            if found[0] != source[0] and found[1] >= source[1]:
                wrong.append(f"{file.relative_to(ROOT)}:{line} {module} → {target}")
    assert not wrong, "imports against the direction of the layers:\n" + "\n".join(wrong)


def test_no_import_cycles_between_modules() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def _complexity(node: ast.AST) -> int:
    """McCabe's count: 1 + each decision point (branches, loops, handlers, boolean operands, comprehensions)."""
    count = 1
    for child in ast.walk(node):
        if isinstance(child, ast.If | ast.For | ast.AsyncFor | ast.While | ast.IfExp | ast.ExceptHandler):
            count += 1
        elif isinstance(child, ast.comprehension):
            count += 1 + len(child.ifs)
        elif isinstance(child, ast.BoolOp):
            count += len(child.values) - 1
        elif isinstance(child, ast.match_case):
            count += 1
    return count


def test_no_function_is_too_complex_outside_the_sandbox() -> None:
    too_complex = []
    roots = [ROOT / p for p in (*PRODUCTION, "devstack", "benchmarks")]
    for root in roots:
        for file in [root] if root.is_file() else sorted(root.rglob("*.py")):
            if "dataverse_sandbox" in file.parts:
                continue
            for node in ast.walk(ast.parse(file.read_text(), str(file))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _complexity(node) > MAX_COMPLEXITY:
                    too_complex.append(f"{file.relative_to(ROOT)}:{node.lineno} {node.name} ({_complexity(node)})")
    assert not too_complex, f"functions above cyclomatic complexity {MAX_COMPLEXITY}:\n" + "\n".join(too_complex)


def test_the_domain_loads_nothing_heavy() -> None:
    """Importing the whole domain package in a fresh interpreter loads no httpx, azure.* or Table storage."""
    modules = sorted(m for m, _ in _modules() if m.startswith("shared.domain"))
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'azure', 'mapping_store')"
        + " or m.startswith(('shared.storage', 'shared.dataverse', 'shared.services', 'shared.messaging')))\n"
        + "print(','.join(heavy))\n"
    )
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)  # noqa: S603
    assert done.stdout.strip() == "", f"the domain loaded: {done.stdout.strip()}"
