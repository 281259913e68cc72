"""The catalogue: every example's verdicts at its default point, and whole-grid counts.

The expected values live in fpad/examples.py, each derived by hand next to the example from the
papers' notes (paper_iclr2024.md sections 2.2-2.9 and 6.2, paper_icml2023.md sections 4-5).
The all-grid counterexample is checked on every point of e4m3fn (253 points, 506 ReLUs each):
inc = 253 for ReLU'(0) = 0 and 1, inc = 0 for 1/2 (paper_icml2023.md section 5(a)).
"""

import itertools
from fractions import Fraction as F

import pytest

from fpad.errors import FpadError
from fpad.examples import EXAMPLES, get_example
from fpad.formats import get_format
from fpad.oracle import classify

VERDICT_KEYS = ("verdict", "ad", "dp", "bouligand_ok", "clarke_ok", "paper_condition", "thm4_applies")


def verdicts(r) -> dict:
    return {k: getattr(r, k) for k in VERDICT_KEYS}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_default_point_verdicts(name):
    ex = EXAMPLES[name]
    fmt = get_format(ex.default_format)
    expected = ex.expected(fmt)
    assert set(expected) == set(VERDICT_KEYS)
    got = verdicts(ex.classify_default(fmt))
    assert got == expected
    assert all(isinstance(x, F) for x in got["ad"])


def grid_counts(ex, fmt) -> dict:
    problem = ex.problem(fmt)
    values = fmt.values_fraction()
    k = len(problem.free)
    counts = {"points": 0, "touched": 0, "ndf": 0, "inc": 0}
    for point in itertools.product(values, repeat=k):
        r = classify(problem, point)
        counts["points"] += 1
        counts["touched"] += r.is_touched
        counts["ndf"] += r.ndf
        counts["inc"] += r.inc
    return counts


# Whole grids that stay small: k = 1 on e4m3fn (253 points), k = 2 or 3 on e2m1 (225 / 3375).
GRID_CASES = [(n, EXAMPLES[n].default_format) for n in sorted(EXAMPLES) if EXAMPLES[n].grid is not None]


@pytest.mark.parametrize("name, fmt_name", GRID_CASES)
def test_whole_grid_counts(name, fmt_name):
    ex = EXAMPLES[name]
    fmt = get_format(fmt_name)
    assert grid_counts(ex, fmt) == ex.grid(fmt)


@pytest.mark.parametrize("name", ["allgrid", "allgrid-const1", "allgrid-mix", "lemma3", "apph-f3", "relu-neg-relu"])
@pytest.mark.parametrize("fmt_name", ["e2m1", "e3m2"])
def test_whole_grid_counts_other_formats(name, fmt_name):
    ex = EXAMPLES[name]
    fmt = get_format(fmt_name)
    assert grid_counts(ex, fmt) == ex.grid(fmt)


def test_allgrid_ad_value_at_every_point_of_e4m3fn():
    """AD = (|M| - 1 + 2r)/|M| at every x in M: 252/253 (r = 0) whatever x is."""
    ex = EXAMPLES["allgrid"]
    fmt = get_format("e4m3fn")
    problem = ex.problem(fmt)
    for x in fmt.values_fraction()[::31]:
        r = classify(problem, [x])
        assert (r.ad, r.dp, r.verdict) == ((F(252, 253),), (F(1),), "inc")
        assert len(r.touched) == 2 and r.touched[0].value == 0 and r.touched[1].value == 0


def test_catalogue_entries_are_well_formed():
    for name, ex in EXAMPLES.items():
        assert ex.name == name and ex.description and ex.source
        d = ex.build(get_format(ex.default_format))
        assert d["layers"] and d["params"]["free"]
    with pytest.raises(FpadError, match="unknown example 'nope'; accepted: allgrid"):
        get_example("nope")
