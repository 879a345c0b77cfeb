"""run_script: engines defined or imported by the script, argv, errors, notebook-style redefinitions."""

import inspect
import json
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tracer
from tracer.diagnose import diagnose
from tests.tracer.engines import generations, listpop

ENGINE_SOURCE = inspect.getsource(generations)


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def ops_of_steps(t):
    return [t.calls[s.call].op for s in t.select_pass().steps]


def test_engine_defined_in_the_script(tmp_path):
    script = write(tmp_path / "s.py", ENGINE_SOURCE + textwrap.dedent("""
        x = Variable(np.array(2.0))
        a = square(x)
        y = add(square(a), square(a))
        y.backward()
        print("grad", x.grad)
    """))
    t = tracer.run_script(script)
    assert t.error is None
    assert ops_of_steps(t) == ["Add", "Square", "Square", "Square"]
    assert t.engine.function_classes == ("__main__.Function",)
    assert t.engine.variable_classes == ("__main__.Variable",)
    x_id = next(v.id for v in t.variables.values() if v.name == "x")
    assert t.final_grad(t.select_pass(), x_id).item() == 64.0


def test_engine_imported_from_a_package_next_to_the_script(tmp_path):
    package = tmp_path / "mydezero_pkg"
    package.mkdir()
    write(package / "__init__.py", "from .core import *\n")
    write(package / "core.py", inspect.getsource(listpop))
    script = write(tmp_path / "train.py", """
        import sys, os
        sys.path.insert(0, os.path.dirname(__file__))
        import numpy as np
        from mydezero_pkg import Variable, square, add
        x = Variable(np.array(2.0))
        a = square(x)
        y = add(square(a), square(a))
        y.backward()
    """)
    t = tracer.run_script(script)
    assert t.error is None
    assert len(t.select_pass().steps) == 5  # the list-pop engine's real (wrong) order
    again = tracer.run_script(script)  # already imported: found through the script's directory
    assert len(again.select_pass().steps) == 5


def test_classes_defined_several_times_like_a_notebook(tmp_path):
    script = write(tmp_path / "nb.py", ENGINE_SOURCE + "\n" + ENGINE_SOURCE + textwrap.dedent("""
        x = Variable(np.array(3.0))
        y = square(x)
        y.backward()
    """))
    t = tracer.run_script(script)
    assert ops_of_steps(t) == ["Square"]
    assert t.engine.function_classes == ("__main__.Function",)  # the second definition, the one used


def test_argv_and_output_pass_through(tmp_path, capsys):
    script = write(tmp_path / "args.py", """
        import sys
        print("args", sys.argv[1:], __name__)
    """)
    t = tracer.run_script(script, ["--lr", "0.1"])
    assert capsys.readouterr().out == "args ['--lr', '0.1'] __main__\n"
    assert t.error is None and not t.passes


def test_script_that_raises_keeps_the_failing_pass(tmp_path):
    script = write(tmp_path / "bad.py", ENGINE_SOURCE + textwrap.dedent("""
        class Broken(Function):
            def forward(self, x):
                return x * 2
            def backward(self, gy):
                raise ValueError("shapes do not match")
        x = Variable(np.array(1.0))
        y = square(Broken()(square(x)))
        y.backward()
    """))
    t = tracer.run_script(script)
    assert t.error.type == "ValueError" and t.error.step == 2
    assert ops_of_steps(t) == ["Square", "Broken"]
    assert t.select_pass().steps[1].error == "ValueError: shapes do not match"
    assert "bad.py" in t.error.traceback and "tracer" not in t.error.traceback.replace(str(tmp_path), "")


def test_sys_exit_zero_is_success_and_nonzero_is_an_error(tmp_path):
    assert tracer.run_script(write(tmp_path / "ok.py", "import sys\nsys.exit(0)\n")).error is None
    failed = tracer.run_script(write(tmp_path / "no.py", "import sys\nsys.exit(3)\n"))
    assert failed.error.type == "SystemExit" and failed.error.message == "3"


def test_syntax_error_is_reported_as_the_scripts_error(tmp_path):
    t = tracer.run_script(write(tmp_path / "syn.py", "x = (\n"))
    assert t.error.type == "SyntaxError"
    assert t.error.traceback.startswith(f'  File "{tmp_path / "syn.py"}", line 1\n')  # no empty "Traceback"


