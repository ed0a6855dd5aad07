"""benchmarks/reliability.py's matrix machinery on a few cases (the full run is the script's job)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def reliability(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("reliability")


# Stand-ins for `python -m coordsr`: each behaves like one kind of answer to a bad input.
PROGRAM = r"""
import pathlib, sys, time
what = sys.argv[1]
if what == "clean":
    sys.exit(print("coordsr: small.png: something is wrong", file=sys.stderr) or 2)
if what == "traceback":
    pathlib.Path("out.png").write_bytes(b"half")
    raise ValueError("boom")
if what == "accepted":
    pathlib.Path("small.png").write_bytes(b"overwritten")
    sys.exit(0)
if what == "unclear":
    sys.exit(print("usage: coordsr ...\nerror: two lines", file=sys.stderr) or 2)
time.sleep(30)
"""


def test_matrix_classifies_real_subprocesses(reliability, tmp_path):
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    (fixtures / "small.png").write_bytes(b"input")
    case = reliability.Case
    cases = [case("-", "clean", ["clean"]), case("-", "traceback", ["traceback"]),
             case("-", "accepted", ["accepted"]), case("-", "unclear", ["unclear"]),
             case("-", "hang", ["hang"], timeout=0.5)]
    rows = reliability.run_cases(cases, fixtures, tmp_path / "cases", [sys.executable, "-c", PROGRAM],
                                 timeout=20, jobs=2)
    got = {r["name"]: r for r in rows}
    assert [r["outcome"] for r in rows] == ["clean", "traceback", "accepted", "unclear", "hang"]
    assert got["clean"]["why"] == "coordsr: small.png: something is wrong" and got["clean"]["rc"] == 2
    assert "ValueError: boom" in got["traceback"]["why"] and got["traceback"]["left"] == ["out.png"]
    assert got["accepted"]["changed"] == ["small.png"]
    assert "2 stderr lines" in got["unclear"]["why"]
    assert got["hang"]["seconds"] < 10
    assert (fixtures / "small.png").read_bytes() == b"input"  # each case ran on a copy
    assert not (tmp_path / "cases").exists() or not any((tmp_path / "cases").iterdir())


def test_a_clean_refusal_must_leave_nothing_behind(reliability):
    outcome, why = reliability.classify(2, "", "coordsr: no\n", False, ["out.png"], [])
    assert outcome == "unclear" and "left out.png" in why
    outcome, why = reliability.classify(2, "", "coordsr: no\n", False, [], ["small.png"])
    assert outcome == "unclear" and "changed small.png" in why
    assert reliability.classify(-9, "", "", False, [], [])[0] == "unclear"
    assert reliability.classify(2, "", "\x1b[31mcoordsr: red\x1b[0m\n", False, [], [])[0] == "clean"


def test_the_matrix_is_large_and_names_the_issue_items(reliability):
    cases = reliability.cases()
    assert len(cases) >= 80
    assert {c.item for c in cases} >= {"1", "2", "3", "4", "-"}
    assert len({c.name for c in cases}) == len(cases)  # one row per distinct bad input


def test_load_test_answers_are_judged_by_kind(reliability):
    def row(kind, status):
        k = reliability.KINDS[kind]
        return {"valid": k.valid, "expect": list(k.expect), "status": status}

    judge = reliability.judge
    assert judge(row("small bicubic", 202)) == "accepted"
    assert judge(row("small bicubic", 503)) == "refused"  # capacity: fine
    assert judge(row("small bicubic", 422)) == "wrong"  # a valid upload refused
    assert judge(row("not an image", 422)) == "refused" and judge(row("not an image", 202)) == "wrong"
    assert judge(row("foreign Host", 400)) == "refused"
    assert judge(row("foreign Host", 503)) == "wrong"  # never checked the Host
    assert judge(row("21 MiB body", None)) == "failed" and judge(row("small bicubic", 500)) == "failed"
