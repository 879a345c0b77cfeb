"""Imports flow one way: cli → tracer → engine; engine needs only numpy and the standard library."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_importing_engine_loads_no_tracer_graphviz_or_click():
    code = ("import sys, engine; "
            "print(sorted(m for m in ('tracer', 'graphviz', 'click', 'cli') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _imported_top_levels(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_engine_sources_import_only_numpy_and_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"numpy", "engine"}
    for path in sorted((ROOT / "engine").glob("*.py")):
        assert _imported_top_levels(path) <= allowed, path.name


def test_tracer_never_imports_cli():
    for path in sorted((ROOT / "tracer").glob("*.py")):
        assert "cli" not in _imported_top_levels(path), path.name
        assert "click" not in _imported_top_levels(path), path.name


def test_every_module_has_a_docstring():
    for path in sorted([*ROOT.glob("engine/*.py"), *ROOT.glob("tracer/*.py"), ROOT / "cli.py"]):
        assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), path
