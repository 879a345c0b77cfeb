"""The gradtrace command line: every command and format, errors, argument handling, atomic output."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
import tracer

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SENTINEL = "sentinel: gradtrace must not touch this\n"

SEED = """\
from pathlib import Path
import numpy as np
from engine import Variable, square, exp
Path(__file__).with_name("ran.txt").write_text("yes")
print("script says hi")
x = Variable(np.array(0.5))
a = square(x)
b = exp(a)
y = square(b)
y.backward()
print("grad", float(x.grad.data))
"""

FAILS = """\
import numpy as np
from engine import Function, Variable, square

class Boom(Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        raise FloatingPointError("boom")

x = Variable(np.array(0.5))
y = square(Boom()(square(x)))
y.backward()
"""

# the engine as a script of its own: its classes, then the run
STUDENT_ENGINE = (Path(__file__).parent / "tracer" / "engines" / "arrays_in_inputs.py").read_text() + """
x = Variable(np.array(0.5))
b = Square()(x)
y = Square()(b)
y.backward()
"""

ARGS = """\
import json, sys
import numpy as np
from engine import Variable, square
print(json.dumps(sys.argv[1:]))
x = Variable(np.array(2.0))
square(x).backward()
"""

FORWARD_ONLY = """\
import numpy as np
from engine import Variable, exp
x = Variable(np.array(1.0))
y = exp(x)
"""

NOTHING = 'print("no engine here")\n'

HIDDEN_ENGINE = """\
import numpy as np

class Tensor:
    def __init__(self, data):
        self.data, self.grad, self.creator = data, None, None

    def backward(self):
        self.grad = np.ones_like(self.data)
        funcs = [self.creator]
        while funcs:
            f = funcs.pop()
            gx = f.backward(f.outputs[0].grad)
            f.inputs[0].grad = gx
            if f.inputs[0].creator is not None:
                funcs.append(f.inputs[0].creator)

class Op:
    def __call__(self, x):
        out = Tensor(self.forward(x.data))
        self._link(x, out)
        return out

    def _link(self, x, out):
        out.creator, self.inputs, self.outputs = self, [x], [out]

class Sq(Op):
    def forward(self, x):
        return x ** 2

    def backward(self, gy):
        return 2 * self.inputs[0].data * gy

x = Tensor(np.array(3.0))
y = Sq()(Sq()(x))
y.backward()
"""


@pytest.fixture
def scripts(tmp_path):
    """The test scripts, written into a fresh directory."""
    for name, text in [("seed.py", SEED), ("fails.py", FAILS), ("args.py", ARGS),
                       ("forward_only.py", FORWARD_ONLY), ("nothing.py", NOTHING),
                       ("hidden.py", HIDDEN_ENGINE)]:
        (tmp_path / name).write_text(text)
    return tmp_path


def run(*args):
    """Invoke the CLI in-process (stdout and stderr kept apart)."""
    return CliRunner().invoke(cli.main, [str(a) for a in args], catch_exceptions=False)


def error_line(result) -> str:
    """The single ``Error: ...`` line on stderr."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def sentinel(path: Path) -> Path:
    path.write_text(SENTINEL)
    return path


def leftovers(directory: Path) -> list[str]:
    """Temporary files an atomic write would leave behind on failure."""
    return [p.name for p in directory.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]


# ----- help and version ----------------------------------------------------------------------------

def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.stdout == f"gradtrace, version {tracer.__version__}\n"


@pytest.mark.parametrize("command", [[], ["render"], ["steps"], ["expr"], ["samples"], ["check"]])
def test_every_command_has_help_with_examples(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout and "gradtrace" in result.stdout


# ----- render: formats ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, check", [
    ("g.dot", lambda b: b.startswith(b"digraph")),
    ("g.gv", lambda b: b.startswith(b"digraph")),
    ("g.svg", lambda b: b"<svg" in b and b"3.297" in b),
    ("g.png", lambda b: b.startswith(b"\x89PNG")),
    ("g.json", lambda b: json.loads(b)["schema"] == "gradtrace.trace/1"),
])
def test_render_every_format(scripts, name, check):
    out = scripts / name
    result = run("render", scripts / "seed.py", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert check(out.read_bytes())
    assert result.stdout == "script says hi\ngrad 3.297442541400256\n"
    assert result.stderr == f"wrote {out}\n"


@pytest.mark.system_dot
@pytest.mark.skipif(shutil.which("dot") is None, reason="PDF needs the system Graphviz dot")
def test_render_pdf(scripts):
    out = scripts / "g.pdf"
    result = run("render", scripts / "seed.py", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes().startswith(b"%PDF")


def test_render_html_player(scripts):
    out = scripts / "player.html"
    result = run("render", scripts / "seed.py", "-o", out)
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    assert text.lstrip().lower().startswith("<!doctype html") and "<svg" in text


def test_format_option_overrides_the_extension(scripts):
    out = scripts / "graph.txt"
    result = run("render", scripts / "seed.py", "-o", out, "--format", "dot")
    assert result.exit_code == 0 and out.read_text().startswith("digraph")


def test_stdout_output_is_dot_and_the_scripts_output_moves_to_stderr(scripts):
    result = run("render", scripts / "seed.py", "-o", "-")
    assert result.exit_code == 0
    assert result.stdout.startswith("digraph") and "script says hi" not in result.stdout
    assert "script says hi" in result.stderr
    svg = run("render", scripts / "seed.py", "-o", "-", "--format", "svg")
    assert svg.exit_code == 0 and "<svg" in svg.stdout


def test_binary_format_to_stdout_is_a_usage_error(scripts):
    result = run("render", scripts / "seed.py", "-o", "-", "--format", "png")
    assert result.exit_code == 2
    assert error_line(result) == ("Error: Invalid value for '-o' / '--output': png is binary and cannot "
                                  "go to stdout: give a file name, e.g. -o graph.png")
    assert not (scripts / "ran.txt").exists()


def test_picture_options_reach_the_picture(scripts):
    out = scripts / "g.dot"
    result = run("render", scripts / "seed.py", "-o", out, "--rankdir", "lr", "--no-values",
                 "--theme", "debug", "--precision", "2", "--grad-edges", "--legend")
    assert result.exit_code == 0, result.stderr
    dot = out.read_text()
    assert "rankdir=LR" in dot and ">3.3<" in dot and ">3.297<" not in dot  # --precision 2
    assert ">0.25<" not in dot  # --no-values: a's value is not shown


def test_frames_directory_gets_one_svg_per_step(scripts):
    frames = scripts / "frames"
    result = run("render", scripts / "seed.py", "--frames", frames)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in frames.iterdir()) == ["step-000.svg", "step-001.svg", "step-002.svg",
                                                         "step-003.svg"]
    assert result.stderr.endswith(f"wrote 4 frames to {frames}: before backward, and 3 steps\n")


# ----- render: errors and atomic output ---------------------------------------------------------------

def test_no_output_is_a_usage_error(scripts):
    result = run("render", scripts / "seed.py")
    assert result.exit_code == 2
    assert error_line(result) == "Error: give the output file with -o OUT (e.g. -o graph.svg), or --frames DIR"


def test_unknown_extension_is_a_usage_error_before_the_script_runs(scripts):
    out = sentinel(scripts / "graph.xyz")
    result = run("render", scripts / "seed.py", "-o", out)
    assert result.exit_code == 2
    assert error_line(result) == (
        f"Error: Invalid value for '-o' / '--output': cannot tell the format of {out} (the extension "
        f"'.xyz'): end the name with one of .dot .gv .htm .html .json .pdf .png .svg, or give --format")
    assert out.read_text() == SENTINEL and not (scripts / "ran.txt").exists()


def test_unknown_format_option(scripts):
    result = run("render", scripts / "seed.py", "-o", scripts / "g.svg", "--format", "bmp")
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: Invalid value for '-f' / '--format': 'bmp' is not one of")


def test_missing_output_directory_fails_before_the_script_runs(scripts):
    out = scripts / "missing" / "graph.svg"
    result = run("render", scripts / "seed.py", "-o", out)
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: directory {out.parent} does not exist: create it first "
                                  f"(mkdir -p {out.parent})")
    assert not (scripts / "ran.txt").exists() and result.stdout == ""


def test_output_under_a_regular_file_is_refused(scripts):
    blocker = sentinel(scripts / "file.txt")
    result = run("render", scripts / "seed.py", "-o", blocker / "out.svg")
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot write {blocker / 'out.svg'}: {blocker} is a file, "
                                  f"not a directory; choose another output path")
    assert blocker.read_text() == SENTINEL and not (scripts / "ran.txt").exists()


def test_output_that_is_a_directory_is_refused(scripts):
    target = scripts / "adir.svg"
    target.mkdir()
    result = run("render", scripts / "seed.py", "-o", target)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: {target} is a directory: give a file name, e.g. {target / 'graph.svg'}"
    assert not (scripts / "ran.txt").exists()


def test_render_failure_leaves_the_old_output_untouched(scripts, monkeypatch):
    out = sentinel(scripts / "graph.svg")

    def broken(*args, **kwargs):
        raise tracer.render.RenderError("bundled renderer failed on -Tsvg: syntax error in line 1")

    monkeypatch.setattr(tracer.render, "render", broken)
    result = run("render", scripts / "seed.py", "-o", out)
    assert result.exit_code == 1
    assert error_line(result) == "Error: bundled renderer failed on -Tsvg: syntax error in line 1"
    assert out.read_text() == SENTINEL and leftovers(scripts) == []


def test_missing_renderer_fails_before_the_script_runs(scripts, monkeypatch):
    monkeypatch.setattr(tracer.render, "find_renderer", lambda kind: None)
    out = sentinel(scripts / "graph.pdf")
    result = run("render", scripts / "seed.py", "-o", out)
    assert result.exit_code == 1
    assert error_line(result).startswith("Error: PDF needs the system Graphviz, which is not installed: ")
    assert out.read_text() == SENTINEL and not (scripts / "ran.txt").exists()


def test_missing_script_is_a_usage_error(tmp_path):
    result = run("render", tmp_path / "nope.py", "-o", tmp_path / "g.svg")
    assert result.exit_code == 2
    assert error_line(result) == f"Error: Invalid value for 'SCRIPT': File '{tmp_path / 'nope.py'}' does not exist."


def test_pass_beyond_the_run(scripts):
    out = sentinel(scripts / "g.svg")
    result = run("render", scripts / "seed.py", "-o", out, "--pass", "2", "--keep", "last")
    assert result.exit_code == 1
    assert error_line(result).startswith("Error: pass 2 does not exist: ")
    assert "1 backward pass" in error_line(result)
    assert out.read_text() == SENTINEL


def test_pass_beyond_the_last_one():
    result = run("steps", SAMPLES / "newton.py", "--iterations", "1", "--pass", "3")
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: pass 3 does not exist: {SAMPLES / 'newton.py'} made 2 backward "
                                  f"passes (choose 1..2, first, last, all)")
    result = run("render", SAMPLES / "newton.py", "--iterations", "1", "--pass", "3", "-o", "-")
    assert error_line(result).endswith("(choose 1..2, first, last)")  # render draws one pass


def test_first_pass_is_recorded_and_drawn():
    result = run("steps", SAMPLES / "newton.py", "--iterations", "2", "--pass", "first")
    assert result.exit_code == 0
    assert "pass 1 of 4: y.backward() with create_graph=True" in result.stdout


