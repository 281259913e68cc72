"""Independent adversarial review of the exact decision procedures (fpad.oracle, fpad.exact).

Nothing here reuses the oracle's code: the reference below shares with fpad only the program IR
(`fpad.graph`: op codes, nodes, `Program.evaluate`) and the network lowering used to build test
programs. It decides everything from the *definition* instead of from first-order forms:

* **Germ evaluation.** Every node is evaluated exactly at ``w + e1*d1 + e2*d2``, where e1, e2 are
  infinitesimals, 0 < e2 << e1^n << 1 for every n: a value is a polynomial in (e1, e2) with
  rational coefficients (a dict {(b, a): coef} for e2^b e1^a), its sign the sign of the
  coefficient of the largest monomial, i.e. the smallest (b, a) in lexicographic order. A kinked
  activation is applied on the piece that this sign selects, a max by comparing germs, so the
  resulting polynomial *equals* P on a set {0 < e1 < c, 0 < e2 < f(e1)} (P is piecewise
  polynomial; each comparison is decided by the leading term). Hence, exactly:
  - P'(w; d)   = coefficient of e1 in P(w + e1 d);
  - lim_{e->0+} D_i^{+-} P(w + e d) = +- coefficient of e2 e1^0 in P(w + e d +- e2 e_i): the
    one-sided partial derivatives at points approaching w along the ray w + e d (the Bouligand
    limits when P is differentiable there).
* **Differentiability.** P is locally Lipschitz, so it is differentiable at w iff d -> P'(w; d)
  is linear, i.e. P'(w; d) = h . d with h_i = P'(w; e_i). A direction with P'(w; d) != h . d is an
  exact *witness* of non-differentiability. We try +-e_i, random integer directions and (as
  candidates only; the verdict is from the germ) the oracle's piece directions and perturbations.
* **AD** by an independent reverse sweep with PyTorch's proxies written out (relu 0, leaky alpha,
  relu6 / hardtanh / hardsigmoid 0 at both kinks, abs 0), first maximiser on ties.
* **Convex hulls / cones** by Caratheodory: t in conv(G) iff t is an affine combination with
  non-negative weights of some affinely independent subset of <= dim+1 points (exact Gaussian
  elimination over every small subset). The open cone {d: a_k . d > 0} is empty iff 0 in
  conv{a_k} (Gordan).
"""

from __future__ import annotations

import itertools
import random
from fractions import Fraction as F

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpad import exact
from fpad.activations import get_activation
from fpad.errors import FpadError
from fpad.formats import get_format
from fpad.graph import ACT, CONST, LIN, MAX, MUL, PARAM, Program
from fpad.network import NetworkSpec
from fpad.oracle import classify, classify_program
from fpad.proxies import get_proxy


# ------------------------------------------------------------------------------------------------
# germs: polynomials in two infinitesimals e1 >> e2, exact
# ------------------------------------------------------------------------------------------------
def _g_const(c):
    return {(0, 0): F(c)} if c else {}


def _g_add(x, y, c=1):
    out = dict(x)
    for k, v in y.items():
        s = out.get(k, 0) + c * v
        if s:
            out[k] = s
        else:
            out.pop(k, None)
    return out


def _g_scale(c, x):
    return {k: c * v for k, v in x.items()} if c else {}


def _g_mul(x, y):
    out = {}
    for (b1, a1), u in x.items():
        for (b2, a2), v in y.items():
            k = (b1 + b2, a1 + a2)
            s = out.get(k, 0) + u * v
            if s:
                out[k] = s
            else:
                out.pop(k)
    return out


def _g_sign(x):
    if not x:
        return 0
    return 1 if x[min(x)] > 0 else -1


def germ_output(program: Program, w_full, free, d1=None, d2=None):
    """P(w + e1 d1 + e2 d2) as a germ (see the module docstring). ``free`` indexes ``w_full``."""
    pos = {p: j for j, p in enumerate(free)}
    vals = []
    for n in program.nodes:
        if n.op == PARAM:
            v = _g_const(w_full[n.param])
            j = pos.get(n.param)
            if j is not None:
                if d1 is not None and d1[j]:
                    v[(0, 1)] = F(d1[j])
                if d2 is not None and d2[j]:
                    v[(1, 0)] = F(d2[j])
        elif n.op == CONST:
            v = _g_const(n.const)
        elif n.op == LIN:
            v = _g_const(n.const)
            for c, a in zip(n.coefs, n.args):
                v = _g_add(v, vals[a], c)
        elif n.op == MUL:
            v = _g_mul(vals[n.args[0]], vals[n.args[1]])
        elif n.op == ACT:
            x = vals[n.args[0]]
            act = n.act
            i = sum(1 for k in act.kinks if _g_sign(_g_add(x, _g_const(k), -1)) >= 0)
            v = _g_add(_g_scale(act.slopes[i], x), _g_const(act.intercepts[i]))
        elif n.op == MAX:
            v = vals[n.args[0]]
            for a in n.args[1:]:
                if _g_sign(_g_add(vals[a], v, -1)) > 0:
                    v = vals[a]
        else:  # pragma: no cover
            raise AssertionError(n.op)
        vals.append(v)
    return vals[program.output]


