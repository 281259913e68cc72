"""The alternative to backprop: p directional derivatives, and the matrix-product reduction.

Methods that aim at Clarke subgradients (Khan-Barton's vector forward mode, lexicographic
derivatives, forward AD) need p directional derivatives of the program (paper_bolte2023.md 2.2).
This module times them against p, beside backprop, in the same run:

* ``mlp``: the loss of :mod:`fpad.cost.overhead`'s MLP as a function of all its weights; p random
  directions in weight space;
* ``relu_Ax``: s(x) = c . ReLU(A x) with A a p x p Gaussian matrix, at a random x, along p random
  directions; here p is also the dimension, so the cost of s grows like p^2 and p directional
  derivatives like p^3 (a p x p matrix product, the bound c(p) of the paper), and the row also
  times one A @ V product of the same size.

``ratio`` = time(p directional derivatives with ``torch.func.jvp`` under ``torch.func.vmap``) /
time(one plain forward); ``ratio_loop`` the same with a Python loop of p ``jvp`` calls;
``backprop_ratio`` = time(value and gradient by reverse mode) / time(one plain forward), measured
in the same repeats. At the random points used here no activation input is exactly 0 (checked),
so every ``jvp`` is a true directional derivative.

The reduction (the paper's argument that p directional derivatives cost at least c(p)): for
F(x) = ReLU(A x) at x = 0, F'(0; b) = ReLU(A b) (the directional derivative of ReLU at 0 along v is
max(v, 0)), so the p directional derivatives along the columns of B and of -B give
ReLU(AB) - ReLU(-AB) = AB. :func:`relu_affine_directional` computes true directional derivatives
of x -> ReLU(A x) (the rule above, not AD's ReLU'(0) convention: ``torch.func.jvp`` at 0 applies
ReLU'(0) = 0 and returns 0 there); :func:`exact_relu_affine_directional` is its slow exact twin
with fpad's Fraction forward mode (:func:`fpad.ad.directional`).
"""

from __future__ import annotations

import time
from fractions import Fraction
from statistics import median

import numpy as np

from fpad import cost
from fpad.activations import get_activation
from fpad.ad import directional
from fpad.cost import overhead, timing
from fpad.errors import FpadError
from fpad.graph import Program
from fpad.sweeps import Analysis

MLP = {"depth": 2, "width": 128, "batch": 64}
FULL = {"mlp": [1, 2, 4, 8, 16, 32, 64], "relu_Ax": [16, 32, 64, 128, 256, 512, 1024]}
QUICK = {"mlp": [1, 4, 16], "relu_Ax": [32, 128, 256]}
LIMITS = {"mlp": 1024, "relu_Ax": 4096}  # beyond: minutes per row
COLUMNS = ["program", "p", "ratio", "ratio_iqr", "ratio_loop", "backprop_ratio", "vs_matmul", "t_fwd_s",
           "t_dir_vmap_s", "t_dir_loop_s"]


# -- the reduction ---------------------------------------------------------------------------------
def relu_affine_directional(A, x, V):
    """Directional derivatives of x -> ReLU(A x) at x along the columns of V (torch tensors):
    (A V)_ij where (A x)_i > 0, 0 where < 0, max((A V)_ij, 0) where = 0."""
    import torch

    z = (A @ x).unsqueeze(1)
    dz = A @ V
    return torch.where(z > 0, dz, torch.where(z < 0, torch.zeros_like(dz), dz.clamp_min(0)))


def recover_product(A, B):
    """AB from the 2p directional derivatives of x -> ReLU(A x) at 0 along B's columns and -B's."""
    import torch

    x0 = torch.zeros(A.shape[1], dtype=A.dtype)
    return relu_affine_directional(A, x0, B) - relu_affine_directional(A, x0, -B)


def relu_affine_programs(A) -> list[Program]:
    """One exact scalar program per row i: P_i(x) = ReLU(a_i . x), parameters x[0..p-1]."""
    A = [[Fraction(v) for v in row] for row in A]
    p = len(A[0])
    relu = get_activation("relu")
    progs = []
    for i, row in enumerate(A):
        prog = Program([f"x[{j}]" for j in range(p)])
        xs = [prog.param(j) for j in range(p)]
        z = prog.lin(zip(row, xs))
        prog.set_output(prog.act(relu, z, f"L1[{i}] s0"))
        progs.append(prog)
    return progs


def exact_relu_affine_directional(A, x, V) -> list[list[Fraction]]:
    """The slow exact twin of :func:`relu_affine_directional` (Fractions, fpad's forward mode)."""
    p = len(A[0])
    x = [Fraction(v) for v in x]
    cols = [[Fraction(V[j][k]) for j in range(p)] for k in range(len(V[0]))]
    return [[directional(prog, x, list(range(p)), d) for d in cols] for prog in relu_affine_programs(A)]


