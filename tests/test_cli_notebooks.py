"""The command line on notebooks: cells named as Jupyter shows them, and --allow-errors."""

import json

import pytest
from click.testing import CliRunner

import cli

ENGINE = "import numpy as np\nfrom engine import Variable, square, exp\n"
RUN = "x = Variable(np.array(0.5))\ny = square(exp(x))\ny.backward()\nprint('ran', float(x.grad.data))\n"
SENTINEL = "sentinel: gradtrace must not touch this\n"


def run(*args):
    """Invoke the CLI in-process (stdout and stderr kept apart)."""
    return CliRunner().invoke(cli.main, [str(a) for a in args], catch_exceptions=False)


def code(source: str, count=None) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": count, "outputs": [], "source": source}


def notebook(path, *cells):
    path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# HW"}, *cells],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
    return path


@pytest.fixture
def failing(tmp_path):
    """A homework notebook that keeps a failing cell (saved executed) before the one that trains."""
    return notebook(tmp_path / "hw.ipynb", code(ENGINE, 1), code("bad = 1 / 0\nprint('not reached')", 2),
                    code("raise ValueError('shape (2,)\\nis wrong')", 4), code(RUN, 5))


def _went_on(nb) -> str:
    return (f"Warning: {nb} (code cell 2, In [2]), line 1 raised ZeroDivisionError: division by zero "
            f"(went on: --allow-errors)\n"
            f"Warning: {nb} (code cell 3, In [4]), line 1 raised ValueError: shape (2,) is wrong "
            f"(went on: --allow-errors)\n")


def test_a_cell_that_stops_the_run_is_named_with_its_execution_count(failing):
    result = run("steps", failing)
    assert result.exit_code == 1 and "ran" not in result.stdout
    assert f'File "{failing} (code cell 2, In [2])", line 1, in <module>\n    bad = 1 / 0\n' in result.stderr
    assert (f"Warning: {failing} (code cell 2, In [2]) raised: gradtrace runs the code cells in order and "
            f"stops at the first error, as Jupyter's Run All does; fix or delete that cell to get past it, or "
            f"give --allow-errors to go on with the next cell\n") in result.stderr


