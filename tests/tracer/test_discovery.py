"""trace() with no classes named: it finds the engine the surrounding code uses (notebooks, tests)."""

import sys
import textwrap
import types

import numpy as np
import pytest

import engine as E
import tracer
from tests.tracer.engines import fullcore, recursive
from tracer.discovery import engine_classes_in

SEED_GRAD = 3.297442541400256

ENGINE_CELL = textwrap.dedent("""
    import numpy as np

    class Variable:
        def __init__(self, data):
            self.data, self.grad, self.creator = data, None, None

        def backward(self):
            if self.grad is None:
                self.grad = np.ones_like(self.data)
            funcs = [self.creator]
            while funcs:
                f = funcs.pop()
                f.input.grad = f.backward(f.output.grad)
                if f.input.creator is not None:
                    funcs.append(f.input.creator)

    class Function:
        def __call__(self, input):
            output = Variable(self.forward(input.data))
            output.creator, self.input, self.output = self, input, output
            return output

    class Square(Function):
        def forward(self, x):
            return x ** 2

        def backward(self, gy):
            return 2 * self.input.data * gy
""")

TRACE_CELL = textwrap.dedent("""
    import tracer
    with tracer.trace(**options) as t:
        y = Square()(Square()(x))
        y.backward()
""")


def run_cells(namespace, *cells):
    """Run notebook cells one after another in one namespace, as Jupyter does."""
    namespace.setdefault("__name__", "__main__")
    for cell in cells:
        exec(compile(cell, "<cell>", "exec"), namespace)  # noqa: S102 - the test's own cells
    return namespace


@pytest.mark.parametrize("options", [{}, {"auto": True}])
def test_a_notebooks_own_classes_are_traced_without_naming_them(options):
    ns = run_cells({"options": options}, ENGINE_CELL, "x = Variable(np.array(3.0))", TRACE_CELL)
    t = ns["t"]
    p = t.select_pass()
    assert [t.calls[s.call].op for s in p.steps] == ["Square", "Square"]
    assert p.grads[t.variables[1].id].values == (108.0,)
    assert t.engine.function_classes == ("__main__.Function",)
    assert t.engine.variable_classes == ("__main__.Variable",)
    assert t.warnings == ()


def test_a_cell_run_again_still_traces_objects_made_with_the_old_classes():
    ns = run_cells({"options": {}}, ENGINE_CELL, "x = Variable(np.array(3.0))")
    old_variable = ns["Variable"]
    run_cells(ns, ENGINE_CELL)  # the engine cell again: new classes; x keeps the old one
    assert ns["Variable"] is not old_variable and type(ns["x"]) is old_variable
    old_dict = dict(old_variable.__dict__)
    run_cells(ns, "y0 = Square()(x)", TRACE_CELL.replace("Square()(Square()(x))", "Square()(y0)"))
    t = ns["t"]
    assert len(t.select_pass().steps) == 2  # old and new classes mixed in one graph
    assert t.engine.variable_classes == ("__main__.Variable",)  # two classes, one name
    assert dict(old_variable.__dict__) == old_dict  # and restored


def test_the_variable_class_alone_leads_to_the_function_base_beside_it():
    functions, variables = engine_classes_in({"Variable": recursive.Variable, "square": len})
    assert functions == [recursive.Function] and variables == [recursive.Variable]


def test_a_subclass_or_an_instance_leads_to_its_base_classes():
    assert engine_classes_in({"Sin": fullcore.Sin}) == ([fullcore.Function], [fullcore.Variable])
    x = fullcore.Variable(np.array(1.0))
    assert engine_classes_in({"x": x}) == ([fullcore.Function], [fullcore.Variable])


def test_plain_values_and_other_classes_are_not_taken_for_an_engine():
    namespace = {"np": np, "a": np.zeros(3), "n": 3, "f": print, "d": {}, "cls": dict,
                 "pytest": pytest, "trace": tracer.trace}
    assert engine_classes_in(namespace) == ([], [])


def test_named_classes_are_exactly_what_is_traced():
    def run():
        x = recursive.Variable(np.array(0.5))
        y = recursive.Square()(recursive.Exp()(recursive.Square()(x)))
        y.grad = np.array(1.0)
        with pytest.warns(tracer.TraceWarning), tracer.trace(function_cls=E.Function,
                                                             variable_cls=E.Variable) as t:
            y.backward()
        return t

    before = dict(recursive.Variable.__dict__)
    t = run()  # recursive's classes are in this module's namespace, but E's were named
    assert not t.passes and dict(recursive.Variable.__dict__) == before
    assert "nothing was recorded" in t.warnings[0] and "function_cls=YourFunction" in t.warnings[0]