def reduction_check(p: int = 64, seed: int = 0, bound: int = 16) -> dict:
    """Recover AB in float64 from directional derivatives for integer A, B in [-bound, bound]
    (every sum is an integer below 2^53, so float64 is exact) and compare it bit for bit with the
    integer product; also count where ``torch.func.jvp`` at 0 differs from ReLU(AB)."""
    import torch

    rng = np.random.default_rng(seed)
    Ai = rng.integers(-bound, bound + 1, (p, p))
    Bi = rng.integers(-bound, bound + 1, (p, p))
    A, B = torch.tensor(Ai, dtype=torch.float64), torch.tensor(Bi, dtype=torch.float64)
    got = recover_product(A, B)
    exact = bool(np.array_equal(got.numpy().view(np.int64), (Ai @ Bi).astype(np.float64).view(np.int64)))
    f = lambda x: torch.relu(A @ x)  # noqa: E731
    jvp0 = torch.func.vmap(lambda b: torch.func.jvp(f, (torch.zeros(p, dtype=torch.float64),), (b,))[1])(B.T).T
    dirder = relu_affine_directional(A, torch.zeros(p, dtype=torch.float64), B)
    return {"p": p, "bound": bound, "seed": seed, "exact": exact,
            "jvp_at_0_differs": int((jvp0 != dirder).sum()), "entries": p * p}


# -- timing ------------------------------------------------------------------------------------------
def _mlp_programs(p: int, seed: int = 0) -> dict:
    import torch

    params = [w.detach() for w in overhead.init_params(64, MLP["width"], MLP["depth"])]
    x, y = overhead.digits(MLP["batch"])
    g = torch.Generator().manual_seed(seed)
    tangents = tuple(torch.randn(p, *w.shape, generator=g) for w in params)
    f = lambda *ws: overhead.loss(list(ws), x, y)  # noqa: E731
    primals = tuple(params)
    vm = torch.func.vmap(lambda *ts: torch.func.jvp(f, primals, ts)[1])
    grad_params = [w.clone().requires_grad_() for w in params]
    h = x
    for k in range(0, len(params) - 2, 2):  # no pre-activation exactly 0: jvp = directional derivative
        z = torch.nn.functional.linear(h, params[k], params[k + 1])
        if bool((z == 0).any()):  # pragma: no cover - probability 0
            raise FpadError("a pre-activation is exactly 0 at the digits batch; change the seed")
        h = torch.relu(z)
    return {
        "fwd": lambda: f(*primals),
        "dir_vmap": lambda: vm(*tangents),
        "dir_loop": lambda: [torch.func.jvp(f, primals, tuple(t[k] for t in tangents))[1] for k in range(p)],
        "backprop": lambda: torch.autograd.grad(overhead.loss(grad_params, x, y), grad_params),
    }


def _relu_programs(p: int, seed: int = 0) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    A = torch.randn(p, p, generator=g) / p**0.5
    c, x = torch.randn(p, generator=g), torch.randn(p, generator=g)
    V = torch.randn(p, p, generator=g)
    if bool(((A @ x) == 0).any()):  # pragma: no cover - probability 0
        raise FpadError("a pre-activation is exactly 0 at the random point; change the seed")
    s = lambda x: c @ torch.relu(A @ x)  # noqa: E731
    vm = torch.func.vmap(lambda v: torch.func.jvp(s, (x,), (v,))[1])
    xg = x.clone().requires_grad_()
    return {
        "fwd": lambda: s(x),
        "dir_vmap": lambda: vm(V),
        "dir_loop": lambda: [torch.func.jvp(s, (x,), (V[k],))[1] for k in range(p)],
        "backprop": lambda: torch.autograd.grad(s(xg), xg),
        "matmul": lambda: A @ V,
    }


def measure(program: str, p: int, *, repeats: int = 11, warmup: int = 2, min_block_s: float = 0.01) -> dict:
    import torch

    fns = _mlp_programs(p) if program == "mlp" else _relu_programs(p)
    plain = fns["fwd"]

    def fwd():
        with torch.no_grad():
            return plain()

    fns["fwd"] = fwd
    t = timing.paired_times(fns, repeats=repeats, warmup=warmup, min_block_s=min_block_s)
    r = timing.ratio_stats(t["dir_vmap"], t["fwd"])
    row = {"program": program, "p": p, "ratio": r["median"], "ratio_iqr": r["iqr"],
           "ratio_loop": timing.ratio_stats(t["dir_loop"], t["fwd"])["median"],
           "backprop_ratio": timing.ratio_stats(t["backprop"], t["fwd"])["median"],
           "vs_matmul": timing.ratio_stats(t["dir_vmap"], t["matmul"])["median"] if "matmul" in t else None,
           "t_fwd_s": median(t["fwd"]), "t_dir_vmap_s": median(t["dir_vmap"]), "t_dir_loop_s": median(t["dir_loop"]),
           "t_backprop_s": median(t["backprop"]), "repeats": repeats}
    if "matmul" in t:
        row["t_matmul_s"] = median(t["matmul"])
    return row


