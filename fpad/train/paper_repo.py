"""The released code's checks (SanghyukChun/ad_correctness), reproduced for comparison only.

What it does, as read in the repository (paper_iclr2024.md section 4), and what we reproduce:

* fully connected layers: when a layer touches, ``torch.linalg.matrix_rank`` (float32, default
  tolerance) of the layer's *output* (pre-activations of all samples) must equal the number of
  samples. Theorem 5 asks for the rank of the layer's *input* z_{l-1}; see :mod:`fpad.train.checks`.
* maxpools (Algorithm 2 only, ReLU touches ignored): a window is "violated" when at least two
  entries equal its max and the max is > 0; its rows are patch(i*) - patch(i); ties whose
  patches are equal (exactly in the first layer, within 1e-8 deeper) are harmless. One LP **per
  window** (a necessary condition only: Lemma 7 passes every window and fails jointly), with the
  repository's pre-checks, including the sign shortcut ``(|a| == a) or (-|a| == a)``, which is
  always true and so passes any window with a column non-zero in every row.

The float tolerances here are the released code's, kept on purpose: this mode exists to measure
how its verdicts differ from the exact ones, never to decide anything.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.optimize import linprog

from fpad.train.checks import StepReport, _Geometry, _pool_ties, blocks_of


def window_passes(A: np.ndarray) -> bool:
    """The repository's per-window decision (with its shortcuts and bugs)."""
    if A.shape[0] == 1:
        return bool(np.any(A[0] != 0))
    if np.any(np.all(A[0:1] == 0, axis=1)):  # it tests row 0 each time
        return False
    if A.shape[0] < A.shape[1] and np.linalg.matrix_rank(A) == A.shape[0]:
        return True
    if np.any(np.all(A != 0, axis=0)):  # the sign test is always true: any column non-zero in every row
        return True
    m, n = A.shape
    c = np.zeros(n + 1)
    c[-1] = -1.0  # maximise t
    A_ub = np.hstack([-A, np.ones((m, 1))])  # t - <a_k, x> <= 0
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(m), bounds=[(-1e6, 1e6)] * (n + 1), method="highs")
    return bool(res.status == 0 and -res.fun > 0)


def check_trace_repo(trace) -> StepReport:
    t0 = time.perf_counter()
    blocks = blocks_of(trace)
    layers, pools, reasons, touches = {}, {}, [], {}
    for blk in blocks:
        geo = _Geometry(trace, blk)
        touched = False
        for a in blk.acts:
            n = trace.nodes[a]
            y = n.pre()
            cnt = {str(k): int(np.count_nonzero(y == float(k))) for k in n.info["act"].kinks}
            touches[f"{blk.name}:{n.info['act'].act.name}#{a}"] = cnt
            touched |= any(cnt.values())
        ok = True
        if blk.kind == "linear" and touched and not blk.pools:
            y = trace.nodes[blk.owner].value()
            r = int(torch.linalg.matrix_rank(torch.tensor(y, dtype=torch.float32)))
            ok = r == y.shape[0]
            if not ok:
                reasons.append({"layer": blk.name, "condition": "repo: rank of layer output < B", "why": [f"rank {r}"]})
        first = trace.is_input(geo.zsrc)
        for pid, aid in blk.pools:
            ties, n_ops = _pool_ties(trace, pid)
            x = trace.nodes[trace.nodes[pid].parents[0]].value()
            st = {"max_ops": n_ops, "tied_windows": len(ties), "s_minus_t": 0, "windows_failed": 0}
            for S, star in ties:
                if not x[star] > 0:
                    continue
                rows = []
                for e in S:
                    if e == star:
                        continue
                    d = geo.patch(star) - geo.patch(e)
                    if (first and not np.any(d)) or (not first and np.all(np.abs(d) < 1e-8)):
                        continue
                    rows.append(d)
                st["s_minus_t"] += len(rows)
                if rows and not window_passes(np.array(rows)):
                    st["windows_failed"] += 1
            if st["windows_failed"]:
                ok = False
                reasons.append({"layer": blk.name, "condition": "repo: per-window LP infeasible",
                                "why": [f"{st['windows_failed']} window(s)"]})
            pools[f"{blk.name}:pool#{pid}"] = st
        layers[blk.name] = {"nonempty": ok}
    certified = all(v["nonempty"] for v in layers.values())
    return StepReport("paper-repo", certified, "bouligand" if certified else None, reasons, touches, pools,
                      {}, {}, layers, {"total_s": time.perf_counter() - t0})