@pytest.mark.parametrize("value", ["0", "\u00b2", "\u0663"])  # zero, a superscript two, an Arabic-Indic three
def test_bad_pass_value_is_a_usage_error(scripts, value):
    result = run("render", scripts / "seed.py", "-o", scripts / "g.svg", "--pass", value)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: Invalid value for '--pass': '{value}' is not a pass: give last, "
                                  f"first or a pass number (1 = the first backward pass)")


# ----- render: the script's behaviour -------------------------------------------------------------

def test_script_that_raises_gets_its_traceback_and_a_partial_picture(scripts):
    out = sentinel(scripts / "g.dot")
    result = run("render", scripts / "fails.py", "-o", out)
    assert result.exit_code == 1
    err = result.stderr
    assert err.startswith("Traceback (most recent call last):\n")
    assert f'File "{scripts / "fails.py"}", line 13, in <module>' in err
    assert 'raise FloatingPointError("boom")' in err and "FloatingPointError: boom" in err
    assert "tracer" not in err.replace(str(scripts), "") and "cli.py" not in err
    assert err.endswith(f"wrote {out} (partial: the script raised FloatingPointError in backward step 2)\n")
    dot = out.read_text()
    assert dot.startswith("digraph") and "FloatingPointError: boom" in dot
    assert tracer.themes.DEBUG.error_fill in dot  # the debug theme marks the failing step


def test_script_that_exits_with_a_status(scripts):
    (scripts / "exits.py").write_text(FORWARD_ONLY + "import sys\nsys.exit(3)\n")
    out = scripts / "g.dot"
    result = run("render", scripts / "exits.py", "-o", out)
    assert result.exit_code == 1
    assert result.stderr == (f"{scripts / 'exits.py'} exited with status 3\n"
                             f"Warning: {scripts / 'exits.py'} exited with status 3 before it called backward(): "
                             f"showing the forward graph only\n"
                             f"wrote {out} (partial: the script exited with status 3)\n")
    assert "Exp" in out.read_text()


def test_script_that_never_calls_backward_draws_the_forward_graph(scripts):
    out = scripts / "g.dot"
    result = run("render", scripts / "forward_only.py", "-o", out)
    assert result.exit_code == 0
    assert result.stderr == (f"Warning: {scripts / 'forward_only.py'} never called backward(): "
                             f"showing the forward graph only\nwrote {out}\n")
    assert "Exp" in out.read_text()


def test_script_without_an_engine_warns_how_to_name_the_classes_and_keeps_the_output(scripts):
    out = sentinel(scripts / "g.dot")
    result = run("render", scripts / "nothing.py", "-o", out)
    assert result.exit_code == 1 and result.stdout == "no engine here\n"
    assert result.stderr.startswith(
        f"Warning: {scripts / 'nothing.py'} made no Function calls: no DeZero-style Function class was "
        f"found; name yours with --function-class NAME --variable-class NAME (functions must be objects "
        f"that are called, f(x): Function.apply and closures, as in PyTorch or micrograd, are not traced)\n")
    assert error_line(result) == (f"Error: nothing to draw, so {out} was not written: "
                                  f"{scripts / 'nothing.py'} left no Function call on a graph (see above)")
    assert out.read_text() == SENTINEL  # an empty picture replaced a good one


def test_a_class_name_that_names_nothing_says_so(scripts):
    result = run("steps", scripts / "seed.py", "--function-class", "Nope")
    assert ("Warning: no class named 'Nope' was defined or imported, so it was not traced: give the "
            "class's own name (e.g. Function) or module.Class") in result.stderr
    assert "name yours with --function-class" not in result.stderr  # the user did


def test_quiet_keeps_warnings_drops_info(scripts):
    result = run("-q", "render", scripts / "seed.py", "-o", scripts / "g.dot")
    assert result.exit_code == 0 and result.stderr == ""


def test_script_defining_its_own_engine():
    result = run("render", SAMPLES / "own_engine_bug.py", "-o", "-")
    assert result.exit_code == 0
    assert "Square" in result.stdout and "Add" in result.stdout
    assert "dy/dx = 96.0" in result.stderr


def test_class_names_override_auto_detection(scripts):
    missed = run("steps", scripts / "hidden.py")
    assert "made no Function calls" in missed.stderr
    found = run("steps", scripts / "hidden.py", "--function-class", "Op", "--variable-class", "Tensor")
    assert found.exit_code == 0, found.stderr
    assert "Sq#2" in found.stdout and "Sq#1" in found.stdout
    assert found.stderr == ""


# ----- argument handling ---------------------------------------------------------------------------

def script_argv(result) -> list:
    return json.loads(next(line for line in (result.stdout + result.stderr).splitlines() if line.startswith("[")))


def test_unknown_options_after_the_script_go_to_the_script(scripts):
    out = scripts / "g.svg"
    result = run("render", scripts / "args.py", "--lr", "0.1", "-o", out, "--epochs=3", "-v", "data.csv")
    assert result.exit_code == 0, result.stderr
    assert script_argv(result) == ["--lr", "0.1", "--epochs=3", "-v", "data.csv"]
    assert out.exists()


def test_everything_after_double_dash_goes_to_the_script(scripts):
    out = scripts / "g.svg"
    result = run("render", "-o", out, scripts / "args.py", "--", "-o", "model.pkl", "--pass", "3", "--")
    assert result.exit_code == 0, result.stderr
    assert script_argv(result) == ["-o", "model.pkl", "--pass", "3", "--"]
    assert out.exists() and not (scripts / "model.pkl").exists()


def test_gradtrace_options_before_the_script(scripts):
    out = scripts / "g.dot"
    result = run("render", "-o", out, "--rankdir", "LR", scripts / "args.py", "a", "b")
    assert result.exit_code == 0 and script_argv(result) == ["a", "b"]
    assert "rankdir=LR" in out.read_text()


def test_unknown_option_before_the_script_is_a_usage_error(scripts):
    result = run("render", "--lr", "0.1", scripts / "args.py", "-o", scripts / "g.svg")
    assert result.exit_code == 2
    assert error_line(result) == ("Error: no such option: --lr (options for the script go after SCRIPT, "
                                  "e.g. gradtrace render script.py --lr ...)")
    assert not (scripts / "g.svg").exists()


def test_theme_help_does_not_promise_findings_that_render_does_not_check():
    """render --theme debug said it shows "findings" in colour: render runs no checks."""
    for command in ("render", "expr"):
        text = " ".join(run(command, "--help").stdout.split())
        assert "debug (NaN/Inf and the failing step in colour; check -o draws its findings in it too)" in text
        assert "findings, failing step" not in text

# ----- steps ---------------------------------------------------------------------------------------

def test_steps_table_of_the_seed_example(scripts):
    result = run("steps", scripts / "seed.py")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[2:] == [
        "pass 1 of 1: y.backward(), 3 steps",
        "step  function  gen  gradient in  gradients out  accumulated .grad",
        "----  --------  ---  -----------  -------------  -----------------",
        "   1  Square#3    2  y: 1         b: 2.568       b: 2.568",
        "   2  Exp#2       1  b: 2.568     a: 3.297       a: 3.297",
        "   3  Square#1    0  a: 3.297     x: 3.297       x: 3.297",
        "leaf gradients after the pass: x: 3.297",
        "cleared by the engine after use (.grad is None at the end; retain_grad=True keeps them): a, b, y",
    ]


def test_steps_leaves_constants_out_of_leaf_gradients_and_writes_shapes_as_python(tmp_path):
    script = tmp_path / "c.py"
    script.write_text("import numpy as np\nimport engine as E\nx = E.Variable(np.arange(10.0), name='x')\n"
                      "y = E.sum(x * 3.0 - 1.0)\ny.backward()\n")
    lines = run("steps", script).stdout.splitlines()
    assert "leaf gradients after the pass: x: [3, 3, 3, ...] shape (10,)" in lines  # no "v3: 3", no "(10)"


def test_steps_of_a_pass_that_raised_before_its_first_step(tmp_path):
    script = tmp_path / "nonscalar.py"
    script.write_text("import numpy as np\nimport engine as E\nx = E.Variable(np.array([1.0, 2.0]), name='x')\n"
                      "y = E.square(x)\ny.backward()\n")
    out = run("steps", script).stdout
    # y came from Square: "the root has no creator" sent the reader looking for a detached y
    assert "(no steps: backward raised before its first step)" in out and "no creator" not in out, out
    assert "cleared" not in out, out  # y never had a gradient: backward raised before the seed


def test_steps_of_a_pass_that_raised_right_after_a_step_lists_nothing_as_cleared(tmp_path):
    script = tmp_path / "student.py"
    script.write_text(STUDENT_ENGINE)
    out = run("steps", script).stdout
    assert "   1  Square#2" in out, out
    assert "cleared" not in out, out  # b's gradient was never stored: the engine raised first
    assert ("never stored (a step returned a gradient, but backward raised before .grad held it): b"
            in out.splitlines()), out
    (data,) = json.loads(run("steps", script, "--json").stdout)["passes"]
    assert data["cleared"] == [] and [v["name"] for v in data["never_stored"]] == ["b"]  # as the table says


def test_steps_tells_apart_variables_that_share_a_name(tmp_path):
    script = tmp_path / "rebound.py"
    script.write_text("import numpy as np\nimport engine as E\nx = E.Variable(np.array(0.5), name='x')\n"
                      "x0 = x\nfor _ in range(2):\n    x = E.sin(x)\ny = x * x0\ny.backward()\n")
    out = run("steps", script).stdout
    assert "leaf gradients after the pass: x (v1): " in out  # the leaf and the rebound x were both "x"
    assert re.search(r"Mul#\d+ +\d+ +y: 1 +x \(v\d+\): ", out), out


def test_steps_reveals_the_own_engine_bug():
    result = run("steps", SAMPLES / "own_engine_bug.py")
    assert result.exit_code == 0
    assert "   5  Square#1 (run 2)    0  a: 16        x: 64          x: 96" in result.stdout
    fixed = run("steps", SAMPLES / "own_engine_bug.py", "--fixed")
    assert "(run 2)" not in fixed.stdout and "leaf gradients after the pass: x: 64" in fixed.stdout


def test_steps_json_is_clean_on_stdout(scripts):
    result = run("steps", "--json", scripts / "seed.py")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert "script says hi" in result.stderr
    assert data["schema"] == "gradtrace.steps/1"
    steps = data["passes"][0]["steps"]
    assert [s["op"] for s in steps] == ["Square", "Exp", "Square"]
    assert steps[-1]["inputs"][0]["name"] == "x"
    assert steps[-1]["inputs"][0]["accumulated"]["value"] == pytest.approx(3.297442541400256)
    # what the table prints under it, too
    (leaf,) = data["passes"][0]["leaves"]
    assert (leaf["name"], leaf["grad"]["value"]) == ("x", pytest.approx(3.297442541400256))
    assert {v["id"] for v in data["passes"][0]["cleared"]} == {2, 3, 4}
    assert data["passes"][0]["grads_written_after_steps"] is False


def test_steps_all_passes_with_script_arguments():
    result = run("steps", SAMPLES / "newton.py", "--iterations", "2", "--pass", "all")
    assert result.exit_code == 0
    titles = [line for line in result.stdout.splitlines() if line.startswith("pass ")]
    assert titles[0].startswith("pass 1 of 4: y.backward() with create_graph=True")
    assert len(titles) == 4


