"""Figures a reader understands (issue 8): marked lines on big maps survive scaling, map axes
name the title's symbols, overlapping formats stay distinguishable."""

from __future__ import annotations

import numpy as np

from fpad import plots, sweeps


def test_widen_spreads_marks_without_wrapping_and_keeps_the_worst_class():
    img = np.zeros((100, 100), dtype=np.int8)
    img[:, 0] = 2  # an ndf line on the edge
    img[50, :] = 4  # an inc line one pixel wide, crossing it
    w = plots._widen(img)
    assert (w[49:52, 1:] == 4).all() and (w[48, 2:] == 0).all() and (w[53, 2:] == 0).all()
    assert (w[:, 99] == np.where(np.abs(np.arange(100) - 50) <= 1, 4, 0)).all()  # nothing wrapped round
    assert (w[:48, :2] == 2).all() and w[50, 0] == 4  # inc wins where the lines meet
    assert int((img == 4).sum()) == 100  # the codes (and the counts drawn from them) are untouched
    small = np.zeros((15, 15), dtype=np.int8)
    small[7, 7] = 4
    assert (plots._widen(small) == small).all()  # small maps are drawn as they are


def test_ad_map_axes_name_the_titles_symbols():
    net = "no bias: ReLU(a ReLU(u)), proxy ReLU'(0)=1, (u, a) free"
    a = sweeps.ad_map(net, "e2m1")
    assert (a.data["x"], a.data["y"]) == ("u = L1.W[0,0]", "a = L2.W[0,0]")
    # the same counts as over e4m3fn (252 and 126 = |M| - 1 and (|M| - 1)/2), for |M| = 15
    assert (a.rows[0]["ndf"], a.rows[0]["inc"]) == (14, 7)


def test_overlapping_formats_have_distinct_styles():
    e4, e5 = plots._STYLE["e4m3fn"], plots._STYLE["e5m2"]
    assert e4["marker"] != e5["marker"] and e5["mfc"] == "none" and e4["zorder"] > e5["zorder"]