def dir_deriv(program, w_full, free, d):
    """P'(w; d), exactly, from the germ."""
    return germ_output(program, w_full, free, d1=d).get((0, 1), F(0))


def limit_partials(program, w_full, free, d, sign=1):
    """(lim_{e->0+} D_i^{sign} P(w + e d))_i, exactly, from the germs."""
    k = len(free)
    out = []
    for i in range(k):
        e = [0] * k
        e[i] = sign
        out.append(sign * germ_output(program, w_full, free, d1=d, d2=e).get((1, 0), F(0)))
    return tuple(out)


# ------------------------------------------------------------------------------------------------
# AD, touched set, hulls: written from the definitions
# ------------------------------------------------------------------------------------------------
_PYTORCH = {"relu": lambda a, i: 0, "leaky_relu": lambda a, i: a.slopes[0], "relu6": lambda a, i: 0,
            "hardtanh": lambda a, i: 0, "hardsigmoid": lambda a, i: 0, "abs": lambda a, i: 0}


def proxy_value(spec: str, act, i: int) -> F:
    """The proxy of kink i of ``act`` under ``spec`` (pytorch | left | right | mix:L | const:C)."""
    dm, dp = act.slopes[i], act.slopes[i + 1]
    if spec == "pytorch":
        return F(_PYTORCH[act.name.split(":")[0]](act, i))
    if spec == "left":
        return dm
    if spec == "right":
        return dp
    kind, arg = spec.split(":")
    lam = F(arg)
    return lam * dm + (1 - lam) * dp if kind == "mix" else lam


def my_ad(program, w_full, free, proxy: str):
    vals = program.evaluate(w_full)
    adj = [F(0)] * len(program.nodes)
    adj[program.output] = F(1)
    grad = {}
    for i in range(program.output, -1, -1):
        n, a = program.nodes[i], adj[i]
        if n.op == PARAM:
            grad[n.param] = grad.get(n.param, 0) + a
        elif n.op == LIN:
            for c, x in zip(n.coefs, n.args):
                adj[x] += c * a
        elif n.op == MUL:
            adj[n.args[0]] += vals[n.args[1]] * a
            adj[n.args[1]] += vals[n.args[0]] * a
        elif n.op == ACT:
            x = vals[n.args[0]]
            act = n.act
            if x in act.kinks:
                s = proxy_value(proxy, act, act.kinks.index(x))
            else:
                s = act.slopes[sum(1 for k in act.kinks if x > k)]
            adj[n.args[0]] += s * a
        elif n.op == MAX:
            m = max(vals[x] for x in n.args)
            first = next(x for x in n.args if vals[x] == m)
            adj[first] += a
    return tuple(F(grad.get(p, 0)) for p in free)


def my_touched(program, w_full):
    """Node indices of live ACT nodes on a kink and live MAX nodes with a tie."""
    vals = program.evaluate(w_full)
    live, stack = set(), [program.output]
    while stack:
        i = stack.pop()
        if i not in live:
            live.add(i)
            stack.extend(program.nodes[i].args)
    out = set()
    for i in live:
        n = program.nodes[i]
        if n.op == ACT and vals[n.args[0]] in n.act.kinks:
            out.add(i)
        if n.op == MAX and sum(1 for x in n.args if vals[x] == vals[i]) > 1:
            out.add(i)
    return out


def _solve(A, b):
    """One solution of A x = b over Q (free variables 0), or None."""
    m, n = len(A), len(A[0]) if A else 0
    M = [list(map(F, row)) + [F(v)] for row, v in zip(A, b)]
    piv, r = [], 0
    for c in range(n):
        p = next((i for i in range(r, m) if M[i][c]), None)
        if p is None:
            continue
        M[r], M[p] = M[p], M[r]
        M[r] = [x / M[r][c] for x in M[r]]
        for i in range(m):
            if i != r and M[i][c]:
                f = M[i][c]
                M[i] = [x - f * y for x, y in zip(M[i], M[r])]
        piv.append(c)
        r += 1
    if any(M[i][n] for i in range(r, m)):
        return None
    x = [F(0)] * n
    for i, c in enumerate(piv):
        x[c] = M[i][n]
    return x


def in_hull(points, target) -> bool:
    """Caratheodory: target in conv(points), exactly."""
    pts = [tuple(map(F, p)) for p in points]
    dim = len(target)
    for size in range(1, min(len(pts), dim + 1) + 1):
        for S in itertools.combinations(pts, size):
            A = [[p[j] for p in S] for j in range(dim)] + [[F(1)] * size]
            lam = _solve(A, list(target) + [1])
            if lam is not None and all(v >= 0 for v in lam):
                return True
    return False


