"""JSON export and import: schema, round trip, NaN/Inf, bad documents."""

import json
import math
import re

import numpy as np
import pytest

import engine as E
import tracer
from tests.tracer.builders import generation_trace
from tracer import jsonio


def seed_trace():
    with tracer.trace(keep="all") as t:
        x = E.Variable(np.array(0.5))
        y = E.square(E.exp(E.square(x)))
        y.backward()
    return t


def test_document_has_the_documented_fields():
    doc = json.loads(seed_trace().to_json())
    assert doc["schema"] == "gradtrace.trace/1"
    assert {"id", "name", "shape", "dtype", "value"} <= set(doc["variables"][0])
    assert {"id", "op", "inputs", "outputs", "index", "in_step"} <= set(doc["calls"][0])
    p = doc["passes"][0]
    assert {"root", "steps", "grads", "error"} <= set(p)
    assert {"index", "call", "grads_in", "grads_out"} <= set(p["steps"][0])
    assert doc["variables"][0]["value"] == {"shape": [], "dtype": "float64", "value": 0.5}
    assert p["grads"]["1"]["value"] == pytest.approx(3.297442541400256, abs=1e-12)


def test_round_trip_is_exact():
    t = seed_trace()
    text = t.to_json()
    again = tracer.loads(text)
    assert again.to_json() == text
    assert again.select_pass().steps[2].grads_out[0].item() == pytest.approx(3.297442541400256, abs=1e-12)


def test_op_parameters_survive_so_reloaded_pictures_match():
    with tracer.trace() as t:
        x = E.Variable(np.array([[1.0, 2.0], [3.0, 4.0]]), name="x")
        y = E.sum(E.sum(x ** 3, axis=0))
        y.backward()
    doc = json.loads(t.to_json())
    assert [c.get("params") for c in doc["calls"]] == ["^3", "axis=0", None]
    again = tracer.loads(t.to_json())
    assert again.to_dot().source == t.to_dot().source and "^3" in again.to_dot().source
    assert again.to_json() == t.to_json()


def test_nan_inf_and_summaries_survive():
    with tracer.trace(max_elements=4) as t:
        x = E.Variable(np.array([1.0, np.nan, np.inf, -np.inf]))
        big = E.Variable(np.arange(10.0).reshape(2, 5))
        y = E.sum(x * 2.0) + E.sum(big)
        y.backward()
    text = t.to_json()
    json.loads(text)  # strict JSON: no bare NaN tokens
    assert "NaN" in text and "-Infinity" in text
    again = tracer.loads(text)
    values = again.variables[1].value.values
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2] == math.inf and values[3] == -math.inf
    summary = next(v for v in again.variables.values() if v.name == "big").value
    assert summary.values is None and summary.shape == (2, 5) and summary.max == 9.0
    assert again.to_json() == text


@pytest.mark.parametrize("text, message", [
    ("not json", "not JSON"),
    ('{"schema": "other/2"}', "not a gradtrace.trace/1 document"),
    ('[1, 2]', "not a gradtrace.trace/1 document"),
    ('{"schema": "gradtrace.trace/1"}', "malformed"),
])
def test_bad_documents_are_clear_errors(text, message):
    with pytest.raises(tracer.SchemaError, match=message):
        tracer.loads(text)


def test_load_missing_file(tmp_path):
    with pytest.raises(tracer.SchemaError, match="cannot read"):
        jsonio.load(tmp_path / "missing.json")


def _damaged(change) -> str:
    data = json.loads(generation_trace().to_json())
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize("change, says", [
    (lambda d: d.update(pass_count=float("inf")), "OverflowError"),
    (lambda d: d["variables"][0].update(name={"a": 1}), "variable 1 has a name that is not text"),
    (lambda d: d["variables"][0].update(shape=[-1, "a"]), "variable 1 has shape [-1, 'a'], not whole numbers"),
    (lambda d: d["passes"][0]["steps"][0].update(index=10 ** 9), "pass 1 has step 1000000000 in position 1"),
    (lambda d: d["passes"][0]["steps"][0].update(call=999), "step 1 names call 999, which the document"),
    (lambda d: d["calls"][0].update(inputs=[77]), "call 1 names variable 77, which the document"),
    (lambda d: d["variables"][0]["value"].update(value="hello"), "unexpected string 'hello' where a number"),
])
def test_a_damaged_trace_is_a_clear_error_naming_the_fix(change, says):
    with pytest.raises(tracer.SchemaError) as caught:
        tracer.loads(_damaged(change))
    assert says in str(caught.value) and str(caught.value).endswith("re-export it with 'gradtrace "
                                                                    "render ... -o trace.json'")


