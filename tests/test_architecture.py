"""The house rules, read from the code: imports run one way, with no cycles, and the CLI starts light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import generate

PACKAGE = Path(generate.__file__).resolve().parent
# Each room may import only rooms ranked below it, and itself; the utilities rank lowest.
RANKS = {"cli": 10, "serving": 9, "cowriting": 8, "critics": 8, "jobs": 8, "pipeline": 7, "training": 6, "sampling": 5, "outputs": 4, "model": 3, "data": 2, "music": 1}
UTILITIES = 0  # generate/*.py: errors, fileio, paths, progress, units


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name.split(".")[:2] not in (["generate", "checkpoints"], ["generate", "corpora"]):  # shipped data
            found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, ast.stmt, bool]]:
    """(imported module, statement, inside a function) for every import of a `generate` module, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    nested = {id(sub) for f in functions for sub in ast.walk(f)}
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            prefix = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name:
                found.append((target, node, id(node) in nested))
    return found


def _rank(module: str) -> int:
    if module in ("generate.__main__", "generate"):  # `python -m generate`, and the public API (`generate.load`)
        return RANKS["cli"] + 1
    parts = module.split(".")
    return RANKS.get(parts[1], UTILITIES) if len(parts) > 2 or (len(parts) == 2 and parts[1] in RANKS) else UTILITIES


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {target for target, _, _ in _imports(name, path, modules) if target != "generate"}
            for name, path in modules.items()}


def test_no_import_cycles_counting_function_level_imports():
    graph = _graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert len(graph) > 40 and not cycles, cycles


def test_imports_run_one_way_down_the_rooms():
    wrong = [(source, target) for source, targets in _graph().items() for target in targets
             if _rank(target) > _rank(source) or (_rank(target) == _rank(source) > UTILITIES
                                                  and source.split(".")[1] != target.split(".")[1])]
    assert not wrong, wrong


def test_the_checker_sees_upward_and_function_level_imports(tmp_path, monkeypatch):
    """The rules above would catch a violation: a function-level import from data up to sampling."""
    modules = {"generate.data.corpus": tmp_path / "corpus.py", "generate.sampling.loop": tmp_path / "loop.py"}
    modules["generate.data.corpus"].write_text("def f():\n    from ..sampling.loop import Sampler  # why\n")
    ((target, _, inside),) = _imports("generate.data.corpus", modules["generate.data.corpus"], modules)
    assert target == "generate.sampling.loop" and inside and _rank(target) > _rank("generate.data.corpus")


def test_every_function_level_import_says_why():
    """Function-level imports keep --help and `info` light; each carries its reason on its line."""
    modules = _modules()
    silent = []
    for path in modules.values():
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for function in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and "#" not in lines[node.lineno - 1]:
                    silent.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not silent, "\n".join(silent)


def test_help_and_info_import_no_numpy_or_tensorflow():
    code = ("import sys\nfrom generate.cli import cli\n"
            "for args in (['--help'], ['sample', '--help'], ['train', '--help'], ['run', '--help']):\n"
            "    try:\n        cli(args, prog_name='generate')\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('numpy', 'keras', 'tensorflow', 'music21') if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr
    assert "Usage: generate sample" in done.stdout


def test_each_room_says_its_job():
    for room in [*RANKS, "model.backend"]:
        doc = ast.get_docstring(ast.parse((PACKAGE / room.replace(".", "/") / "__init__.py").read_text(encoding="utf-8")))
        assert doc and len(doc.split()) >= 8, room