def cone_empty(rows) -> bool:
    return in_hull(rows, [F(0)] * len(rows[0])) if rows else False


# ------------------------------------------------------------------------------------------------
# the reference check of one point
# ------------------------------------------------------------------------------------------------
def check_point(problem, free_values, proxy: str, rng: random.Random, n_random: int = 6, wrt_all: bool = False):
    """classify(problem, free_values) against the reference (see :func:`check_program_point`)."""
    r = classify(problem, free_values, wrt_all=wrt_all)
    wrt = list(range(problem.program.n_params)) if wrt_all else list(problem.free)
    return check_program_point(problem.program, problem.full_point(free_values), wrt, proxy, rng, n_random, r)


def check_program_point(program, w, wrt, proxy: str, rng: random.Random, n_random: int = 6, r=None):
    """Compare the oracle's verdict at one point with the germ reference; returns the verdict.

    Checked: AD, the touched set, differentiability (a witness direction exists iff ndf), DP,
    every piece (its direction realises its gradient, and along it the one-sided partial
    derivatives converge to that gradient), generic rays land on piece gradients, and the
    Bouligand / Clarke answers. Any mismatch raises AssertionError naming the point.
    """
    if r is None:
        r = classify_program(program, w, wrt, get_proxy(proxy))
    where = f"point {[str(v) for v in w]} wrt {wrt} proxy {proxy}"
    k = len(wrt)
    assert r.ad == my_ad(program, w, wrt, proxy), where
    assert {t.node for t in r.touched} == my_touched(program, w), where
    if not r.touched:
        assert r.differentiable and r.dp == r.ad, where
        return r
    basis = [tuple(int(i == j) for j in range(k)) for i in range(k)]
    h = tuple(dir_deriv(program, w, wrt, e) for e in basis)
    dirs = [tuple(-x for x in e) for e in basis]
    dirs += [tuple(rng.randint(-9, 9) for _ in range(k)) for _ in range(n_random)]
    for p in r.pieces:  # candidate directions (the verdict comes from the germ), scaled, perturbed
        dirs.append(p.direction)
        dirs += [tuple(64 * x + (i == j) for j, x in enumerate(p.direction)) for i in range(k)]
    witness = None
    for d in dirs:
        if any(d) and dir_deriv(program, w, wrt, d) != sum((a * b for a, b in zip(h, d)), F(0)):
            witness = d
            break
    assert r.differentiable == (witness is None), f"{where}: oracle differentiable={r.differentiable}, witness {witness}"
    if r.differentiable:
        assert r.dp == h, where
    for p in r.pieces:
        d = p.direction
        assert dir_deriv(program, w, wrt, d) == sum((a * b for a, b in zip(p.gradient, d)), F(0)), where
        if r.ndf:  # the piece gradient is the limit of gradients along its direction
            assert limit_partials(program, w, wrt, d, 1) == p.gradient, f"{where} piece {p.choices}"
            assert limit_partials(program, w, wrt, d, -1) == p.gradient, f"{where} piece {p.choices}"
    if r.ndf:
        grads = {p.gradient for p in r.pieces}
        for _ in range(n_random):  # a generic ray: its limit gradient is one of the pieces'
            d = tuple(rng.randint(-997, 997) for _ in range(k))
            gp, gm = limit_partials(program, w, wrt, d, 1), limit_partials(program, w, wrt, d, -1)
            if gp == gm:
                assert gp in grads, f"{where}: limit gradient {gp} along {d} is not a piece gradient"
        assert r.bouligand_ok == (r.ad in grads), where
        assert r.clarke_ok == in_hull(sorted(grads), r.ad), where
        c = r.clarke_certificate  # and the certificate itself, checked here
        if r.clarke_ok:
            order = list(dict.fromkeys(p.gradient for p in r.pieces))  # the oracle's hull points
            assert min(c.weights) >= 0 and sum(c.weights) == 1
            assert all(sum(wt * g[j] for wt, g in zip(c.weights, order)) == r.ad[j] for j in range(k))
        else:
            assert all(sum(a * (x - y) for a, x, y in zip(c.separator, r.ad, g)) > 0 for g in grads)
    return r


# ------------------------------------------------------------------------------------------------
# random networks and programs
# ------------------------------------------------------------------------------------------------
ACTS = ["relu", "leaky_relu:1/4", "relu6", "hardtanh", "hardsigmoid", "abs", "identity"]
PROXIES = ["pytorch", "left", "right", "mix:1/3", "const:2"]
SMALL = ["0", "1", "-1", "1/2", "-1/2", "2", "-2", "3", "-3", "6"]
BIAS = [True, False, "shared"]