def test_text_that_is_not_a_trace_is_a_clear_error(tmp_path):
    with pytest.raises(tracer.SchemaError, match="nested too deeply"):
        tracer.loads("[" * 100_000)
    (tmp_path / "t.json").write_bytes(b"\xff\xfe")
    with pytest.raises(tracer.SchemaError, match=r"t\.json is not a trace \(not UTF-8 text\)"):
        jsonio.load(tmp_path / "t.json")


def test_passes_that_name_what_the_document_lacks_or_none_kept_are_clear_errors():
    with pytest.raises(tracer.SchemaError, match="pass 1 names call 77 in its calls, which the document"):
        tracer.loads(_damaged(lambda d: d["passes"][0].update(calls=[1, 77])))
    with pytest.raises(tracer.SchemaError, match="pass 1 names variable 999 as its root"):
        tracer.loads(_damaged(lambda d: d["passes"][0].update(root=999)))
    none_kept = tracer.loads(_damaged(lambda d: d.update(passes=[], pass_count=3)))
    with pytest.raises(tracer.PassSelectionError, match="none of the run's 3 backward passes was kept"):
        none_kept.select_pass()
    with pytest.raises(tracer.SchemaError, match=r"^not JSON \(Unterminated string starting at line 1\)"):
        tracer.loads('{"a": "abc')


@pytest.mark.parametrize("max_elements", [3, 100])  # summarised, and whole
@pytest.mark.parametrize("data", [np.arange(5, dtype=np.complex128) + 1j,
                                  np.array([1, 2, 3.5, 4, 5], dtype=object)])
def test_complex_and_object_data_a_trace_saved_is_read_back(data, max_elements):
    with tracer.trace(max_elements=max_elements) as t:
        x = E.Variable(data)
        (x * x).sum().backward()
    assert t.variables[1].value.dtype == data.dtype.name
    saved = t.to_json()
    assert tracer.loads(saved).to_json() == saved  # "unexpected string '(1+0j)'": the file was unreadable


@pytest.mark.parametrize("data", [np.array([b"ab", b"cd"]), np.array(["2026-11-27"], dtype="datetime64[D]")])
def test_bytes_and_dates_in_a_saved_trace_are_read_back(data):
    from tracer.snapshot import freeze
    saved = json.loads(json.dumps(jsonio.snapshot_to_json(freeze(data))))
    assert jsonio._snapshot_from_json(saved) == freeze(data)  # "unexpected string" before


def test_an_unknown_dtype_is_a_malformed_document():
    with pytest.raises(jsonio.SchemaError, match="unknown dtype 'nonsense'"):
        jsonio._snapshot_from_json({"shape": [1], "dtype": "nonsense", "value": ["x"]})