def test_steps_of_a_failing_script(scripts):
    result = run("steps", scripts / "fails.py")
    assert result.exit_code == 1
    assert "failed: FloatingPointError: boom" in result.stdout
    assert "error: FloatingPointError: boom" in result.stdout
    assert "Traceback (most recent call last):" in result.stderr


def test_steps_without_backward(scripts):
    result = run("steps", scripts / "forward_only.py")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == (f"Warning: {scripts / 'forward_only.py'} never called backward(): there are "
                             f"no backward steps to show\n")


def test_a_script_that_raised_before_backward_is_said_so_by_steps_render_and_check(tmp_path):
    """steps printed only the traceback: nothing of its own about the backward pass it lacks."""
    script = tmp_path / "early.py"
    script.write_text("import numpy as np\nimport engine as E\nx = E.Variable(np.array(2.0))\n"
                      "y = E.square(x)\nraise ValueError('oops')\ny.backward()\n")
    said = {}
    for command, extra in [("steps", []), ("render", ["-o", tmp_path / "g.svg"]),
                           ("check", ["-o", tmp_path / "c.svg"])]:
        result = run(command, *extra, script)
        assert result.exit_code == 1, (command, result.stderr)
        warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
        assert len(warnings) == 1, (command, result.stderr)
        said[command] = warnings[0]
    assert said["steps"] == (f"Warning: {script} raised ValueError before it called backward(): there are no "
                             f"backward steps to show")
    assert said["render"] == f"Warning: {script} raised ValueError before it called backward(): showing the forward graph only"
    assert said["check"] == (f"Warning: {script} raised ValueError before it called backward(): only the forward "
                             f"values can be checked")

# ----- expr ----------------------------------------------------------------------------------------

def test_expr_seed_picture(tmp_path):
    out = tmp_path / "e.svg"
    result = run("expr", "square(exp(square(x)))", "--let", "x=0.5", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "3.297" in out.read_text()


def test_expr_matrix_steps_and_stdout(tmp_path):
    result = run("expr", "sum(x @ W)", "--let", "x=[[1,2]]", "--let", "W=[[1,2],[3,4]]", "--steps")
    assert result.exit_code == 0
    assert "leaf gradients after the pass: x: [[3, 7]], W: [[1, 1], [2, 2]]" in result.stdout
    dot = run("expr", "x ** 2", "--let", "x=3", "-o", "-")
    assert dot.exit_code == 0 and dot.stdout.startswith("digraph") and "Pow" in dot.stdout


@pytest.mark.parametrize("lets, message", [
    (["x"], "Error: Invalid value for '--let': 'x' is not NAME=VALUE: write e.g. --let x=0.5 or --let 'W=[[1,2],[3,4]]'"),
    (["x=[1,[2]]"], "Error: Invalid value for '--let': --let x=[1,[2]]: the value must be a number or a "
                    "nested list of numbers of equal lengths, e.g. 0.5, pi/2 or [[1,2],[3,4]]"),
    (["x=open('f')"], "Error: Invalid value for '--let': --let x=open('f'): the value must be a number or "
                      "a nested list of numbers of equal lengths, e.g. 0.5, pi/2 or [[1,2],[3,4]]"),
])
def test_expr_bad_let(tmp_path, lets, message):
    out = sentinel(tmp_path / "e.svg")
    result = run("expr", "square(x)", *[a for let in lets for a in ("--let", let)], "-o", out)
    assert result.exit_code == 2
    assert error_line(result) == message
    assert out.read_text() == SENTINEL


@pytest.mark.parametrize("source, message", [
    ("__import__('os').system('touch pwned')",
     "attribute access at column 1 is not allowed: use only engine functions, numbers, names bound with "
     "--let and + - * / ** @ ( ) [ ]"),
    ("x.data", "attribute access at column 1 is not allowed: use only engine functions, numbers, names "
               "bound with --let and + - * / ** @ ( ) [ ]"),
    ("(lambda: __import__('os').system('touch pwned'))()",
     "calling anything but an engine function by name at column 2 is not allowed: use only engine "
     "functions, numbers, names bound with --let and + - * / ** @ ( ) [ ]"),
    ("exec('import os')", "unknown function 'exec' at column 1: use one of square, exp, log, sin, cos, "
                          "tanh, sigmoid, relu, pow, add, sub, mul, div, neg, reshape, transpose, "
                          "broadcast_to, sum, sum_to, matmul, linear, clip, max, min, mean_squared_error, "
                          "softmax, log_softmax, softmax_cross_entropy"),
])
def test_expr_malicious(tmp_path, monkeypatch, source, message):
    monkeypatch.chdir(tmp_path)
    out = sentinel(tmp_path / "e.svg")
    result = run("expr", source, "--let", "x=1", "-o", out)
    assert result.exit_code == 2
    assert error_line(result) == f"Error: Invalid value for 'EXPRESSION': {message}"
    assert out.read_text() == SENTINEL and not (tmp_path / "pwned").exists()


def test_expr_engine_error_writes_the_partial_picture(tmp_path):
    out = tmp_path / "e.dot"
    result = run("expr", "sum(x @ W)", "--let", "x=[[1,2,3]]", "--let", "W=[[1,2],[3,4]]", "-o", out)
    assert result.exit_code == 1
    assert error_line(result).startswith(
        "Error: the expression raised ShapeError: matmul: shapes (1, 3) and (2, 2) do not fit")
    assert "gufunc" not in error_line(result)  # numpy's own words repeated ours
    assert error_line(result).endswith("(check the shapes of the --let values and the arguments of the functions)")
    assert result.stderr.index("wrote ") < result.stderr.index("Error:")  # the picture, then the error
    assert out.read_text().startswith("digraph")
    unrelated = run("expr", "x[::0]", "--let", "x=[1,2]", "--steps")
    assert error_line(unrelated) == "Error: the expression raised ValueError: slice step cannot be zero"


# ----- samples -------------------------------------------------------------------------------------

def test_samples_lists_every_sample_with_a_sentence():
    result = run("samples")
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == sorted(p.stem for p in SAMPLES.glob("*.py") if not p.name.startswith("_"))
    assert "seed_example" in names and "own_engine_bug" in names


@pytest.mark.slow
def test_samples_render_all(tmp_path):
    out = tmp_path / "gallery"
    result = run("samples", "--out", out, "--format", "dot")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.stem for p in out.iterdir()) == sorted(
        p.stem for p in SAMPLES.glob("*.py") if not p.name.startswith("_"))
    count = len(list(out.iterdir()))
    assert count >= 11 and result.stderr.rstrip().endswith(f"wrote {count} of {count} samples to {out}")
    assert result.stdout == ""


def test_samples_out_with_missing_parent(tmp_path):
    result = run("samples", "--out", tmp_path / "a" / "b")
    assert result.exit_code == 1
    assert error_line(result) == f"Error: directory {tmp_path / 'a'} does not exist: create it first (mkdir -p {tmp_path / 'a'})"


# ----- the installed command, for real ------------------------------------------------------------

def gradtrace_command() -> tuple[list[str], dict]:
    """The console script next to the interpreter (CI installs it), else ``python -m cli``."""
    script = Path(sys.executable).parent / "gradtrace"
    env = dict(os.environ)
    if script.exists():
        return [str(script)], env
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return [sys.executable, "-m", "cli"], env


def real(*args, cwd):
    command, env = gradtrace_command()
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120, check=False)


def test_real_render_seed_sample_and_steps(tmp_path):
    done = real("render", SAMPLES / "seed_example.py", "-o", "seed.svg", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "y = 1.648721\ndy/dx = 3.297443\n" and done.stderr == "wrote seed.svg\n"
    assert "<svg" in (tmp_path / "seed.svg").read_text()
    steps = real("steps", SAMPLES / "own_engine_bug.py", cwd=tmp_path)
    assert steps.returncode == 0 and "Square#1 (run 2)" in steps.stdout


def test_real_failures_exit_codes_and_untouched_output(tmp_path, scripts):
    out = sentinel(tmp_path / "g.svg")
    raised = real("render", scripts / "fails.py", "-o", "partial.svg", cwd=tmp_path)
    assert raised.returncode == 1 and "FloatingPointError: boom" in raised.stderr
    assert "partial: the script raised FloatingPointError" in raised.stderr
    missing = real("render", scripts / "seed.py", "-o", "no/dir/g.svg", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr == "Error: directory no/dir does not exist: create it first (mkdir -p no/dir)\n"
    evil = real("expr", "__import__('os').system('touch pwned')", "-o", out, cwd=tmp_path)
    assert evil.returncode == 2 and evil.stderr.splitlines()[-1].startswith(
        "Error: Invalid value for 'EXPRESSION': attribute access at column 1 is not allowed")
    assert out.read_text() == SENTINEL and not (tmp_path / "pwned").exists()
    assert real("--version", cwd=tmp_path).stdout.startswith("gradtrace, version ")


# ----- check ---------------------------------------------------------------------------------------

def test_check_clean_script_exits_0(scripts):
    result = run("check", scripts / "seed.py")
    assert result.exit_code == 0
    assert result.stdout.endswith("gradtrace check: no problems found in 3 calls and 1 backward pass.\n")


def test_check_finds_the_own_engine_bug_and_draws_it(tmp_path):
    out = tmp_path / "findings.dot"
    result = run("check", SAMPLES / "own_engine_bug.py", "-o", out)
    assert result.exit_code == 1
    assert "gradtrace check: 3 problems (3 errors)" in result.stdout
    assert "repeated-step at Square (f1), pass 1, step 5" in result.stdout
    assert tracer.themes.DEBUG.finding_border in out.read_text()
    fixed = run("check", SAMPLES / "own_engine_bug.py", "--fixed")
    assert fixed.exit_code == 0, fixed.stdout


def test_check_json(tmp_path):
    result = run("check", "--json", SAMPLES / "own_engine_bug.py")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["schema"] == "gradtrace.check/1"
    assert [f["kind"] for f in data["findings"]] == ["premature-backward", "repeated-step", "leaf-gradient"]
    assert "dy/dx = 96.0" in result.stderr


def test_check_unknown_kind_is_a_usage_error():
    result = run("check", SAMPLES / "reuse.py", "--only", "typo")
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: Invalid value for '--only': unknown check typo: choose from nan-inf,")


def test_check_script_that_raises(scripts):
    result = run("check", scripts / "fails.py")
    assert result.exit_code == 1 and "FloatingPointError: boom" in result.stderr


def test_a_class_that_cannot_be_hooked_is_a_warning(tmp_path):
    script = tmp_path / "odd.py"
    script.write_text(
        "class Function:\n"
        "    __call__ = staticmethod(lambda *a: None)\n"
        "    def forward(self, x): return x\n"
        "    def backward(self, gy): return gy\n")
    result = run("render", script, "-o", tmp_path / "g.dot")
    assert "Warning: Function.__call__ is a staticmethod, not a plain method" in result.stderr


# ----- adversarial review: each test failed before its fix ------------------------------------------

CHDIR = """\
import os
import numpy as np
from engine import Variable, square
os.makedirs("elsewhere", exist_ok=True)
os.chdir("elsewhere")
x = Variable(np.array(0.5))
y = square(square(x))
y.backward()
"""

EARLY_FAIL = """\
import numpy as np
from engine import Variable, square
value = float(input("value? "))
"""


def test_a_script_that_changes_directory_does_not_move_the_output(scripts, monkeypatch):
    (scripts / "chdir.py").write_text(CHDIR)
    monkeypatch.chdir(scripts)
    result = run("render", "chdir.py", "-o", "graph.svg", "--frames", "frames")
    assert result.exit_code == 0, result.stderr
    assert (scripts / "graph.svg").exists() and not (scripts / "elsewhere" / "graph.svg").exists()
    assert sorted(p.name for p in (scripts / "frames").iterdir()) == ["step-000.svg", "step-001.svg",
                                                                      "step-002.svg"]
    assert os.getcwd() == str(scripts)


def test_samples_that_change_directory_are_written_where_asked(tmp_path, monkeypatch):
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "chdir.py").write_text('"""Changes directory."""\n' + CHDIR)
    monkeypatch.chdir(tmp_path)
    result = run("samples", "--dir", "samples", "--out", "gallery", "--format", "dot")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "gallery" / "chdir.dot").exists()