@st.composite
def networks(draw, multi_layer=False, reduce=("sum", "weighted")):
    """(spec dict, proxy): small dense / residual / conv+maxpool networks, 1-2 free parameters
    (from one layer unless ``multi_layer``), fixed values and inputs near the kinks."""
    proxy = draw(st.sampled_from(PROXIES))
    B = draw(st.integers(1, 2))
    arch = draw(st.sampled_from(["dense", "residual", "conv1d", "conv2d"]))
    act = lambda: draw(st.sampled_from(ACTS))  # noqa: E731
    if arch in ("dense", "residual"):
        n0 = draw(st.integers(1, 2))
        d = {"inputs": [[draw(st.sampled_from(SMALL)) for _ in range(n0)] for _ in range(B)]}
        if arch == "dense":
            d["layers"] = [{"kind": "dense", "width": draw(st.integers(1, 2)), "bias": draw(st.sampled_from(BIAS)),
                            "activation": act()} for _ in range(draw(st.integers(1, 2)))]
        else:  # z2 = act(W2 z1 + b2 + z1)
            w = draw(st.integers(1, 2))
            d["layers"] = [{"kind": "dense", "width": w, "bias": draw(st.sampled_from(BIAS)), "activation": act()},
                           {"kind": "dense", "width": w, "bias": draw(st.sampled_from(BIAS))},
                           {"kind": "add", "from": 1, "activation": act()}]
    elif arch == "conv1d":
        L = draw(st.integers(3, 4))
        d = {"inputs": [[draw(st.sampled_from(SMALL)) for _ in range(L)] for _ in range(B)], "input_shape": [1, L],
             "layers": [{"kind": "conv1d", "channels": draw(st.integers(1, 2)), "kernel": draw(st.integers(1, 2)),
                         "bias": draw(st.sampled_from(BIAS)), "activation": act()},
                        {"kind": "maxpool1d", "window": 2, "stride": draw(st.integers(1, 2))}]}
    else:
        d = {"inputs": [[draw(st.sampled_from(SMALL)) for _ in range(9)] for _ in range(B)], "input_shape": [1, 3, 3],
             "layers": [{"kind": "conv2d", "channels": 1, "kernel": 2, "bias": draw(st.sampled_from(BIAS)),
                         "activation": act()},
                        {"kind": "maxpool2d", "window": 2, "stride": 1}]}
    spec = NetworkSpec.from_dict(dict(d, params={}))
    n_out = 1
    for n in spec.layers[-1].out_shape:
        n_out *= n
    red = draw(st.sampled_from(reduce))
    if red == "weighted":
        d["output"] = {"reduce": "weighted", "weights": [draw(st.sampled_from(SMALL[1:])) for _ in range(n_out)]}
    elif red == "squared_error":
        d["output"] = {"reduce": "squared_error",
                       "targets": [[draw(st.sampled_from(SMALL)) for _ in range(n_out)] for _ in range(B)]}
    names = spec.param_names
    pool = names
    if not multi_layer:
        layer = draw(st.sampled_from(sorted({n.split(".")[0] for n in names})))
        pool = [n for n in names if n.startswith(layer + ".")]
    free = sorted(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True)))
    d["params"] = {"free": free, "fixed": {n: draw(st.sampled_from(SMALL)) for n in names if n not in free}}
    d["ad"] = {"proxy": proxy}
    return d, proxy


def random_program(rng: random.Random, k: int, size: int = 7):
    """A random scalar program over k free + 2 fixed parameters built to touch kinks and ties:
    small integer coefficients, kinks at 0, +-1, +-3, 6, max nodes with repeated and dependent
    arguments, products of parameter-dependent nodes, explicit identity nodes, zero coefficients."""
    acts = [get_activation(a) for a in ACTS]
    prog = Program([f"p{i}" for i in range(k + 2)])
    nodes = [prog.param(i) for i in range(k + 2)]
    if rng.random() < 0.3:
        nodes.append(prog.param(0))  # a parameter read by two PARAM nodes
    nodes.append(prog.const(rng.choice([0, 1, -1])))
    for _ in range(rng.randint(2, size)):
        kind = rng.random()
        src = rng.sample(nodes, min(len(nodes), rng.randint(1, 3)))
        if kind < 0.35:
            nodes.append(prog.act(rng.choice(acts), prog.lin([(rng.randint(-2, 2), x) for x in src], rng.choice([0, 0, 1, -1, 3])), "a"))
        elif kind < 0.6:
            nodes.append(prog.max(src + [rng.choice(src)] * (rng.random() < 0.3), "m"))
        elif kind < 0.7:
            nodes.append(prog.mul(rng.choice(nodes), rng.choice(nodes)))
        else:
            nodes.append(prog.lin([(rng.randint(-2, 2), x) for x in src], rng.randint(-1, 1)))
    tail = nodes[-3:]
    prog.set_output(prog.lin([(rng.choice([1, -1, 2, F(1, 2)]), x) for x in tail]))
    return prog