def slope(rows, key: str = "ratio") -> float:
    """Least-squares slope of ``key`` against p."""
    ps = np.array([r["p"] for r in rows], dtype=float)
    ys = np.array([r[key] for r in rows], dtype=float)
    return float(np.polyfit(ps, ys, 1)[0]) if len(rows) > 1 else float("nan")


def directional_sweep(*, quick: bool = False, mlp_ps=None, relu_ps=None, threads: int = 1,
                      repeats: int | None = None, min_block_s: float | None = None, progress=None) -> Analysis:
    cost.require_train("fpad sweep directional")
    base = QUICK if quick else FULL
    grid = {"mlp": list(mlp_ps or base["mlp"]), "relu_Ax": list(relu_ps or base["relu_Ax"])}
    for prog, ps in grid.items():
        if any(not 1 <= p <= LIMITS[prog] for p in ps):
            raise FpadError(f"{prog}: p must be an integer in 1..{LIMITS[prog]}, got {ps}")
    repeats, min_block_s = timing.settings(quick, repeats, min_block_s, full_repeats=11)
    t0 = time.perf_counter()
    rows = []
    with timing.pinned_threads(threads) as n_threads:
        for program, ps in grid.items():
            for p in ps:
                if progress:
                    progress(f"directional: {program}, p = {p}")
                rows.append(measure(program, p, repeats=repeats, min_block_s=min_block_s))
        red = reduction_check(16 if quick else 64)
        prov = timing.machine_provenance(n_threads)
    slopes = {}
    for prog in grid:
        rs = [r for r in rows if r["program"] == prog]
        upper = [r for r in rs if r["p"] >= sorted(x["p"] for x in rs)[len(rs) // 2]] if rs else []
        slopes[prog] = {k: slope(rs, k) for k in ("ratio", "ratio_loop", "backprop_ratio")}
        slopes[prog].update({f"{k}_upper": slope(upper, k) for k in ("ratio", "ratio_loop")})
        slopes[prog]["upper_from_p"] = upper[0]["p"] if upper else None
    notes = [f"{n_threads} torch thread(s). mlp: {MLP}, directions in weight space; relu_Ax: s(x) = c . ReLU(Ax), "
             "A p x p, p directions in R^p (cost of s ~ p^2)."]
    for prog, sl in slopes.items():
        rs = [r for r in rows if r["program"] == prog]
        if rs:
            notes.append(f"{prog}: slope of ratio in p = {sl['ratio']:.3g} (vmap), {sl['ratio_loop']:.3g} (loop) over "
                         f"all p; {sl['ratio_upper']:.3g} (vmap), {sl['ratio_loop_upper']:.3g} (loop) over p >= "
                         f"{sl['upper_from_p']}; backprop ratio {min(r['backprop_ratio'] for r in rs):.2f}.."
                         f"{max(r['backprop_ratio'] for r in rs):.2f} (slope {sl['backprop_ratio']:.3g})")
    if grid["relu_Ax"]:
        notes.append("relu_Ax at small p: the forward takes microseconds and vmap's fixed overhead dominates the "
                     "vmap ratio (flat there); the p^3 / p^2 growth shows once the product A V dominates "
                     "(see vs_matmul: p jvps under vmap cost about one p x p matrix product at large p).")
    notes.append(f"reduction: AB recovered from the directional derivatives of x -> ReLU(Ax) at 0 along B and -B, "
                 f"p = {red['p']}, integer entries in [-{red['bound']}, {red['bound']}], float64: bit-for-bit "
                 f"{'equal to' if red['exact'] else 'DIFFERENT from'} the integer product. torch.func.jvp at 0 "
                 f"(ReLU'(0) = 0) differs from the directional derivative ReLU(AB) in {red['jvp_at_0_differs']} of "
                 f"{red['entries']} entries: AD's forward mode is not a directional derivative at a kink.")
    notes.append(timing.NOISE_NOTE)
    a = Analysis(name="cost_directional", title="p directional derivatives against backprop (time / forward time)",
                 columns=COLUMNS, rows=rows, notes=notes, data={"slopes": slopes, "reduction": red, "mlp": MLP},
                 provenance=prov)
    a.elapsed_s = time.perf_counter() - t0
    return a
