"""The exact per-step checks of ICLR 2024 on a captured forward pass (:class:`fpad.train.trace.Trace`).

Blocks. Every activation call and every max-pool is attached to the *block* that produces its
pre-activation: the nearest ``linear`` / ``conv2d`` upstream, through an optional batch norm and
residual additions whose other summand does not depend on that layer (the paper's tau_l may read
all earlier activations). The block's parameters are the paper's w_l; activations sharing a
block (``relu(y) - clamp(y, 0)``, App. H f2) are decided jointly.

Coordinates. A pre-activation entry of channel c (an output neuron of a linear layer, an output
channel of a conv) depends on w_l only through that channel's weights W[c], its bias b[c] and,
with batch norm, gamma[c] and beta[c]; so the cone P_l of Algorithm 1 is a product over
channels and is decided channel by channel. Within a channel we use the coordinates
(W'[c], bias) with W' = scale_c W, scale_c the batch norm's per-channel factor (1 without BN):
the gradient of entry e is then [patch_e, 1], with patch_e the exact input patch (a dyadic vector).
The substitution is a bijection of the W-coordinates when scale_c != 0, so emptiness is
unchanged; gamma's direction is not used (its coefficient involves a square root): a non-empty
cone in the smaller space is non-empty in the full one, so certification stays sound, and an
empty one is reported as "not certified", which the docs call conservative where it applies.

Batch norm in training mode couples the samples of a batch through mean and variance. Two facts
keep the decision exact there: (i) for two entries of one channel with equal pre-activation and
equal batch-norm input (bf16 rounding can map unequal inputs to one output, and then the terms
differ by an irrational amount), the batch-statistic terms of their gradients coincide, so a tie row is Drho * sign(gamma) *
(patch* - patch) up to a positive factor; (ii) if every touch of a channel asks for one side s
and the channel has a bias (beta), a large bias step s * t satisfies all touch rows while tie
rows have a zero bias coordinate, so the channel's cone is non-empty iff the tie rows' cone is
(the argument behind Algorithm 2, App. F). Outside these cases the channel is "undecided" and
the step is not certified, with that reason.

T_j (harmless ties, Algorithm 1 step 3) by exact equality of AD derivatives: a tied entry i is
in T_j iff its AD derivative with respect to w_1..w_l equals that of AD's winner i*. We decide it
exactly when either both AD factors rho'(y) are 0 (both derivatives vanish), or the rows are
equal in layer l (equal pre-activation, equal patch, equal factor) and every entry of both
patches has AD derivative 0 with respect to earlier layers (input data, or activation outputs
whose AD factor is 0, tracked exactly). A tie whose layer-l rows agree but whose earlier-layer
derivatives could not be shown equal is counted as "undecided" and blocks certification.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch

from fpad import exact
from fpad.errors import FpadError
from fpad.train._kernels import REAL, UNDECIDED, classify_pairs, pool_tie_pairs
from fpad.train.rank import column_rank
from fpad.train.trace import OpTable


# -- blocks ------------------------------------------------------------------------------------------
@dataclass
class Block:
    """One layer's parameters (w_l) and what constrains them."""

    name: str  # weight parameter name, or "<no parameters>"
    owner: int  # node id of the linear/conv2d (-1: none)
    kind: str  # "linear" | "conv2d" | "none"
    bn: int = -1  # batch_norm node id or -1
    acts: list = field(default_factory=list)  # act node ids
    pools: list = field(default_factory=list)  # (pool node id, act node id or -1)
    signs: dict = field(default_factory=dict)  # act / pool node id -> sign of the owner in its input


def _ancestors(trace, i: int) -> set[int]:
    seen, stack = set(), [i]
    while stack:
        j = stack.pop()
        if j < 0 or j in seen:
            continue
        seen.add(j)
        stack.extend(trace.nodes[j].parents)
    return seen


_NO_OWNER = (-1, -1, 1)


def _owner(trace, i: int, sign: int = 1, bn: int = -1):
    """(owner node, bn node, sign) for a pre-activation node: the pre-activation is sign * (the
    owner's output, through the optional batch norm) + terms not depending on the owner.
    (-1, -1, 1) if it has no parameters of its own. ``bn``: the batch norm already passed."""
    if i < 0:
        return _NO_OWNER
    n = trace.nodes[i]
    return _OWNER_STEP[n.op](trace, n, sign, bn)


def _owner_add(trace, n, sign, bn):
    """A sum: the owner of a +-1 summand that the other summands do not depend on."""
    for p, c in zip(n.parents, n.coef):
        if p < 0 or c not in (1, -1):
            continue
        own, b, sg = _owner(trace, p, sign * int(c))
        others = [q for q in n.parents if q != p and q >= 0]
        if own >= 0 and all(own not in _ancestors(trace, q) for q in others):
            return own, (bn if bn >= 0 else b), sg
    return _NO_OWNER