# ------------------------------------------------------------------------------------------------
# the reference itself, on closed forms
# ------------------------------------------------------------------------------------------------
def _prog(build, n_params=1):
    p = Program([f"p{i}" for i in range(n_params)])
    p.set_output(build(p, [p.param(i) for i in range(n_params)]))
    return p


RELU, RELU6 = get_activation("relu"), get_activation("relu6")


def test_reference_on_closed_forms():
    # relu(w) - relu(-w) = w: linear at 0 although two kinks are touched
    p = _prog(lambda p, w: p.lin([(1, p.act(RELU, w[0])), (-1, p.act(RELU, p.lin([(-1, w[0])])))]))
    assert [dir_deriv(p, [F(0)], [0], d) for d in ((1,), (-1,), (3,))] == [1, -1, 3]
    # relu(u*v) at 0: the input moves at second order only; differentiable, gradient 0
    p = _prog(lambda p, w: p.act(RELU, p.mul(w[0], w[1])), 2)
    assert all(dir_deriv(p, [F(0)] * 2, [0, 1], d) == 0 for d in ((1, 1), (1, -1), (-2, 3)))
    assert limit_partials(p, [F(0)] * 2, [0, 1], (1, 1)) == (0, 0)
    # max(u, v) at 0: P'(0; d) = max(d); along (1, -1) the limit gradient is (1, 0), from both sides
    p = _prog(lambda p, w: p.max([w[0], w[1]]), 2)
    assert dir_deriv(p, [F(0)] * 2, [0, 1], (1, -1)) == 1 and dir_deriv(p, [F(0)] * 2, [0, 1], (-1, -2)) == -1
    assert limit_partials(p, [F(0)] * 2, [0, 1], (1, -1), 1) == limit_partials(p, [F(0)] * 2, [0, 1], (1, -1), -1) == (1, 0)
    # on the diagonal the one-sided partials differ (the reference skips such rays)
    assert limit_partials(p, [F(0)] * 2, [0, 1], (1, 1), 1) == (1, 1)
    assert limit_partials(p, [F(0)] * 2, [0, 1], (1, 1), -1) == (0, 0)
    # the sign of a second-order term decides the piece: relu(w*w) - relu(-w*w) = w^2
    p = _prog(lambda p, w: p.lin([(1, p.act(RELU, p.mul(w[0], w[0]))), (-1, p.act(RELU, p.lin([(-1, p.mul(w[0], w[0]))])))]))
    assert germ_output(p, [F(0)], [0], d1=(1,)) == {(0, 2): 1}
    # Caratheodory hull and Gordan cone checks
    assert in_hull([(0, 0), (2, 0), (0, 2)], (1, 1)) and not in_hull([(0, 0), (2, 0), (0, 2)], (F(3, 2), 1))
    assert in_hull([(0,), (0,)], (0,)) and not in_hull([], (0,))
    assert cone_empty([(1, 1), (-1, 0), (0, -1)]) and not cone_empty([(1, 0), (0, 1)])


def test_ad_reference_agrees_with_torch_conventions_table():
    """my_ad's proxy table is PyTorch's (read in ATen and confirmed with torch 2.13 at the kinks):
    relu 0, leaky alpha, relu6 / hardtanh / hardsigmoid 0 at both kinks, abs 0."""
    for name, kinks in (("relu", [0]), ("leaky_relu:1/4", [0]), ("relu6", [0, 6]), ("hardtanh", [-1, 1]),
                        ("hardsigmoid", [-3, 3]), ("abs", [0])):
        act = get_activation(name)
        p = _prog(lambda p, w, act=act: p.act(act, w[0]))
        for x in kinks:
            expect = F(1, 4) if name.startswith("leaky") else F(0)
            assert my_ad(p, [F(x)], [0], "pytorch") == (expect,)
            assert classify_program(p, [F(x)], [0], get_proxy("pytorch")).ad == (expect,)


# ------------------------------------------------------------------------------------------------
# the oracle against the reference
# ------------------------------------------------------------------------------------------------
GRID8 = [F(v) for v in ["0", "1", "-1", "1/2", "-1/2", "2", "-3", "3"]]


@pytest.mark.parametrize("seed", range(6))
def test_random_programs_match_reference(seed):
    """Random IR programs (max ties with repeated / dependent arguments, products of free values,
    parameters read twice, chains of kinks): every verdict agrees with the germ reference, and the
    antichain shortcut for piece gradients gives the same pieces as full reverse sweeps."""
    rng = random.Random(seed)
    seen = {"touched": 0, "ndf": 0}
    for _ in range(20):
        k = rng.randint(1, 3)
        prog = random_program(rng, k, size=rng.choice([7, 14]))
        fixed = [rng.choice(GRID8) for _ in range(2)]
        proxy = rng.choice(PROXIES)
        pts = list(itertools.product(GRID8, repeat=k))
        rng.shuffle(pts)
        for pt in pts[:10]:
            w = list(pt) + fixed
            wrt = list(range(k + 2)) if rng.random() < 0.25 else list(range(k))
            r = check_program_point(prog, w, wrt, proxy, rng, n_random=4)
            slow = classify_program(prog, w, wrt, get_proxy(proxy), shortcut=False)
            assert [(p.choices, p.gradient) for p in slow.pieces] == [(p.choices, p.gradient) for p in r.pieces]
            seen["touched"] += bool(r.touched)
            seen["ndf"] += r.ndf
    assert seen["touched"] >= 20 and seen["ndf"] >= 5  # the programs do reach the interesting cases


_SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _check_network(d, proxy, rnd, fmt_name, n_points, wrt_all=False):
    fmt = get_format(fmt_name)
    problem = NetworkSpec.from_dict(d).build(fmt)
    vals = [v for v in fmt.values_fraction() if abs(v) <= 6]
    pts = list(itertools.product(vals, repeat=len(problem.free)))
    rnd.shuffle(pts)
    for pt in pts[:n_points]:
        check_point(problem, list(pt), proxy, rnd, n_random=4, wrt_all=wrt_all)


@settings(max_examples=40, **_SETTINGS)
@given(networks(), st.randoms(use_true_random=False), st.sampled_from(["e2m1", "e3m2"]))
def test_networks_one_free_layer_match_reference(net, rnd, fmt_name):
    """Dense, residual, conv1d/conv2d + maxpool networks; minibatches of 1-2; bias per unit, shared
    or none; every activation; five proxies. P is piecewise linear in the free parameters here, so
    the first-order pieces are the true Bouligand pieces and every answer is checked."""
    _check_network(*net, rnd, fmt_name, n_points=16)


@settings(max_examples=25, **_SETTINGS)
@given(networks(multi_layer=True, reduce=("sum", "weighted", "squared_error")), st.randoms(use_true_random=False),
       st.booleans())
def test_networks_several_free_layers_and_wrt_all_match_reference(net, rnd, wrt_all):
    """Free parameters in several layers (pre-activations polynomial in w), squared error, and
    differentiation with respect to all parameters (wrt_all)."""
    _check_network(*net, rnd, "e2m1", n_points=12, wrt_all=wrt_all)


def _count(problem, proxy, rng):
    fmt = problem.fmt
    out = {"touched": 0, "ndf": 0, "inc": 0, "clarke_bad": 0}
    for pt in itertools.product(fmt.values_fraction(), repeat=len(problem.free)):
        r = check_point(problem, list(pt), proxy, rng, n_random=3)
        out["touched"] += bool(r.touched)
        out["ndf"] += r.ndf
        out["inc"] += r.inc
        out["clarke_bad"] += r.ndf and not r.clarke_ok
    return out


def test_lemma7_every_point_of_e2m1():
    """ICLR 2024 Lemma 7 (shared bias + maxpool ties) on all 15^2 points of e2m1, every point
    checked against the reference. P(u, b) = max(u+b, b) - max(-u+b, b) = u is linear, so nothing
    is ndf; AD is wrong exactly where both windows tie, i.e. at u = 0 (15 points)."""
    from fpad.network import shipped_nets

    problem = NetworkSpec.from_toml(shipped_nets()["lemma7"]).build(get_format("e2m1"))
    assert _count(problem, "pytorch", random.Random(0)) == {"touched": 15, "ndf": 0, "inc": 15, "clarke_bad": 0}


def test_no_bias_two_layer_net_every_point_of_e2m1():
    """P(u, a) = -relu(a relu(u)) (no biases, both layers' weights free, proxy relu'(0) = 1) on
    all 225 points of e2m1, each checked against the reference. By hand: touched iff u <= 0
    (the second input is a * 0) or a = 0: 8 * 15 + 7 = 127. u < 0: P = 0 nearby. u = 0: a > 0
    gives P = -a relu(u), ndf (7 points); a < 0 gives P = 0 but AD = -a != 0 (inc, 7 points);
    a = 0 gives P = O(|w|^2), AD = 0, fine. u > 0, a = 0: P = -relu(a u), ndf (7 points)."""
    d = {"inputs": [[1]], "layers": [{"kind": "dense", "width": 1, "bias": False, "activation": "relu"},
                                      {"kind": "dense", "width": 1, "bias": False, "activation": "relu"}],
         "params": {"free": ["L1.W", "L2.W"]}, "output": {"reduce": "weighted", "weights": [-1]},
         "ad": {"proxy": "right"}}
    problem = NetworkSpec.from_dict(d).build(get_format("e2m1"))
    assert _count(problem, "right", random.Random(1)) == {"touched": 127, "ndf": 14, "inc": 7, "clarke_bad": 0}


