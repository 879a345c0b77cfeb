"""Running a Jupyter notebook (.ipynb) like a script: its code cells in order, magics blanked."""

import json
import linecache

import pytest

import tracer
from tests.tracer.test_discovery import ENGINE_CELL
from tracer.notebook import NotebookError, notebook_cells


def code(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
            "source": source.splitlines(True)}


def write_notebook(path, *cells) -> str:
    path.write_text(json.dumps({"cells": list(cells), "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}), encoding="utf-8")
    return str(path)


def test_code_cells_in_order_with_magics_blanked_line_for_line(tmp_path):
    notebook = tmp_path / "hw.ipynb"
    write_notebook(notebook,
                   {"cell_type": "markdown", "metadata": {}, "source": "# Homework"},
                   code("%matplotlib inline\nimport numpy as np\n!pip install x\nif True:\n    %time f()"),
                   code("%%bash\necho not python"),
                   code("%%time\nfiles = !ls\ny = 1"),
                   code("   \n"))
    cells = notebook_cells(notebook.read_bytes(), notebook)
    assert cells == [(f"{notebook} (cell 2)", "pass\nimport numpy as np\npass\nif True:\n    pass\n"),
                     (f"{notebook} (cell 4)", "\nfiles = None\ny = 1\n")]


@pytest.mark.parametrize("text, says", [
    (b'{"cells": [', "is not a Jupyter notebook (Expecting value"),
    (b"\xff\xfe", "is not a Jupyter notebook ("),
    (b'{"nbformat": 3, "worksheets": []}', "is not a Jupyter notebook of format 4 (nbformat 3)"),
    (b"[1, 2]", "is not a Jupyter notebook of format 4 (nbformat None)"),
])
def test_what_is_not_a_notebook_is_a_clear_error(tmp_path, text, says):
    notebook = tmp_path / "bad.ipynb"
    notebook.write_bytes(text)
    with pytest.raises(NotebookError, match="save it again") as caught:
        tracer.run_script(notebook)
    assert says in str(caught.value) and isinstance(caught.value, tracer.TraceError)


def test_a_notebook_runs_as_jupyter_would_and_is_traced(tmp_path, capsys):
    (tmp_path / "data.txt").write_text("3.0", encoding="utf-8")
    notebook = write_notebook(
        tmp_path / "hw.ipynb", code("%matplotlib inline\nimport numpy as np"), code(ENGINE_CELL),
        code("x = Variable(np.array(float(open('data.txt').read())))"),  # relative to the notebook
        code("y = Square()(Square()(x))\ny.backward()\ndisplay(x.grad)\nx.grad"))
    t = tracer.run_script(notebook)
    assert t.error is None, t.error
    p = t.select_pass()
    assert [t.calls[s.call].op for s in p.steps] == ["Square", "Square"]
    x = next(v.id for v in t.variables.values() if v.name == "x")
    assert p.grads[x].values == (108.0,)
    assert capsys.readouterr().out.strip() in ("np.float64(108.0)", "108.0")  # display(), numpy 2 or 1


def test_an_error_in_a_cell_names_the_cell_and_shows_its_line(tmp_path):
    notebook = write_notebook(tmp_path / "hw.ipynb", code("import numpy as np"), code(ENGINE_CELL),
                              code("x = Variable(np.array(2.0))\n\nSquare()(x).backward()\n1 / 0"))
    t = tracer.run_script(notebook)
    assert t.error.type == "ZeroDivisionError" and t.pass_count == 1
    assert f'File "{notebook} (cell 3)", line 4, in <module>\n    1 / 0' in t.error.traceback
    assert not [k for k in linecache.cache if "(cell " in str(k)]  # the cells' lines are not kept


def test_cli_renders_a_notebook(tmp_path):
    from click.testing import CliRunner

    import cli
    notebook = write_notebook(tmp_path / "hw.ipynb", code("import numpy as np"), code(ENGINE_CELL),
                              code("x = Variable(np.array(3.0))\nSquare()(x).backward()"))
    result = CliRunner().invoke(cli.main, ["steps", notebook])
    assert result.exit_code == 0, result.output
    assert "x: 6" in result.output
    (tmp_path / "bad.ipynb").write_text("{", encoding="utf-8")
    result = CliRunner().invoke(cli.main, ["render", str(tmp_path / "bad.ipynb"), "-o", str(tmp_path / "g.svg")])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "save it again" in result.output
    assert not (tmp_path / "g.svg").exists()
