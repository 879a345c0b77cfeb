"""tracer.dot: golden DOT, escaping, gradient states, options, determinism (no renderer needed)."""

import os
import re
from pathlib import Path

import numpy as np
import pytest

import engine as E
import tracer
from tests.tracer.builders import (TraceBuilder, chain_trace, generation_trace, hostile_trace,
                                   problem_trace, seed_trace)
from tracer.params import op_params
from tracer.records import Finding
from tracer.themes import DEBUG, LECTURE
from tracer.dot import DotOptionError, node_count, to_dot
from tracer.gradview import PassIndex
from tracer.labels import badge_text, escape_html, format_array, format_number
from tracer.themes import ThemeError

GOLDEN = Path(__file__).parent / "golden"
NODE = re.compile(r"^\t(\S+) \[id=(\S+) ", re.M)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("GRADTRACE_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"{name} changed; rerun with GRADTRACE_UPDATE_GOLDEN=1"


def test_golden_seed_example():
    check_golden("seed.gv", to_dot(seed_trace()).source)


def test_golden_generation_example_with_gradient_edges():
    check_golden("generation.gv", to_dot(generation_trace(), grad_edges=True, legend=True).source)


def test_real_seed_trace_draws_like_the_hand_built_one():
    with tracer.trace() as t:
        x = E.Variable(np.array(0.5), name="x")
        a = E.square(x)
        b = E.exp(a)
        y = E.square(b)
        y.backward()
    assert to_dot(t).source == to_dot(seed_trace()).source


def test_real_generation_trace_shows_64_and_two_contributions_to_a():
    with tracer.trace() as t:
        x = E.Variable(np.array(2.0), name="x")
        a = E.square(x)
        y = E.add(E.square(a), E.square(a))
        y.backward()
    source = to_dot(t, grad_edges=True).source
    assert ">64<" in source
    a_id = next(v.id for v in t.variables.values() if v.name == "a")
    into_a = re.findall(rf"\tv{a_id} -> f\d+ \[id=g\d+_\d+ .*?>8<", source)  # beside each forward edge: no ports
    assert len(into_a) == 2


def test_node_ids_are_generated_and_user_text_escaped():
    source = to_dot(hostile_trace(), grad_edges=True, legend=True, theme="debug").source
    for statement, node_id in NODE.findall(source):
        assert re.fullmatch(r"[vf]\d+", node_id) and statement == node_id
    assert "&lt;b&gt;&amp;amp;&quot;q&quot;&lt;/b&gt;" in source
    assert "back\\\\slash &#123;braces&#125;" in source
    assert "two<BR/>lines" in source and "이름 한국어" in source
    assert "-&gt; \\\\N \\\\G" in source
    assert "x]; evil [" in source  # harmless inside an HTML label: no quote or > can end it
    body = "".join(to_dot(hostile_trace()).body)
    assert "<b>" not in body and '"q"' not in body


def test_badges_follow_the_real_step_order():
    source = to_dot(seed_trace()).source
    badges = re.findall(r"\t(f\d+) .*?<B>(\d+)</B></FONT></TD></TR></TABLE>>\]", source)
    assert badges == [("f1", "3"), ("f2", "2"), ("f3", "1")]
    assert [badge_text(n) for n in (1, 2, 20, 21, 100)] == ["①", "②", "⑳", "(21)", "(100)"]


def test_gradient_states_are_distinct():
    t = problem_trace()
    index = PassIndex(t, t.select_pass())
    states = {t.name_of(v): index.final(v).state for v in t.select_pass().variables}
    assert states == {"x": "value", "w": "zero", "k": "not-computed", "a": "cleared",
                      "b": "cleared", "c": "cleared", "y": "cleared"}
    source = to_dot(t, theme="debug").source
    for state in ("value", "zero", "not-computed", "cleared"):
        assert f'class="var {state}"' in source
    fills = {state: re.search(rf'class="var {state}".*?ID="v\d+g" [^>]*BGCOLOR="([^"]+)"', source).group(1)
             for state in ("value", "zero", "not-computed", "cleared")}
    assert len(set(fills.values())) == 4
    assert "None (not computed)" in source and "(cleared)" in source


def test_debug_theme_colours_problems_and_lists_findings_as_tooltips():
    t = problem_trace()
    debug = to_dot(t, theme="debug").source
    lecture = to_dot(t).source
    assert "Log produced -inf and nan" in debug and "Log produced" not in lecture
    assert "ValueError: shapes (10,20)" in debug
    assert "#FFCDD2" in debug and "#FFCDD2" not in lecture
    assert "(10, 20) float64" in debug and "min 0 max 199 mean 99.5" in debug


def test_arrays_are_summarised_not_dumped():
    t = problem_trace()
    source = to_dot(t).source
    assert "[0, 1, 2, ...]" in source
    assert "199" not in source.split("min 0 max 199")[0].split("w</B>")[-1]
    assert len(max(re.findall(r">([^<>]+)<", source), key=len)) < 80


def test_options_values_grads_shapes_precision_rankdir():
    t = problem_trace()
    bare = to_dot(t, values=False, grads=False, shapes=False, rankdir="LR").source
    assert "rankdir=LR" in bare and ">data<" not in bare and ">grad<" not in bare
    assert "float64" not in re.sub(r'TOOLTIP="[^"]*"', "", bare)
    assert ">3.297<" in to_dot(seed_trace()).source
    assert ">3.3<" in to_dot(seed_trace(), precision=2).source


def test_bad_options_name_the_choices():
    with pytest.raises(DotOptionError, match="hide"):
        to_dot(seed_trace(), inner="sometimes")
    with pytest.raises(DotOptionError, match="TB"):
        to_dot(seed_trace(), rankdir="up")
    with pytest.raises(ThemeError, match="lecture"):
        to_dot(seed_trace(), theme="neon")
    with pytest.raises(tracer.PassSelectionError):
        to_dot(seed_trace(), which=7)


def test_inner_calls_auto_follow_create_graph():
    with tracer.trace() as t:
        x = E.Variable(np.array(1.0), name="x")
        y = E.tanh(x)
        y.backward(create_graph=True)
    p = t.select_pass()
    assert p.inner_calls
    auto, hide, show = (node_count(to_dot(t, inner=m)) for m in ("auto", "hide", "show"))
    assert auto == show > hide
    with tracer.trace() as t2:
        x = E.Variable(np.array(1.0), name="x")
        y = E.tanh(x)
        y.backward()
    assert node_count(to_dot(t2)) == node_count(to_dot(t2, inner="hide"))
    assert 'class="fn inner"' in to_dot(t, inner="show").source


def test_step_option_shows_gradients_known_so_far():
    t = generation_trace()
    after2 = to_dot(t, step=2).source
    assert re.search(">8 *<", after2) and "not yet" in after2 and not re.search(">64 *<", after2)
    assert "#FFE066" in after2  # the current step's function is highlighted
    after4 = to_dot(t, step=4).source
    assert re.search(">64 *<", after4) and "16 (cleared)" in after4


def test_the_pictures_of_a_passs_steps_share_one_layout():
    """Each --step K picture was laid out on its own: a's box grew from 'not yet' to '16
    (cleared)' and the graph moved (283 to 340 px wide): a series of slides jumped."""
    t = generation_trace()
    widths = []
    for k in range(5):
        svg = tracer.render.render(t, "svg", step=k).decode()
        widths.append(float(re.search(r'<svg [^>]*width="([\d.]+)pt"', svg).group(1)))
    assert max(widths) - min(widths) < 8, widths  # was 34: the current box's heavier border, a space


def test_no_backward_pass_draws_the_forward_graph():
    with tracer.trace() as t:
        x = E.Variable(np.array(3.0), name="x")
        E.square(x)
    source = to_dot(t).source
    assert ">9<" in source and ">grad<" not in source


def test_deterministic():
    assert to_dot(hostile_trace(), grad_edges=True).source == \
        to_dot(hostile_trace(), grad_edges=True).source


def test_large_graphs_get_speed_tuning():
    source = to_dot(chain_trace(400)).source
    assert "nslimit" in source and "newrank=true" in source
    assert "nslimit" not in to_dot(seed_trace()).source


def test_formatting_helpers():
    assert format_number(3.297442541400256) == "3.297"
    assert [format_number(v) for v in (float("nan"), float("-inf"), 0.0, 7, 1e10)] == \
        ["nan", "-inf", "0", "7", "1e+10"]
    assert format_array(None) == "None"
    # below a million the whole part is kept: "6e+02" read as exactly 600
    assert [format_number(v, p) for v, p in ((603.25, 2), (14.0, 1), (9.99, 1), (12345.6, 4), (-603.7, 2))] \
        == ["603", "14", "10", "12346", "-604"]
    assert [format_number(v, p) for v, p in ((1234567.0, 4), (0.000012345, 4), (999999.6, 4))] == \
        ["1.235e+06", "1.234e-05", "1e+06"]
    # integers are exact: in full up to nine digits (1234567 was 1.235e+06)
    assert [format_number(v) for v in (1234567, -123456789, 1234567890)] == ["1234567", "-123456789", "1.235e+09"]
    assert escape_html("a\nb<c>") == "a<BR/>b&lt;c&gt;"


def test_trace_to_dot_method():
    assert seed_trace().to_dot(rankdir="LR").source == to_dot(seed_trace(), rankdir="LR").source


def _far_uses_trace():
    """y = y * x + y, 40 times: x is used all along the graph (drawn as dashed copies)."""
    with tracer.trace() as t:
        x = E.Variable(np.array(1.001), name="x")
        y = E.Variable(np.array(1.0), name="y0")
        for _ in range(40):
            y = y * x + y
        y.backward()
    return t


def test_far_uses_of_a_variable_get_proxy_copies():
    t = _far_uses_trace()
    source = to_dot(t, grad_edges=True).source
    x_id = next(v.id for v in t.variables.values() if v.name == "x")
    proxies = re.findall(rf'\t(p{x_id}_\d+_\d+) \[id=\1 class="var proxy"', source)
    assert len(proxies) > 30
    assert all(source.count(f"\t{p} -> f") == 2 for p in proxies)  # its forward edge and its gradient
    assert node_count(to_dot(t)) == len(t.variables) + len(t.calls) + len(proxies)
    assert "proxy" not in to_dot(generation_trace()).source


def test_very_big_graphs_get_plain_text_labels(monkeypatch):
    import tracer.dot as D
    monkeypatch.setattr(D, "COMPACT_NODES", 0)
    source = to_dot(hostile_trace(), theme="debug").source
    assert "<TABLE" not in source
    assert 'label="<b>&amp;amp;\\"q\\"</b>\\ndata 0\\ngrad 1"' in source
    assert 'label="-> \\\\N \\\\G\\ndata 5' in source


# ----- repeated steps, constants, parameters, input positions, seeds and roots ---------------

def repeated_trace():
    """The list-pop engine's order on a = x²; y = a² + a²: Square#1 runs at steps 3 and 5."""
    t = TraceBuilder()
    x = t.var(2.0, "x")
    a = t.call("Square", [x], 4.0, "a")
    b = t.call("Square", [a], 16.0, "b")
    c = t.call("Square", [a], 16.0, "c")
    y = t.call("Add", [b, c], 32.0, "y")
    t.backward(y, [(4, [1.0], [1.0, 1.0]), (3, [1.0], [8.0], [8.0]), (1, [8.0], [32.0], [32.0]),
                   (2, [1.0], [8.0], [16.0]), (1, [16.0], [64.0], [96.0])],
               {x: 96.0, a: 16.0, b: 1.0, c: 1.0, y: 1.0})
    return t.done()


def test_a_backward_that_ran_twice_shows_both_badges_the_repeat_marked():
    source = to_dot(repeated_trace(), grad_edges=True, legend=True).source
    square = re.search(r"\tf1 \[.*\n", source).group(0)
    badges = re.findall(r'BGCOLOR="(#[0-9A-F]+)" CELLPADDING="0"><FONT [^>]*><B>(\d+)</B>', square)
    assert badges == [(LECTURE.badge_fill, "3"), (LECTURE.repeat_fill, "5")]
    assert re.search(rf'id=g5_0 .*BGCOLOR="{LECTURE.repeat_fill}"', source)  # its gradient edge too
    assert "the same backward ran again" in source
    debug = to_dot(repeated_trace(), theme="debug").source
    assert "backward ran 2 times: steps 3, 5 of 5" in debug
    assert DEBUG.repeat_fill in re.search(r"\tf1 \[.*\n", debug).group(0)
    assert "ran again" not in to_dot(seed_trace(), legend=True).source


def constant_trace():
    with tracer.trace() as t:
        x = E.Variable(np.array(2.0), name="x")
        y = (19 - 14 * x) ** 3 + E.square(np.array(3.0)) * x
        y.backward()
    return t


def test_constants_fold_into_their_function_or_become_small_value_nodes():
    t = constant_trace()
    consts = [v.id for v in t.variables.values() if v.kind == "Constant"]
    assert len(consts) == 3
    source = to_dot(t, grad_edges=True).source
    assert "(19 \u2212 \u00b7)" in source and "(\u00b7 \u00d7 14)" in source  # operands in order
    assert "^3" in source                                                  # Pow's exponent
    lines = {m.group(1): m.group(0) for m in re.finditer(r"\t(v\d+) \[.*\n", source)}
    folded = [v for v in consts if f"v{v}" not in lines]
    assert len(folded) == 2
    small = lines[f"v{(set(consts) - set(folded)).pop()}"]
    assert 'class="var const"' in small and ">3<" in small and "grad" not in small
    for v in consts:  # no edge from a folded constant, no gradient edge to any constant
        assert not re.search(rf"\tv{v}(:\w)? -> f\d+(:\w)? \[id=g", source)
        assert (f"\tv{v} -> " in source) == (v not in folded)
    assert ">-2.5e+06<" not in source  # grads of constants are not drawn (the debug theme may)
    reloaded = tracer.loads(t.to_json())  # parameters and folding survive JSON
    again = to_dot(reloaded, grad_edges=True).source
    assert "^3" in again and "(19 \u2212 \u00b7)" in again and again == source


def test_a_forward_that_raised_is_marked_with_its_error():
    class Boom(E.Function):
        def forward(self, x):
            raise RuntimeError("forward exploded")

    with pytest.raises(RuntimeError), tracer.trace() as t:
        Boom()(E.square(E.Variable(np.array(2.0))))
    lines = [line for line in t.to_dot(theme="debug").source.splitlines() if ">Boom<" in line]
    assert len(lines) == 1 and "RuntimeError: forward exploded" in lines[0]
    assert not any("exploded" in line for line in t.to_dot(theme="debug").source.splitlines()
                   if ">Square<" in line)


def test_a_number_a_users_engine_wrapped_is_drawn_as_a_constant():
    from tests.tracer.engines import fullcore
    with tracer.trace(fullcore.Function, fullcore.Variable) as t:
        x = fullcore.Variable(np.array(2.0), name="x")
        (3 * x).backward()
    source = t.to_dot().source
    assert "<TD>(· × 3)</TD>" in source  # folded into Mul's box, as gradtrace's own Constants are
    assert source.count("class=\"var") == 2  # x and the result: no node for the 3


def test_a_constant_a_finding_concerns_keeps_its_gradient_in_the_debug_theme():
    t = constant_trace()
    const = next(v.id for v in t.variables.values() if v.kind == "Constant")
    t.findings = (Finding("leaf-gradient", "a constant got a gradient", None, variable=const),)
    assert f'\tv{const} [id=v{const} class="var ' in to_dot(t, theme="debug").source
    assert f"v{const}g" in to_dot(t, theme="debug").source
    assert f"v{const}g" not in to_dot(t).source


def test_op_parameters_are_shown_when_the_recorder_kept_them():
    with tracer.trace() as t:
        x = E.Variable(np.arange(6.0).reshape(2, 3), name="x")
        y = E.sum(x[:, 1:] ** 2, axis=0)
        E.sum(y).backward()
    shown = {c.op + str(c.id): op_params(t, c) for c in t.calls.values()}
    assert shown == {"GetItem1": "[:, 1:]", "Pow2": "^2", "Sum3": "axis=0", "Sum4": ""}
    source = to_dot(t).source
    assert "<TD>[:, 1:]</TD>" in source and "<TD>^2</TD>" in source and "<TD>axis=0</TD>" in source
    t.function_states[3] = {"axis": 0, "shape": (2, 2)}  # a student's Sum keeping its input's shape
    assert op_params(t, t.calls[3]) == "axis=0"  # it read "axis=0 shape=(2, 2)", as a parameter
    t.function_states[3] = {"shape": (4,)}  # another shape than the input's: a parameter (reshape)
    assert op_params(t, t.calls[3]) == "shape=(4,)"
    t.function_states[1] = {"key": np.arange(50)}  # not a small scalar or tuple: nothing shown
    t.function_states[3] = {"axis": "<b>" * 20}
    assert op_params(t, t.calls[1]) == "" and op_params(t, t.calls[3]) == ""


def test_inputs_of_order_sensitive_ops_are_numbered():
    with tracer.trace() as t:
        a = E.Variable(np.array(3.0), name="a")
        b = E.Variable(np.array(2.0), name="b")
        y = (a - b) / (a + b)
        y.backward()
    source = to_dot(t).source
    numbered = re.findall(r"\t(v\d+|f\d+) -> (f\d+) \[id=e\d+i(\d) [^\]]*headlabel=\"(\d)\"", source)
    ops = {f"f{c.id}": c.op for c in t.calls.values()}
    assert sorted((ops[f], p, h) for _, f, p, h in numbered) == [
        ("Div", "0", "0"), ("Div", "1", "1"), ("Sub", "0", "0"), ("Sub", "1", "1")]


def test_the_labels_of_parallel_edges_from_one_variable_go_to_their_outer_sides():
    with tracer.trace() as t:
        x = E.Variable(np.array(2.0), name="x")
        a = E.Variable(np.array(3.0), name="a")
        (x / x + a / x).backward()
    angles = re.findall(r'\tv(\d+) -> f(\d+) \[id=e\d+i(\d) headlabel="\d" labeldistance=1.5 labelangle=(-?\d+)',
                        to_dot(t).source)
    by_call = {}
    for var, call, position, angle in angles:
        by_call.setdefault(t.calls[int(call)].inputs == (1, 1), []).append((position, angle))
    assert sorted(by_call[True]) == [("0", "35"), ("1", "-35")]  # x / x: outward; they read "10" between
    assert sorted(by_call[False]) == [("0", "-35"), ("1", "35")]  # a / x: as before


def test_operands_whose_order_matters_are_laid_out_in_their_order(tmp_path):
    """Sub(y, y_pred) was drawn with y_pred on the left: the picture read y_pred - y."""
    with tracer.trace() as t:
        x = E.Variable(np.array(2.0), name="x")
        y_pred = E.exp(E.sin(x))
        y = E.Variable(np.array(1.0), name="y")
        (E.square(y - y_pred * 2) * y_pred).backward()
    source = to_dot(t).source
    sub, mul = (next(c.id for c in t.calls.values() if c.op == op) for op in ("Sub", "Mul"))
    assert re.search(rf'\tf{sub} \[id=f{sub} class="fn" ordering=in ', source)
    assert re.search(rf'\tf{mul} \[id=f{mul} class="fn" label=', source)  # Mul's order is free
    svg = tracer.write_picture(t, tmp_path / "sub.svg")
    boxes = {}
    for group in re.finditer(r'<g id="(v\d+)" class="node[^"]*">.*?<text[^>]*x="(-?[\d.]+)"', svg.read_text(), re.S):
        boxes[group.group(1)] = float(group.group(2))
    first, second = t.calls[sub].inputs
    assert boxes[f"v{first}"] < boxes[f"v{second}"]  # y left of y_pred * 2 (it was right of it)


def test_the_outputs_of_a_function_with_several_are_numbered():
    class Split2(E.Function):
        def forward(self, x):
            return x[:1], x[1:]

    with tracer.trace() as t:
        a, b = Split2()(E.Variable(np.array([1.0, 2.0, 3.0]), name="x"))
        E.exp(a)
    source = to_dot(t).source
    assert re.findall(r'\tf1 -> v\d+ \[id=e1o(\d) taillabel="(\d)"', source) == [("0", "0"), ("1", "1")]
    assert "taillabel" not in source.split("f2 ->", 1)[1]  # Exp has one output: no number


def test_seed_and_unnamed_roots_of_create_graph_passes_are_named():
    with tracer.trace() as t:
        x = E.Variable(np.array(2.0), name="x")
        (x ** 3).backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
    names = re.findall(r"<I>([^<]*pass[^<]*)</I>", to_dot(t).source)
    assert names == ["seed of pass 1"]  # the root has the script's name: gx
    with tracer.trace(keep="all") as t2:
        x = E.Variable(np.array(2.0), name="x")
        y = x ** 3
        y.name = "y"
        y.backward(create_graph=True)
        x.grad.name = None
        _second(x)
    names = re.findall(r"<I>(y[^<]*|root[^<]*|\u2202[^<]*)</I>", to_dot(t2).source)
    assert sorted(names) == ["y.grad (seed)", "\u2202y/\u2202x"]
    t2.passes = t2.passes[1:]  # the first pass not kept: its seed and the root say what they are
    names = re.findall(r"<I>([^<]*pass[^<]*)</I>", to_dot(t2).source)
    assert sorted(names) == ["root of pass 2", "seed of pass 1"]


def _second(x):
    kept = [x.grad]  # a list item gets no script name
    x.cleargrad()
    kept[0].backward()


def test_a_seed_reused_by_the_next_pass_keeps_its_own_pass():
    with tracer.trace() as t:
        x = E.Variable(np.array(1.0), name="x")
        E.tanh(x).backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward(create_graph=True)
    shown = re.findall(r"<I>([^<]*seed[^<]*)</I>", to_dot(t, inner="show").source)
    assert sorted(shown) == ["gx.grad (seed)", "seed of pass 1"]
    assert re.findall(r"<I>([^<]*seed[^<]*)</I>", to_dot(t, inner="hide").source) == ["seed of pass 1"]


def test_each_seed_keeps_its_own_pass_three_passes_deep():
    for keep, expected in (("last", ["seed of pass 1", "seed of pass 2"]),
                           ("all", ["gx.grad (seed)", "y.grad (seed)"])):
        with tracer.trace(keep=keep) as t:
            x = E.Variable(np.array(1.0), name="x")
            y = E.sin(x)
            y.backward(create_graph=True)
            gx = x.grad
            x.cleargrad()
            gx.backward(create_graph=True)  # its graph uses y's seed: gx = seed(y) * cos(x)
            gx2 = x.grad
            x.cleargrad()
            gx2.backward()
        shown = re.findall(r"<I>([^<]*seed[^<]*)</I>", to_dot(t, inner="hide").source)
        assert sorted(shown) == expected, keep  # y's seed was named after pass 2 as well


def test_very_big_graphs_keep_constants_and_parameters_in_plain_text(monkeypatch):
    import tracer.dot as D
    monkeypatch.setattr(D, "COMPACT_NODES", 3)
    source = to_dot(constant_trace()).source
    assert 'label="Sub (19 \u2212 \u00b7)' in source and 'label="Pow ^3' in source
    assert re.search(r'class="var const" label="3" shape=box', source)


def test_a_step_beyond_the_pass_is_a_clear_error():
    import numpy as np
    import engine as E
    import tracer
    from tracer.dot import DotOptionError, to_dot
    with tracer.trace() as t:
        E.square(E.exp(E.Variable(np.array(1.0)))).backward()
    assert "Exp" in to_dot(t, step=2).source
    with pytest.raises(DotOptionError, match=r"step 3 does not exist: the pass has 2 backward steps \(choose 0..2\)"):
        to_dot(t, step=3)


def test_debug_theme_borders_errors_red_and_warnings_amber():
    from tracer.records import Finding
    from tracer.themes import DEBUG

    t = seed_trace()
    t.findings = (Finding("stale-gradient", "m", 1, None, 1, None, "warning", "", {}),
                  Finding("wrong-backward", "m", 1, 2, None, 2, "error", "", {}))
    source = to_dot(t, theme="debug").source
    lines = {m.group(1): m.group(0) for m in re.finditer(r"\t([vf]\d+) \[.*\n", source)}
    assert DEBUG.warning_border in lines["v1"] and DEBUG.finding_border not in lines["v1"]
    assert DEBUG.finding_border in lines["f2"]
    assert DEBUG.warning_border not in lines["f2"] and DEBUG.finding_border not in lines["v2"]


def test_a_long_name_is_cut_in_its_box_and_whole_in_the_tooltip():
    name = "learning_rate_scaled_weight_for_the_first_hidden_layer"
    with tracer.trace() as t:
        E.square(E.Variable(np.array(2.0), name=name)).backward()
    line = next(line for line in t.to_dot().source.splitlines() if line.startswith("\tv1 "))
    assert f'<TD ID="v1n" TOOLTIP="{name}"><B>learning_rate_scaled_…dden_layer</B></TD>' in line


@pytest.mark.parametrize("name, shown", [
    ("a" * 32, "a" * 32), ("a" * 33, "a" * 21 + "…" + "a" * 10),
    ("가" * 16, "가" * 16), ("가" * 17, "가" * 10 + "…" + "가" * 5),  # a wide character takes two columns
    ("a" * 31 + "가", "a" * 21 + "…" + "a" * 8 + "가"),
    ("hidden_layer_number_one_weight_matrix", "hidden_layer_number_o…ght_matrix"),
    ("hidden_layer_number_two_weight_matrix", "hidden_layer_number_t…ght_matrix"),  # still apart
])
def test_short_names_count_columns(name, shown):
    from tracer.labels import short_name
    assert short_name(name) == shown


def test_summaries_say_their_statistics_leave_nan_and_inf_out():
    from tracer.labels import format_summary
    from tracer.snapshot import capture, freeze

    def summary(values):
        return format_summary(freeze(capture(np.array(values, dtype=float))))
    assert summary([-np.inf, 0.54, 1.86]) == "finite: min 0.54 max 1.86 mean 1.2 · 1 inf"  # min was "0.54"
    assert summary([np.nan, np.inf, -np.inf, 1]) == "finite: min 1 max 1 mean 1 · 1 nan, 2 inf"
    assert summary(np.arange(10.0)) == "min 0 max 9 mean 4.5"
    assert summary([np.nan, np.nan]) == "2 nan"
    # finite values whose sum is beyond float range: a mean of inf, not an OverflowError from fsum
    assert summary([1e308] * 150 + [1.0]) == "min 1 max 1e+308 mean inf"
    small = freeze(capture(np.array([1e308, 1e308, 1.0])))  # kept whole: statistics in Python
    assert (small.mean, small.max) == (np.inf, 1e308)


def test_a_precision_above_the_default_reaches_array_heads_and_summaries():
    with tracer.trace() as t:
        E.sum(E.Variable(np.array([[0.123456789, 0.2345678, 0.3456789], [1.0, 2.0, 3.0]]), name="w") * 2.0).backward()
    assert "[0.123, 0.235, 0.346, ...]" in to_dot(t).source  # the default keeps boxes narrow
    source = to_dot(t, precision=8).source
    assert "[0.12345679, 0.2345678, 0.3456789, ...]" in source and "min 0.12345679" in source


def test_a_step_view_tells_the_current_and_later_steps_apart_in_greyscale():
    source = to_dot(generation_trace(), step=2, legend=True).source
    later = re.findall(r'BGCOLOR="#FFFFFF" BORDER="1" COLOR="#1F2D3D" CELLPADDING="0"><FONT COLOR="#1F2D3D" '
                       r'POINT-SIZE="\d+"><B>(\d+)</B>', source)
    assert sorted(later) == ["3", "3", "4"]  # hollow badges: steps 3 and 4 (and the legend's sample)
    assert source.count('<TABLE BORDER="3"') == 1  # the current step's heavy border
    assert "the step shown: its backward just ran" in source and "a step that has not run yet" in source
    plain = to_dot(generation_trace(), legend=True).source
    assert 'BORDER="3"' not in plain and "has not run yet" not in plain


def test_seeds_of_a_loop_of_create_graph_passes_are_told_apart():
    for keep, expected in (("last", ["gx.grad (seed)", "seed of pass 1", "seed of pass 2"]),
                           ("all", ["gx.grad (seed of pass 2)", "gx.grad (seed of pass 3)", "y.grad (seed)"])):
        with tracer.trace(keep=keep) as t:
            x = E.Variable(np.array(1.0), name="x")
            y = E.tanh(x)
            y.backward(create_graph=True)
            for _ in range(2):  # tanh_derivatives.py --order 3
                gx = x.grad
                x.cleargrad()
                gx.backward(create_graph=True)
        shown = re.findall(r"<I>([^<]*seed[^<]*)</I>", to_dot(t, inner="show").source)
        # it said "seed of pass 2" twice (keep last), and "gx.grad (seed)" twice (keep all)
        assert sorted(shown) == expected, keep


def test_seed_names_read_the_calls_once_per_trace_not_once_per_pass():
    from tracer.steps_table import format_steps

    class CountedCalls(dict):
        reads = 0

        def __iter__(self):
            CountedCalls.reads += 1
            return super().__iter__()

    with tracer.trace(keep="all") as t:
        x = E.Variable(np.array(1.0), name="x")
        for _ in range(20):
            x.cleargrad()
            E.sin(E.square(x)).backward()
    t.calls = CountedCalls(t.calls)
    table = format_steps(t, "all")
    assert len(re.findall(r"^pass \d+ of 20:", table, re.M)) == 20
    assert CountedCalls.reads <= 3  # it was once per pass: quadratic in a training loop


def test_a_summarised_array_whose_head_holds_every_element_shows_no_dots():
    with tracer.trace(max_elements=2) as t:  # three elements: summarised, head of 6
        w = E.Variable(np.array([[0.5, -1.25, 2.0]]), name="w")
        E.sum(w * 2.0).backward()
    source = to_dot(t).source
    assert "[[0.5, -1.25, 2]]" in source and "2, ...]" not in source  # was [0.5, -1.25, 2, ...]


def test_the_legend_explains_dashed_boxes_when_there_are_some():
    with tracer.trace() as t:
        x = E.Variable(np.array(1.0), name="x")
        E.sin(x).backward(create_graph=True)
    inner_row = "made inside a backward step: the gradients' own graph"
    assert inner_row in to_dot(t, legend=True).source
    assert inner_row not in to_dot(t, legend=True, inner="hide").source
    assert inner_row not in to_dot(seed_trace(), legend=True).source
    assert "copy of x, drawn next to a use far below it" in to_dot(_far_uses_trace(), legend=True).source
    assert "copy of x" not in to_dot(seed_trace(), legend=True).source


def test_a_number_wrapped_inside_the_first_step_is_not_named_a_seed():
    from tests.tracer.engines import fullcore
    with tracer.trace(fullcore.Function, fullcore.Variable) as t:
        x = fullcore.Variable(np.array(1.0))
        x.name = "x"
        y = fullcore.cos(x)  # Cos.backward: gy * -1, the -1 wrapped as a Variable inside step 1
        y.name = "y"
        y.backward(create_graph=True)
    from tracer.dotnodes import role_names
    names = role_names(t, t.select_pass(), list(t.variables))
    implicit = [v for v, r in t.variables.items() if r.implicit]
    assert implicit and not set(implicit) & set(names)  # the -1 read "y.grad (seed of pass 1)", as the seed did
    assert sorted(names.values()) == ["y.grad (seed)"]


def test_tooltips_start_with_the_ids_reports_use():
    """check names `Exp (f1)` and `x (v1)`: the picture's tooltips say which box that is."""
    with tracer.trace() as t:
        E.square(E.exp(E.Variable(np.array(2.0), name="x"))).backward()
    source = to_dot(t, theme="debug").source
    assert 'TOOLTIP="x (v1) = 2' in source and 'TOOLTIP="v2 = 7.389' in source
    assert 'TOOLTIP="Exp (f1): forward call 1' in source


def test_write_picture_of_a_trace_to_json_or_html_writes_the_trace_and_the_player(tmp_path):
    """A .json was Graphviz's layout JSON (tracer.load could not read it), .html refused."""
    t = seed_trace()
    saved = tracer.load(tracer.write_picture(t, tmp_path / "t.json"))
    assert saved.to_json() == t.to_json()
    page = tracer.write_picture(t, tmp_path / "t.htm").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "data-step" in page


def test_a_gradient_a_finding_calls_wrong_is_drawn_in_the_error_colours():
    """It was drawn in the healthy gradient's green (a wrong x.grad next to its red border read
    as 'OK'); the healthy colour is now blue, apart from the error red for colour-blind eyes too."""
    t = seed_trace()
    x = next(v.id for v in t.variables.values() if v.name == "x")
    healthy = to_dot(t, theme="debug").source
    t.findings = (Finding("leaf-gradient", "the gradient of x is 1 but ... gives 3.297", 1, variable=x),)
    wrong = to_dot(t, theme="debug").source
    field = re.compile(rf'ID="v{x}g"[^>]*BGCOLOR="([^"]*)"><FONT[^>]*>grad </FONT><FONT COLOR="([^"]*)"')
    assert field.search(healthy).groups() == ("#E8EAF6", "#1A237E")
    assert field.search(wrong).groups() == ("#FFCDD2", "#B71C1C")


def test_a_variable_many_functions_use_gets_a_rank_of_room_below_it():
    """goldstein_price's y fed 12 boxes on the rank right below it: its edges ran flat along
    their tops, so which boxes took y could not be read."""
    with tracer.trace() as t:
        x = E.Variable(np.array(1.0), name="x")
        w = E.Variable(np.array(2.0), name="w")
        terms = [E.sin(x), E.cos(x), E.exp(x), E.square(x), E.tanh(x), x * w]
        y = terms[0]
        for term in terms[1:]:
            y = y + term
        y.backward()
    source = to_dot(t).source
    x_id, w_id = (next(v.id for v in t.variables.values() if v.name == n) for n in ("x", "w"))
    assert len(re.findall(rf"\tv{x_id} -> f\d+ \[[^]]*minlen=2\]", source)) == 6
    assert not re.search(rf"\tv{w_id} -> f\d+ \[[^]]*minlen", source)  # used once: as before