def test_first_order_sets_miss_a_cusp_at_a_differentiable_point():
    """The documented first-order caveat, pinned on a concrete case (several free layers: a
    pre-activation v - u*u is a polynomial). P(u, v) = relu(v - u^2) - relu6(v) with relu6'(0) = 1
    ('right') is differentiable at 0 with DP = 0 (|P| <= u^2 near 0), so AD = (0, -1) is inc; yet
    AD is the gradient on the cusp {0 < v < u^2} (P = -v there), a limit of gradients at
    differentiable points: AD IS in the true Bouligand (and Clarke) set, while the oracle's
    bouligand_ok / clarke_ok (first-order sets, = {DP} at a differentiable point) say False."""
    relu6 = get_activation("relu6")
    p = _prog(lambda p, w: p.lin([(1, p.act(RELU, p.lin([(1, w[1]), (-1, p.mul(w[0], w[0]))]))),
                                  (-1, p.act(relu6, w[1]))]), 2)
    r = classify_program(p, [F(0), F(0)], [0, 1], get_proxy("pytorch,relu6=right"))
    assert (r.differentiable, r.dp, r.ad, r.inc) == (True, (0, 0), (0, -1), True)
    assert (r.bouligand_ok, r.clarke_ok) == (False, False)
    for t in (F(1, 10), F(1, 1000)):  # points (t, t^3) of the cusp: untouched, gradient (0, -1)
        w = [t, t**3]
        assert not my_touched(p, w) and my_ad(p, w, [0, 1], "pytorch") == (0, -1)


# ------------------------------------------------------------------------------------------------
# fpad.exact: certified cone and hull decisions under adversarial inputs
# ------------------------------------------------------------------------------------------------
METHODS = ("auto", "highs", "simplex")
TINY, HUGE = F(1, 2**140), F(2**130)


def _check_cone(rows, n=None, expect=None):
    """Every method gives the reference verdict with a certificate that is valid on the rows."""
    ref = cone_empty([list(map(F, r)) for r in rows]) if expect is None else not expect
    for m in METHODS:
        res = exact.cone_interior_point(rows, n, method=m)
        assert res.nonempty == (not ref), (m, rows, res)
        if res.nonempty:
            assert all(sum(F(a) * x for a, x in zip(r, res.point)) > 0 for r in rows)
        else:
            y = res.farkas
            assert len(y) == len(rows) and min(y) >= 0 and sum(y) == 1
            assert all(sum(yk * F(r[j]) for yk, r in zip(y, rows)) == 0 for j in range(len(rows[0])))
    return not ref


@pytest.mark.parametrize(
    "rows, nonempty",
    [
        ([[TINY, 0], [0, HUGE]], True),
        ([[TINY, -HUGE], [-TINY, HUGE]], False),  # opposite rows across 270 binades
        ([[TINY, HUGE], [-TINY, -HUGE + 1]], True),
        ([[HUGE, TINY, 1], [-HUGE, TINY, 1], [0, -TINY, -1]], False),
        ([[1, 0]] * 200 + [[-1, 1]], True),  # many duplicates
        ([[1, 0]] * 100 + [[-1, 1]] * 100 + [[0, -1]], False),
        ([[1, 1, 0], [-1, 2, 0], [0, -3, 0]], False),  # rows in a plane, 0 in their hull
        ([[1, 1, 0], [-1, 2, 0], [0, 3, 0]], True),
        ([[1, -1], [-1, 1 + TINY]], True),  # nearly opposite: a float solver sees an empty cone;
        ([[1, -1], [-1, 1 - TINY]], True),  # both are thin wedges (d2 > 0, resp. d2 < 0)
        ([[1, -1], [-1, 1]], False),
        ([[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, -1]], False),  # 0 in the interior of the hull
        ([[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, TINY]], True),
        ([[0, 0, 0]], False),
        ([[3, 1], [1, 3], [1, 1]], True),
    ],
)
def test_cone_adversarial_cases(rows, nonempty):
    # the Caratheodory reference is exponential: above 12 rows the hand-derived verdict is used
    assert _check_cone(rows, expect=nonempty if len(rows) > 12 else None) == nonempty


def test_cone_no_rows_and_dimension_checks():
    assert exact.cone_interior_point([], 3).point == [0, 0, 0]
    with pytest.raises(FpadError):
        exact.cone_interior_point([[1, 2], [1]])
    with pytest.raises(FpadError):
        exact.cone_interior_point([[1, float("nan")]])
    with pytest.raises(FpadError):
        exact.hull_membership([[1, 2]], [1])


def test_cone_in_dimension_zero_is_empty():
    """R^0: a row is the empty vector, <a, d> = 0 is never > 0, so the cone is empty (y = (1)).
    Every method answers it (the review found 'auto' crashing here; fixed)."""
    assert exact.cone_interior_point([[]], method="simplex").nonempty is False
    assert exact.cone_interior_point([[]]).nonempty is False


@st.composite
def row_sets(draw):
    n = draw(st.integers(1, 3))
    rows = [[F(draw(st.integers(-2, 2))) for _ in range(n)] for _ in range(draw(st.integers(1, 6)))]
    rows += draw(st.lists(st.sampled_from(rows), max_size=3))  # duplicates
    return rows