# how the owner search steps through each op: a layer with weights owns; one batch norm is passed
# through; a sum is searched summand by summand; anything else ends the search without an owner
_OWNER_STEP = OpTable("the block owner search", {
    **dict.fromkeys(("linear", "conv2d"), lambda trace, n, sign, bn: (n.id, bn, sign)),
    "batch_norm": lambda trace, n, sign, bn: _owner(trace, n.parents[0], sign, n.id) if bn < 0 else _NO_OWNER,
    "add": _owner_add,
    **dict.fromkeys(("input", "act", "pool", "reshape"), lambda trace, n, sign, bn: _NO_OWNER),
})


def _attach_act(trace, n, block, act_of):
    own, bn, sg = _owner(trace, n.parents[0])
    blk = block(own, bn)
    blk.acts.append(n.id)
    blk.signs[n.id] = sg
    act_of[n.id] = (own, bn, sg)


def _attach_pool(trace, n, block, act_of):
    src = n.parents[0]
    own, bn, sg = act_of[src] if src in act_of else _owner(trace, src)
    blk = block(own, bn)
    blk.pools.append((n.id, src if src in act_of else -1))
    blk.signs[n.id] = sg


# which ops a block collects: its activation calls and its max-pools
_ATTACH = OpTable("the block assignment", {
    "act": _attach_act, "pool": _attach_pool,
    **dict.fromkeys(("input", "linear", "conv2d", "batch_norm", "add", "reshape"), lambda *_: None),
})


def blocks_of(trace) -> list[Block]:
    by_owner: dict[int, Block] = {}
    act_of: dict[int, tuple] = {}  # act node id -> its (owner, bn, sign)

    def block(owner, bn) -> Block:
        if owner not in by_owner:
            if owner < 0:
                by_owner[owner] = Block("<no parameters>", -1, "none")
            else:
                n = trace.nodes[owner]
                by_owner[owner] = Block(n.info["weight"], owner, n.op, bn)
        return by_owner[owner]

    for n in trace.nodes:
        _ATTACH[n.op](trace, n, block, act_of)
    return list(by_owner.values())


# -- per-block geometry --------------------------------------------------------------------------------
class _Geometry:
    """Exact patches, channel facts and AD factors of one block."""

    def __init__(self, trace, blk: Block):
        self.trace, self.blk = trace, blk
        self.kind = blk.kind
        if blk.owner >= 0:
            own = trace.nodes[blk.owner]
            self.zsrc = own.parents[0]
            self.info = own.info
            w = own.info["weight"]
            self.w_trainable = trace.trainable.get(w, False)
            btrain = own.info["bias"] is not None and trace.trainable.get(own.info["bias"], False)
            self.out_shape = tuple(own.tensor.shape)
            if len(self.out_shape) != (2 if self.kind == "linear" else 4):
                raise FpadError(f"fpad.train: layer {w!r} has output shape {list(self.out_shape)}; linear layers "
                                "must act on (batch, features) and conv2d on (batch, C, H, W)")
        else:
            self.zsrc, self.info, self.w_trainable, btrain = -1, {}, False, False
            self.out_shape = None
        self.bn_train = False
        C = self.out_shape[1] if self.out_shape is not None else 0
        self.scale_nonzero = np.ones(C, dtype=bool)
        if blk.bn >= 0:
            bn = trace.nodes[blk.bn]
            self.bn_train = bn.info["training"]
            beta = bn.info["bias"] is not None and trace.trainable.get(bn.info["bias"], False)
            g = bn.info["gamma"]
            if g is not None:
                self.scale_nonzero = _array(g) != 0
            btrain = beta or (btrain and not self.bn_train)  # the conv bias cancels in batch statistics
        self.bias_dir = btrain
        if self.kind == "conv2d":
            self.k = tuple(trace.params[self.info["weight"]].shape[2:])

    @property
    def z(self) -> np.ndarray | None:
        return self.trace.nodes[self.zsrc].value() if self.zsrc >= 0 else None

    @property
    def zpad(self) -> np.ndarray:
        """Conv blocks: the layer input, zero-padded (float32 or float64: the dtype's exact values)."""
        if getattr(self, "_zpad", None) is None:
            self._zpad = _pad_hw(_array(self.trace.nodes[self.zsrc].tensor), self.info["padding"], 0)
        return self._zpad

    def _zero_pad(self) -> np.ndarray:
        """AD-derivative-zero mask of the layer input, padded with True (padding is constant)."""
        if getattr(self, "_zp", None) is None:
            z = zero_derivative(self.trace, self.zsrc)
            self._zp_all = bool(z.all())  # the padding is True anyway
            shape = self.trace.nodes[self.zsrc].tensor.shape
            self._zp = None if self._zp_all else _pad_hw(np.broadcast_to(z, shape), self.info["padding"], True)
        return self._zp

    @property
    def n_coords(self) -> int:
        if self.z is None:
            return int(self.bias_dir)
        K = int(np.prod(self.z.shape[1:])) if self.kind == "linear" else self.z.shape[1] * self.k[0] * self.k[1]
        return K * self.w_trainable + int(self.bias_dir)

    def patch(self, e: tuple) -> np.ndarray:
        """Layer input entries that entry e = (b, c, ...) multiplies (flattened, exact floats)."""
        if self.kind == "linear":
            return self.z[e[0]].reshape(-1)
        b, _, h, w = e
        sh, sw = self.info["stride"]
        return self.zpad[b, :, h * sh:h * sh + self.k[0], w * sw:w * sw + self.k[1]].reshape(-1)

    def patch_zero_derivative(self, e: tuple) -> bool:
        """Every entry of e's patch has AD derivative 0 w.r.t. earlier parameters (exact tracking)."""
        if self.kind == "linear":
            return bool(np.broadcast_to(zero_derivative(self.trace, self.zsrc), self.z.shape)[e[0]].all())
        b, _, h, w = e
        sh, sw = self.info["stride"]
        zp = self._zero_pad()
        return zp is None or bool(zp[b, :, h * sh:h * sh + self.k[0], w * sw:w * sw + self.k[1]].all())

    def row(self, e: tuple, coef: Fraction) -> list[Fraction]:
        """coef * [patch_e, 1] restricted to the available coordinates (exact)."""
        out = []
        if self.w_trainable and self.scale_nonzero[e[1]] and self.z is not None:
            out = [coef * Fraction(float(v)) for v in self.patch(e)]
        elif self.z is not None and self.w_trainable:
            out = [Fraction(0)] * (self.n_coords - int(self.bias_dir))
        if self.bias_dir:
            out.append(coef)
        return out


