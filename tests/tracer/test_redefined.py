"""Classes defined again (a notebook cell run again): calls of the earlier definition, subclasses of it."""

import inspect
import json
import textwrap

import tracer
from tests.tracer.engines import generations
from tracer.diagnose import diagnose

ENGINE = inspect.getsource(generations)
BUGGY = ENGINE.replace("max(x.generation for x in inputs)", "0")
assert BUGGY != ENGINE
FIXED_FUNCTION = ENGINE[ENGINE.index("class Function:"):ENGINE.index("class Square(")]
RUN = textwrap.dedent("""
    x = Variable(np.array(2.0))
    a = square(x)
    y = add(square(a), square(a))
    y.backward()
""")


def _line_of(text: str, needle: str, start: int = 0) -> int:
    return text.count("\n", 0, text.index(needle, start)) + 1


def test_subclasses_of_a_base_class_defined_again_later_are_named_with_where_each_is(tmp_path):
    """The fix went into Function's cell; Square and Add still subclass the buggy Function."""
    text = BUGGY + "\n" + FIXED_FUNCTION + RUN
    script = tmp_path / "s.py"
    script.write_text(text)
    t = tracer.run_script(script)
    old_base = _line_of(text, "    def __call__")  # the base's first method
    new_base = _line_of(text, "    def __call__", text.index(FIXED_FUNCTION, len(BUGGY)))
    square = _line_of(text, "class Square(") + 1
    (warning,) = [w for w in t.warnings if "earlier definition" in w]
    assert warning == (
        f"Square, Add are subclasses of an earlier definition of Function in s.py, line {old_base}: "
        f"Function was defined again later in s.py, line {new_base}, after they were defined, so a fix "
        f"made there does not reach them; run the code defining Square, Add again")
    premature = [f for f in diagnose(t) if f.kind == "premature-backward"]
    assert premature and premature[0].hint.startswith(
        f"Square, defined in s.py, line {square}, is a subclass of an earlier definition of Function in s.py, "
        f"line {old_base}, not of the Function defined later in s.py, line {new_base}: run the code "
        f"defining Square again")
    assert "The generations are wrong" in premature[0].hint


def test_the_same_engine_defined_once_gets_no_such_note(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(BUGGY + RUN)
    t = tracer.run_script(script)
    assert not [w for w in t.warnings if "earlier definition" in w]
    assert t.class_notes == {}
    premature = [f for f in diagnose(t) if f.kind == "premature-backward"]
    assert premature and premature[0].hint.startswith("the generations are wrong")


def _code(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
            "source": source}


def test_an_op_defined_again_in_a_later_notebook_cell(tmp_path):
    """Exp was wrong in code cell 2, fixed in code cell 4 (after a markdown cell): pass 1's finding says it ran the earlier Exp."""
    buggy = ("class Exp(Function):\n    def forward(self, x):\n        return np.exp(x)\n"
             "    def backward(self, gy):\n        return gy * self.inputs[0].data\n")
    fixed = buggy.replace("gy * self.inputs[0].data", "gy * np.exp(self.inputs[0].data)")
    run = "x = Variable(np.array(0.5))\ny = Exp()(square(x))\ny.backward()\n"
    notebook = tmp_path / "hw.ipynb"
    notebook.write_text(json.dumps({"cells": [
        _code("import numpy as np\nfrom engine import Function, Variable, square"), _code(buggy), _code(run),
        {"cell_type": "markdown", "metadata": {}, "source": "oops"}, _code(fixed), _code(run)],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    t = tracer.run_script(notebook, keep="all")
    exp_calls = sorted(c.id for c in t.calls.values() if c.op == "Exp")
    assert t.warnings == (
        f"two classes named Exp were called: call f{exp_calls[0]} used an earlier definition in hw.ipynb "
        f"(code cell 2), line 2, the others the one defined later in hw.ipynb (code cell 4), line 2",)
    (wrong,) = [f for f in diagnose(t) if f.kind == "wrong-backward"]
    assert wrong.call == exp_calls[0] and wrong.pass_id == 1
    assert wrong.hint.startswith("Exp here is an earlier definition in hw.ipynb (code cell 2), line 2: the name "
                                 "Exp now names the class defined later in hw.ipynb (code cell 4), line 2. The ")


def test_a_class_of_the_same_name_imported_from_elsewhere_is_no_redefinition(tmp_path):
    """The student's Square, then gradtrace's engine's Square imported under that name."""
    script = tmp_path / "s.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        from engine import Function, Variable
        class Square(Function):
            def forward(self, x):
                return x ** 2
            def backward(self, gy):
                return 2 * self.inputs[0].data * gy
        Square()(Variable(np.array(2.0))).backward()
        from engine import Square
        Square()(Variable(np.array(3.0))).backward()
    """))
    t = tracer.run_script(script, keep="all")
    assert t.class_notes == {} and not [w for w in t.warnings if "earlier definition" in w]