@settings(max_examples=120, **_SETTINGS)
@given(row_sets(), st.lists(st.sampled_from([F(1), TINY, HUGE, F(3, 7)]), min_size=3, max_size=3),
       st.lists(st.sampled_from([F(1), TINY, HUGE]), min_size=9, max_size=9))
def test_cone_random_against_gordan_and_scaling_invariance(rows, colscale, rowscale):
    """Small random cones: all methods agree with the Caratheodory/Gordan reference, and the verdict
    is invariant under positive row scalings and column scalings by 2^-140 ... 2^130."""
    verdict = _check_cone(rows)
    scaled = [[x * c * s for x, c in zip(r, colscale)] for r, s in zip(rows, rowscale * 2)]
    assert _check_cone(scaled, expect=verdict) == verdict


def test_exact_simplex_on_degenerate_instances_agrees_with_highs():
    """Larger degenerate instances (duplicate and scaled rows, dimension up to 8): the integer
    simplex terminates and agrees with the certified HiGHS path (both verdicts carry a checked
    certificate, so disagreement would raise)."""
    rng = random.Random(5)
    verdicts = []
    for _ in range(25):
        n = rng.randint(2, 8)
        K = rng.randint(n, 3 * n)
        rows = [[F(rng.randint(-3, 3), rng.choice([1, 1, 2, 3])) for _ in range(n)] for _ in range(K)]
        rows += [[2 * x for x in r] for r in rows[: K // 2]]
        got = {m: exact.cone_interior_point(rows, method=m).nonempty for m in METHODS}
        assert len(set(got.values())) == 1, got
        verdicts.append(got["auto"])
    assert 5 <= sum(verdicts) <= 20  # both answers occur


@pytest.mark.parametrize(
    "points, target, member",
    [
        ([[0, 0], [2, 0], [0, 2]], [1, 1], True),  # on an edge
        ([[0, 0], [2, 0], [0, 2]], [0, 0], True),  # a vertex
        ([[0, 0], [2, 0], [0, 2]], [1, 1 + TINY], False),  # just outside an edge
        ([[0, 0], [2, 0], [0, 2]], [TINY, TINY], True),
        ([[1, 1]] * 5, [1, 1], True),  # all points equal the target
        ([[1, 1]] * 5, [1, 1 + TINY], False),
        ([[0, 0], [1, 1], [3, 3]], [2, 2], True),  # collinear
        ([[0, 0], [1, 1], [3, 3]], [4, 4], False),
        ([[0, 0], [1, 1], [3, 3]], [1, 2], False),
        ([[-HUGE], [TINY]], [0], True),
        ([[TINY], [HUGE]], [0], False),
        ([], [0, 0], False),
        ([[F(1, 3), F(2, 3)], [F(2, 3), F(1, 3)]], [F(1, 2), F(1, 2)], True),
    ],
)
def test_hull_adversarial_cases(points, target, member):
    for m in METHODS:
        h = exact.hull_membership(points, target, method=m)
        assert h.member == member == in_hull(points, target)
        if member:
            assert min(h.weights) >= 0 and sum(h.weights) == 1
            assert all(sum(wt * F(p[j]) for wt, p in zip(h.weights, points)) == target[j] for j in range(len(target)))
        else:
            hv = h.separator
            assert all(sum(a * (F(t) - F(x)) for a, t, x in zip(hv, target, p)) > 0 for p in points)


@settings(max_examples=60, **_SETTINGS)
@given(st.integers(1, 3).flatmap(lambda n: st.tuples(
    st.lists(st.lists(st.integers(-2, 2).map(F), min_size=n, max_size=n), min_size=1, max_size=6),
    st.lists(st.integers(-4, 4).map(lambda v: F(v, 2)), min_size=n, max_size=n))))
def test_hull_random_against_caratheodory(case):
    points, target = case
    assert exact.hull_membership(points, target).member == in_hull(points, target)


def test_rank_solve_nullspace_against_reference():
    rng = random.Random(3)
    for _ in range(60):
        m, n = rng.randint(1, 4), rng.randint(1, 4)
        A = [[F(rng.randint(-2, 2), rng.choice([1, 2, 3])) for _ in range(n)] for _ in range(m)]
        if rng.random() < 0.3:
            A.append([2 * x - y for x, y in zip(A[0], A[-1])])  # a dependent row
        b = [F(rng.randint(-3, 3)) for _ in A]
        x = exact.solve(A, b)
        assert (x is None) == (_solve(A, b) is None)
        if x is not None:
            assert all(sum(a * v for a, v in zip(row, x)) == bi for row, bi in zip(A, b))
        N = exact.nullspace(A)
        assert len(N) == n - exact.rank(A)
        assert all(sum(a * v for a, v in zip(row, z)) == 0 for row in A for z in N)
