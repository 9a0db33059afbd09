"""JSONPath, intrinsic functions and Choice comparisons in isolation (AWS's shape and type rules)."""

from __future__ import annotations

import random

import pytest

from kamado.pipelines.asl.errors import AslError
from kamado.pipelines.asl.intrinsics import IntrinsicEnv, IntrinsicSyntaxError, evaluate_intrinsic, parse_intrinsic
from kamado.pipelines.asl.jsonpath import JsonPathSyntaxError, PathNotFound, compile_path

DOC = {"a": {"b": [1, 2, 3]}, "items": [{"v": 1, "ok": True}, {"v": 5, "ok": False}], "we-ird": 7}


def test_definite_paths_return_values_and_indefinite_ones_lists() -> None:
    assert compile_path("$.a.b[1]").get(DOC) == 2
    assert compile_path("$['we-ird']").get(DOC) == 7
    assert compile_path("$.a.b[-1]").get(DOC) == 3
    assert compile_path("$.a.b[0:2]").get(DOC) == [1, 2]
    assert compile_path("$.items[*].v").get(DOC) == [1, 5]
    assert compile_path("$.items[?(@.v > 2)]").get(DOC) == [{"v": 5, "ok": False}]
    assert compile_path("$..v").get(DOC) == [1, 5]
    assert compile_path("$.items[?(@.v >= 1 && @.ok == true)].v").get(DOC) == [1]
    assert compile_path("$.items[?((@.v == 5) || (@.v == 7))].v").get(DOC) == [5]
    assert compile_path("$.items[?(@.ok)]").get(DOC) == DOC["items"]
    assert compile_path("$.items[*].missing").get(DOC) == []
    with pytest.raises(PathNotFound):
        compile_path("$.a.c").get(DOC)
    with pytest.raises(JsonPathSyntaxError):
        compile_path("a.b")


def test_result_path_set_creates_missing_objects_without_mutating() -> None:
    src = {"x": 1}
    out = compile_path("$.a.b").set(src, 5)
    assert out == {"x": 1, "a": {"b": 5}} and src == {"x": 1}
    with pytest.raises(PathNotFound):
        compile_path("$.x.y").set(src, 1)


def _eval(text: str, doc: object = None) -> object:
    env = IntrinsicEnv(resolve=lambda p: compile_path(p).get(doc), rng=random.Random(0))
    return evaluate_intrinsic(parse_intrinsic(text), env)


def test_intrinsics_nest_and_escape() -> None:
    assert _eval("States.Format('a\\{\\}{}b', States.MathAdd($.x, 2))", {"x": 1}) == "a{}3b"
    assert _eval("States.ArrayPartition(States.ArrayRange(1, 5, 1), 2)") == [[1, 2], [3, 4], [5]]
    assert _eval("States.StringSplit('a,b;;c', ',;')") == ["a", "b", "c"]
    assert _eval("States.JsonToString($)", {"k": [1, None]}) == '{"k":[1,null]}'
    assert _eval("States.Hash('abc', 'SHA-1')") == "a9993e364706816aba3e25717850c26c9cd0d89d"
    assert _eval("States.Base64Decode(States.Base64Encode('hé'))") == "hé"
    assert _eval("States.ArrayUnique(States.Array(1, 1, 'a', 'a', true))") == [1, "a", True]
    assert _eval("States.MathRandom(1, 10, 42)") == _eval("States.MathRandom(1, 10, 42)")


def test_intrinsic_errors() -> None:
    with pytest.raises(IntrinsicSyntaxError, match="unknown intrinsic"):
        parse_intrinsic("States.Nope(1)")
    with pytest.raises(IntrinsicSyntaxError, match="takes 1 argument"):
        parse_intrinsic("States.ArrayLength(1, 2)")
    with pytest.raises(AslError) as info:
        _eval("States.ArrayGetItem(States.Array(1), 3)")
    assert info.value.error == "States.Runtime" and "out of bounds" in (info.value.cause or "")
    with pytest.raises(AslError, match="shallow"):
        _eval("States.JsonMerge($, $, true)", {})
