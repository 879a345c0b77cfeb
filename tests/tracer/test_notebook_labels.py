"""Notebook cells are named as a student finds them in Jupyter: ``code cell N, In [n]``."""

import json

import pytest

import tracer
from tests.tracer.test_discovery import ENGINE_CELL
from tracer.diagnose import diagnose
from tracer.notebook import cell_name, is_cell_label, notebook_cells, raising_cell


def code(source: str, count=None) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": count, "outputs": [],
            "source": source.splitlines(True)}


def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def write_notebook(path, *cells) -> str:
    path.write_text(json.dumps({"cells": list(cells), "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}), encoding="utf-8")
    return str(path)


def test_markdown_cells_are_not_counted_and_the_execution_count_is_shown(tmp_path):
    notebook = write_notebook(tmp_path / "hw.ipynb", markdown("# Homework"), code("a = 1", 3),
                              markdown("## Part 2"), {"cell_type": "raw", "metadata": {}, "source": "x"},
                              code("b = 2", 7), code("c = 3"))
    labels = [label for label, _ in notebook_cells((tmp_path / "hw.ipynb").read_bytes(), tmp_path / "hw.ipynb")]
    assert labels == [f"{notebook} (code cell 1, In [3])", f"{notebook} (code cell 2, In [7])",
                      f"{notebook} (code cell 3)"]


def test_an_unexecuted_notebook_names_its_code_cells_by_place_only(tmp_path):
    notebook = write_notebook(tmp_path / "hw.ipynb", markdown("intro"), code("a = 1"), code("%%bash\nls"),
                              code("b = 2"))
    labels = [label for label, _ in notebook_cells((tmp_path / "hw.ipynb").read_bytes(), tmp_path / "hw.ipynb")]
    # the %%bash cell is not run, but it is a code cell in Jupyter: it keeps its number
    assert labels == [f"{notebook} (code cell 1)", f"{notebook} (code cell 3)"]


@pytest.mark.parametrize("count, name", [
    (None, "code cell 4"), (12, "code cell 4, In [12]"), (0, "code cell 4, In [0]"),
    (True, "code cell 4"), ("7", "code cell 4"), (-1, "code cell 4"), (2.0, "code cell 4"),
])
def test_only_a_whole_execution_count_is_shown(count, name):
    assert cell_name(4, count) == name


def test_a_traceback_names_the_code_cell_and_its_execution_count(tmp_path):
    notebook = write_notebook(tmp_path / "hw.ipynb", markdown("# Homework"), code("import numpy as np", 1),
                              markdown("The engine:"), code(ENGINE_CELL, 2),
                              code("x = Variable(np.array(2.0))\nSquare()(x).backward()\n1 / 0", 5))
    t = tracer.run_script(notebook)
    assert t.error.type == "ZeroDivisionError"
    assert f'File "{notebook} (code cell 3, In [5])", line 3, in <module>\n    1 / 0' in t.error.traceback
    assert raising_cell(t.error.traceback) == "code cell 3, In [5]"


def test_the_raising_cell_is_found_in_an_upper_case_notebook_name(tmp_path):
    # the CLI takes HW.IPYNB as a notebook: its hint about the cell must come too
    notebook = write_notebook(tmp_path / "HW.IPYNB", code("1 / 0", 4))
    assert raising_cell(tracer.run_script(notebook).error.traceback) == "code cell 1, In [4]"


def test_the_raising_cell_is_the_one_that_ran_not_the_one_defining_the_function(tmp_path):
    notebook = write_notebook(tmp_path / "hw.ipynb", code("def f():\n    return 1 / 0", 1),
                              markdown("call it"), code("y = f()", 2))
    t = tracer.run_script(notebook)
    assert f'"{notebook} (code cell 1, In [1])", line 2, in f' in t.error.traceback
    assert raising_cell(t.error.traceback) == "code cell 2, In [2]"


def test_a_syntax_error_names_its_cell(tmp_path):
    notebook = write_notebook(tmp_path / "hw.ipynb", markdown("x"), code("a = 1", 1), code("b = (", 2))
    t = tracer.run_script(notebook)
    assert t.error.type == "SyntaxError"
    assert raising_cell(t.error.traceback) == "code cell 2, In [2]"
    # where Python writes "'(' was never closed (hw.ipynb (code cell 2, In [2]), line 1)"
    assert t.error.message == "'(' was never closed in hw.ipynb (code cell 2, In [2]), line 1"


def test_a_syntax_error_outside_a_notebook_keeps_pythons_words(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("b = (\n")
    assert tracer.run_script(script).error.message == "'(' was never closed (s.py, line 1)"


@pytest.mark.parametrize("filename, label", [
    ("hw.ipynb (code cell 2, In [7])", True),
    ("/home/me/HW.IPYNB (code cell 12)", True),
    ("hw.ipynb", False),
    ("hw.ipynb (code cell 2, In [7]) copy.py", False),
    ("notes (code cell 2).py", False),
    ("<%%capture cell>", False),
    (None, False),
])
def test_a_cell_label_is_told_from_a_file_name(filename, label):
    assert is_cell_label(filename) is label


def test_no_cell_in_a_scripts_traceback(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("1 / 0\n")
    assert raising_cell(tracer.run_script(script).error.traceback) is None
    assert raising_cell(None) is None


def test_redefinition_notes_name_the_cells_as_jupyter_shows_them(tmp_path):
    buggy = ("class Square(Function):\n    def forward(self, x):\n        return x ** 2\n"
             "    def backward(self, gy):\n        return 3 * self.input.data * gy\n")
    fixed = buggy.replace("3 * self.input", "2 * self.input")
    run = "x = Variable(np.array(1.5))\nSquare()(x).backward()\n"
    notebook = write_notebook(tmp_path / "hw.ipynb", markdown("# HW"), code(ENGINE_CELL, 1),
                              code(buggy, 2), code(run, 3), markdown("fixed:"), code(fixed, 6), code(run))
    t = tracer.run_script(notebook, keep="all")
    (warning,) = [w for w in t.warnings if "two classes named Square" in w]
    assert "an earlier definition in hw.ipynb (code cell 2, In [2]), line 2," in warning
    assert "the one defined later in hw.ipynb (code cell 4, In [6]), line 2" in warning
    (wrong,) = [f for f in diagnose(t) if f.kind == "wrong-backward"]
    assert " in hw.ipynb (code cell 2, In [2]), line 2:" in wrong.hint


def test_the_command_line_names_the_cell_that_stopped_the_run_as_jupyter_shows_it(tmp_path):
    from click.testing import CliRunner

    import cli
    notebook = write_notebook(tmp_path / "hw.ipynb", markdown("# HW"), code(ENGINE_CELL, 1), markdown("now:"),
                              code("x = Variable(np.array(2.0))\nSquare()(x).backward()\nx.grad / x.nope", 5),
                              code("print('later')", 6))
    result = CliRunner().invoke(cli.main, ["steps", notebook])
    assert result.exit_code == 1 and "later" not in result.stdout
    assert f'File "{notebook} (code cell 2, In [5])", line 3, in <module>\n' in result.stderr
    assert f"Warning: {notebook} (code cell 2, In [5]) raised: gradtrace runs the code cells in order" in result.stderr