def test_missing_script_is_a_clear_error(tmp_path):
    with pytest.raises(tracer.ScriptNotFoundError, match="not found: check the path"):
        tracer.run_script(tmp_path / "nope.py")
    with pytest.raises(tracer.ScriptNotFoundError, match="is not a file"):
        tracer.run_script(tmp_path)


def test_a_students_engine_py_is_not_shadowed_by_ours(tmp_path):
    import engine as ours
    write(tmp_path / "engine.py", inspect.getsource(generations))
    script = write(tmp_path / "main.py", """
        import numpy as np
        import engine
        x = engine.Variable(np.array(1.0))
        y = engine.square(x)
        y.backward()
        print(engine.__file__)
    """)
    t = tracer.run_script(script)
    assert t.error is None and ops_of_steps(t) == ["Square"]
    assert t.engine.function_classes == ("engine.Function",)
    import engine as after
    assert after is ours


def test_named_classes_override_detection(tmp_path):
    script = write(tmp_path / "named.py", """
        import numpy as np
        class Node:
            def __init__(self, data):
                self.data, self.grad, self.creator = data, None, None
            def backprop(self):
                pass
        class Op:
            def __call__(self, x):
                y = Node(self.compute(x.data))
                y.parent, self.input = self, x
                return y
            def compute(self, x):
                return x + 1
        y = Op()(Node(np.array(1.0)))
    """)
    assert not tracer.run_script(script).calls  # Op has no backward: not guessed
    t = tracer.run_script(script, function_names=["Op"])
    assert [c.op for c in t.calls.values()] == ["Op"]


def test_our_engine_is_traced_by_every_run_in_one_process(tmp_path):
    import engine  # noqa: F401 - already imported: the classes exist before the trace starts
    script = write(tmp_path / "ours.py", """
        import numpy as np
        from engine import Variable, square
        y = square(Variable(np.array(3.0)))
        y.backward()
    """)
    for _ in range(2):
        t = tracer.run_script(script)
        assert [c.op for c in t.calls.values()] == ["Square"]
        assert t.engine.function_classes == ("engine.core.Function",)


def test_pass_number_beyond_the_run_says_how_many_there_were():
    import numpy as np
    import engine as E
    with tracer.trace() as t:
        for _ in range(2):
            E.square(E.Variable(np.array(1.0))).backward()
    with pytest.raises(tracer.PassSelectionError, match="pass 3 does not exist: the run made 2 backward passes"):
        t.select_pass(3)


def test_output_under_a_regular_file_names_the_file(tmp_path):
    from tracer.output import write_atomic
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep")
    with pytest.raises(tracer.OutputError, match="file.txt is a file, not a directory"):
        write_atomic(blocker / "out.svg", "x")
    assert blocker.read_text() == "keep"


def test_interrupted_script_keeps_its_trace_and_cwd_is_restored(tmp_path):
    import os
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = write(tmp_path / "kb.py", ENGINE_SOURCE + textwrap.dedent(f"""
        import os
        os.chdir({str(elsewhere)!r})
        y = square(Variable(np.array(2.0)))
        y.backward()
        raise KeyboardInterrupt
    """))
    before = os.getcwd()
    t = tracer.run_script(script)
    assert os.getcwd() == before
    assert t.error.type == "KeyboardInterrupt" and len(t.passes) == 1


def test_traceback_shows_the_scripts_frames_not_our_engine(tmp_path):
    script = write(tmp_path / "bwd.py", """
        import numpy as np
        from engine import Function, Variable
        class Bad(Function):
            def forward(self, x):
                return x
            def backward(self, gy):
                raise ValueError("bad backward")
        Bad()(Variable(np.array(1.0))).backward()
    """)
    text = tracer.run_script(script).error.traceback
    assert "bwd.py" in text and "bad backward" in text
    assert "engine" + os.sep not in text.replace(str(tmp_path), "")


