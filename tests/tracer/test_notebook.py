"""Running a Jupyter notebook (.ipynb) like a script: its code cells in order, magics blanked."""

import json
import linecache
import os
import re
import sys

import pytest

import tracer
from tests.tracer.test_discovery import ENGINE_CELL
from tracer.notebook import NotebookError, as_python, notebook_cells


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
    assert cells == [(f"{notebook} (code cell 1)", "get_ipython().run_line_magic('matplotlib', 'inline')\n"
                                              "import numpy as np\nget_ipython().system('pip install x')\n"
                                              "if True:\n    f()\n"),
                     (f"{notebook} (code cell 3)", "\nfiles = get_ipython().getoutput('ls')\ny = 1\n")]


@pytest.mark.parametrize("cell, python", [
    # a % or ! that continues an expression or sits in a string is Python, left alone
    ('msg = ("x is %d"\n       % x)', 'msg = ("x is %d"\n       % x)\n'),
    ("ok = (1\n      != 2)", "ok = (1\n      != 2)\n"),
    ('s = """\n%(name)s\n!important\n"""', 's = """\n%(name)s\n!important\n"""\n'),
    ("r = 7 \\\n% 2", "r = 7 \\\n% 2\n"),
    # timing magics keep the statement they time (run once), options dropped
    ("%time y = 2 + 3\nprint(y)", "y = 2 + 3\nprint(y)\n"),
    ("x = %time f()", "x = f()\n"),
    ("%timeit -n 10 -r2 -q f(1)", "f(1)\n"),
    ("%%timeit -n 10 z = 5\nprint(z)", "z = 5\nprint(z)\n"),
    ("%time %timeit -n 3 f()", "f()\n"),
    ("%time %matplotlib inline", "get_ipython().run_line_magic('matplotlib', 'inline')\n"),
    ("%%prun -s cumulative\nf()", "\nf()\n"),
    # a cell magic after blank lines, a continued shell line, help syntax
    ("\n%%bash\necho hi", None),
    ("!pip install \\\n    numpy\nx = 1", "get_ipython().system('pip install     numpy')\n\nx = 1\n"),
    ("%run -i engine.py a\n", "get_ipython().run_line_magic('run', '-i engine.py a')\n\n"),
    ("os.path?\n??len", "pass\npass\n"),
    # only \n (and \r\n) end lines, as for Python: a U+2028 inside a string stays there
    ('s = "a\u2028b"\r\nt = 1', 's = "a\u2028b"\nt = 1\n'),
])
def test_ipython_syntax_is_blanked_only_where_it_is_not_python(cell, python):
    assert as_python(cell) == python
    if python is not None:
        compile(python, "<cell>", "exec")


def test_a_cell_source_that_is_not_text_is_a_clear_error(tmp_path):
    notebook = tmp_path / "odd.ipynb"
    write_notebook(notebook, {"cell_type": "code", "source": ["x = 1\n", None]})
    with pytest.raises(NotebookError) as raised:
        notebook_cells(notebook.read_bytes(), notebook)
    assert str(raised.value) == (f"{notebook} (code cell 1) has a source that is not text (Jupyter saves a "
                                 f"cell's source as text): open the notebook in Jupyter and save it again")


def test_a_cell_source_that_is_not_text_is_named_with_the_cells_label(tmp_path):
    notebook = tmp_path / "odd.ipynb"
    write_notebook(notebook, {"cell_type": "markdown", "source": "# HW"}, {"cell_type": "code", "source": "a = 1"},
                   {"cell_type": "code", "execution_count": 3, "source": {"text": "x = 1"}})
    with pytest.raises(NotebookError, match=r"^" + re.escape(f"{notebook} (code cell 2, In [3]) has a source "
                                                             f"that is not text (Jupyter")):
        notebook_cells(notebook.read_bytes(), notebook)


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
    assert f'File "{notebook} (code cell 3)", line 4, in <module>\n    1 / 0' in t.error.traceback
    assert not [k for k in linecache.cache if "(code cell " in str(k)]  # the cells' lines are not kept


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


def test_a_cell_that_raises_a_base_exception_is_the_notebooks_error(tmp_path):
    notebook = write_notebook(tmp_path / "hw.ipynb", code("raise GeneratorExit('stop')"))
    t = tracer.run_script(notebook)  # it escaped as gradtrace's own traceback
    assert (t.error.type, t.error.message) == ("GeneratorExit", "stop")
    assert not [k for k in linecache.cache if "(code cell " in str(k)]