def test_frames_an_earlier_run_left_are_removed(scripts):
    frames = scripts / "frames"
    frames.mkdir()
    for k in range(1, 9):
        (frames / f"step-{k:03d}.svg").write_text("old")
    (frames / "notes.txt").write_text("mine")
    result = run("render", scripts / "seed.py", "--frames", frames)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in frames.iterdir()) == ["notes.txt", "step-000.svg", "step-001.svg",
                                                        "step-002.svg", "step-003.svg"]
    assert result.stderr.endswith(f"wrote 4 frames to {frames}: before backward, and 3 steps "
                                  f"(removed 5 old frames)\n")


def test_a_frames_directory_made_for_nothing_is_removed(scripts):
    frames = scripts / "frames"
    result = run("render", scripts / "forward_only.py", "--frames", frames)
    assert result.exit_code == 1
    assert error_line(result).startswith("Error: no backward step to show")
    assert not frames.exists()


def test_html_with_step_is_a_usage_error_before_the_script_runs(scripts):
    result = run("render", scripts / "seed.py", "-o", scripts / "p.html", "--step", "1")
    assert result.exit_code == 2
    assert "leave out --step" in error_line(result)
    # the player opens at a step from its URL's fragment: the message says how
    assert f"open {scripts / 'p.html'}#step=1 to start at step 1" in error_line(result)
    assert not (scripts / "ran.txt").exists() and not (scripts / "p.html").exists()


def test_the_player_is_titled_by_the_script_its_root_and_where_it_failed(scripts, tmp_path):
    """Every page was titled "gradtrace: backward pass 1, 4 steps": several open tabs read alike."""
    def title(path):
        return re.search(r"<title>(.*?)</title>", path.read_text(encoding="utf-8")).group(1)

    assert run("render", scripts / "seed.py", "-o", scripts / "p.html").exit_code == 0
    assert title(scripts / "p.html") == "seed.py: backward pass 1 from y, 3 steps \u2014 gradtrace"
    assert "<h1>seed.py: backward pass 1 from y" in (scripts / "p.html").read_text(encoding="utf-8")
    result = run("render", scripts / "fails.py", "-o", scripts / "f.html")
    assert result.exit_code != 0 and "wrote" in result.stderr
    assert title(scripts / "f.html") == ("fails.py: backward pass 1 from y, 2 steps, failed at step 2 "
                                         "(FloatingPointError) \u2014 gradtrace")
    # the file name only: the same run drawn from another folder gives the same bytes
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "seed.py").write_text(SEED)
    assert run("render", elsewhere / "seed.py", "-o", elsewhere / "p.html").exit_code == 0
    assert (elsewhere / "p.html").read_bytes() == (scripts / "p.html").read_bytes()
    # a saved trace drawn again is titled by the file it was read from
    assert run("render", scripts / "seed.py", "-o", scripts / "seed-run.json").exit_code == 0
    assert run("render", scripts / "seed-run.json", "-o", scripts / "again.html").exit_code == 0
    assert title(scripts / "again.html").startswith("seed-run.json: backward pass 1 from y, 3 steps")
    assert run("render", scripts / "forward_only.py", "-o", scripts / "still.html").exit_code == 0
    assert title(scripts / "still.html") == "forward_only.py: no backward steps \u2014 gradtrace"