def _pad_hw(a: np.ndarray, padding: tuple, fill) -> np.ndarray:
    """``a`` (B, C, H, W) padded by ``padding`` = (ph, pw) cells of ``fill`` on both sides of H
    and W (as np.pad with a constant, without its per-call overhead)."""
    ph, pw = padding
    if not ph and not pw:
        return a
    B, C, H, W = a.shape
    out = np.full((B, C, H + 2 * ph, W + 2 * pw), fill, dtype=a.dtype)
    out[:, :, ph:ph + H, pw:pw + W] = a
    return out


def zero_derivative(trace, i: int) -> np.ndarray:
    """Boolean mask over node i's entries: AD's derivative w.r.t. every parameter is exactly 0."""
    if i < 0:
        return np.ones((), dtype=bool)
    n = trace.nodes[i]
    if "zero" not in n.info:
        n.info["zero"] = _ZERO_DERIVATIVE[n.op](trace, n)
    return n.info["zero"]


def _zero_act(trace, n) -> np.ndarray:
    return (ad_factor(n.info["act"], n.pre()) == 0) | zero_derivative(trace, n.parents[0])


def _zero_pool(trace, n) -> np.ndarray:
    shape = n.tensor.shape
    src = zero_derivative(trace, n.parents[0])
    B, C = shape[0], shape[1]
    flat = np.broadcast_to(src, trace.nodes[n.parents[0]].tensor.shape).reshape(B, C, -1)
    idx = n.info["indices"].reshape(B, C, -1)
    return np.take_along_axis(flat, idx, axis=2).reshape(shape)


def _zero_reshape(trace, n) -> np.ndarray:
    p = n.parents[0]
    return np.broadcast_to(zero_derivative(trace, p), trace.nodes[p].tensor.shape).reshape(n.tensor.shape)


def _zero_add(trace, n) -> np.ndarray:
    m = np.ones(n.tensor.shape, dtype=bool)
    for p in n.parents:
        m = m & np.broadcast_to(zero_derivative(trace, p), n.tensor.shape)
    return m


# which entries of an op's output have AD derivative exactly 0 w.r.t. every parameter: all of the
# input's; an activation's where AD's factor is 0 or its input's is; pools, reshapes and sums pass
# their inputs' facts through; a layer with parameters of its own: none (claimed)
_ZERO_DERIVATIVE = OpTable("the zero-derivative rule", {
    # (a 0-d mask where every entry has the same fact: it broadcasts, and costs nothing per step)
    "input": lambda trace, n: np.ones((), dtype=bool),
    "act": _zero_act, "pool": _zero_pool, "reshape": _zero_reshape, "add": _zero_add,
    **dict.fromkeys(("linear", "conv2d", "batch_norm"), lambda trace, n: np.zeros((), dtype=bool)),
})


def ad_factor(act, y: np.ndarray) -> np.ndarray:
    """AD's rho'(y) per entry, as float64 copies of the exact slopes and proxies (used only to
    compare factors with each other and with 0, which float64 decides exactly for fpad's
    activations: checked in :func:`_factor_table`)."""
    kinks, slopes, proxies = _factor_table(act)
    d = np.full(y.shape, slopes[0])
    for i, k in enumerate(kinks):
        d[y > k] = slopes[i + 1]
        d[y == k] = proxies[i]
    return d