def test_found_classes_from_a_test_function_are_traced_and_restored():
    Variable, Square, Exp = recursive.Variable, recursive.Square, recursive.Exp  # noqa: N806
    before = dict(Variable.__dict__), dict(recursive.Function.__dict__)
    with tracer.trace() as t:
        x = Variable(np.array(0.5))
        y = Square()(Exp()(Square()(x)))
        y.grad = np.array(1.0)
        y.backward()
    assert [t.calls[s.call].op for s in t.select_pass().steps] == ["Square", "Exp", "Square"]
    assert t.select_pass().grads[t.variables[1].id].values == (pytest.approx(SEED_GRAD),)
    assert (dict(Variable.__dict__), dict(recursive.Function.__dict__)) == before


def test_an_empty_block_warns_with_the_fix():
    with pytest.warns(tracer.TraceWarning), tracer.trace(function_cls=E.Function,
                                                         variable_cls=E.Variable) as t:
        pass
    assert len(t.warnings) == 1
    assert t.warnings[0].startswith("nothing was recorded: no hooked Function was called")
    assert f"(hooked: {E.Function.__module__}.Function)" in t.warnings[0]


@pytest.mark.parametrize("engine_cell", [ENGINE_CELL, "from engine import Variable, square as Square_"])
def test_a_graph_built_before_the_block_warns_to_move_the_forward_inside(engine_cell):
    forward = ("y = Square()(Square()(x))" if engine_cell is ENGINE_CELL else "y = Square_(Square_(x))")
    with pytest.warns(tracer.TraceWarning, match="graph built before the with block"):
        ns = run_cells({}, engine_cell, "x = Variable(np.array(3.0))" if engine_cell is ENGINE_CELL
                       else "import numpy as np; x = Variable(np.array(3.0))", forward,
                       "import tracer\nwith tracer.trace() as t:\n    y.backward()\n")
    t = ns["t"]
    assert t.pass_count == 1 and not t.calls
    assert t.warnings == ("backward() ran on a graph built before the with block, so none of its "
                          "Function calls were recorded: put the forward computation inside the with "
                          "block too",)
    assert len(t.select_pass().steps) == 2  # the steps are still recorded: their hooks were installed


def test_a_module_in_the_namespace_leads_to_the_engine_it_defines():
    assert engine_classes_in({"dz": recursive}) == ([recursive.Function], [recursive.Variable])


def test_a_lone_class_with_forward_and_backward_is_not_an_engine():
    class Dense:  # a from-scratch layer: no Variable class goes with it
        def __call__(self, x):
            return self.forward(x)

        def forward(self, x):
            return x

        def backward(self, gy):
            return gy

    assert engine_classes_in({"Dense": Dense, "layer": Dense()}) == ([], [])


def hostile_values() -> dict:
    class Raising(type):
        def __getattr__(cls, name):
            raise KeyError(name)

    class Lazy(metaclass=Raising):
        def __call__(self):
            return None

    class Unhashable(type):
        def __eq__(cls, other):
            return cls is other
        __hash__ = None

    class Odd(metaclass=Unhashable):
        pass

    class Proxy:
        def __getattribute__(self, name):
            raise RuntimeError(name)

    class PropertyMeta(type):
        @property
        def forward(cls):
            raise ValueError("no")

    class Weird(metaclass=PropertyMeta):
        def __call__(self):
            return None

    return {"Lazy": Lazy, "Odd": Odd, "proxy": Proxy(), "Weird": Weird}


def test_values_whose_classes_misbehave_are_skipped():
    namespace = {**hostile_values(), "Variable": recursive.Variable}
    assert engine_classes_in(namespace) == ([recursive.Function], [recursive.Variable])


def test_trace_works_beside_values_whose_classes_misbehave():
    ns = run_cells({"options": {}, **hostile_values()}, ENGINE_CELL, "x = Variable(np.array(3.0))", TRACE_CELL)
    assert len(ns["t"].select_pass().steps) == 2


def test_names_given_turn_the_namespace_search_off():
    Variable, Square = recursive.Variable, recursive.Square  # noqa: N806 - found if searched
    with pytest.warns(tracer.TraceWarning, match="no class named 'NoSuchFunction' was defined or imported"), \
            tracer.trace(auto=True, function_names=["NoSuchFunction"]) as t:
        y = Square()(Variable(np.array(2.0)))
        y.grad = np.array(1.0)
        y.backward()
    assert not t.calls and t.engine.function_classes == ()
    with tracer.trace(find_in_caller=False, auto=True) as t:
        Square()(Variable(np.array(2.0)))
    assert not t.calls


def test_warnings_are_also_issued_where_a_notebook_shows_them():
    with pytest.warns(tracer.TraceWarning, match="nothing was recorded: no hooked Function"):
        with tracer.trace(function_cls=E.Function, variable_cls=E.Variable):
            pass