def test_html_of_a_run_without_backward_steps_is_still_written(scripts):
    out = scripts / "p.html"
    result = run("render", scripts / "forward_only.py", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "Warning: there is no backward step to play" in result.stderr
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and "<?xml" not in text


def test_format_contradicting_a_known_extension_is_a_usage_error(scripts):
    out = sentinel(scripts / "graph.svg")
    result = run("render", scripts / "seed.py", "-o", out, "--format", "png")
    assert result.exit_code == 2
    assert error_line(result).endswith(f"{out} is named as svg but --format is png: name the file "
                                       f"{scripts / 'graph'}.png, or leave out --format")
    assert out.read_text() == SENTINEL and not (scripts / "ran.txt").exists()
    assert run("render", scripts / "seed.py", "-o", scripts / "g.gv", "--format", "dot").exit_code == 0


def test_a_directory_as_output_is_named_as_such(scripts):
    result = run("render", scripts / "seed.py", "-o", scripts)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: {scripts} is a directory: give a file name, e.g. {scripts / 'graph.svg'}"
    assert not (scripts / "ran.txt").exists()


def test_a_script_failing_before_its_first_call_gets_no_engine_hint(scripts):
    (scripts / "early.py").write_text(EARLY_FAIL)
    out = scripts / "g.svg"
    result = CliRunner().invoke(cli.main, ["render", str(scripts / "early.py"), "-o", str(out)], input="")
    assert result.exit_code == 1
    assert "EOFError" in result.stderr and "--function-class" not in result.stderr
    assert "Warning: " + str(scripts / "early.py") + " stopped before its first Function call" in result.stderr
    assert not out.exists()  # nothing to draw


def test_sys_exit_with_a_message(scripts):
    (scripts / "quits.py").write_text(SEED + 'import sys\nsys.exit("bad config: no data dir")\n')
    out = scripts / "g.svg"
    result = run("render", scripts / "quits.py", "-o", out)
    assert result.exit_code == 1
    assert "bad config: no data dir\n" in result.stderr
    assert "quits.py exited with status 1\n" in result.stderr
    assert "(partial: the script exited with status 1)" in result.stderr


def test_a_render_warning_is_shown_also_when_the_export_then_fails(scripts, monkeypatch):
    import warnings as w

    def export(trace, fmt, **options):
        w.warn("the graph has 40001 nodes; laying it out may take a long time")
        raise tracer.OutputError("renderer crashed")

    monkeypatch.setattr(cli._export, "export", export)
    result = run("render", scripts / "seed.py", "-o", scripts / "g.svg")
    assert result.exit_code == 1
    assert "Warning: the graph has 40001 nodes" in result.stderr
    assert result.stderr.index("Warning: the graph") < result.stderr.index("Error: renderer crashed")


def test_top_level_help_says_what_each_command_does():
    result = run("--help")
    assert "Run SCRIPT [ARGS]..." not in result.stdout
    assert "render   Run a script and draw its computation graph." in result.stdout
    assert "steps    Run a script and print the backward order as a table." in result.stdout
    assert "check    Run a script and report the usual backprop bugs." in result.stdout


def test_expr_may_start_with_a_minus(tmp_path):
    result = run("expr", "-x**2", "--let", "x=3", "--steps")
    assert result.exit_code == 0, result.stderr
    assert "leaf gradients after the pass: x: -6" in result.stdout
    result = run("expr", "--let", "x=3", "-o", "-", "-x")
    assert result.exit_code == 0 and result.stdout.startswith("digraph")
    unknown = run("expr", "x", "--let", "x=1", "-z")
    assert unknown.exit_code == 2 and error_line(unknown) == "Error: No such option '-z'."


def test_expr_numpy_warnings_are_warning_lines():
    result = run("expr", "x ** 99999", "--let", "x=2", "--steps")
    assert result.exit_code == 0, result.stderr
    assert "Warning: overflow encountered in power\n" in result.stderr
    assert "RuntimeWarning" not in result.stderr and ".py:" not in result.stderr


def test_steps_table_keeps_odd_names_on_one_line_and_aligned(scripts):
    (scripts / "names.py").write_text(
        "import numpy as np\nfrom engine import Variable, square\n"
        "x = Variable(np.array(0.5), name='a\\nb')\ny = square(x)\ny.name = '값'\ny.backward()\n")
    result = run("steps", scripts / "names.py")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "pass 1 of 1: 값.backward(), 1 step"
    header, rule, row = lines[1], lines[2], lines[3]
    assert row.split() == ["1", "Square#1", "0", "값:", "1", "a\\nb:", "1", "a\\nb:", "1"]
    column = header.index("gradients out")
    assert row.index("a\\nb") + 1 == column  # after 값: one character, two terminal columns
    assert lines[4] == "leaf gradients after the pass: a\\nb: 1"


def test_check_output_with_an_unknown_extension_does_not_point_at_a_missing_format_option(scripts):
    result = run("check", scripts / "seed.py", "-o", scripts / "findings.xyz")
    assert result.exit_code == 2
    assert error_line(result).endswith("end the name with one of .dot .gv .htm .html .json .pdf .png .svg")
    assert not (scripts / "ran.txt").exists()


def test_a_layout_over_the_timeout_stops_with_the_ways_out(tmp_path):
    script = tmp_path / "big.py"
    script.write_text(
        "import numpy as np\n"
        "from engine import Variable\n"
        "x = Variable(np.array(0.5))\n"
        "y = x\n"
        "for _ in range(3000):\n"
        "    y = y * x\n"
        "y.backward()\n")
    out = sentinel(tmp_path / "big.svg")
    result = run("render", script, "-o", out, "--timeout", "0.05")
    assert result.exit_code == 1
    assert error_line(result).startswith("Error: bundled renderer took more than 0.05 s: allow more "
                                         "(--timeout 600, or 0 for no limit)")
    assert "--format dot" in error_line(result) and "another pass (--pass)" in error_line(result)
    assert out.read_text() == SENTINEL
    # the player and frames are laid out once too, under the same limit (it was not passed on)
    player, frames_dir = sentinel(tmp_path / "big.html"), tmp_path / "frames"
    for extra in (["-o", player], ["--frames", frames_dir]):
        result = run("render", script, *extra, "--timeout", "0.05")
        assert result.exit_code == 1 and "took more than 0.05 s" in error_line(result)
    assert player.read_text() == SENTINEL and not frames_dir.exists()


@pytest.mark.parametrize("args, says", [
    (["check", "{seed}", "--tolerance", "nan"], "NaN is not a tolerance"),
    (["render", "{seed}", "--timeout", "nan", "-o", "{out}"], "NaN is not a number of seconds"),
])
def test_nan_options_are_usage_errors_before_the_script_runs(scripts, tmp_path, args, says):
    out = tmp_path / "g.svg"
    result = run(*[a.format(seed=scripts / "seed.py", out=out) for a in args])
    assert result.exit_code == 2 and says in error_line(result)
    assert not (scripts / "ran.txt").exists() and not out.exists()  # refused before the run


def test_an_infinite_timeout_means_no_limit(scripts, tmp_path):
    out = tmp_path / "g.svg"
    result = run("render", scripts / "seed.py", "--timeout", "inf", "-o", out)
    assert result.exit_code == 0 and out.read_text().startswith("<?xml")


@pytest.mark.parametrize("where", ["group", "before script", "after script"])
def test_quiet_works_wherever_it_is_given(scripts, tmp_path, where):
    out = tmp_path / "g.svg"
    args = {"group": ["-q", "render", scripts / "seed.py", "-o", out],
            "before script": ["render", "-q", scripts / "seed.py", "-o", out],
            "after script": ["render", scripts / "seed.py", "-o", out, "-q"]}[where]
    result = run(*args)
    assert result.exit_code == 0 and out.exists()
    assert "wrote" not in result.stderr


def test_quiet_on_expr(tmp_path):
    result = run("expr", "x * x", "--let", "x=2", "-o", tmp_path / "e.svg", "-q")
    assert result.exit_code == 0 and result.stderr == "" and (tmp_path / "e.svg").exists()


def test_pass_last_with_a_keep_that_left_it_out_says_which_pass_is_shown(tmp_path):
    out = tmp_path / "g.svg"
    result = run("render", SAMPLES / "newton.py", "--keep", "first", "--pass", "last", "-o", out)
    assert result.exit_code == 0 and out.exists()
    assert ("Warning: showing pass 1, the last pass kept: --keep first did not keep pass 20 of the "
            "run's 20 (use --keep all or --keep 20)") in result.stderr
    quiet = run("render", SAMPLES / "newton.py", "--keep", "all", "--pass", "last", "-o", out)
    assert "Warning" not in quiet.stderr


def test_a_pass_that_was_not_kept_names_the_cli_fix(tmp_path):
    result = run("steps", SAMPLES / "newton.py", "--keep", "last", "--iterations", "2", "--pass", "2")
    assert result.exit_code == 1
    assert error_line(result).endswith("; record it with --keep all or --keep 2")  # not keep='all' first


@pytest.mark.parametrize("keep", ["first", "3"])
def test_a_keep_that_can_never_keep_the_pass_asked_for_is_refused_before_the_run(tmp_path, keep):
    script = tmp_path / "s.py"
    script.write_text("from pathlib import Path\nPath(__file__).with_name('ran').write_text('')\n")
    result = run("steps", script, "--keep", keep, "--pass", "2")
    assert result.exit_code == 2 and not (tmp_path / "ran").exists()
    assert error_line(result) == (f"Error: --pass 2 is never kept with --keep {keep}: leave out --keep "
                                  f"(pass 2 is then kept), or give --keep 2 or --keep all")


def test_a_saved_trace_is_drawn_again_without_running_anything(tmp_path):
    direct, saved, again = tmp_path / "a.svg", tmp_path / "t.json", tmp_path / "b.svg"
    assert run("render", SAMPLES / "generations.py", "-o", direct).exit_code == 0
    assert run("render", SAMPLES / "generations.py", "-o", saved).exit_code == 0
    result = run("render", saved, "-o", again)
    assert result.exit_code == 0 and result.stdout == ""  # the script did not run: it prints
    assert again.read_bytes() == direct.read_bytes()
    steps = run("steps", saved)
    assert steps.exit_code == 0 and steps.stdout.startswith("pass 1 of 1")
    assert run("steps", SAMPLES / "generations.py").stdout.endswith(steps.stdout)  # after its prints


def test_a_saved_trace_takes_no_script_arguments_and_must_be_a_trace(tmp_path):
    saved = tmp_path / "t.json"
    run("render", SAMPLES / "reuse.py", "-o", saved)
    result = run("render", saved, "--lr", "1", "-o", tmp_path / "g.svg")
    assert result.exit_code == 2 and "is a saved trace, which takes no script arguments" in error_line(result)
    (tmp_path / "other.json").write_text('{"x": 1}')
    result = run("render", tmp_path / "other.json", "-o", tmp_path / "g.svg")
    assert result.exit_code == 1 and "not a gradtrace.trace/1 document" in error_line(result)
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.parametrize("change, command, says", [
    (lambda d: d["variables"][0].update(dtype="float6"), ["check"], "variable 1 has dtype 'float6', which numpy"),
    (lambda d: d["passes"][-1]["steps"][0].update(inner_calls=[9999]), ["render", "-o", "out.html"],
     "names call 9999 in its inner_calls, which the document does not hold"),
])
def test_a_damaged_saved_trace_is_one_error_line_not_an_internal_error(tmp_path, change, command, says):
    saved = tmp_path / "t.json"
    run("render", SAMPLES / "newton.py", "-o", saved, "--keep", "all")
    data = json.loads(saved.read_text())
    change(data)
    saved.write_text(json.dumps(data))
    args = [tmp_path / a if a.startswith("out") else a for a in command]
    result = run(args[0], saved, *args[1:])
    assert result.exit_code == 1 and not (tmp_path / "out.html").exists()
    line = error_line(result)
    assert line.startswith("Error: malformed gradtrace.trace/1 document (ValueError: ") and says in line, line
    assert line.endswith("re-export it with 'gradtrace render ... -o trace.json'")


def test_check_of_a_script_that_raised_says_how_far_it_looked(tmp_path):
    script = tmp_path / "raises.py"
    script.write_text("import numpy as np\nfrom engine import Variable, square\n"
                      "square(Variable(np.array(2.0))).backward()\nraise ValueError('boom')\n")
    result = run("check", script)
    assert result.exit_code == 1 and "ValueError: boom" in result.stderr
    assert result.stdout == ("gradtrace check: no problems found in 1 call and 1 backward pass, up to "
                             "where the run ended with ValueError.\n")


def test_check_without_pass_reports_the_forward_nan_that_ended_the_run(tmp_path):
    script = tmp_path / "train_nan.py"
    script.write_text("import numpy as np\nfrom engine import Variable, log, square\n"
                      "w = Variable(np.array(2.0), name='w')\n"
                      "for step in range(3):\n"
                      "    with np.errstate(all='ignore'):\n"
                      "        loss = log(square(w) + 1.0 - 3.0 * step)\n"
                      "    if not np.isfinite(loss.data):\n"
                      "        raise FloatingPointError('loss is nan')\n"
                      "    w.cleargrad()\n    loss.backward()\n    w.data -= 0.1 * w.grad.data\n")
    result = run("check", script)
    assert result.exit_code == 1 and "1. [error] nan-inf at Log (f" in result.stdout
    chosen = run("check", script, "--pass", "last")  # the pass chosen: its graph only
    assert "no problems found" in chosen.stdout
    every = run("check", script, "--pass", "all")  # all passes: every recorded call again
    assert "1. [error] nan-inf at Log (f" in every.stdout


def test_a_saved_trace_says_which_pass_it_shows_and_what_it_ignores(tmp_path):
    saved = tmp_path / "t.json"
    assert run("render", SAMPLES / "newton.py", "-o", saved).exit_code == 0  # keeps the last pass only
    result = run("render", saved, "--pass", "first", "--keep", "all", "-o", tmp_path / "g.svg")
    assert result.exit_code == 0
    assert f"Warning: --keep only applies when a script runs; {saved} is drawn as it was saved" in result.stderr
    assert (f"Warning: showing pass 20, the first pass {saved} holds (the run made 20; save it with "
            f"--keep all to have them all)") in result.stderr


def test_output_to_our_own_stdout_stays_clean_of_the_scripts_prints(scripts, tmp_path):
    out = tmp_path / "g.dot"
    with open(out, "wb") as handle:  # `gradtrace render seed.py -o /dev/stdout -f dot > g.dot`
        done = subprocess.run([sys.executable, "-m", "cli", "render", str(scripts / "seed.py"), "-o",
                               "/dev/stdout", "-f", "dot"], stdout=handle, stderr=subprocess.PIPE,
                              text=False, cwd=str(ROOT), check=False)
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("digraph") and b"script says hi" in done.stderr


def test_a_pass_a_saved_trace_does_not_hold_says_how_to_record_it(tmp_path):
    saved = tmp_path / "t.json"
    assert run("render", SAMPLES / "newton.py", "-o", saved).exit_code == 0  # holds pass 20 only
    result = run("steps", saved, "--pass", "2")
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: pass 2 is not in {saved} (it holds pass 20 of 20): run the "
                                  f"script again with --keep all (or --keep 2) -o t.json")
    beyond = run("steps", saved, "--pass", "21")
    assert "pass 21 does not exist: the run made 20 backward passes" in error_line(beyond)


@pytest.mark.parametrize("command", [["render", "--format", "dot"], ["render", "-f", "json"], ["check"]])
def test_an_output_that_is_the_script_itself_is_refused_and_the_script_kept(scripts, command):
    script = scripts / "seed.py"
    before = script.read_text()
    link = scripts / "graph.svg"
    link.symlink_to(script)
    for out in (script, link):
        result = run(command[0], script, "-o", out, *command[1:])
        assert result.exit_code == 2, result.output
        assert f"is {script} itself, which would be overwritten: choose another output path" in error_line(result)
    assert script.read_text() == before and link.is_symlink()


@pytest.mark.parametrize("raised", ["BaseException('odd')", "GeneratorExit()"])
def test_a_script_raising_a_base_exception_is_reported_as_its_error(scripts, raised):
    script = scripts / "base.py"
    script.write_text(SEED + f"\nraise {raised}\n")
    result = run("render", script, "-o", scripts / "g.svg")
    assert result.exit_code == 1
    assert "(partial: the script raised" in result.stderr and (scripts / "g.svg").exists()
    assert "cli.py" not in result.stderr


def test_frames_that_cannot_all_be_written_write_nothing(scripts):
    frames_dir = scripts / "ff"
    (frames_dir / "step-002.svg").mkdir(parents=True)  # in the way of the second frame
    old = sentinel(frames_dir / "step-009.svg")
    out = sentinel(scripts / "g.svg")
    result = run("render", SAMPLES / "generations.py", "-o", out, "--frames", frames_dir)
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot write frame {frames_dir / 'step-002.svg'}: a directory has "
                                  f"that name; remove it or choose another frames directory")
    assert sorted(p.name for p in frames_dir.iterdir()) == ["step-002.svg", "step-009.svg"]
    assert old.read_text() == SENTINEL and out.read_text() == SENTINEL


def test_an_empty_frames_directory_name_is_a_usage_error(scripts):
    result = run("render", scripts / "seed.py", "--frames", "")
    assert result.exit_code == 2 and "an empty name is no directory: give one, e.g. frames/" in result.stderr


def test_expr_without_a_function_call_says_what_to_write(tmp_path):
    out = sentinel(tmp_path / "e.svg")
    result = run("expr", "x", "--let", "x=1", "-o", out)
    assert result.exit_code == 2 and out.read_text() == SENTINEL
    assert "'x' calls no function, so there is no graph to draw: use one, e.g. square(x)" in error_line(result)
    assert "with block" not in result.stderr and "function_cls" not in result.stderr


def test_expr_starting_with_two_dashes_says_where_it_goes(tmp_path):
    result = run("expr", "--x", "--let", "x=1", "-o", tmp_path / "e.svg")
    assert result.exit_code == 2
    assert error_line(result) == ("Error: No such option: --x (an expression that starts with -- goes after "
                                  "a lone --: gradtrace expr [OPTIONS] -- '--x')")
    assert run("expr", "--let", "x=1", "-o", tmp_path / "e.svg", "--", "--x").exit_code == 0