def test_writefile_cells_write_their_file_and_a_written_engine_py_is_the_one_imported(tmp_path, capsys):
    import engine as ours
    buggy = ENGINE_CELL.replace("return 2 * self.input.data * gy", "return 3 * self.input.data * gy")
    notebook = write_notebook(tmp_path / "hw.ipynb", code("%%writefile engine.py\n" + buggy),
                              code("import numpy as np\nimport engine\nx = engine.Variable(np.array(2.0))\n"
                                   "engine.Square()(x).backward()"))
    t = tracer.run_script(notebook)
    assert t.error is None, t.error
    assert (tmp_path / "engine.py").read_text(encoding="utf-8") == buggy
    assert capsys.readouterr().out == "Writing engine.py\n"
    assert t.engine.function_classes == ("engine.Function",)  # the notebook's, not gradtrace's
    assert t.select_pass().grads[1].values == (6.0,)  # its (wrong) 3·x·gy = 6; gradtrace's gives 4
    assert sys.modules["engine"] is ours
    tracer.run_script(notebook)
    assert capsys.readouterr().out == "Overwriting engine.py\n"


def test_writefile_append_keeps_cells_on_their_own_lines(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "hw.ipynb", code("%%writefile parts.py\nA = 1"),
                              code("%%writefile -a parts.py\nB = 2"),
                              code("import parts\nprint(parts.A + parts.B)"))
    t = tracer.run_script(notebook)
    assert t.error is None, t.error
    assert (tmp_path / "parts.py").read_text(encoding="utf-8") == "A = 1\nB = 2\n"
    assert capsys.readouterr().out == "Writing parts.py\nAppending to parts.py\n3\n"
    sys.modules.pop("parts", None)


def test_a_notebook_in_another_language_is_a_clear_error(tmp_path):
    notebook = tmp_path / "stats.ipynb"
    notebook.write_text(json.dumps({"cells": [code("x <- c(1, 2)")], "nbformat": 4, "nbformat_minor": 5,
                                    "metadata": {"kernelspec": {"language": "R", "name": "ir"},
                                                 "language_info": {"name": "R"}}}))
    with pytest.raises(NotebookError, match=r"is an R notebook: gradtrace runs Python notebooks"):
        tracer.run_script(notebook)
    python = tmp_path / "py.ipynb"
    python.write_text(json.dumps({"cells": [code("x = 1")], "nbformat": 4, "nbformat_minor": 5,
                                  "metadata": {"language_info": {"name": "python"}}}))
    assert tracer.run_script(python).error is None


def test_capture_captures_what_its_cell_prints_and_binds_its_name(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "hw.ipynb", code("%%capture out --no-stderr\nx = 41\nprint('hidden?')"),
                              code("out.show()\nprint(x + 1, repr(out.stdout))"))
    t = tracer.run_script(notebook)
    assert t.error is None, t.error
    assert capsys.readouterr().out == "hidden?\n42 'hidden?\\n'\n"  # printed by out.show() alone