def test_render_allow_errors_goes_on_and_draws_the_complete_run(failing, tmp_path):
    out = tmp_path / "g.dot"
    result = run("render", failing, "--allow-errors", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("ran 5.4365636569180") and result.stdout.count("\n") == 1
    assert result.stderr == _went_on(failing) + f"wrote {out}\n"  # not "(partial: ...)": the run completed
    assert "Exp" in out.read_text()


def test_steps_allow_errors_shows_the_pass_of_a_later_cell(failing):
    result = run("steps", "--allow-errors", failing)
    assert result.exit_code == 0, result.stderr
    assert "pass 1 of 1: y.backward(), 2 steps" in result.stdout
    assert result.stderr == _went_on(failing)


def test_check_allow_errors_says_what_did_not_run(failing):
    result = run("check", failing, "--allow-errors")
    assert result.exit_code == 0, result.stdout  # nothing found; the cells' errors are warnings
    assert result.stdout.startswith("ran 5.43")
    assert result.stdout.split("\n", 1)[1].startswith("gradtrace check: no problems found in 2 calls and 1 backward pass; "
                                    "some checks were skipped (see Not checked below).")
    assert "the rest of hw.ipynb" not in result.stdout  # the label is the path given
    assert " ".join(result.stdout.split()).endswith(
        f"Not checked: - the rest of {failing} (code cell 2, In [2]): it stopped at line 1 with "
        f"ZeroDivisionError, and the run went on with the next cell (--allow-errors) - the rest of {failing} "
        f"(code cell 3, In [4]): it stopped at line 1 with ValueError, and the run went on with the next "
        f"cell (--allow-errors)")
    result = run("check", "--json", failing, "--allow-errors")
    document = json.loads(result.stdout)
    assert result.exit_code == 0 and document["error"] is None
    assert [note.split(": it stopped")[0] for note in document["notes"]] == [
        f"the rest of {failing} (code cell 2, In [2])", f"the rest of {failing} (code cell 3, In [4])"]


def test_allow_errors_still_stops_at_ctrl_c(tmp_path):
    nb = notebook(tmp_path / "hw.ipynb", code(ENGINE), code("1 / 0"), code(RUN), code("raise KeyboardInterrupt"),
                  code("print('after ctrl-c')"))
    result = run("steps", nb, "--allow-errors")
    assert result.exit_code == 130
    assert "ran 5.43" in result.stdout and "after ctrl-c" not in result.stdout
    assert "KeyboardInterrupt" in result.stderr


def test_allow_errors_still_stops_at_sys_exit(tmp_path):
    nb = notebook(tmp_path / "hw.ipynb", code(ENGINE), code(RUN), code("import sys\nsys.exit(3)"),
                  code("print('after exit')"))
    result = run("steps", nb, "--allow-errors")
    assert result.exit_code == 1 and "after exit" not in result.stdout
    assert f"{nb} exited with status 3" in result.stderr


def test_allow_errors_on_a_script_is_a_usage_error_and_nothing_runs(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(ENGINE + RUN + "from pathlib import Path\nPath(__file__).with_name('ran.txt').write_text('yes')\n")
    out = tmp_path / "g.svg"
    out.write_text(SENTINEL)
    for command in (["render", "-o", out], ["steps"], ["check"]):
        result = run(*command, script, "--allow-errors")
        assert result.exit_code == 2
        assert result.stderr.splitlines()[-1] == (
            f"Error: --allow-errors goes on with a notebook's next cell after one raises; {script} is not a "
            f"notebook (.ipynb): a script stops at its first error, as under python (catch the error in the "
            f"script to go on; an option of the script's own goes after --)")
    assert not (tmp_path / "ran.txt").exists() and out.read_text() == SENTINEL
    result = run("steps", script, "--", "--allow-errors")  # the script's own option
    assert result.exit_code == 0 and (tmp_path / "ran.txt").exists()


def test_allow_errors_on_a_saved_trace_is_named_as_not_applying(failing, tmp_path):
    saved = tmp_path / "t.json"
    assert run("render", failing, "--allow-errors", "-o", saved).exit_code == 0
    result = run("steps", saved, "--allow-errors")
    assert result.exit_code == 0
    assert result.stderr == (f"Warning: --allow-errors only applies when a script runs; {saved} is drawn as it "
                             f"was saved\n" + _went_on(failing))  # the saved run's cells that raised


def _cells_not_checked(result) -> list[str]:
    return [note for note in json.loads(result.stdout)["notes"] if note.startswith("the rest of ")]


def test_a_saved_trace_tells_of_the_cells_that_raised_as_the_run_did(failing, tmp_path):
    """render, steps and check on a trace saved from a run that went on past cells that raised
    warn and note what did not run, in the same words as on the run itself."""
    saved = tmp_path / "t.json"
    live = run("render", failing, "--allow-errors", "-o", saved)
    assert live.exit_code == 0 and live.stderr == _went_on(failing) + f"wrote {saved}\n"
    out = tmp_path / "g.dot"
    again = run("render", saved, "-o", out)
    assert again.exit_code == 0 and again.stderr == _went_on(failing) + f"wrote {out}\n"
    live, again = run("steps", failing, "--allow-errors"), run("steps", saved)
    assert again.exit_code == live.exit_code == 0
    assert again.stderr == live.stderr == _went_on(failing)
    assert again.stdout == live.stdout.split("\n", 1)[1]  # after the notebook's own print
    live, again = run("check", "--json", failing, "--allow-errors"), run("check", "--json", saved)
    assert again.exit_code == live.exit_code == 0
    assert again.stderr == _went_on(failing) and live.stderr == "ran 5.436563656918091\n" + _went_on(failing)
    assert _cells_not_checked(again) == _cells_not_checked(live) == [
        f"the rest of {failing} (code cell 2, In [2]): it stopped at line 1 with ZeroDivisionError, and the "
        f"run went on with the next cell (--allow-errors)",
        f"the rest of {failing} (code cell 3, In [4]): it stopped at line 1 with ValueError, and the run went "
        f"on with the next cell (--allow-errors)"]
    text = run("check", saved).stdout
    assert " ".join(text.split()).endswith(" ".join(f"- {note}" for note in _cells_not_checked(live)))


@pytest.mark.parametrize("command", ["render", "steps", "check"])
def test_the_help_describes_allow_errors(command):
    text = " ".join(run(command, "--help").stdout.split())
    assert "--allow-errors Notebooks only: after a cell raises, go on with the next cell" in text
    assert 'cells are named "code cell 2, In [7]"' in text