def test_a_pass_from_a_leaf_is_not_said_to_follow_no_function_call():
    """square(x) was called, then x.backward(): the warning said "no hooked Function was called
    inside the with block" (and to pass function_cls for one's own engine)."""
    with pytest.warns(tracer.TraceWarning) as caught:
        with tracer.trace() as t:
            x = E.Variable(np.array(2.0))
            E.square(x)
            x.backward()
    assert t.calls_made == 1 and not t.calls
    assert [str(w.message) for w in caught] == list(t.warnings) == [
        "nothing was kept of the Function call made inside the with block: the backward pass started "
        "from x, which no Function made, so it has no steps and no Function call on its graph: call "
        "backward() on the computation's result (y = f(x); y.backward())"]


def test_a_kept_pass_from_a_leaf_is_named_after_passes_not_kept():
    with pytest.warns(tracer.TraceWarning):
        with tracer.trace() as t:  # keeps the last pass
            x, w = E.Variable(np.array(2.0), name="x"), E.Variable(np.array(3.0), name="w")
            E.mul(x, w)
            E.exp(w)
            x.backward()
            w.backward()
    assert t.warnings[0].startswith("nothing was kept of the 2 Function calls made inside the with block: "
                                    "the backward pass started from w, which no Function made"), t.warnings


def test_a_variable_class_alone_is_told_to_name_the_function_class_too():
    with pytest.warns(tracer.TraceWarning):
        with tracer.trace(variable_cls=E.Variable) as t:
            E.square(E.Variable(np.array(2.0))).backward()
    assert t.pass_count == 1 and not t.calls
    assert t.warnings[0].startswith("nothing was recorded: no hooked Function was called inside the "
                                    "with block (hooked: none); to trace your own engine pass function_cls=")


def test_an_engine_module_without_function_classes_is_not_a_crash(monkeypatch):
    monkeypatch.setitem(sys.modules, "engine", types.ModuleType("engine"))  # a student's engine.py
    Variable, Square = recursive.Variable, recursive.Square  # noqa: N806
    with tracer.trace() as t:
        y = Square()(Variable(np.array(2.0)))
        y.grad = np.array(1.0)
        y.backward()
    assert [t.calls[s.call].op for s in t.select_pass().steps] == ["Square"]


def test_a_reloaded_engine_module_is_found_again(tmp_path, monkeypatch):
    import importlib
    source = ENGINE_CELL.replace("class Square(Function):", "def square(x):\n    return Square()(x)\n\n"
                                 "class Square(Function):")
    (tmp_path / "mydz_reload.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    import mydz_reload as dz

    def run():
        with tracer.trace() as t:
            dz.square(dz.Variable(np.array(3.0))).backward()
        return t

    assert len(run().calls) == 1
    (tmp_path / "mydz_reload.py").write_text(source.replace("2 * self", "2.0 * self"), encoding="utf-8")
    importlib.invalidate_caches()
    importlib.reload(dz)  # new classes under the same names: same namespace size
    assert len(run().calls) == 1
    sys.modules.pop("mydz_reload", None)


def test_names_imported_from_a_module_lead_to_the_engine_that_module_imports(tmp_path, monkeypatch):
    (tmp_path / "mydz_core.py").write_text(ENGINE_CELL, encoding="utf-8")
    (tmp_path / "mydz_layers.py").write_text(
        "from mydz_core import Variable, Square\n\n"
        "class Net:  # a step-45 model: no engine class among the names a script imports from here\n"
        "    def __call__(self, x):\n        return Square()(Square()(Variable(x)))\n\n"
        "def loss_of(y):\n    return y\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    from mydz_layers import Net, loss_of
    import mydz_core
    try:
        assert engine_classes_in({"Net": Net, "loss_of": loss_of}) == ([mydz_core.Function], [mydz_core.Variable])
        with tracer.trace() as t:
            loss_of(Net()(np.array(2.0))).backward()
        assert len(t.calls) == 2 and not t.warnings
    finally:
        sys.modules.pop("mydz_core", None)
        sys.modules.pop("mydz_layers", None)


def test_an_empty_block_on_the_users_own_engine_is_not_told_to_name_it():
    """The student's engine was hooked (it is listed): naming it again is not the fix."""
    with pytest.warns(tracer.TraceWarning):
        with tracer.trace(function_cls=recursive.Function, variable_cls=recursive.Variable) as t:
            pass
    (warning,) = t.warnings
    assert warning == (f"nothing was recorded: no hooked Function was called inside the with block "
                       f"(hooked: {recursive.__name__}.Function); make the forward computation's "
                       f"calls inside the block")
