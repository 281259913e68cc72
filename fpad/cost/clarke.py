"""The price of exactness: exact Clarke sets of ReLU programs at 0 against cheap AD elements.

The paper's class (paper_bolte2023.md 2.3): F(x) = M_L ReLU(M_{L-1} ReLU(... M_1 x)) with every
entry of every M_l in {-1, 0, 1} and M_L a row, on the dictionary {+, -, ReLU}. F is positively
homogeneous and piecewise linear; at x = 0 every pre-activation is 0, so every ReLU sits on its
kink. The paper proves that deciding differentiability at a point, or producing two distinct
Clarke subgradients, is NP-hard for this class, while two distinct elements of the
*AD-conservative* gradient {M_1^T D_1 M_2^T ... D_{L-1} M_L^T : D_l diagonal, entries in [0, 1]}
take polynomial time.

* :func:`clarke_at_zero` runs fpad's exact oracle (:func:`fpad.oracle.classify_program`) with x as
  the parameters: it enumerates every realisable combination of kink sides (each with an exact
  interior direction, each empty prefix refuted by a Farkas certificate) and returns the distinct
  piece gradients. F is linear on each piece's open cone and the cones are dense, so the Clarke
  subdifferential at 0 is exactly their convex hull, and F is differentiable at 0 iff there is one.
  The enumeration is exponential in the worst case, and this is the cost being measured.
* :func:`ad_element` is J(D) = M_1^T D_1 ... M_L^T in exact arithmetic; D = 0 is PyTorch's AD
  (ReLU'(0) = 0), D = I is ReLU'(0) = 1.
* :func:`path_elements` is the polynomial-time pair: find (breadth-first, over nonzero weights) a
  path input -> b_1 -> ... -> b_{L-1} -> output; with D_l the indicator of b_l, J = (row b_1 of M_1)
  times the path's product of +-1 weights, which is nonzero, while D = 0 gives J = 0. Two distinct
  elements, in O(sum of matrix sizes). No path means F = 0 and the conservative set is {0}.
* :func:`in_clarke` decides membership in the hull exactly (:func:`fpad.exact.hull_membership`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from fpad import exact
from fpad.activations import get_activation
from fpad.errors import FpadError
from fpad.graph import Program
from fpad.oracle import classify_program
from fpad.proxies import get_proxy
from fpad.cost.timing import machine_provenance
from fpad.sweeps import Analysis

FULL_PS = [1, 2, 3, 4, 5, 6, 7]
QUICK_PS = [1, 2, 3, 4, 5]
MAX_P = 10  # two hidden layers of width 10: minutes per network, or the oracle's MAX_CHOICES refusal
COLUMNS = ["p", "networks", "differentiable", "refused", "clarke_vertices_median", "explored_median",
           "oracle_s_median", "poly_s_median", "ad0_in_clarke", "ad1_in_clarke", "path_in_clarke", "pair_in_clarke"]
_ZERO = Fraction(0)


def check_mats(mats) -> list[list[list[int]]]:
    """Validate a list of integer matrices with chained shapes, the last one a single row."""
    if not mats:
        raise FpadError("a ReLU network needs at least one matrix")
    out = [[[int(v) for v in row] for row in m] for m in mats]
    for l, m in enumerate(out):
        if not m or any(len(r) != len(m[0]) for r in m):
            raise FpadError(f"M_{l + 1} is not a non-empty rectangular matrix")
        if l and len(m[0]) != len(out[l - 1]):
            raise FpadError(f"M_{l + 1} has {len(m[0])} columns but M_{l} has {len(out[l - 1])} rows")
    if len(out[-1]) != 1:
        raise FpadError(f"M_L must be a single row (F is scalar), got {len(out[-1])} rows")
    return out


def random_net(p: int, widths, rng) -> list[list[list[int]]]:
    """M_1 (widths[0] x p), ..., M_L (1 x widths[-1]) with entries uniform in {-1, 0, 1}."""
    dims = [p, *widths, 1]
    return [rng.integers(-1, 2, (dims[l + 1], dims[l])).tolist() for l in range(len(dims) - 1)]


def relu_net_program(mats) -> Program:
    """The scalar program of F, with parameters x[0..p-1] (the input is what we differentiate)."""
    mats = check_mats(mats)
    p = len(mats[0][0])
    relu = get_activation("relu")
    prog = Program([f"x[{j}]" for j in range(p)])
    h = [prog.param(j) for j in range(p)]
    for l, m in enumerate(mats):
        z = [prog.lin((Fraction(c), n) for c, n in zip(row, h) if c) for row in m]
        if l == len(mats) - 1:
            prog.set_output(z[0])
        else:
            h = [prog.act(relu, n, f"L{l + 1}[{i}] s0") for i, n in enumerate(z)]
    return prog


@dataclass
class ClarkeAtZero:
    differentiable: bool
    gradients: list[tuple[Fraction, ...]]  # distinct piece gradients: conv of these = Clarke set
    pieces: int
    explored: int
    ad: tuple[Fraction, ...]  # PyTorch's AD output (ReLU'(0) = 0), from the oracle
    seconds: float


def clarke_at_zero(mats) -> ClarkeAtZero:
    """fpad's exact oracle at x = 0 (see the module docstring). Raises FpadError beyond
    :data:`fpad.oracle.MAX_CHOICES` explored choices."""
    prog = relu_net_program(mats)
    p = prog.n_params
    t0 = time.perf_counter()
    r = classify_program(prog, [_ZERO] * p, list(range(p)), get_proxy("pytorch"))
    grads = list(dict.fromkeys(pc.gradient for pc in r.pieces))
    return ClarkeAtZero(r.differentiable, grads, len(r.pieces), r.explored, r.ad, time.perf_counter() - t0)


def ad_element(mats, diags) -> tuple[Fraction, ...]:
    """J(D) = M_1^T D_1 M_2^T ... D_{L-1} M_L^T, exact; ``diags[l]`` the diagonal of D_{l+1}."""
    mats = check_mats(mats)
    if len(diags) != len(mats) - 1:
        raise FpadError(f"need {len(mats) - 1} diagonals, got {len(diags)}")
    v = [Fraction(c) for c in mats[-1][0]]
    for m, d in zip(reversed(mats[:-1]), reversed(diags)):
        if len(d) != len(m) or any(not 0 <= Fraction(x) <= 1 for x in d):
            raise FpadError("each D_l must have one entry in [0, 1] per unit of its layer")
        u = [Fraction(x) * y for x, y in zip(d, v)]
        v = [sum((m[i][j] * u[i] for i in range(len(m)) if m[i][j]), _ZERO) for j in range(len(m[0]))]
    return tuple(v)


def constant_diags(mats, value) -> list[list[Fraction]]:
    """D_l = value * I for every hidden layer (value 0: PyTorch's ReLU'(0) = 0; 1: ReLU'(0) = 1)."""
    return [[Fraction(value)] * len(m) for m in check_mats(mats)[:-1]]


def find_path(mats) -> list[int] | None:
    """Units b_1..b_{L-1} of a path input -> b_1 -> ... -> output over nonzero weights, or None."""
    mats = check_mats(mats)
    reach = [{i for i, row in enumerate(mats[0]) if any(row)}]  # units of layer 1 fed by some input
    for m in mats[1:-1]:
        reach.append({i for i, row in enumerate(m) if any(row[j] for j in reach[-1])})
    ends = [j for j in reach[-1] if mats[-1][0][j]] if len(mats) > 1 else []
    if not ends:
        return None
    path = [ends[0]]
    for l in range(len(mats) - 2, 0, -1):  # walk back: a unit of layer l feeding path[0]
        path.insert(0, next(j for j in sorted(reach[l - 1]) if mats[l][path[0]][j]))
    return path


def path_elements(mats):
    """Two distinct AD-conservative elements (D = 0, D = indicator of a path) and their D's, or
    None when no input reaches the output (then F = 0 and the conservative set is {0})."""
    mats = check_mats(mats)
    path = find_path(mats)
    if path is None:
        return None
    d_path = [[Fraction(int(i == b)) for i in range(len(m))] for m, b in zip(mats[:-1], path)]
    d_zero = constant_diags(mats, 0)
    return (ad_element(mats, d_zero), ad_element(mats, d_path)), (d_zero, d_path)


def in_clarke(gradients, v) -> bool:
    """v in conv(gradients), decided exactly with a certificate."""
    if len(gradients) == 1:
        return tuple(v) == tuple(gradients[0])
    return bool(exact.hull_membership([list(g) for g in gradients], list(v)).member)


def study(mats) -> dict:
    """Everything about one network at 0: the exact Clarke set (timed), the cheap pair (timed),
    and exact membership of D = 0, D = I and the path pair."""
    c = clarke_at_zero(mats)
    t0 = time.perf_counter()
    pair = path_elements(mats)
    poly_s = time.perf_counter() - t0
    ad0 = ad_element(mats, constant_diags(mats, 0))
    ad1 = ad_element(mats, constant_diags(mats, 1))
    out = {"differentiable": c.differentiable, "vertices": len(c.gradients), "explored": c.explored,
           "oracle_s": c.seconds, "poly_s": poly_s, "ad0": ad0 == c.ad and in_clarke(c.gradients, ad0),
           "ad1": in_clarke(c.gradients, ad1), "has_pair": pair is not None}
    if ad0 != c.ad:  # pragma: no cover - the two computations of PyTorch's AD must agree
        raise AssertionError("J(0) differs from the oracle's AD output")
    if pair is not None:
        e0, e1 = pair[0]
        out["path"] = in_clarke(c.gradients, e1)
        out["pair"] = out["path"] and in_clarke(c.gradients, e0)
    return out


def clarke_sweep(*, quick: bool = False, ps=None, networks: int | None = None, hidden_layers: int = 2,
                 seed: int = 0, progress=None) -> Analysis:
    """For each p: ``networks`` random networks with ``hidden_layers`` hidden layers of width p."""
    ps = list(ps or (QUICK_PS if quick else FULL_PS))
    networks = networks or (5 if quick else 12)
    if any(not 1 <= p <= MAX_P for p in ps) or networks < 1 or hidden_layers < 1:
        raise FpadError(f"p must lie in 1..{MAX_P} (the exact enumeration is exponential in p), and --networks "
                        "and the number of hidden layers must be positive integers")
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    # warm-up, not timed: the first HiGHS call imports scipy.optimize (about 0.4 s, once per process)
    exact.cone_interior_point([[1, 1], [1, -1]], method="highs")
    study([[[1, 0], [0, 1]], [[1, -1]]])
    rows = []
    for p in ps:
        if progress:
            progress(f"clarke: p = {p}, {networks} networks")
        studies, refused = [], 0
        for _ in range(networks):
            mats = random_net(p, [p] * hidden_layers, rng)
            try:
                studies.append(study(mats))
            except FpadError:
                refused += 1
        rows.append(_row(p, networks, refused, studies))
    notes = [
        f"F(x) = M_L ReLU(... M_1 x), {hidden_layers} hidden layers of width p, entries uniform in {{-1, 0, 1}} "
        f"(seed {seed}), at x = 0. oracle_s: fpad's exact Clarke set (every realisable kink-side "
        "combination, certified); poly_s: the polynomial-time pair of distinct AD-conservative elements.",
        "Counts are exact: ad0_in_clarke = PyTorch's AD (ReLU'(0) = 0) lies in the Clarke set; ad1 = ReLU'(0) = 1; "
        "path = the path element; pair = both elements of the pair (networks with a path only).",
        "refused: networks where the oracle stopped after fpad.oracle.MAX_CHOICES explored choices.",
    ]
    growth = {k: float(np.exp(log_slope(rows, k))) if log_slope(rows, k) is not None else None
              for k in ("oracle_s_median", "explored_median")}
    growth["poly_s_median_exponent"] = log_slope(rows, "poly_s_median", log_p=True)
    if growth["oracle_s_median"] is not None:
        notes.append(f"growth (least-squares fits over p >= 2): exact oracle time x{growth['oracle_s_median']:.2f} per "
                     f"unit of p, explored choices x{growth['explored_median']:.2f} per unit of p (machine-independent); "
                     f"the polynomial-time pair's time ~ p^{growth['poly_s_median_exponent']:.2f}.")
    a = Analysis(name="cost_clarke", title="exact Clarke subdifferential at 0 vs the polynomial-time AD pair",
                 columns=COLUMNS, rows=rows, notes=notes, provenance=machine_provenance(with_torch=False),
                 data={"hidden_layers": hidden_layers, "seed": seed, "growth_per_p": growth})
    a.elapsed_s = time.perf_counter() - t0
    return a


def log_slope(rows, key: str, log_p: bool = False, p_min: int = 2) -> float | None:
    """Least-squares slope of log rows[key] against p (``log_p``: against log p) over p >= p_min:
    exp(slope) is a growth factor per unit of p, the log-log slope an exponent."""
    pts = [(r["p"], r[key]) for r in rows if r["p"] >= p_min and r.get(key)]
    if len(pts) < 2:
        return None
    xs = [np.log(p) if log_p else p for p, _ in pts]
    return float(np.polyfit(xs, np.log([v for _, v in pts]), 1)[0])


def _row(p: int, networks: int, refused: int, st: list[dict]) -> dict:
    def med(key):
        return float(np.median([s[key] for s in st])) if st else None

    withpair = [s for s in st if s["has_pair"]]
    return {"p": p, "networks": networks, "refused": refused, "decided": len(st),
            "differentiable": sum(s["differentiable"] for s in st), "clarke_vertices_median": med("vertices"),
            "clarke_vertices_max": max((s["vertices"] for s in st), default=None),
            "explored_median": med("explored"), "explored_max": max((s["explored"] for s in st), default=None),
            "oracle_s_median": med("oracle_s"), "oracle_s_max": max((s["oracle_s"] for s in st), default=None),
            "poly_s_median": med("poly_s"), "ad0_in_clarke": sum(s["ad0"] for s in st),
            "ad1_in_clarke": sum(s["ad1"] for s in st), "with_path": len(withpair),
            "path_in_clarke": sum(s["path"] for s in withpair), "pair_in_clarke": sum(s["pair"] for s in withpair)}