@pytest.mark.parametrize("change, reason", [
    (lambda d: d["calls"][0].update(op=None), "call 1 has an op name that is not text"),
    (lambda d: d["calls"][0].update(in_step="x"), "call 1 has in_step ['x'], not [pass, step]"),
    (lambda d: d["variables"][0].update(shape=[10 ** 12, 10 ** 12]), "more elements than any array holds"),
    (lambda d: d["variables"].append(dict(d["variables"][0])), "two variables have id 1"),
    (lambda d: d["calls"].append(dict(d["calls"][0])), "two calls have id 1"),
    (lambda d: d["variables"][0].update(id=True), "id True is not a whole number"),
    (lambda d: d["variables"][1].update(creator="1"), "has creator '1', not a call id"),
    (lambda d: d["variables"][0].update(dtype="float6"), "variable 1 has dtype 'float6', which numpy does not know"),
    (lambda d: d["variables"][0].update(dtype=[]), "variable 1 has dtype [], which numpy does not know"),
    (lambda d: d["variables"][0]["value"].update(dtype={}), "unknown dtype {}"),
    (lambda d: d["passes"][0]["steps"][1].update(inner_calls=[999]),
     "pass 1 step 2 names call 999 in its inner_calls, which the document does not hold"),
    (lambda d: d["passes"][0]["steps"][0].update(inner_calls=["1"]), "step 1 names call '1' in its inner_calls"),
    (lambda d: d["passes"][0]["steps"][0].update(call=True), "pass 1 step 1 names call True, which"),
    (lambda d: d["passes"][0].update(calls=[True, 2]), "pass 1 names call True in its calls, which"),
    (lambda d: d["passes"][0].update(calls=[1, "x"]), "pass 1 names call 'x' in its calls, which"),
    (lambda d: d["passes"][0].update(variables=[1.0]), "pass 1 names variable 1.0 in its variables, which"),
    (lambda d: d["calls"][0].update(inputs=[True]), "call 1 names variable True, which"),
    (lambda d: d["calls"][0].update(generation="x"), "call 1 has generation 'x', not a number"),
    (lambda d: d["calls"][0].update(error=["x"]), "call 1 has error ['x'], not text"),
    (lambda d: d["passes"][0]["steps"][0].update(error=1), "pass 1 step 1 has error 1, not text"),
    (lambda d: d.update(error={"type": "E", "message": "m", "step": None, "traceback": 1}),
     "the run's error has a type, message or traceback that is not text"),
    (lambda d: d["passes"][0].update(error={"type": "E", "message": "m", "step": [], "traceback": None}),
     "pass 1's error has step [], not a step number"),
])
def test_crafted_documents_are_malformed_not_internal_errors(change, reason):
    """Each of these was an internal error (or drawn silently) before."""
    data = json.loads(jsonio.dumps(generation_trace()))
    change(data)
    with pytest.raises(jsonio.SchemaError, match=re.escape(reason)):
        jsonio.loads(json.dumps(data))


def test_a_number_of_thousands_of_digits_is_malformed():
    text = jsonio.dumps(generation_trace()).replace('"pass_count": 1', '"pass_count": 1' + "0" * 5000, 1)
    with pytest.raises(jsonio.SchemaError, match=r"malformed gradtrace.trace/1 document \(Exceeds the limit"):
        jsonio.loads(text)


_NUMPY_TYPES = [np.longdouble, np.float16, np.float32, np.float64, np.int8, np.int64, np.uint64, np.bool_,
                np.complex64, np.complex128, np.clongdouble]


@pytest.mark.parametrize("max_elements", [2, 100])  # summarised, and whole
@pytest.mark.parametrize("dtype", _NUMPY_TYPES, ids=lambda t: np.dtype(t).name)
def test_every_numpy_scalar_type_is_written_as_json_numbers_and_read_back(dtype, max_elements):
    """float128 was 'Object of type longdouble is not JSON serializable' (an internal error)."""
    with tracer.trace(max_elements=max_elements) as t:
        x = E.Variable(np.array([2, 3, 1], dtype=dtype))
        E.sum(E.square(x)).backward()
    from tracer.diagnose import diagnose
    diagnose(t)
    saved = t.to_json()
    value = json.loads(saved)["variables"][0]["value"]
    elements = value["value"] if "value" in value else value["summary"]["head"]
    if np.dtype(dtype).kind == "c":
        assert elements[:2] == ["(2+0j)", "(3+0j)"]
    else:
        assert elements[:2] == [True, True] if dtype is np.bool_ else elements[:2] == [2, 3]
        assert all(type(v) in (int, float, bool) for v in elements)
    assert tracer.loads(saved).to_json() == saved


def test_a_longdouble_snapshot_holds_python_floats_and_its_statistics():
    from tracer.snapshot import freeze
    snap = freeze(np.array([1.5, -2.0, np.nan], dtype=np.longdouble))
    assert [type(v) for v in snap.values] == [float, float, float] and snap.dtype == np.dtype(np.longdouble).name
    assert (snap.min, snap.max, snap.nan_count) == (-2.0, 1.5, 1)
    assert snap.to_array().dtype == np.longdouble