def test_calls_made_under_no_grad_are_not_called_no_calls(scripts):
    script = scripts / "ng.py"
    script.write_text("import numpy as np\nimport engine as E\nx = E.Variable(np.array(2.0))\n"
                      "with E.no_grad():\n    y = E.square(E.square(x))\ny.backward()\n")
    result = run("steps", script)
    assert "stopped before its first Function call" not in result.stderr
    forward = run("render", script, "-o", scripts / "g.dot")
    assert forward.exit_code == 0 and "Square" in (scripts / "g.dot").read_text()  # y's creator is drawn
    script.write_text(script.read_text().replace("y.backward()\n", "x.backward()\n"))
    unkept = run("steps", script)
    # x.backward() is why: its pass began at a leaf (not "made under no_grad() ..., or freed")
    assert (f"Warning: {script} made 2 Function calls, but none is on a graph that was kept: the backward "
            f"pass started from x, which no Function made, so it has no steps and no Function call on its "
            f"graph: call backward() on the computation's result (y = f(x); y.backward())") in unkept.stderr


def test_check_says_why_a_backward_from_a_no_grad_result_ran_no_step(scripts):
    script = scripts / "ng.py"
    script.write_text("import numpy as np\nimport engine as E\nx = E.Variable(np.array(2.0), name='x')\n"
                      "with E.no_grad():\n    y = E.square(x)\ny.name = 'y'\ny.backward()\n")
    result = run("check", script)
    assert result.exit_code == 1
    assert ("y.backward() ran no backward step, though y (v2) came from Square (f1): that call kept no "
            "link to it") in " ".join(result.stdout.split())
    assert "outside `with no_grad():`" in result.stdout


def test_check_of_a_run_that_recorded_nothing_is_an_error_not_a_clean_bill(scripts):
    result = run("check", scripts / "nothing.py")
    assert result.exit_code == 1 and "no problems found" not in result.stdout
    assert error_line(result) == (f"Error: nothing to check: {scripts / 'nothing.py'} left no Function call "
                                  f"on a graph (see above)")


@pytest.mark.parametrize("extra", [[], ["--json"], ["--function-class", "Nope", "--variable-class", "Variable"]])
def test_steps_of_a_run_that_recorded_no_call_is_an_error_not_a_made_up_pass(scripts, extra):
    script = scripts / ("seed.py" if extra[-1:] == ["Variable"] else "nothing.py")
    result = run("steps", script, *extra)
    assert result.exit_code == 1 and "pass 1" not in result.stdout and '"steps"' not in result.stdout
    assert error_line(result) == f"Error: nothing to show: {script} left no Function call on a graph (see above)"


def test_nothing_to_draw_removes_the_frames_directory_it_made_and_says_neither_nor(scripts):
    out, frames_dir = scripts / "g.svg", scripts / "new_frames"
    result = run("render", scripts / "nothing.py", "-o", out, "--frames", frames_dir)
    assert result.exit_code == 1 and not frames_dir.exists() and not out.exists()
    assert error_line(result).startswith(f"Error: nothing to draw, so neither {out} nor {frames_dir} was written")