# -- the step report ---------------------------------------------------------------------------------------
@dataclass
class StepReport:
    """What :func:`fpad.train.check` returns for one step (see docs/DESIGN.md, "fpad train")."""

    mode: str
    certified: bool
    kind: str | None  # "bouligand", "clarke" or None
    reasons: list[dict]
    touches: dict  # layer -> {kink value: count}
    pools: dict  # pool layer -> {"max_ops", "tied_windows", "s_minus_t", "undecided"}
    static: dict  # Thm 4/6
    thm5: dict  # FC layers: ranks (paper's condition and labelled extensions)
    layers: dict  # block -> Algorithm 1 verdict
    timing: dict = field(default_factory=dict)

    @property
    def n_touches(self) -> int:
        return sum(sum(v.values()) for v in self.touches.values())

    @property
    def n_ties(self) -> int:
        return sum(p["tied_windows"] for p in self.pools.values())

    @property
    def n_s_minus_t(self) -> int:
        return sum(p["s_minus_t"] for p in self.pools.values())

    def to_json(self) -> dict:
        return {"mode": self.mode, "certified": self.certified, "kind": self.kind, "reasons": self.reasons,
                "n_touches": self.n_touches, "touches": self.touches, "pools": self.pools, "static": self.static,
                "thm5": self.thm5, "layers": self.layers, "timing": {k: round(v, 6) for k, v in self.timing.items()}}