def test_numpy_scalars_in_a_findings_numbers_are_written_as_json_numbers():
    from tracer.records import Finding
    t = seed_trace()
    numbers = {"a": np.float32(1.5), "b": np.int64(3), "c": np.longdouble("nan"), "d": np.bool_(True),
               "e": np.complex64(1 + 2j), "f": np.float16(-np.inf)}
    t.findings = (Finding("nan-inf", "m", 1, 1, None, None, "error", "", numbers),)
    written = json.loads(t.to_json())["findings"][0]["numbers"]
    assert written == {"a": 1.5, "b": 3, "c": "NaN", "d": True, "e": "(1+2j)", "f": "-Infinity"}


class _ThreeGradients(E.Function):
    def forward(self, x):
        return 2 * x

    def backward(self, gy):
        return 2 * gy, gy, gy  # one input: an engine that zips drops the other two


def test_a_step_that_returned_more_gradients_than_inputs_is_read_back():
    """The recorder keeps what a backward returned: such a document is gradtrace's own, not malformed."""
    with pytest.raises(E.errors.BackwardError), tracer.trace() as t:
        E.square(_ThreeGradients()(E.Variable(np.array(3.0)))).backward()
    saved = t.to_json()
    assert [len(s["grads_out"]) for s in json.loads(saved)["passes"][0]["steps"]] == [1, 3]
    assert tracer.loads(saved).to_json() == saved


def _summarised_document() -> dict:
    """x complex (kept as text), w with NaN and Inf, both summarised (more than 3 elements)."""
    with np.errstate(invalid="ignore"), tracer.trace(max_elements=3) as t:
        x = E.Variable(np.arange(5, dtype=np.complex128) + 1j, name="x")
        w = E.Variable(np.array([1.0, np.nan, np.inf, 2.0, 3.0]), name="w")
        y = E.Variable(np.array(1 + 2j), name="y")
        (E.sum(E.square(x)) + E.sum(w * w) + y).backward()
    return json.loads(t.to_json())


def _snapshots(data: dict) -> dict:
    """The values of x, w and y in the document, by name."""
    return {v["name"]: v["value"] for v in data["variables"] if v["name"] in ("x", "w", "y")}


@pytest.mark.parametrize("change, reason", [
    (lambda d: d["w"]["summary"].update(min=[]), "summary holds [] where a number belongs"),
    (lambda d: d["w"]["summary"].update(norm=True), "summary holds True where a number"),
    (lambda d: d["w"]["summary"].update(min=None), "summary has min, max, mean, norm [None, 3.0, 2.0, "),
    (lambda d: d["w"]["summary"].update(max="NaN"), "summary has min, max, mean, norm [1.0, nan, 2.0, "),
    (lambda d: d["w"]["summary"].update(min=None, max=None), "summary has min, max, mean, norm [None, None, 2.0"),
    (lambda d: d["w"]["summary"].update(nan=1e308), "summary counts 1e+308 NaN or Inf"),
    (lambda d: d["w"]["summary"].update(inf=6), "summary counts 6 NaN or Inf elements of shape [5]"),
    (lambda d: d["w"]["summary"]["head"].append([1]), "holds [1] where a number belongs"),
    (lambda d: d["x"]["summary"]["head"].append(None), "holds None where the text of an"),
    (lambda d: d["y"].update(value=None), "holds None where the text of an element"),
    (lambda d: d["y"].update(value=[]), "a snapshot holds 0 values for shape []"),
    (lambda d: d["y"].update(shape=[9999]), "a snapshot holds 1 values for shape [9999]"),
    (lambda d: d["y"].update(value="abc"), "a snapshot holds text that is not complex128 data (complex() arg is a malformed"),
    (lambda d: d["y"].update(shape=[-1]), "a snapshot has shape [-1], not whole numbers"),
    (lambda d: d["y"].update(shape=["1"]), "a snapshot has shape ['1'], not whole numbers"),
])
def test_damaged_snapshots_are_malformed_not_internal_errors(change, reason):
    """Each of these was read, and failed later as an internal error (struct.error, reshape, complex())."""
    data = _summarised_document()
    change(_snapshots(data))
    with pytest.raises(jsonio.SchemaError, match=re.escape(reason)):
        jsonio.loads(json.dumps(data))