def test_a_script_exported_from_a_notebook_runs_its_magics_as_ipython_would(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a script's %%writefile writes where it is run, as under IPython
    body = ENGINE_CELL.replace("\n", "\\n")
    script = tmp_path / "exported.py"  # as `jupyter nbconvert --to script` writes it
    script.write_text(
        "#!/usr/bin/env python\n# coding: utf-8\n\n# In[1]:\n\n\n"
        "get_ipython().run_line_magic('matplotlib', 'inline')\n"
        "get_ipython().system('pip install numpy')\n"
        f"get_ipython().run_cell_magic('writefile', 'mine.py', '{body}')\n"
        "from mine import *\n"
        "x = Variable(np.array(3.0))\n"
        "y = get_ipython().run_line_magic('time', 'Square()(x)')\n"
        "get_ipython().run_line_magic('time', '%timeit -n 5 y.backward()')\n"
        "print(x.grad, get_ipython().getoutput('ls'))\n", encoding="utf-8")
    t = tracer.run_script(script)
    assert t.error is None, t.error
    assert capsys.readouterr().out == "Writing mine.py\n6.0 []\n"  # backward ran once, not 5 times
    assert t.pass_count == 1 and [t.calls[s.call].op for s in t.select_pass().steps] == ["Square"]
    sys.modules.pop("mine", None)


def test_only_scripts_that_call_get_ipython_get_it(tmp_path):
    script = tmp_path / "plain.py"
    script.write_text("print(get_ipython)\n", encoding="utf-8")
    assert tracer.run_script(script).error.type == "NameError"  # as under plain python


def test_run_magic_runs_a_file_and_its_names_join_the_notebook(tmp_path, capsys):
    (tmp_path / "mine.py").write_text(ENGINE_CELL + "\nimport sys\nprint(__name__, sys.argv[1:])\n",
                                      encoding="utf-8")
    notebook = write_notebook(tmp_path / "hw.ipynb", code("%run mine.py --lr 0.1"),
                              code("x = Variable(np.array(2.0))\nSquare()(x).backward()\nprint(x.grad)"),
                              code("%run -i missing_on_purpose.py"))
    t = tracer.run_script(notebook)
    assert capsys.readouterr().out == "__main__ ['--lr', '0.1']\n4.0\n"
    assert t.pass_count == 1 and t.engine.function_classes == ("__main__.Function",)
    assert t.error.type == "FileNotFoundError" and "(code cell 3)" in t.error.traceback


def test_a_captured_cell_that_fails_shows_what_it_printed_and_its_own_line(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "hw.ipynb", code("x = 1"),
                              code("\n%%capture out\nprint('before')\n%matplotlib inline\n1 / 0"))
    t = tracer.run_script(notebook)
    assert t.error.type == "ZeroDivisionError"
    assert f'File "{notebook} (code cell 2)", line 5, in <module>\n    1 / 0' in t.error.traceback
    assert capsys.readouterr().out == "before\n"


def test_what_the_stand_in_shell_cannot_do_is_named(tmp_path):
    notebook = write_notebook(tmp_path / "hw.ipynb", code("get_ipython().kernel"))
    assert "get_ipython().kernel is not available: gradtrace runs this notebook without IPython" \
        in str(tracer.run_script(notebook).error.message)


def test_run_expands_variables_puts_the_files_folder_on_the_path_and_survives_sys_exit(tmp_path, capsys):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "helper.py").write_text("K = 10\n", encoding="utf-8")
    (sub / "runme.py").write_text("import sys\nfrom helper import K\nprint(K, sys.argv[1:])\n"
                                  "get_ipython().run_line_magic('matplotlib', 'inline')\nsys.exit(0)\n"
                                  "print('never')\n", encoding="utf-8")
    notebook = write_notebook(tmp_path / "hw.ipynb", code("n = 3\n%run sub/runme.py --n $n --m {n+1}\nprint('on')"),
                              code("%env GT_TEST_VAR=7\n%cd sub\nimport os\nprint(os.environ['GT_TEST_VAR'], open('helper.py').read().strip())"))
    t = tracer.run_script(notebook)
    assert t.error is None, t.error
    out = capsys.readouterr().out
    assert out.startswith("10 ['--n', '3', '--m', '4']\non\nenv: GT_TEST_VAR=7\n") and out.endswith("7 K = 10\n")
    assert "GT_TEST_VAR" not in os.environ and str(sub) not in sys.path


def test_a_magic_that_does_nothing_here_is_named_once(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "hw.ipynb", code("%matplotlib inline\n%debug\n%debug\nx = 1"))
    assert tracer.run_script(notebook).error is None
    assert capsys.readouterr().err == "gradtrace: %debug has no effect outside IPython: skipped\n"


def test_a_timed_cell_over_a_capture_cell_runs_both(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "hw.ipynb", code("%%time\n%%capture c\nprint('inside')"),
                              code("print(repr(c.stdout))"))
    assert tracer.run_script(notebook).error is None
    assert capsys.readouterr().out == "'inside\\n'\n"


def test_a_capture_cell_under_time_keeps_its_line_numbers(tmp_path):
    notebook = write_notebook(tmp_path / "hw.ipynb", code("%%time\n%%capture c\nx = 1\ny = 1 / 0"))
    t = tracer.run_script(notebook)
    assert f'File "{notebook} (code cell 1)", line 4, in <module>\n    y = 1 / 0' in t.error.traceback


def test_cd_takes_its_options_and_env_refuses_an_unset_name_as_ipython_does(tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    notebook = write_notebook(tmp_path / "hw.ipynb", code("%cd -q sub\n%cd -\nimport os\nprint(os.path.basename(os.getcwd()))"),
                              code("%env GT_SURELY_UNSET_NAME"))
    t = tracer.run_script(notebook)
    assert capsys.readouterr().out.splitlines()[-1] == tmp_path.name  # -q quiet, - back
    assert (t.error.type, t.error.message) == ("UsageError", "Environment does not have key: GT_SURELY_UNSET_NAME")


def test_a_skipped_magic_is_noted_in_every_run(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "hw.ipynb", code("%debug"))
    for _ in range(2):
        tracer.run_script(notebook)
        assert "%debug has no effect outside IPython" in capsys.readouterr().err


def test_a_written_engine_py_under_time_still_shadows_ours(tmp_path):
    notebook = write_notebook(tmp_path / "hw.ipynb", code("%%time\n%%writefile engine.py\n" + ENGINE_CELL),
                              code("import numpy as np\nimport engine\nengine.Square()(engine.Variable(np.array(2.0))).backward()"))
    t = tracer.run_script(notebook)
    assert t.error is None, t.error
    assert t.engine.function_classes == ("engine.Function",)  # the notebook's, not gradtrace's