def test_what_a_script_writes_past_sys_stdout_stays_out_of_the_result_on_stdout(tmp_path):
    script = tmp_path / "loud.py"
    script.write_text("import os, sys\nimport numpy as np\nimport engine as E\n"
                      "print('to fd 1', file=sys.__stdout__)\nos.system('echo from a shell')\n"
                      "E.square(E.Variable(np.array(2.0))).backward()\n")
    done = real("render", script, "-o", "-", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("digraph") and "to fd 1" in done.stderr and "from a shell" in done.stderr


def test_a_script_that_closes_stdout_and_stderr_still_gets_its_table(tmp_path):
    script = tmp_path / "closes.py"
    script.write_text("import sys\nimport numpy as np\nimport engine as E\n"
                      "E.square(E.Variable(np.array(2.0), name='x')).backward()\n"
                      "sys.stdout.close()\nsys.stderr.close()\n")
    done = real("steps", script, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "leaf gradients after the pass: x: 4" in done.stdout and "lost sys.stderr" not in done.stderr


def test_output_and_frames_on_one_path_are_refused_before_the_script_runs(scripts):
    result = run("render", scripts / "seed.py", "-o", scripts / "p.html", "--frames", scripts / "p.html")
    assert result.exit_code == 2 and "-o and --frames both name" in result.stderr
    assert not (scripts / "p.html").exists() and "script says hi" not in result.output


def test_a_no_grad_root_does_not_pull_the_graph_before_it_into_the_pass(scripts):
    script = scripts / "detached.py"
    script.write_text("import numpy as np\nimport engine as E\nx = E.Variable(np.array(1.0), name='x')\n"
                      "y = E.exp(E.square(x))\nwith E.no_grad():\n    z = E.sin(y)\nz.name = 'z'\nz.backward()\n")
    result = run("check", script)
    kinds = [line.split("] ")[1].split(" at ")[0] for line in result.stdout.splitlines() if line[:1].isdigit()]
    assert kinds == ["missing-step"]  # not also a leaf-gradient through the calls detached on purpose


def test_a_script_closing_its_stdout_under_o_dash_keeps_its_stderr(scripts):
    script = scripts / "closer.py"
    script.write_text("import sys\nimport numpy as np\nimport engine as E\n"
                      "E.square(E.Variable(np.array(2.0))).backward()\n"
                      "sys.stdout.close()\nprint('still here', file=sys.stderr)\n")
    result = run("render", script, "-o", "-")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("digraph") and "still here" in result.stderr


def test_a_saved_trace_still_knows_a_no_grad_root(scripts):
    script = scripts / "ng.py"
    script.write_text("import numpy as np\nimport engine as E\nx = E.Variable(np.array(2.0), name='x')\n"
                      "with E.no_grad():\n    y = E.square(x)\ny.name = 'y'\ny.backward()\n")
    assert run("render", script, "-o", scripts / "t.json").exit_code == 0
    assert '"unlinked": true' in (scripts / "t.json").read_text()
    again = run("check", scripts / "t.json")
    assert "that call kept no link to it" in " ".join(again.stdout.split())


def test_check_on_a_saved_trace_finds_a_forward_that_changed_its_input_as_on_the_script(scripts):
    script = scripts / "inplace.py"
    script.write_text("import numpy as np\nimport engine as E\n\n\n"
                      "class AddOne(E.Function):\n"
                      "    def forward(self, x):\n        x += 1\n        return x * 2\n\n"
                      "    def backward(self, gy):\n        return gy * 2\n\n\n"
                      "x = E.Variable(np.array([1.0, 2.0]), name='x')\n"
                      "E.sum(AddOne()(x) + E.square(x)).backward()\n")
    on_script = run("check", "--json", script)
    assert run("render", script, "-o", scripts / "t.json").exit_code == 0
    on_saved = run("check", "--json", scripts / "t.json")
    assert on_script.exit_code == on_saved.exit_code == 1
    findings = json.loads(on_script.stdout)["findings"]
    assert [(f["kind"], f["severity"]) for f in findings] == [("changed-input", "error")]
    assert json.loads(on_saved.stdout)["findings"] == findings


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_output_directory_that_refuses_new_files_is_found_before_the_script_runs(tmp_path):
    ran = tmp_path / "ran"
    script = tmp_path / "s.py"
    script.write_text(f"open({str(ran)!r}, 'w').close()\nimport numpy as np, engine as E\n"
                      "E.exp(E.Variable(np.array(1.0))).backward()\n")
    result = run("render", script, "-o", "/proc/x.svg")  # permissions say yes to root; creating says no
    assert result.exit_code == 1 and not ran.exists()
    assert error_line(result).startswith("Error: cannot write /proc/x.svg: ")
    assert error_line(result).endswith("choose another output path")


def test_a_script_that_changes_the_umask_does_not_set_the_outputs_mode(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import os\nos.umask(0o777)\nimport numpy as np, engine as E\n"
                      "E.exp(E.Variable(np.array(1.0))).backward()\n")
    mask = os.umask(0o022)
    os.umask(mask)
    result = run("render", script, "-o", tmp_path / "g.dot")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "g.dot").stat().st_mode & 0o777 == 0o666 & ~mask  # it was 000
    assert os.umask(mask) == mask


def test_frames_or_the_player_with_the_system_renderer_are_refused_before_the_script_runs(tmp_path):
    ran = tmp_path / "ran"
    script = tmp_path / "s.py"
    script.write_text(f"open({str(ran)!r}, 'w').close()\n")
    for args in (["-o", tmp_path / "p.html"], ["--frames", tmp_path / "frames"]):
        result = run("render", script, *args, "--renderer", "system")
        assert result.exit_code == 2 and not ran.exists(), result.stderr
        assert "leave out --renderer system" in result.stderr
        result = run("render", script, *args, "--no-grads")  # frames showed the gradients anyway
        assert result.exit_code == 2 and not ran.exists(), result.stderr
        assert "leave out --no-grads" in result.stderr
    assert not (tmp_path / "frames").exists()


def test_steps_lists_at_most_thirty_names_under_the_table(tmp_path):
    script = tmp_path / "chain.py"
    script.write_text("import numpy as np\nimport engine as E\ny = E.Variable(np.array(0.5), name='x')\n"
                      "for _ in range(100):\n    y = E.sin(y)\ny.backward()\n")
    cleared = [line for line in run("steps", script).stdout.splitlines() if line.startswith("cleared")]
    assert cleared[0].endswith(", v31, ... (70 more)") and cleared[0].count(", ") == 30  # 100 of them


def test_expr_steps_without_backward_is_a_usage_error():
    result = run("expr", "x*x", "--let", "x=2", "--no-backward", "--steps")
    assert result.exit_code == 2 and "leave out one of them" in result.stderr  # it printed nothing, exit 0


def test_a_misspelt_gradtrace_option_that_went_to_the_script_is_named(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import sys\nprint(sys.argv[1:])\n")
    result = run("render", script, "-o", tmp_path / "g.dot", "--frame", "fr", "--lr", "0.1")
    assert "['--frame', 'fr', '--lr', '0.1']" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning: --")]
    assert warnings == ["Warning: --frame went to the script as its own argument: did you mean "
                        "gradtrace's --frames? (put the script's arguments after --, and this warning goes)"]
    result = run("check", script, "--", "--pass-all")  # after --: meant for the script
    assert "went to the script" not in result.stderr
    script.write_text("import argparse\nargparse.ArgumentParser().add_argument('--steps')\n")
    result = run("render", script, "-o", tmp_path / "g.dot", "--steps", "2")  # its own, not --step
    assert "went to the script" not in result.stderr
    script.write_text('"""Usage: s.py --frame N"""\n')  # docopt: named in a usage text, not quoted
    result = run("render", script, "-o", tmp_path / "g.dot", "--frame", "2")
    assert "went to the script" not in result.stderr
    script.write_text('"""Run: gradtrace render s.py --frames out/"""\n')  # --frame is only inside --frames
    result = run("render", script, "-o", tmp_path / "g.dot", "--frame", "out")
    assert "did you mean gradtrace's --frames?" in result.stderr


@pytest.mark.parametrize("in_thread, said", [
    ("x = E.Variable(np.array(0.5))\n    E.exp(E.square(x)).backward()", "made 2 Function calls and called backward()"),
    ("y.backward()", "called backward()")])
def test_work_done_in_another_thread_is_named_not_blamed_on_the_engine(tmp_path, in_thread, said):
    script = tmp_path / "t.py"
    script.write_text("import threading\nimport numpy as np\nimport engine as E\n"
                      "y = E.exp(E.Variable(np.array(0.5)))\n"
                      f"def work():\n    {in_thread}\n"
                      "worker = threading.Thread(target=work)\nworker.start()\nworker.join()\n")
    result = run("render", script, "-o", tmp_path / "g.svg")
    assert f"Warning: {script} {said} in another thread, which gradtrace does not record" in result.stderr
    assert "--function-class" not in result.stderr and "never called backward" not in result.stderr


def test_path_mistakes_get_fixes_that_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("base.py").write_text("x = 1\n")
    Path("-odd.py").write_text("x = 1\n")
    result = run("render", "base.py", "--frames", "base.py/fr")
    assert error_line(result) == ("Error: cannot make base.py/fr: " + str(tmp_path / "base.py") + " is a file, "
                                  "not a directory; give the frames another directory, e.g. --frames frames/")
    result = run("render", "-o", "g.svg", "--", "-odd.py")  # it said: no such option
    assert error_line(result) == "Error: a script whose name starts with a dash is taken for an option: " \
                                 "write it as ./-odd.py, e.g. gradtrace render ./-odd.py ..."


def test_a_graph_built_in_the_main_thread_without_backward_is_still_said(tmp_path):
    script = tmp_path / "t.py"
    script.write_text("import threading\nimport numpy as np\nimport engine as E\n"
                      "y = E.exp(E.Variable(np.array(0.5)))\n"
                      "worker = threading.Thread(target=lambda: E.exp(E.Variable(np.array(1.0))))\n"
                      "worker.start()\nworker.join()\n")
    result = run("render", script, "-o", tmp_path / "g.svg")
    assert f"Warning: {script} never called backward(): showing the forward graph only" in result.stderr
    assert "another thread" not in result.stderr  # the other thread made calls, but that is not why


def test_steps_names_a_seed_as_the_picture_does():
    result = run("steps", "samples/newton.py", "--pass", "all", "--", "--iterations", "1")
    assert result.exit_code == 0, result.stderr
    assert re.search(r"Mul#\d+ +\d+ +v\d+: 1 +v\d+: 1 +v\d+: 1\n +y\.grad \(seed\) \(v\d+\): 32", result.stdout), \
        result.stdout  # it said v7, which no picture shows


def test_check_of_one_pass_of_many_says_the_others_were_not_checked():
    result = run("check", SAMPLES / "newton.py", "--iterations", "1", "--pass", "last")
    assert "Not checked:" in result.stdout
    assert ("the run's other backward passes (it made 2; pass 2 was checked): --pass all checks every "
            "pass") in " ".join(result.stdout.split())
    every = run("check", SAMPLES / "newton.py", "--iterations", "1", "--pass", "all")
    assert every.exit_code == 0 and "other backward passes" not in every.stdout
    # "no problems found" does not stand alone when something went unchecked
    headline = next(line for line in result.stdout.splitlines() if line.startswith("gradtrace check:"))
    assert headline.endswith("; some checks were skipped (see Not checked below).")
    assert "skipped" not in every.stdout
    # without --pass: the first 10 passes and the last are checked
    sampled = run("check", SAMPLES / "newton.py", "--iterations", "7")  # 14 passes
    assert ("the run's other backward passes (it made 14; passes 1\u201310, 14 were checked)"
            in " ".join(sampled.stdout.split()))
    assert "and 11 backward passes" in sampled.stdout


def test_check_records_a_book_sized_model_whole_so_its_matmul_is_checked(tmp_path):
    """A 100 x 10 activation is above render's 100 elements; check's default keeps it whole, so
    a broken backward of a hidden layer is found (it was only listed under Not checked)."""
    script = tmp_path / "hidden.py"
    script.write_text(
        "import numpy as np\nimport engine as E\n"
        "class BadSigmoid(E.Function):\n"
        "    def forward(self, x):\n        return 1 / (1 + np.exp(-x))\n"
        "    def backward(self, gy):\n        y = self.outputs[0]().data\n        return gy * y  # forgot (1 - y)\n"
        "rng = np.random.default_rng(0)\n"
        "x, W = rng.standard_normal((100, 1)), E.Parameter(rng.standard_normal((1, 10)))\n"
        "loss = E.sum(BadSigmoid()(E.matmul(x, W)))\nloss.backward()\n")
    found = run("check", script, "--only", "wrong-backward")
    assert found.exit_code == 1 and "wrong-backward at BadSigmoid" in found.stdout
    summarised = run("check", script, "--only", "wrong-backward", "--max-elements", "100")
    assert summarised.exit_code == 0 and "some checks were skipped" in summarised.stdout


def test_a_console_without_a_names_characters_gets_escapes_not_an_internal_error(tmp_path):
    script = tmp_path / "uni.py"
    script.write_text("import numpy as np\nimport engine as E\nx = E.Variable(np.array(2.0), name='x\U0001f642')\n"
                      "y = E.square(x)\ny.name = '손실'\ny.backward()\n", encoding="utf-8")
    korean_console = CliRunner(charset="cp949")  # Hangul, but no emoji
    for command in ("steps", "check"):
        result = korean_console.invoke(cli.main, [command, str(script)], catch_exceptions=False)
        assert "internal error" not in result.stderr and result.exit_code == 0, result.stderr
    steps = korean_console.invoke(cli.main, ["steps", str(script)], catch_exceptions=False)
    assert "x\\U0001f642" in steps.stdout and "손실" in steps.stdout
    result = korean_console.invoke(cli.main, ["render", str(script), "-o", "-"], catch_exceptions=False)
    assert result.exit_code == 0 and "x\U0001f642".encode() in result.stdout_bytes  # the file's UTF-8


def test_an_engine_whose_variable_subclasses_ndarray_is_told_and_not_called_clean(tmp_path):
    script = tmp_path / "arr.py"
    script.write_text(
        "import numpy as np\n"
        "class Variable(np.ndarray):\n"
        "    def __new__(cls, data):\n"
        "        obj = np.asarray(data, dtype=float).view(cls)\n"
        "        obj.grad, obj.creator = None, None\n"
        "        return obj\n"
        "    def __array_finalize__(self, obj):\n"
        "        self.grad, self.creator = None, None\n"
        "    def backward(self):\n"
        "        self.grad = np.ones(self.shape)\n"
        "        f = self.creator\n"
        "        f.inputs[0].grad = f.backward(self.grad)\n"
        "class Function:\n"
        "    def __call__(self, x):\n"
        "        y = Variable(self.forward(np.asarray(x)))\n"
        "        y.creator, self.inputs = self, [x]\n"
        "        return y\n"
        "    def forward(self, x):\n"
        "        raise NotImplementedError\n"
        "    def backward(self, gy):\n"
        "        raise NotImplementedError\n"
        "class Square(Function):\n"
        "    def forward(self, x):\n"
        "        return x ** 2\n"
        "    def backward(self, gy):\n"
        "        return 3 * np.asarray(self.inputs[0]) * gy  # wrong: 2x\n"
        "Square()(Variable(2.0)).backward()\n")
    result = run("check", script)
    assert result.exit_code == 1 and "no problems found" not in result.stdout  # it was exit 0, clean
    assert ("Warning: Variable subclasses numpy.ndarray, so its objects were taken for plain arrays"
            in result.stderr)
    assert error_line(result) == (f"Error: nothing to check: {script} left no Function call on a graph "
                                  f"(see above)")
    assert "made 1 Function call, but none took or made anything gradtrace recognised as a Variable" \
        in result.stderr
    for command in (["render", script, "-o", tmp_path / "g.svg"], ["steps", script]):
        result = run(*command)  # bare function boxes, or a table of "-", and exit 0
        assert result.exit_code == 1 and error_line(result).startswith("Error: nothing to ")
    assert not (tmp_path / "g.svg").exists()


def test_check_of_a_saved_trace_says_where_its_other_passes_went(tmp_path):
    saved = tmp_path / "n.json"
    assert run("render", SAMPLES / "newton.py", "--iterations", "2", "-o", saved).exit_code == 0
    for extra in ([], ["--pass", "all"]):  # --pass all checks the same single pass: it said to use it
        result = run("check", saved, *extra)
        assert ("(it made 4; pass 4 was checked): they are not in this file: save the run again with --keep all"
                in " ".join(result.stdout.split()))
    # --keep is only a warning for a saved trace, not a reason to refuse --pass
    result = run("steps", saved, "--keep", "first", "--pass", "4")
    assert result.exit_code == 0 and "pass 4 of 4" in result.stdout


def test_dot_to_a_text_only_stdout_falls_back_to_text(tmp_path):
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # an embedding host's stdout: no binary buffer
        cli.main.main(["-q", "render", str(SAMPLES / "seed_example.py"), "-o", "-"], standalone_mode=False)
    assert out.getvalue().startswith("digraph")  # it was an internal error (RuntimeError)


def test_pdf_from_the_bundled_renderer_is_a_usage_error_before_the_run(scripts, tmp_path):
    out = sentinel(tmp_path / "g.pdf")
    result = run("render", scripts / "seed.py", "--renderer", "bundled", "-o", out)
    assert result.exit_code == 2 and not (scripts / "ran.txt").exists() and out.read_text() == SENTINEL
    assert "the bundled renderer cannot write PDF" in error_line(result)


def test_check_json_for_a_grading_loop(scripts, tmp_path):
    late = tmp_path / "late.py"  # prints at exit and from a thread, after gradtrace's JSON
    late.write_text(SEED + "import atexit, threading, time\natexit.register(print, 'bye from atexit')\n"
                    "threading.Thread(target=lambda: (time.sleep(0.3), print('late thread'))).start()\n")
    done = subprocess.run([sys.executable, "-m", "cli", "check", "--json", str(late)], capture_output=True,
                          text=True, cwd=str(ROOT), check=False)
    assert json.loads(done.stdout)["schema"] == "gradtrace.check/1", done.stdout  # one document, nothing after
    assert "bye from atexit" in done.stderr and "late thread" in done.stderr
    nothing = run("check", "--json", scripts / "nothing.py")  # still a document, with the reason
    assert nothing.exit_code == 1 and json.loads(nothing.stdout)["notes"][0].startswith("nothing to check")
    forward = run("check", "--json", scripts / "forward_only.py")
    assert json.loads(forward.stdout)["notes"] == [
        "backward passes: the script never called backward(), so only its forward values were checked"]
    interrupted = tmp_path / "ctrl_c.py"
    interrupted.write_text(SEED + "raise KeyboardInterrupt\n")
    assert run("check", interrupted).exit_code == 130  # a shell loop over students stops on Ctrl-C
    early = tmp_path / "ctrl_c_early.py"
    early.write_text("raise KeyboardInterrupt  # while importing, before any Function call\n")
    for command in (["check", early], ["steps", early], ["render", early, "-o", tmp_path / "g.svg"]):
        assert run(*command).exit_code == 130, command


def test_an_option_of_another_command_passed_to_the_script_is_named(scripts):
    result = run("check", scripts / "seed.py", "--timeout", "10")  # a render option: the script got it
    assert ("Warning: --timeout went to the script as its own argument: it is an option of gradtrace expr "
            "and render, not of check") in result.stderr
    assert "--timeout" not in run("check", scripts / "seed.py", "--", "--timeout", "10").stderr
    assert "--version went to the script as its own argument: it is an option of gradtrace itself" \
        in run("steps", scripts / "seed.py", "--version").stderr


def test_a_script_that_closes_descriptor_1_does_not_take_the_report_with_it(scripts, tmp_path):
    closer = tmp_path / "closer.py"
    closer.write_text(SEED + "import os\nos.close(1)\n")
    done = subprocess.run([sys.executable, "-m", "cli", "check", str(closer)], capture_output=True,
                          text=True, cwd=str(ROOT), check=False)
    assert done.returncode == 0 and "gradtrace check: no problems found" in done.stdout, done.stderr
    assert "Bad file descriptor" not in done.stderr  # it was "Error: cannot access: Bad file descriptor"


def test_ctrl_c_never_replaces_a_picture_or_frames_that_exist(scripts, monkeypatch):
    """The user stopped the run: the partial picture goes to a new file only; Ctrl-C while
    drawing exits 130 like Ctrl-C in the script (it was click's 'Aborted!', exit 1)."""
    interrupted = scripts / "ctrl_c.py"
    interrupted.write_text(SEED + "raise KeyboardInterrupt\n")
    out = sentinel(scripts / "good.svg")
    kept = run("render", interrupted, "-o", out)
    assert kept.exit_code == 130 and out.read_text() == SENTINEL
    assert error_line(kept) == (f"Error: {interrupted} was interrupted (Ctrl-C), so {out} was left as it "
                                f"was; to see the partial graph, write to a new file")
    fresh = scripts / "partial.svg"
    assert run("render", interrupted, "-o", fresh).exit_code == 130 and fresh.exists()

    def drawing_interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "_rendered", drawing_interrupted)
    stopped = run("render", scripts / "seed.py", "-o", out)
    assert stopped.exit_code == 130 and out.read_text() == SENTINEL
    assert error_line(stopped) == "Error: interrupted (Ctrl-C); files are written whole or not at all"


def test_an_output_named_like_a_frame_in_the_frames_directory_is_refused(scripts):
    frames_dir = scripts / "fr"
    result = run("render", scripts / "seed.py", "-o", frames_dir / "step-000.svg", "--frames", frames_dir)
    assert result.exit_code == 2 and "with a frame's name: the frames would replace it" in result.stderr
    assert not frames_dir.exists() and "script says hi" not in result.output


def test_frames_are_moved_in_whole_so_a_failed_write_leaves_the_old_set(scripts, monkeypatch):
    frames_dir = scripts / "fw"
    assert run("render", SAMPLES / "generations.py", "--frames", frames_dir).exit_code == 0
    before = {p.name: p.read_bytes() for p in frames_dir.iterdir()}
    real_write = Path.write_bytes
    written = []

    def full_disk(path, data):
        if written:
            raise OSError(28, "No space left on device")
        written.append(path)
        return real_write(path, data)
    monkeypatch.setattr(Path, "write_bytes", full_disk)
    result = run("render", SAMPLES / "seed_example.py", "--frames", frames_dir)
    assert result.exit_code == 1
    assert error_line(result).startswith(f"Error: cannot write the frames in {frames_dir}: No space left on "
                                         f"device; the frames there are as they were")
    assert {p.name: p.read_bytes() for p in frames_dir.iterdir()} == before  # no mix, no staging left


def test_check_without_pass_finds_a_bug_in_an_earlier_experiment(tmp_path):
    """A homework script with several experiments: the broken op was used only in the first, and
    check looked at the last pass alone ("no problems found", exit 0)."""
    script = tmp_path / "homework.py"
    script.write_text(
        "import numpy as np\nimport engine as E\n"
        "class BadSquare(E.Function):\n"
        "    def forward(self, x):\n        return x ** 2\n"
        "    def backward(self, gy):\n        return gy * self.inputs[0].data  # forgot the 2\n"
        "x = E.Variable(np.array(3.0))\nBadSquare()(x).backward()\n"
        "for _ in range(12):\n    E.exp(E.Variable(np.array(1.0))).backward()\n")
    result = run("check", script)
    assert result.exit_code == 1 and "wrong-backward at BadSquare (f1), pass 1" in result.stdout
    assert "passes 1\u201310, 13 were checked" in " ".join(result.stdout.split())
    assert run("check", script, "--pass", "last").exit_code == 0


def test_short_options_and_dashed_names_and_closed_streams(scripts, tmp_path, monkeypatch):
    """-o given to steps went to the script without a word; -dash.py printed render's help
    (-d -a -s -h), exit 0; -o - with stdout closed exited 0 with the picture lost; --help to a
    full disk was a traceback; check --json with a pass that does not exist printed no document."""
    quiet = scripts / "quiet.py"
    quiet.write_text(SEED)
    assert ("Warning: -o went to the script as its own argument: it is an option of gradtrace check and "
            "expr and render, not of steps") in run("steps", quiet, "-o", "x.svg").stderr
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-dash.py").write_text(SEED)
    dashed = run("render", "-o", "a.svg", "-dash.py")
    assert dashed.exit_code == 2 and "write it as ./-dash.py" in dashed.stderr and not (tmp_path / "a.svg").exists()
    missing = run("check", scripts / "seed.py", "--pass", "9", "--json")
    assert missing.exit_code == 1 and json.loads(missing.stdout)["notes"][0].startswith("pass 9 does not exist")
    closed = subprocess.run([sys.executable, "-m", "cli", "render", str(scripts / "seed.py"), "-o", "-"],
                            stderr=subprocess.PIPE, text=True, cwd=str(ROOT), check=False,
                            preexec_fn=lambda: os.close(1))  # as `gradtrace ... >&-`
    assert closed.returncode == 1 and "Error: standard output is closed: write to a file with -o FILE" in closed.stderr
    if os.path.exists("/dev/full"):
        with open("/dev/full", "w") as full:
            helped = subprocess.run([sys.executable, "-m", "cli", "--help"], stdout=full, stderr=subprocess.PIPE,
                                    text=True, cwd=str(ROOT), check=False)
        assert helped.returncode == 1 and helped.stderr.strip() == \
            "Error: cannot write to standard output: No space left on device"


def test_an_os_error_names_a_fix(scripts, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "rodir/fr")
    monkeypatch.setattr(cli, "_prepare_frames_dir", denied)
    result = run("render", scripts / "seed.py", "--frames", "rodir/fr")
    assert error_line(result) == ("Error: cannot access rodir/fr: Permission denied; check its permissions, "
                                  "or choose another path")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_child_the_script_forks_ends_with_the_script(tmp_path):
    """The child went on into gradtrace and wrote OUT a second time."""
    script = tmp_path / "fork.py"
    script.write_text(SEED + "import os\npid = os.fork()\nif pid == 0:\n    print('child')\n"
                      "else:\n    os.waitpid(pid, 0)\n    print('parent')\n")
    done = subprocess.run([sys.executable, "-m", "cli", "render", str(script), "-o", str(tmp_path / "g.svg")],
                          capture_output=True, text=True, cwd=str(ROOT), check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("wrote ") == 1 and "child" in done.stdout and "parent" in done.stdout


def test_a_sample_that_records_nothing_is_not_written_as_an_empty_picture(tmp_path):
    samples_dir = tmp_path / "mine"
    samples_dir.mkdir()
    (samples_dir / "seed.py").write_text(SEED)
    (samples_dir / "noeng.py").write_text('"""Prints only."""\nprint("no engine")\n')
    result = run("samples", "--dir", samples_dir, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "noeng: it made no Function call on a graph" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["seed.svg"]


def test_frames_written_again_keep_their_mode_and_write_through_links(scripts, tmp_path):
    frames_dir = tmp_path / "fm"
    assert run("render", SAMPLES / "seed_example.py", "--frames", frames_dir).exit_code == 0
    (frames_dir / "step-000.svg").chmod(0o664)
    elsewhere = tmp_path / "slides" / "first.svg"
    elsewhere.parent.mkdir()
    elsewhere.write_text("old")
    (frames_dir / "step-001.svg").unlink()
    (frames_dir / "step-001.svg").symlink_to(elsewhere)
    assert run("render", SAMPLES / "seed_example.py", "--frames", frames_dir).exit_code == 0
    assert (frames_dir / "step-000.svg").stat().st_mode & 0o777 == 0o664
    assert (frames_dir / "step-001.svg").is_symlink() and elsewhere.read_text().startswith("<?xml")
    assert not [p for p in frames_dir.iterdir() if p.name.startswith(".frames-")]


def test_check_output_is_not_replaced_after_ctrl_c(scripts):
    interrupted = scripts / "ctrl_c.py"
    interrupted.write_text(SEED + "raise KeyboardInterrupt\n")
    out = sentinel(scripts / "findings.svg")
    result = run("check", interrupted, "-o", out)
    assert result.exit_code == 130 and out.read_text() == SENTINEL
    assert "was interrupted (Ctrl-C), so" in result.stderr


def test_a_notebook_cell_that_raised_is_named_with_the_way_past_it(tmp_path):
    """A notebook saved with a failed cell: the cell that ran (not the engine cell its traceback
    passes through) is named, and how gradtrace treats it (as Run All does)."""
    def code(source):
        return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": source}
    notebook = tmp_path / "hw.ipynb"
    notebook.write_text(json.dumps({"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# Homework"},
        code("import numpy as np\ndef make(data):\n    raise TypeError('float is not supported')\n"),
        code("x = make(0.5)\n"), code("print('later')\n")], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    result = run("check", notebook)
    assert result.exit_code == 1
    assert (f"Warning: {notebook} (code cell 2) raised: gradtrace runs the code cells in order and stops "
            f"at the first error, as Jupyter's Run All does; fix or delete that cell to get past it, or give "
            f"--allow-errors to go on with the next cell\n") in result.stderr
    assert "later" not in result.stdout


@pytest.mark.parametrize("cluster, letters", [("-vq", "-v -q"), ("-vo", "-v -o")])
def test_a_short_option_cluster_mixing_gradtraces_and_the_scripts_is_refused(scripts, cluster, letters):
    """click gave -q to gradtrace (quiet) and only -v to the script, silently."""
    out = scripts / "g.svg"
    result = run("render", scripts / "args.py", cluster, "-o", out)
    assert result.exit_code == 2 and not out.exists()
    assert result.stderr.splitlines()[-1] == (
        f"Error: {cluster} mixes gradtrace's {cluster[0]}{cluster[2]} with -v, which gradtrace does not know: "
        f"write them apart ({letters}), or put the script's own options after -- (everything after it goes "
        f"to the script)")
    assert result.stdout == ""  # the script did not run
    result = run("render", scripts / "args.py", "-vx", "-o", out)  # none of them gradtrace's: the script's
    assert result.exit_code == 0 and '["-vx"]' in result.stdout, result.stderr


def test_an_output_named_like_options_and_single_dash_long_options(scripts, tmp_path):
    """-o -qx.svg names a file (it was refused as a cluster); -epochs is told to use --, not to
    split into -e -p -o; -vh would have printed gradtrace's help and dropped -v."""
    out = tmp_path / "-qx.svg"
    result = run("render", scripts / "args.py", "-o", out)
    assert result.exit_code == 0 and out.exists(), result.stderr
    result = run("render", scripts / "args.py", "-epochs", "3", "-o", tmp_path / "g.svg")
    assert result.exit_code == 2 and result.stderr.splitlines()[-1] == (
        "Error: -epochs mixes gradtrace's -o with -e -p, which gradtrace does not know: put the "
        "script's own options after -- (everything after it goes to the script)")
    result = run("render", scripts / "args.py", "-vh", "-o", tmp_path / "g.svg")
    assert result.exit_code == 2 and "-vh mixes gradtrace's -h with -v" in result.stderr
