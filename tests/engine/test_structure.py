"""Package conventions: numpy-only imports, docstrings, __all__."""

import importlib
import inspect
import pkgutil
import subprocess
import sys

import engine

MODULES = [importlib.import_module(f"engine.{m.name}")
           for m in pkgutil.iter_modules(engine.__path__)]


def test_engine_imports_only_numpy_and_the_standard_library():
    code = ("import sys, engine; bad = [m for m in ('tracer', 'graphviz', 'click', 'cli') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=engine.__path__[0] + "/..")
    assert out.stdout.strip() == "[]"
    for mod in MODULES:
        src = inspect.getsource(mod)
        for line in src.splitlines():
            if line.startswith(("import ", "from ")):
                name = line.split()[1]
                assert name.startswith(".") or name.split(".")[0] in {
                    "numpy", "contextlib", "heapq", "threading", "weakref"}, (mod.__name__, line)


def test_every_module_and_public_function_has_a_docstring():
    for mod in [engine] + MODULES:
        assert mod.__doc__ and mod.__doc__.strip(), mod.__name__
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                assert obj.__doc__, f"{mod.__name__}.{name}"


def test_all_names_resolve_and_builtin_shadows_stay_out_of_star_imports():
    for name in engine.__all__:
        assert hasattr(engine, name), name
    for name in ("sum", "max", "min", "pow"):
        assert name not in engine.__all__ and callable(getattr(engine, name))
    ns = {}
    exec("from engine import *", ns)
    assert "Variable" in ns and "sum" not in ns


def test_function_call_is_defined_only_on_the_base_class():
    classes = [getattr(engine, n) for n in engine.__all__
               if inspect.isclass(getattr(engine, n)) and issubclass(getattr(engine, n),
                                                                      engine.Function)]
    assert len(classes) > 25
    for cls in classes:
        if cls is not engine.Function:
            assert "__call__" not in vars(cls), cls
            assert "backward" in vars(cls) or "backward" in vars(cls.__mro__[1]), cls
