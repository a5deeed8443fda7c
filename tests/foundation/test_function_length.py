"""No function in the code is longer than a reader can hold in their head (about 60 lines).

Walks the non-test Python files of the packages in PACKAGES with `ast` (migrations excluded:
Django writes them) and lists every function, method or nested function whose definition,
decorators excluded, spans more than MAX_LINES lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 60
# Every non-test package of the project.
PACKAGES = ("spotthefake", "access", "pool", "readerstudy", "generation", "evaluation", "bench")

# "path:qualified name" -> why it stays long. Keep this short, and say why for each entry.
ALLOWED: dict[str, str] = {}


def _functions(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{node.name}"
            yield name, node
            yield from _functions(node, f"{name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def long_functions(packages=PACKAGES, max_lines: int = MAX_LINES) -> dict[str, int]:
    found = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for name, node in _functions(tree):
                length = node.end_lineno - node.lineno + 1
                if length > max_lines:
                    found[f"{path.relative_to(ROOT)}:{name}"] = length
    return found


def test_it_finds_no_function_over_the_limit():
    too_long = {key: n for key, n in long_functions().items() if key not in ALLOWED}
    assert too_long == {}, "split these by what each step means: " + ", ".join(
        f"{key} ({n} lines)" for key, n in sorted(too_long.items(), key=lambda kv: -kv[1])
    )


def test_it_allows_only_functions_that_are_still_long():
    still_long = long_functions()
    assert [key for key in ALLOWED if key not in still_long] == []


def test_it_measures_a_function_from_its_def_to_its_last_line(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    tree = ast.parse(f"def long():\n{body}\n\n\ndef short():\n    return 1\n")
    lengths = {name: node.end_lineno - node.lineno + 1 for name, node in _functions(tree)}
    assert lengths == {"long": MAX_LINES + 1, "short": 2}
