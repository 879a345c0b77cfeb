"""``run_script(..., allow_errors=True)``: a notebook goes on with the next cell after one raises."""

import json

import pytest

import tracer
from tests.tracer.test_discovery import ENGINE_CELL


def code(source: str, count=None) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": count, "outputs": [],
            "source": source.splitlines(True)}


def write_notebook(path, *cells) -> str:
    path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# HW"},
                                          *cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}),
                    encoding="utf-8")
    return str(path)


RUN = "x = Variable(np.array(3.0))\nSquare()(x).backward()\nprint('ran', x.grad)\n"


def test_a_cell_that_raises_is_recorded_and_the_next_cell_runs(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "hw.ipynb", code(ENGINE_CELL, 1),
                              code("print('shown')\nz = 1 / 0\nprint('not reached')", 2), code(RUN, 3))
    t = tracer.run_script(notebook, allow_errors=True)
    assert t.error is None and t.complete  # the run completed
    assert t.pass_count == 1 and t.select_pass().error is None
    assert capsys.readouterr().out == "shown\nran 6.0\n"
    (cell,) = t.cell_errors
    assert (cell.cell, cell.line, cell.error.type, cell.error.message) == (
        f"{notebook} (code cell 2, In [2])", 2, "ZeroDivisionError", "division by zero")
    assert str(cell) == f"{notebook} (code cell 2, In [2]), line 2 raised ZeroDivisionError: division by zero"
    assert cell.error.traceback.startswith(f'Traceback (most recent call last):\n  File "{notebook} (code '
                                           f'cell 2, In [2])", line 2, in <module>\n    z = 1 / 0\n')
    assert cell.error.traceback.endswith("ZeroDivisionError: division by zero\n")


def test_without_allow_errors_the_run_stops_at_the_cell(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "hw.ipynb", code(ENGINE_CELL), code("1 / 0"), code(RUN))
    t = tracer.run_script(notebook)
    assert t.error.type == "ZeroDivisionError" and t.cell_errors == () and t.pass_count == 0
    assert "ran" not in capsys.readouterr().out


def test_a_backward_pass_that_raises_keeps_its_failing_step_and_the_run_goes_on(tmp_path):
    broken = ("class Broken(Function):\n    def forward(self, x):\n        return x * 2\n"
              "    def backward(self, gy):\n        raise ValueError('no gradient')\n")
    notebook = write_notebook(tmp_path / "hw.ipynb", code(ENGINE_CELL), code(broken),
                              code("a = Variable(np.array(1.0))\nb = Square()(Broken()(a))\nb.backward()"),
                              code(RUN))
    t = tracer.run_script(notebook, keep="all", allow_errors=True)
    assert t.error is None and t.pass_count == 2
    first, second = t.passes
    assert (first.error.type, first.error.step) == ("ValueError", 2) and second.error is None
    (cell,) = t.cell_errors
    assert (cell.cell, cell.line, str(cell.error)) == (f"{notebook} (code cell 3)", 3, "ValueError: no gradient")
    assert 'line 5, in backward\n' in cell.error.traceback  # the engine cell's line, as Jupyter shows it


def test_every_cell_that_raises_is_recorded_in_order_a_syntax_error_too(tmp_path):
    notebook = write_notebook(tmp_path / "hw.ipynb", code("a = (", 4), code("import nothing_of_that_name", 5),
                              code("def f():\n    return {}['k']\n\nf()", 6), code("ok = True", 7))
    t = tracer.run_script(notebook, allow_errors=True)
    assert t.error is None
    assert [(c.cell.split(" (", 1)[1], c.line, str(c.error)) for c in t.cell_errors] == [
        ("code cell 1, In [4])", 1, "SyntaxError: '(' was never closed"),
        ("code cell 2, In [5])", 1, "ModuleNotFoundError: No module named 'nothing_of_that_name'"),
        ("code cell 3, In [6])", 4, "KeyError: 'k'")]


def test_a_syntax_error_in_a_notebook_the_cell_ran_names_that_cell_once(tmp_path):
    """%run other.ipynb: the error is in other.ipynb's cell, not the one that ran it."""
    write_notebook(tmp_path / "other.ipynb", code("a = (", 2))
    notebook = write_notebook(tmp_path / "hw.ipynb", code("%run other.ipynb", 1), code("ok = True", 3))
    t = tracer.run_script(notebook, allow_errors=True)
    (cell,) = t.cell_errors
    assert (cell.cell, cell.line) == (f"{notebook} (code cell 1, In [1])", 1)
    assert str(cell.error) == "SyntaxError: '(' was never closed in other.ipynb (code cell 1, In [2]), line 1"


@pytest.mark.parametrize("stop, kind, message", [
    ("raise KeyboardInterrupt", "KeyboardInterrupt", ""),
    ("import sys\nsys.exit(3)", "SystemExit", "3"),
    ("raise GeneratorExit('bye')", "GeneratorExit", "bye"),
    ("import os\nos._exit(4)", "SystemExit", "4"),
])
def test_ctrl_c_and_exits_still_end_the_run(tmp_path, capsys, stop, kind, message):
    notebook = write_notebook(tmp_path / "hw.ipynb", code(ENGINE_CELL), code("1 / 0"), code(stop), code(RUN))
    t = tracer.run_script(notebook, allow_errors=True)
    assert (t.error.type, t.error.message) == (kind, message)
    assert [c.error.type for c in t.cell_errors] == ["ZeroDivisionError"]  # the one before still is
    assert "ran" not in capsys.readouterr().out and t.pass_count == 0


def test_sys_exit_0_ends_a_run_that_went_on_as_success(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "hw.ipynb", code(ENGINE_CELL), code("1 / 0"),
                              code("import sys\nsys.exit(0)"), code(RUN))
    t = tracer.run_script(notebook, allow_errors=True)
    assert t.error is None and len(t.cell_errors) == 1 and "ran" not in capsys.readouterr().out


def test_allow_errors_is_for_notebooks(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("print('ran')\n")
    with pytest.raises(tracer.ArgumentError, match=r"allow_errors goes on with a notebook's next cell after "
                                                   r"one raises; .*s\.py is not a notebook \(\.ipynb\)"):
        tracer.run_script(script, allow_errors=True)