# -- the checks ---------------------------------------------------------------------------------------------
def _pool_ties(trace, pool_id: int):
    """Per tied window: (entries of S_j as (b, c, h, w), AD's routed entry). Also the number of max ops."""
    n = trace.nodes[pool_id]
    x = trace.nodes[n.parents[0]].value()
    if x.ndim != 4:
        raise ValueError("max_pool2d input must be (B, C, H, W)")
    B, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = n.info["kernel"], n.info["stride"], n.info["padding"]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    Ho, Wo = n.tensor.shape[2], n.tensor.shape[3]
    wins = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :Ho, :Wo]
    m = wins.max(axis=(4, 5), keepdims=True)
    cnt = (wins == m).sum(axis=(4, 5))
    tied = np.argwhere(cnt >= 2)
    idx = n.info["indices"]
    out = []
    for b, c, i, j in tied:
        eq = np.argwhere(wins[b, c, i, j] == m[b, c, i, j, 0, 0])
        S = [(int(b), int(c), int(i * sh + r - ph), int(j * sw + s - pw)) for r, s in eq]
        flat = int(idx[b, c, i, j])
        out.append((S, (int(b), int(c), flat // W, flat % W)))
    return out, B * C * Ho * Wo


def _channel(per_channel: dict, c: int) -> dict:
    return per_channel.setdefault(int(c), {"touch": [], "ties": [], "undecided": 0})


def _tie_factors(trace, aid, xt):
    """(activation or None, the tensor whose entries the AD factors are read from) for a pool."""
    if aid < 0:
        return None, xt
    an = trace.nodes[aid]
    return an.info["act"], an.info["y"]


def _classify_ties_slow(trace, geo, blk, pid, aid, per_channel) -> dict:
    """The straightforward twin of :func:`_classify_ties` (tests compare them): every tied window
    from a window scan, every pair (i*, i) of it decided one by one in exact rationals, as the
    module docstring states the rule."""
    windows, n_ops = _pool_ties(trace, pid)
    st = {"max_ops": n_ops, "tied_windows": len(windows), "s_minus_t": 0, "undecided": 0}
    xt = trace.nodes[trace.nodes[pid].parents[0]].tensor
    act, yt = _tie_factors(trace, aid, xt)
    y = yt.double().numpy()
    sign = blk.signs[pid]
    U = trace.nodes[trace.nodes[blk.bn].parents[0]].value() if geo.bn_train else None

    def factor(q: Fraction) -> Fraction:
        return (act.ad_derivative(q) if act else Fraction(1)) * sign

    for S, star in windows:
        ys = Fraction(float(y[star]))
        ds = factor(ys)
        for e in S:
            if e == star:
                continue
            ye = Fraction(float(y[e]))
            de = factor(ye)
            if de == 0 and ds == 0:
                continue  # both AD derivatives vanish: harmless (T_j)
            same = (geo.kind == "conv2d" and de == ds and ye == ys and bool(geo.scale_nonzero[e[1]])
                    and bool(np.all(geo.patch(e) == geo.patch(star))))
            st["s_minus_t"] += 1
            if same and geo.patch_zero_derivative(e) and geo.patch_zero_derivative(star):
                st["s_minus_t"] -= 1  # equal rows in layer l and no earlier-layer derivative: harmless
            elif same:
                st["undecided"] += 1
                _channel(per_channel, e[1])["undecided"] += 1
            else:
                exact_pair = ye == ys and (U is None or U[e] == U[star])
                _channel(per_channel, e[1])["ties"].append((star, e, ds, de, bool(exact_pair)))
    return st


def _array(t: torch.Tensor) -> np.ndarray:
    """A tensor's values as a numpy array, exactly (float32/float64 shared, others widened to
    float32, which holds every bf16 and fp16 value); numpy's elementwise work is cheaper here."""
    return t.numpy() if t.dtype in (torch.float32, torch.float64) else t.float().numpy()


_KINKS: dict = {}


def _kinks_in(act, dtype) -> tuple:
    """The kinks as the training dtype holds them (torch compares a tensor with a Python number
    in the tensor's dtype), so the fast touch test decides as torch's own comparison does."""
    key = (act, dtype)
    if key not in _KINKS:
        _KINKS[key] = tuple(float(torch.tensor(float(k), dtype=dtype)) for k in act.kinks)
    return _KINKS[key]


def _touch_entries(act, y: torch.Tensor, fast: bool = True) -> list:
    """[(kink index, entry tuples)] for entries exactly on a kink: exact comparison of the
    training-dtype tensor with the kink (kinks are small dyadics, exactly representable).
    ``fast``: the same comparison in numpy (float32 holds the dtype's values and kinks exactly)."""
    out = []
    if fast:
        ya = _array(y)
        for k, kv in enumerate(_kinks_in(act, y.dtype)):
            hit = ya == kv
            out.append((k, [tuple(r) for r in np.argwhere(hit).tolist()] if hit.any() else []))
        return out
    for k, kv in enumerate(act.kinks):
        hit = y == float(kv)
        idx = hit.nonzero().tolist() if bool(hit.any()) else []
        out.append((k, [tuple(r) for r in idx]))
    return out


_RUNS: dict = {}


def _nonzero_runs(act):
    """Where AD's factor rho'(y) (slopes between kinks, proxies at them) is non-zero, as maximal
    intervals ((lo, closed) or None, (hi, closed) or None), None for an infinite end."""
    if act not in _RUNS:
        ks = act.kinks
        # pieces in order: slope region 0, kink 0, region 1, ..., region n: (nonzero, lo, hi)
        pieces = []
        for i, sl in enumerate(act.act.slopes):
            pieces.append((sl != 0, (ks[i - 1], False) if i else None, (ks[i], False) if i < len(ks) else None))
            if i < len(ks):
                pieces.append((act.proxies[i] != 0, (ks[i], True), (ks[i], True)))
        runs, cur = [], None
        for nz, lo, hi in pieces:
            if nz:
                cur = (lo, hi) if cur is None else (cur[0], hi)
            elif cur is not None:
                runs.append(cur)
                cur = None
        if cur is not None:
            runs.append(cur)
        _RUNS[act] = runs
    return _RUNS[act]


_F32: dict = {}


def _kinks_float32(act) -> bool:
    """Is every kink a float32 value (exactly)? Memoised per activation."""
    if act not in _F32:
        _F32[act] = all(Fraction(float(np.float32(k))) == k for k in act.kinks)
    return _F32[act]


def _factor_nonzero(act, y: np.ndarray) -> np.ndarray:
    """Boolean array: AD's factor rho'(y) != 0, by exact comparisons with the kinks (in float64
    unless every kink is a float32 value; ``y`` holds exact values of the training dtype)."""
    if y.dtype != np.float64 and not _kinks_float32(act):
        y = y.astype(np.float64)
    out = None
    for lo, hi in _nonzero_runs(act):
        m = None
        if lo is not None:
            m = y >= float(lo[0]) if lo[1] else y > float(lo[0])
        if hi is not None:
            u = y <= float(hi[0]) if hi[1] else y < float(hi[0])
            m = u if m is None else m & u
        if m is None:
            return np.ones(y.shape, dtype=bool)
        out = m if out is None else out | m
    return np.zeros(y.shape, dtype=bool) if out is None else out


def _classify_ties(trace, geo, blk, pid, aid, per_channel) -> dict:
    """Table-2 statistics of one pool and its non-harmless tie rows (into ``per_channel``).

    One pass of a numba kernel (:func:`fpad.train._kernels.pool_tie_pairs`: exact float
    equality of each window cell with the pool's output, in the training dtype's values) counts
    the tied windows and lists the pairs (i, i*) of the few holding a tied entry with a non-zero
    AD factor (AD's winner included: a window where every tied factor vanishes is harmless); a
    second kernel (:func:`fpad.train._kernels.classify_pairs`) decides each pair, and only those
    that are neither both-zero-factor nor equal-row ties become exact rows.
    :func:`_classify_ties_slow` is the straightforward twin.
    """
    n = trace.nodes[pid]
    xt = trace.nodes[n.parents[0]].tensor
    B, C, H, W = xt.shape
    Ho, Wo = n.tensor.shape[2], n.tensor.shape[3]
    act, yt = _tie_factors(trace, aid, xt)
    ya = np.ascontiguousarray(_array(yt))
    # AD's factor != 0 per entry (no activation: every entry counts, as the window itself), by
    # numpy's vectorised comparisons: a per-entry loop in the kernel measured 4x slower
    nz = _factor_nonzero(act, ya) if act is not None else np.ones(xt.shape, dtype=bool)
    (kh, kw), (sh, sw), (ph, pw) = n.info["kernel"], n.info["stride"], n.info["padding"]
    arrays = (np.ascontiguousarray(a) for a in (_array(xt), _array(n.tensor), n.info["indices"], nz))
    n_tied, pairs = pool_tie_pairs(*arrays, kh, kw, sh, sw, ph, pw)
    st = {"max_ops": B * C * Ho * Wo, "tied_windows": int(n_tied), "s_minus_t": 0, "undecided": 0}
    if not len(pairs):
        return st
    sign = blk.signs[pid]
    if geo.kind == "conv2d":  # equal rows in layer l are decided on the block's input patches
        zd = zero_derivative(trace, geo.zsrc)
        zt = trace.nodes[geo.zsrc].tensor
        zm_all = bool(zd.all())
        zm = _NO_MASK if zm_all else np.ascontiguousarray(np.broadcast_to(zd, zt.shape))
        conv = (True, geo.scale_nonzero, np.ascontiguousarray(_array(zt)), zm, zm_all, *geo.k, *geo.info["stride"],
                *geo.info["padding"])
    else:  # a pool with no conv of its own: no channel facts, every pair not both-zero is a row
        conv = (False, _NO_SCALE, _NO_PATCH, _NO_MASK, True, 0, 0, 1, 1, 0, 0)
    code = classify_pairs(pairs, ya.reshape(-1), C, H, W, act is not None, *_factor_table(act), float(sign), *conv)
    undecided = np.nonzero(code == UNDECIDED)[0]
    real = np.nonzero(code == REAL)[0]
    st["undecided"] = len(undecided)
    st["s_minus_t"] = len(real) + len(undecided)
    for k in undecided:
        _channel(per_channel, pairs[k, 1])["undecided"] += 1
    if not len(real):
        return st
    U = _array(trace.nodes[trace.nodes[blk.bn].parents[0]].tensor) if geo.bn_train else None
    y4 = ya.reshape(B, C, H, W)
    for k in real:
        b, c, he, we, hs, ws = (int(v) for v in pairs[k])
        e, star = (b, c, he, we), (b, c, hs, ws)
        ye, ys = float(y4[e]), float(y4[star])
        ds = (act.ad_derivative(Fraction(ys)) if act else Fraction(1)) * sign
        de = (act.ad_derivative(Fraction(ye)) if act else Fraction(1)) * sign
        # the batch-statistic terms cancel only if the batch norm's inputs are equal too
        exact_pair = ye == ys and (U is None or U[e] == U[star])
        _channel(per_channel, c)["ties"].append((star, e, ds, de, bool(exact_pair)))
    return st


_NO_PATCH = np.zeros((1, 1, 1, 1), dtype=np.float32)
_NO_MASK = np.ones((1, 1, 1, 1), dtype=bool)
_NO_SCALE = np.ones(1, dtype=bool)
_TABLES: dict = {}


def _factor_table(act) -> tuple:
    """(kinks, slopes, proxies) of an activation as float64 arrays, for the kernels; empty for no
    activation. Memoised per activation. The kernels compare a pre-activation with the kinks and
    factors with each other and with 0, so the table must decide those exactly: every kink is a
    float64 (checked), and float64 keeps the factors' order and zero (checked: HardSigmoid's 1/6
    is not a float64, but no other factor lies near it), as in :func:`ad_factor`."""
    if act not in _TABLES:
        if act is None:
            _TABLES[act] = (np.zeros(0), np.ones(1), np.zeros(0))
        else:
            ks, factors = act.act.kinks, sorted(set(act.act.slopes) | set(act.proxies))
            fl = [float(q) for q in factors]
            if any(Fraction(float(k)) != k for k in ks) or fl != sorted(set(fl)) or (0 in factors) != (0.0 in fl):
                raise FpadError(f"fpad.train: activation {act.act.name}: its kinks or AD factors are not "
                                "decided exactly in float64")
            _TABLES[act] = tuple(np.array([float(v) for v in vs], dtype=np.float64)
                                 for vs in (ks, act.act.slopes, act.proxies))
    return _TABLES[act]


def _static(trace, blocks) -> dict:
    """ICLR 2024 Thm 4 / Thm 6: one lambda per layer, a bias on every kinked layer, no non-trivial maxpool."""
    lams, ok, why = {}, True, []
    for blk in blocks:
        if blk.pools and any(trace.nodes[p].info["kernel"] != (1, 1) for p, _ in blk.pools):
            ok = False
            why.append(f"{blk.name}: non-trivial maxpool")
        acts = [trace.nodes[a].info["act"] for a in blk.acts]
        kinked = [a for a in acts if a.kinks]
        if not kinked:
            continue
        ls = {a.lam for a in kinked}
        lams[blk.name] = [str(x) if x is not None else None for x in ls]
        if None in ls or len(ls) > 1:
            ok = False
            why.append(f"{blk.name}: no single lambda for {', '.join(sorted({a.act.name for a in kinked}))}")
        geo = _Geometry(trace, blk)
        if not geo.bias_dir:
            ok = False
            why.append(f"{blk.name}: no trainable bias")
    bouligand = ok and all(all(v in ("0", "1") for v in ls) for ls in lams.values())
    return {"holds": ok, "kind": ("bouligand" if bouligand else "clarke") if ok else None, "lambdas": lams, "why_not": why}


# what the block structure and Thm 4/6 read from a node besides its op, parents and coefficients
_STRUCTURE_INFO = ("act", "kernel", "stride", "padding", "weight", "bias", "training")
_STRUCTURES: dict = {}  # structure key -> (blocks, static, bouligand proxies); the last few models


def _structure(trace) -> tuple:
    """(blocks, Thm 4/6 facts, every proxy Bouligand) of the trace. These depend only on the
    model's structure (ops, edges, layer geometry, activations, which parameters train), which
    does not change between training steps; they are computed once per structure. The blocks
    are shared between steps (nothing changes them); the static dict is copied per report."""
    graph = trace.replay  # a replay's traces share one structure (key on it: cheaper)
    if graph is None:
        graph = tuple((n.op, n.parents, n.coef, *map(n.info.get, _STRUCTURE_INFO)) for n in trace.nodes)
    key = (graph, tuple(trace.trainable.items()))
    hit = _STRUCTURES.get(key)
    if hit is None:
        blocks = blocks_of(trace)
        bouligand = all(s != "interior" for blk in blocks for a in blk.acts for s in trace.nodes[a].info["act"].side)
        hit = (blocks, _static(trace, blocks), bouligand)
        if len(_STRUCTURES) >= 8:
            _STRUCTURES.pop(next(iter(_STRUCTURES)))
        _STRUCTURES[key] = hit
    blocks, st, bouligand = hit
    static = {**st, "lambdas": {k: list(v) for k, v in st["lambdas"].items()}, "why_not": list(st["why_not"])}
    return blocks, static, bouligand


def _thm5(trace, blocks, touched_blocks: dict) -> dict:
    """Thm 5 (fully connected): rank z_{l-1} = B at every touching layer; plus labelled extensions."""
    out = {}
    # Condition 1 with free fully connected weights A_l at every kinked layer (the proof perturbs them)
    applies = not any(b.pools for b in blocks) and all(
        b.kind == "linear" and b.bn < 0 and trace.trainable.get(b.name, False) for b in blocks if b.acts)
    for blk in blocks:
        if blk.kind != "linear" or blk.name not in touched_blocks:
            continue
        own = trace.nodes[blk.owner]
        z = trace.nodes[own.parents[0]].value()
        Z = z.reshape(z.shape[0], -1).T  # N_{l-1} x B
        B = Z.shape[1]
        r, how = column_rank(Z)
        cols = sorted(touched_blocks[blk.name])
        rt, _ = column_rank(Z[:, cols])
        ra, _ = column_rank(np.vstack([Z[:, cols], np.ones((1, len(cols)))]))
        out[blk.name] = {"B": B, "rank": r, "decided_by": how, "pass": r == B,
                         "ext_touched_columns_pass": rt == len(cols), "ext_augmented_pass": ra == len(cols),
                         "touched_samples": len(cols)}
    return {"applies": applies, "layers": out, "pass": applies and all(v["pass"] for v in out.values())}


def check_trace(trace, mode: str = "exact", algorithm2: bool = True, fast: bool = True) -> StepReport:
    """Run the checks of ``mode`` ("exact" or "paper-repo") on a captured forward pass.
    ``fast=False`` decides the tie sets with the straightforward twin (tests compare the two)."""
    if mode == "paper-repo":
        from fpad.train.paper_repo import check_trace_repo
        return check_trace_repo(trace)
    if mode != "exact":
        raise ValueError(f"unknown check mode {mode!r}")
    t0 = time.perf_counter()
    blocks, static, bouligand_proxies = _structure(trace)
    touches, pools, layers, reasons = {}, {}, {}, []
    touched_samples: dict[str, set] = {}
    t_sets = t_lp = 0.0
    for blk in blocks:
        ts = time.perf_counter()
        geo = _Geometry(trace, blk)
        per_channel: dict[int, dict] = {}  # c -> {"touch": [(entry, side)], "ties": [(e*, e, d*, d)], "undecided": n}
        for a in blk.acts:
            n = trace.nodes[a]
            act = n.info["act"]
            if not act.kinks:
                continue
            counts = {}
            for k, ents in _touch_entries(act, n.info["y"], fast):
                counts[str(act.kinks[k])] = len(ents)
                sd = act.side[k] if blk.signs[a] > 0 else {"-": "+", "+": "-"}.get(act.side[k], act.side[k])
                for e in ents:  # the side is in the owner's direction: sign * pre-activation
                    _channel(per_channel, e[1])["touch"].append((e, sd))
                    touched_samples.setdefault(blk.name, set()).add(e[0])
            touches[f"{blk.name}:{act.act.name}#{a}"] = counts
        for pid, aid in blk.pools:
            st = (_classify_ties if fast else _classify_ties_slow)(trace, geo, blk, pid, aid, per_channel)
            pools[f"{blk.name}:pool#{pid}"] = st
        t_sets += time.perf_counter() - ts
        tl = time.perf_counter()
        verdict = _decide_block(geo, blk, per_channel, algorithm2)
        t_lp += time.perf_counter() - tl
        layers[blk.name] = verdict
        if not verdict["nonempty"]:
            reasons.append({"layer": blk.name, "condition": "Algorithm 1: P_l is empty or undecided",
                            "channels": verdict["failed_channels"][:8], "why": verdict["why"][:4]})
    thm5 = _thm5(trace, blocks, touched_samples)
    alg1 = all(v["nonempty"] for v in layers.values())
    if static["holds"]:
        certified, kind = True, static["kind"]
    elif alg1 and bouligand_proxies:
        certified, kind = True, "bouligand"
    elif thm5["pass"]:
        certified, kind = True, "bouligand" if bouligand_proxies else "clarke"
    else:
        certified, kind = False, None
    if certified:
        reasons = []
    else:
        if not static["holds"]:
            reasons.insert(0, {"layer": "*", "condition": "Thm 4/6 hypotheses", "why": static["why_not"][:4]})
        if thm5["applies"]:
            reasons.append({"layer": "*", "condition": "Thm 5: rank z_{l-1} = B",
                            "why": [f"{k}: rank {v['rank']} < B = {v['B']}" for k, v in thm5["layers"].items() if not v["pass"]][:4]})
    timing = {"sets_s": t_sets, "lp_s": t_lp, "total_s": time.perf_counter() - t0}
    return StepReport("exact", certified, kind, reasons, touches, pools, static, thm5, layers, timing)


def _decide_block(geo: _Geometry, blk: Block, per_channel: dict, algorithm2: bool) -> dict:
    """Algorithm 1 per channel; Algorithm 2's shortcut where its argument holds (see module docstring)."""
    failed, why, paths, n_lp, empty = [], [], {}, 0, []
    for c, ch in sorted(per_channel.items()):
        touch, ties = ch["touch"], ch["ties"]
        if ch["undecided"]:
            failed.append(c)
            why.append(f"channel {c}: {ch['undecided']} tie(s) with equal layer-l rows, earlier-layer derivatives not shown equal")
            continue
        if not touch and not ties:
            continue
        sides = {s for _, s in touch}
        if "interior" in sides:
            failed.append(c)
            why.append(f"channel {c}: a proxy strictly between D^- and D^+ (Theorem 8 needs Bouligand proxies)")
            continue
        tie_bias_zero = all(ds == de for _, _, ds, de, _ in ties)
        shortcut = geo.bias_dir and len(sides) <= 1 and tie_bias_zero and "interior" not in sides
        if geo.bn_train and not (shortcut and all(same_y for *_, same_y in ties)):
            failed.append(c)
            why.append(f"channel {c}: batch norm in training mode with mixed touch sides, no bias, unequal tie factors, "
                       "or a tie of equal outputs from unequal batch-norm inputs (rounding); undecided")
            continue
        if shortcut and (algorithm2 or geo.bn_train):
            rows = [_tie_row(geo, t)[:-1] for t in ties]  # bias coordinate is 0 in every tie row
            nvar = geo.n_coords - 1
            path = "bias-shortcut"
        else:
            rows = [geo.row(e, Fraction(1 if s == "+" else -1)) for e, s in touch] + [_tie_row(geo, t) for t in ties]
            nvar = geo.n_coords
            path = "joint"
        if not rows:
            paths["bias-shortcut"] = paths.get("bias-shortcut", 0) + 1
            continue
        if nvar == 0:
            failed.append(c)
            why.append(f"channel {c}: constraints but no trainable coordinates")
            continue
        res = exact.cone_interior_point(rows, nvar)
        n_lp += 1
        paths[f"{path}/{res.path}"] = paths.get(f"{path}/{res.path}", 0) + 1
        if not res.nonempty:
            failed.append(c)
            empty.append(c)
            why.append(f"channel {c}: empty cone ({len(rows)} rows; Gordan certificate via {res.path})")
    # "empty": some channel's cone is proven empty (Gordan certificate); otherwise failures are undecided
    return {"nonempty": not failed, "empty": bool(empty), "failed_channels": failed, "why": why, "paths": paths, "cones": n_lp,
            "channels_constrained": len(per_channel)}


def _tie_row(geo: _Geometry, t) -> list[Fraction]:
    star, e, ds, de, _ = t
    a, b = geo.row(star, ds), geo.row(e, de)
    return [x - y for x, y in zip(a, b)]