def test_a_summary_whose_mean_overflowed_to_nan_is_read_back():
    """Finite elements whose sum is inf - inf: the mean is NaN (kept as None), min and max are numbers."""
    from tracer.snapshot import _summarise as summarise
    snap = summarise(np.array([1e308] * 1024 + [-1e308] * 1024))
    assert (snap.min, snap.max, snap.mean) == (-1e308, 1e308, None)
    saved = json.loads(json.dumps(jsonio.snapshot_to_json(snap)))
    assert jsonio._snapshot_from_json(saved) == snap


class _AddOneInPlace(E.Function):
    """A forward that changes its input array in place (`x += 1`)."""

    def forward(self, x):
        x += 1
        return x * 2

    def backward(self, gy):
        return gy * 2


def _changed_leaf_trace():
    with tracer.trace() as t:
        x = E.Variable(np.array([1.0, 2.0]), name="x")
        E.sum(_AddOneInPlace()(x) + E.square(x)).backward()
    return t


def test_a_leaf_a_forward_changed_is_saved_and_read_back():
    t = _changed_leaf_trace()
    assert t.leaf_changed_at == {1: 1}
    text = t.to_json()
    assert json.loads(text)["leaf_changed_at"] == {"1": 1}
    again = tracer.loads(text)
    assert again.leaf_changed_at == {1: 1} and again.to_json() == text


def test_a_document_without_leaf_changed_at_loads_as_no_leaf_changed():
    """The field is optional: traces without such a leaf (and older documents) leave it out."""
    assert "leaf_changed_at" not in json.loads(seed_trace().to_json())
    data = json.loads(_changed_leaf_trace().to_json())
    del data["leaf_changed_at"]
    assert tracer.loads(json.dumps(data)).leaf_changed_at == {}


def test_a_leaf_changed_by_a_call_the_keep_policy_forgot_is_not_saved():
    """The call is gone from the trace, the leaf is not: the document must still load."""
    with tracer.trace(keep="last") as t:
        w = E.Variable(np.array([1.0, 2.0]), name="w")
        for step in range(3):
            E.sum(_AddOneInPlace()(w) if step == 0 else E.square(w)).backward()
    assert 1 not in t.calls and t.leaf_changed_at == {}
    assert tracer.loads(t.to_json()).to_json() == t.to_json()


@pytest.mark.parametrize("changed, reason", [
    ({"9": 1}, "leaf_changed_at names variable 9, which the document does not hold"),
    ({"1": 99}, "leaf_changed_at names call 99 for variable 1, which the document does not hold"),
    ({"1": "1"}, "leaf_changed_at names call '1' for variable 1, which"),
    ({"1": True}, "leaf_changed_at names call True for variable 1, which"),
    ({"1": 3}, "leaf_changed_at names call 3 for variable 1, which is not one of its inputs"),
    ({"01": 1}, "leaf_changed_at has key '01', not a variable id"),
    ({"x": 1}, "leaf_changed_at has key 'x', not a variable id"),
    ([1, 1], "leaf_changed_at is [1, 1], not an object of variable id -> call id"),
])
def test_a_damaged_leaf_changed_at_is_a_malformed_document(changed, reason):
    data = json.loads(_changed_leaf_trace().to_json())
    data["leaf_changed_at"] = changed
    with pytest.raises(jsonio.SchemaError, match=r"^malformed gradtrace\.trace/1 document \(.*"
                       + re.escape(reason)):
        jsonio.loads(json.dumps(data))


def _cell_error(cell="hw.ipynb (code cell 2, In [7])", line=3, error=None):
    return tracer.CellError(cell, line, error or tracer.ErrorRecord(
        "ZeroDivisionError", "division by zero", None,
        'Traceback (most recent call last):\n  File "hw.ipynb (code cell 2, In [7])", line 3, in <module>\n'
        "ZeroDivisionError: division by zero\n"))


