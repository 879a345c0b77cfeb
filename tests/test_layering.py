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


# Recording and the trace's data (records, JSON) come first; pictures, diagnosis and reports are
# built on them. labels (numbers and arrays as short text) is shared by all of them.
_RECORDING_AND_DATA = ("_version", "errors", "snapshot", "records", "raw", "identity", "naming", "hooks",
                       "discovery", "fanout", "fnstate", "params", "numlists", "recorder", "building", "jsoncheck",
                       "trace", "jsonio", "redefined", "api")
_PICTURES_DIAGNOSIS_REPORTS = ("dot", "dotlabels", "dotnodes", "compact", "gradview", "layout", "themes",
                               "render", "frames", "player", "export", "gallery", "inline", "steps_table",
                               "diagnose", "diagnose_common", "diagnose_grad", "diagnose_inplace",
                               "diagnose_nan", "diagnose_order", "diagnose_accumulate", "diagnose_shapes",
                               "diagnose_replay", "diagnose_report",
                               "diagnose_stale")


def _module_level_tracer_imports(name: str) -> set[str]:
    """The tracer modules ``tracer/<name>.py`` imports when it loads (not inside a function:
    Trace.to_dot() and Trace.check() import the pictures and the diagnosis they run, when called)."""
    tree = ast.parse((ROOT / "tracer" / f"{name}.py").read_text(encoding="utf-8"))
    found = set()
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found.update([node.module] if node.module else [alias.name for alias in node.names])
    return found


def test_recording_and_data_modules_load_no_picture_diagnosis_or_report_module():
    for name in _RECORDING_AND_DATA:
        seen, todo = set(), [name]
        while todo:  # what loading it loads, directly or not
            for imported in _module_level_tracer_imports(todo.pop()) - seen:
                seen.add(imported)
                todo.append(imported)
        assert not seen & set(_PICTURES_DIAGNOSIS_REPORTS), (name, sorted(seen & set(_PICTURES_DIAGNOSIS_REPORTS)))
    listed = set(_RECORDING_AND_DATA) | set(_PICTURES_DIAGNOSIS_REPORTS)
    assert listed <= {path.stem for path in (ROOT / "tracer").glob("*.py")}
