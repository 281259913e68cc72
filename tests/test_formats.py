"""Tests of fpad.formats: value sets, codes, derived facts, parsing, exact rounding."""

from fractions import Fraction

import numpy as np
import pytest

from fpad.errors import FpadError
from fpad.formats import NAMED, get_format

# anchors_formats.md table 1: (|M|, max, min normal, min subnormal, W)
TABLE1 = {
    "e2m1": (15, 6.0, 1.0, 0.5, 4),
    "e2m3": (63, 7.5, 1.0, 2.0**-3, 6),
    "e3m2": (63, 28.0, 0.25, 2.0**-4, 9),
    "e3m4": (223, 15.5, 0.25, 2.0**-6, 10),
    "e4m3": (239, 240.0, 2.0**-6, 2.0**-9, 17),
    "e4m3fn": (253, 448.0, 2.0**-6, 2.0**-9, 18),
    "e4m3fnuz": (255, 240.0, 2.0**-7, 2.0**-10, 18),
    "e4m3b11fnuz": (255, 30.0, 2.0**-10, 2.0**-13, 18),
    "e5m2": (247, 57344.0, 2.0**-14, 2.0**-16, 32),
    "e5m2fnuz": (255, 57344.0, 2.0**-15, 2.0**-17, 33),
    "e8m0": (255, 2.0**127, 2.0**-127, None, 255),
    "bf16": (65279, (2 - 2.0**-7) * 2.0**127, 2.0**-126, 2.0**-133, 261),
    "fp16": (63487, 65504.0, 2.0**-14, 2.0**-24, 40),
}


@pytest.mark.parametrize("name", sorted(TABLE1))
def test_table1_spot_checks(name):
    """Every row of anchors_formats.md table 1: |M|, max, min normal, q, W."""
    f = get_format(name)
    n, mx, mn, q, w = TABLE1[name]
    assert (f.n_values, f.max, f.min_normal, f.min_subnormal, f.W) == (n, mx, mn, q, w)
    v = f.values()
    assert len(v) == n and v[-1] == mx


def test_contains_and_neighbours():
    f = get_format("e4m3fn")
    assert f.contains(448) and f.contains(Fraction(1, 512)) and f.contains(-0.0)
    assert not f.contains(449) and not f.contains(Fraction(1, 3)) and not f.contains(float("nan"))
    assert f.neighbours(449) == (448.0, None)
    assert f.neighbours(Fraction(1, 3)) == (0.3125, 0.34375)
    assert f.neighbours(1) == (0.9375, 1.125)
    assert f.neighbours(-448) == (None, -416.0)