def _went_on_trace():
    """A trace of a notebook run that went on past two cells that raised (--allow-errors)."""
    t = seed_trace()
    t.cell_errors = (_cell_error(), _cell_error("hw.ipynb (code cell 4)", None,
                                                tracer.ErrorRecord("ValueError", "", None, None)))
    return t


def test_the_cells_that_raised_are_saved_and_read_back():
    t = _went_on_trace()
    text = t.to_json()
    doc = json.loads(text)
    assert doc["cell_errors"] == [
        {"cell": "hw.ipynb (code cell 2, In [7])", "line": 3,
         "error": {"type": "ZeroDivisionError", "message": "division by zero", "step": None,
                   "traceback": t.cell_errors[0].error.traceback}},
        {"cell": "hw.ipynb (code cell 4)", "line": None,
         "error": {"type": "ValueError", "message": "", "step": None, "traceback": None}}]
    assert list(doc).index("cell_errors") == list(doc).index("error") + 1
    again = tracer.loads(text)
    assert again.cell_errors == t.cell_errors and again.error is None
    assert again.to_json() == text


def test_a_run_without_cells_that_raised_leaves_cell_errors_out():
    """Optional: documents of other runs are as before, and older documents load with none."""
    text = seed_trace().to_json()
    assert "cell_errors" not in json.loads(text)
    assert tracer.loads(text).cell_errors == () and tracer.loads(text).to_json() == text
    data = json.loads(_went_on_trace().to_json())
    del data["cell_errors"]
    assert tracer.loads(json.dumps(data)).cell_errors == ()


def _error(**changes):
    return {"type": "ValueError", "message": "boom", "step": None, "traceback": None, **changes}


def _cell(**changes):
    return {"cell": "hw.ipynb (code cell 2)", "line": 1, "error": _error(), **changes}


@pytest.mark.parametrize("cells, reason", [
    ("boom", "cell_errors is 'boom', not a list of the cells that raised"),
    ({"cell": "x"}, "cell_errors is {'cell': 'x'}, not a list of the cells that raised"),
    ([None], "cell_errors[0] is None, not an object with cell, line, error"),
    ([_cell(), ["x"]], "cell_errors[1] is ['x'], not an object with cell, line, error"),
    ([{"line": 1, "error": _error()}], "cell_errors[0] has no cell"),
    ([{"cell": "c"}], "cell_errors[0] has no line, error"),
    ([_cell(error="boom")], "cell_errors[0]'s error is 'boom', not an object with type, message"),
    ([_cell(error={"type": "ValueError"})], "cell_errors[0]'s error has no message"),
    ([_cell(cell=3)], "cell_errors[0] has cell 3, not a cell's label"),
    ([_cell(cell="")], "cell_errors[0] has cell '', not a cell's label"),
    ([_cell(cell=None)], "cell_errors[0] has cell None, not a cell's label"),
    ([_cell(line="1")], "cell_errors[0] has line '1', not a line number"),
    ([_cell(line=True)], "cell_errors[0] has line True, not a line number"),
    ([_cell(line=1.0)], "cell_errors[0] has line 1.0, not a line number"),
    ([_cell(line=0)], "cell_errors[0] has line 0, not a line number"),
    ([_cell(error=_error(type=3))], "cell_errors[0]'s error has a type, message or traceback that is not text"),
    ([_cell(error=_error(message=None))], "cell_errors[0]'s error has a type, message or traceback that is not text"),
    ([_cell(error=_error(traceback=["x"]))], "cell_errors[0]'s error has a type, message or traceback that is not text"),
    ([_cell(error=_error(step="2"))], "cell_errors[0]'s error has step '2', not a step number"),
])
def test_damaged_cell_errors_are_a_malformed_document(cells, reason):
    data = json.loads(seed_trace().to_json())
    data["cell_errors"] = cells
    with pytest.raises(jsonio.SchemaError, match=r"^malformed gradtrace\.trace/1 document \(ValueError: "
                       + re.escape(reason) + r"\): re-export it"):
        jsonio.loads(json.dumps(data))