def test_a_students_engine_py_does_not_stay_behind_when_ours_was_never_imported(tmp_path):
    import subprocess
    import sys
    write(tmp_path / "engine.py", inspect.getsource(generations))
    script = write(tmp_path / "main.py", """
        import numpy as np
        import engine
        engine.square(engine.Variable(np.array(1.0))).backward()
    """)
    code = (f"import sys, tracer; t = tracer.run_script({str(script)!r}); "
            f"print(len(t.calls), 'engine' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          cwd=str(Path(__file__).resolve().parents[2]))
    assert done.stdout == "1 False\n", done.stderr


STEP6_SCRIPT = """
    import numpy as np

    class Variable:  # the book's step 6, written the short way: no creator, no backward yet
        def __init__(self, data):
            self.data, self.grad = data, None

    class Function:
        def __call__(self, input):
            output = Variable(self.forward(input.data))
            self.input = input
            return output

    class Square(Function):
        def forward(self, x):
            return x ** 2

        def backward(self, gy):
            return 2 * self.input.data * gy

    class Exp(Function):
        def forward(self, x):
            return np.exp(x)

        def backward(self, gy):
            return np.exp(self.input.data) * gy

    class Layer:  # runs forward on Variables and keeps its inputs, but it is not a Function
        def __call__(self, *inputs):
            self.inputs = inputs
            return self.forward(*inputs)

        def forward(self, x):
            return x

    A, B, C = Square(), Exp(), Square()
    x = Variable(np.array(0.5))
    a = A(Layer()(x))
    b = B(a)
    y = C(b)
    y.grad = np.array(1.0)
    b.grad = C.backward(y.grad)
    a.grad = B.backward(b.grad)
    x.grad = A.backward(a.grad)
"""


def test_the_books_step_6_manual_backprop_is_found_and_drawn_whole(tmp_path):
    t = tracer.run_script(write(tmp_path / "step6.py", STEP6_SCRIPT))
    assert t.error is None, t.error
    assert t.engine.function_classes == ("__main__.Function",)  # not the Layer
    p = t.select_pass()
    assert p.kind == "manual" and ops_of_steps(t) == ["Square", "Exp", "Square"]
    assert [t.name_of(v) for v in p.variables] == ["x", "a", "b", "y"]  # the whole graph, not none
    assert t.name_of(p.root) == "y" and len(p.calls) == 3
    x = next(v.id for v in t.variables.values() if v.name == "x")
    assert t.final_grad(p, x).item() == pytest.approx(3.297442541400256)
    assert tracer.to_dot(t).source.count("->") == 6


def test_a_variable_class_without_backward_can_be_named(tmp_path):
    t = tracer.run_script(write(tmp_path / "step6.py", STEP6_SCRIPT), function_names=["Function"],
                          variable_names=["Variable"])
    assert t.error is None and not t.warnings, t.warnings
    assert t.engine.variable_classes == ("__main__.Variable",) and ops_of_steps(t) == ["Square", "Exp", "Square"]


def test_a_script_that_traces_a_block_itself_runs_under_the_cli_trace(tmp_path, capsys):
    script = write(tmp_path / "own.py", ENGINE_SOURCE + textwrap.dedent("""
        import tracer
        with tracer.trace() as t:  # the README's notebook recipe, run by `gradtrace check`
            x = Variable(np.array(2.0))
            square(square(x)).backward()
        print(len(t.calls), t.pass_count, t.engine.function_classes)
    """))
    t = tracer.run_script(script)
    assert t.error is None, t.error
    assert capsys.readouterr().out == "2 1 ('__main__.Function',)\n"
    assert ops_of_steps(t) == ["Square", "Square"] and t.pass_count == 1


def test_streams_a_script_replaced_are_restored(tmp_path, capsys):
    script = write(tmp_path / "tee.py", """
        import io, sys
        sys.stdout = io.StringIO()  # e.g. a script that logs to a file
        sys.stderr = io.StringIO()
        print("hidden")
    """)
    assert tracer.run_script(script).error is None
    print("seen")
    assert capsys.readouterr().out == "seen\n"


@pytest.mark.parametrize("code, error", [(0, None), (5, ("SystemExit", "5"))])
def test_os_exit_in_the_script_ends_the_script_not_gradtrace(tmp_path, code, error):
    real_exit = os._exit
    script = write(tmp_path / "hard.py", ENGINE_SOURCE + f"""
import os
import sys
square(Variable(np.array(2.0))).backward()
os._exit({code})
print("never")
""")
    t = tracer.run_script(script)
    assert ((t.error.type, t.error.message) == error) if error else (t.error is None)
    assert ops_of_steps(t) == ["Square"] and os._exit is real_exit


def test_os_exit_inside_a_backward_step_is_named_as_such(tmp_path):
    script = write(tmp_path / "hard.py", ENGINE_SOURCE + """
import os
import sys
class Quits(Function):
    def forward(self, x):
        return x
    def backward(self, gy):
        os._exit(4)
Quits()(Variable(np.array(2.0))).backward()
""")
    t = tracer.run_script(script)
    assert (t.error.type, t.error.message) == ("SystemExit", "4")
    assert t.select_pass().steps[0].error == "os._exit: 4"  # not the name of a class of ours


def test_the_api_used_wrongly_says_what_it_needs(tmp_path):
    from tests.tracer.builders import seed_trace
    from tracer.diagnose import diagnose
    from tracer.dot import to_dot
    from tracer.frames import write_frames
    from tracer.player import write_player
    from tracer.render import render
    from tracer.trace import PassSelectionError
    for call in (lambda: to_dot(None), lambda: render(None), lambda: diagnose(None),
                 lambda: write_frames(None, tmp_path / "frames"), lambda: write_player("x", tmp_path / "p.html")):
        with pytest.raises(tracer.NotATraceError, match=r"needs a Trace \(from `with tracer.trace\(\) as t:`"):
            call()
    assert not (tmp_path / "frames").exists()  # no directory made for nothing
    with pytest.raises(ValueError, match="format must be one of"):
        render(seed_trace(), None)
    with pytest.raises(tracer.ArgumentError, match=r"argv must be a list of strings, e.g. \['--lr', '0.1'\], got 'abc'"):
        tracer.run_script(tmp_path / "s.py", "abc")  # it split the text into one argument a letter
    assert seed_trace().select_pass(np.int64(1)).id == 1  # numpy integers are pass numbers
    for which in ("x", 1.5, 0, True):
        with pytest.raises(PassSelectionError, match="which must be 'last', 'first' or a pass number >= 1"):
            seed_trace().select_pass(which)
    with pytest.raises(tracer.HookError, match="int is a built-in type"):
        tracer.trace(variable_cls=int)


_TWO_LAYERS = """
        import numpy as np
        import engine as E
        class Lin:
            def __init__(self):
                self.W = E.Parameter(np.array([[1.0]]), name="W")
        class Model:
            def __init__(self):
                self.l1, self.l2 = Lin(), Lin()
"""


def test_gradtraces_own_locals_never_name_a_scripts_variable(tmp_path):
    script = write(tmp_path / "model.py", _TWO_LAYERS + """
        model = Model()
        y = E.sum(E.matmul(E.matmul(np.array([[2.0]]), model.l1.W), model.l2.W))
        y.backward()
        for p in (model.l1.W, model.l2.W):
            p.data -= 0.1 * p.grad.data
        """)
    t = tracer.run_script(script)
    names = sorted(v.name for v in t.variables.values() if v.name and "W" in v.name)
    assert names == ["model.l1.W", "model.l2.W"]  # one was namespace['p']: run_script's local


def test_a_model_local_to_main_is_named_by_its_attributes(tmp_path):
    """``if __name__ == "__main__": main()``: the model is a local of main(), gone when names
    are read at the end; the locals of the function that called backward are searched too."""
    script = write(tmp_path / "train.py", _TWO_LAYERS + """
        def main():
            net = Model()
            for _ in range(2):
                loss = E.sum(E.matmul(E.matmul(np.array([[2.0]]), net.l1.W), net.l2.W))
                loss.backward()
        if __name__ == "__main__":
            main()
        """)
    t = tracer.run_script(script)
    names = sorted(v.name for v in t.variables.values() if v.name and "W" in v.name)
    assert names == ["net.l1.W", "net.l2.W"]  # were W, W


_OWN_CORE = """
import numpy as np
class Variable:
    def __init__(self, data):
        self.data, self.grad, self.creator = data, None, None
    def backward(self):
        self.grad = np.ones_like(self.data)
        f = self.creator
        f.input.grad = f.backward(self.grad)
class Function:
    def __call__(self, x):
        y = Variable(self.forward(x.data))
        y.creator, self.input = self, x
        return y
class Square(Function):
    def forward(self, x):
        return x ** 2
    def backward(self, gy):
        return {factor} * self.input.data * gy
"""


def test_a_script_tracing_its_own_engine_itself_records_under_run_script(tmp_path, capsys):
    # the Function base has no forward/backward of its own: it is told by what its __call__ does,
    # which the outer trace had replaced by its hook
    (tmp_path / "core.py").write_text(_OWN_CORE.format(factor=2))
    script = write(tmp_path / "own.py", """
        import numpy as np
        import tracer
        from core import Variable, Function, Square
        with tracer.trace() as inner:
            Square()(Variable(np.array(3.0))).backward()
        print(len(inner.calls), inner.engine.function_classes, inner.warnings)
        """)
    outer = tracer.run_script(script)
    assert len(outer.calls) == 1
    assert capsys.readouterr().out == "1 ('core.Function',) ()\n"  # it recorded nothing


def test_a_leaf_sharing_its_name_with_an_older_one_is_not_named_through_the_graph(tmp_path):
    (tmp_path / "core.py").write_text(_OWN_CORE.format(factor=2))
    script = write(tmp_path / "twice.py", """
        import numpy as np
        from core import Variable, Square
        x = Variable(np.array(2.0))
        a = Square()(x)
        a.backward()
        x = Variable(np.array(3.0))  # a notebook cell run again: a second x
        a = Square()(x)
        a.backward()
        """)
    t = tracer.run_script(script, keep="all")
    names = sorted(v.name for v in t.variables.values() if v.creator is None and v.name)
    assert names == ["x", "x"]  # the second was a.creator.input


def test_a_scripts_own_modules_do_not_stay_for_the_next_script(tmp_path):
    results = []
    for student, factor in (("s1", 2), ("s2", 3)):  # a grading loop: every student has a core.py
        folder = tmp_path / student
        folder.mkdir()
        (folder / "core.py").write_text(_OWN_CORE.format(factor=factor))
        script = write(folder / "main.py", """
            import numpy as np
            from core import Variable, Square
            x = Variable(np.array(3.0))
            Square()(x).backward()
            print(x.grad)
            """)
        t = tracer.run_script(script)
        (step,) = t.passes[0].steps
        results.append((len(t.calls), float(step.grads_out[0].values[0])))
    assert results == [(1, 6.0), (1, 9.0)]  # the second ran the first's core.py: 0 calls
    assert "core" not in sys.modules


def test_signal_handlers_recursion_limit_and_numpy_settings_are_restored(tmp_path):
    import signal
    script = write(tmp_path / "state.py", """
        import signal, sys
        import numpy as np
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGALRM, lambda *_: None)
        signal.setitimer(signal.ITIMER_REAL, 0.2, 0.2)  # still ticking when the script ends
        sys.setrecursionlimit(120)
        np.seterr(all="raise")
        np.set_printoptions(precision=2)
        """)
    before = (signal.getsignal(signal.SIGTERM), sys.getrecursionlimit(), np.geterr(), np.get_printoptions())
    tracer.run_script(script)
    assert (signal.getsignal(signal.SIGTERM), sys.getrecursionlimit(), np.geterr(),
            np.get_printoptions()) == before  # SIGTERM stayed ignored: gradtrace could not be stopped
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # its next tick killed the process


def test_modules_in_an_environment_inside_the_scripts_folder_are_kept(tmp_path, monkeypatch):
    folder = tmp_path / "proj"
    (folder / ".venv" / "lib" / "site-packages").mkdir(parents=True)
    (folder / ".venv" / "lib" / "site-packages" / "installed_pkg_x.py").write_text("VALUE = 1\n")
    (folder / "own_mod_x.py").write_text("VALUE = 2\n")
    monkeypatch.syspath_prepend(str(folder / ".venv" / "lib" / "site-packages"))
    script = write(folder / "main.py", """
        import installed_pkg_x, own_mod_x
        """)
    tracer.run_script(script)
    assert "installed_pkg_x" in sys.modules and "own_mod_x" not in sys.modules
    sys.modules.pop("installed_pkg_x", None)


def test_the_script_is_not_compiled_with_gradtraces_own_future_imports(tmp_path, capsys):
    """gradtrace's modules use ``from __future__ import annotations``; compile() would pass it
    on to the user's code, whose annotations would turn into strings (singledispatch then
    fails on a class local to a function)."""
    write(tmp_path / "helper.py", "def g(x: int) -> int:\n    return x\nprint('run', g.__annotations__)\n")
    script = write(tmp_path / "s.py", """
        import functools
        def f(x: int) -> int:
            return x
        print('script', f.__annotations__)
        def main():
            class Batch:
                pass
            @functools.singledispatch
            def show(value):
                return 'other'
            @show.register
            def _(value: Batch):
                return 'a batch'
            print(show(Batch()))
        main()
    """)
    tracer.run_script(script)
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text(json.dumps({"cells": [
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": "def h(x: float): pass\nprint('cell', h.__annotations__)\n%run helper.py"}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    tracer.run_script(notebook)
    assert capsys.readouterr().out == (
        "script {'x': <class 'int'>, 'return': <class 'int'>}\na batch\n"
        "cell {'x': <class 'float'>}\nrun {'x': <class 'int'>, 'return': <class 'int'>}\n")


def test_naming_variables_runs_none_of_the_scripts_own_code(tmp_path, capsys):
    """A loader whose ``data`` property counts its reads (and a class answering every attribute)
    is bound in the script: the names are found by identity, not by reading attributes."""
    script = write(tmp_path / "s.py", """
        import numpy as np
        from engine import Variable, square
        class Loader:
            reads = 0
            @property
            def data(self):
                Loader.reads += 1
                return np.arange(3.0)
        class Anything:
            def __getattr__(self, name):
                print('asked for', name)
                return 1
        loader, anything = Loader(), Anything()
        batch = loader.data
        x = Variable(np.array(2.0))
        for i in range(2):
            x.cleargrad()
            y = square(x)
            y.backward()
        print('reads', Loader.reads)
    """)
    t = tracer.run_script(script, keep="all")
    assert capsys.readouterr().out == "reads 1\n"
    assert [v.name for v in t.variables.values()] == ["x", "y", "y"]


def test_functions_called_with_a_list_keeping_their_inputs_as_xs(tmp_path):
    """The book's step 11 calling style, ``f([x0, x1])``, with the inputs kept as ``self.xs``:
    the graph behind the root was lost (Mul and both leaves), and no gradient was read."""
    script = write(tmp_path / "s.py", """
        import numpy as np
        class Variable:
            def __init__(self, data):
                self.data, self.grad, self.creator = data, None, None
            def backward(self):
                self.grad = np.ones_like(self.data)
                funcs = [self.creator]
                while funcs:
                    f = funcs.pop()
                    gxs = f.backward(*[y.grad for y in f.ys])
                    for x, gx in zip(f.xs, gxs):
                        x.grad = gx if x.grad is None else x.grad + gx
                        if x.creator is not None:
                            funcs.append(x.creator)
        class Function:
            def __call__(self, xs):
                ys = [Variable(np.asarray(y)) for y in self.forward([x.data for x in xs])]
                for y in ys:
                    y.creator = self
                self.xs, self.ys = xs, ys
                return ys
        class Add(Function):
            def forward(self, xs):
                return (xs[0] + xs[1],)
            def backward(self, gy):
                return gy, gy
        class Mul(Function):
            def forward(self, xs):
                return (xs[0] * xs[1],)
            def backward(self, gy):
                return gy * self.xs[0].data, gy * self.xs[1].data  # swapped: a bug to find
        x0, x1 = Variable(np.array(2.0)), Variable(np.array(3.0))
        y = Add()([Mul()([x0, x1])[0], x0])[0]
        y.backward()
    """)
    t = tracer.run_script(script)
    mul = next(c for c in t.calls.values() if c.op == "Mul")
    assert [t.variables[v].name for v in mul.inputs] == ["x0", "x1"]
    p = t.select_pass()
    assert [t.calls[s.call].op for s in p.steps] == ["Add", "Mul"]
    assert [a.item() for a in p.steps[1].accumulated] == [3.0, 3.0]  # x0: 1 + 2, x1: 3
    assert {(f.kind, f.call) for f in diagnose(t) if f.kind == "wrong-backward"} == {("wrong-backward", mul.id)}
