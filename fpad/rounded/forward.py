"""The forward pass in a given arithmetic, layer by layer, exactly as specified in DESIGN.md.

Walks the network description (not the lowered program: rounding happens per product and per
partial sum, which the program's folded linear nodes no longer show). Order of operations:

* the inputs are rounded to F3 (``out``) first;
* dense unit i: ``acc = F2(p_0)``, ``acc = F2(acc + p_j)`` for j = 1, 2, ... in increasing j,
  with ``p_j = F1(w_ij * z_j)``; then the bias, last: ``acc = F2(acc + b_i)``; the pre-activation
  is ``F3(acc)``; conv: the same with the terms in (input channel, kernel position) row-major
  order, zero padding skipped, the bias last;
* ``add``: ``F3(F2(x + y))``; max-pool: the largest window value (stored values, no rounding);
  AD's winner is the first maximiser in window scan order;
* every activation output is stored as ``F3(rho(pre))`` (identity layers included).

With :data:`fpad.rounded.arith.EXACT` every rounding is the identity and the pass is the papers'
exact model (tests compare it with :mod:`fpad.ad`'s exact forward at every node).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction

from fpad.network import _tag
from fpad.rounded.arith import Arith, Rounding

_IDENTITY = Rounding("exact")


@dataclass
class Pass:
    """What a forward pass decided: pre-activations of kinked activations and max-pool winners,
    by the node tags of the lowered program (``"L1[0] s0"``), and whether anything overflowed."""

    pre: dict[str, object] = field(default_factory=dict)  # tag -> pre-activation (Fraction)
    windows: dict[str, list] = field(default_factory=dict)  # tag -> window values (Fractions)
    nonfinite: bool = False

    def winner(self, tag: str) -> int:
        vals = self.windows[tag]
        best = 0
        for i, v in enumerate(vals):
            if v > vals[best]:
                best = i
        return best


def _finite(v) -> bool:
    return isinstance(v, Fraction) or (isinstance(v, float) and math.isfinite(v))


def forward(spec, w, arith: Arith) -> Pass:
    """The pass of network ``spec`` at the full parameter vector ``w`` (values by parameter
    index, as :meth:`fpad.network.Problem.full_point` gives) in arithmetic ``arith``."""
    mul, acc, out = (arith.mul, arith.acc, arith.out) if not arith.exact else (_IDENTITY,) * 3
    res = Pass()
    index = spec._index

    def weight(layer, idx):
        if layer.const_weight is not None:
            return layer.const_weight[idx]
        return Fraction(w[index[layer.weight.entry_name(idx)]])

    def bias(layer, unit):
        if layer.bias == "param":
            return Fraction(w[index[layer.bias_tensor.entry_name((unit,))]])
        if layer.bias == "shared":
            return Fraction(w[index[layer.bias_tensor.entry_name((0,))]])
        if layer.bias == "const":
            return layer.const_bias[unit]
        return None

    def dot(terms, b):
        """F2-accumulated sum of F1-rounded products, then the bias; None if nothing to add."""
        s = None
        for wv, zv in terms:
            p = mul(wv * zv)
            if not _finite(p):
                return p
            s = acc(p) if s is None else acc(s + p)
            if not _finite(s):
                return s
        if b is not None:
            s = acc(b) if s is None else acc(s + b)
        return Fraction(0) if s is None else s

    for b in range(spec.batch):
        x = [out(Fraction(v)) for v in spec.inputs[b]]
        if not all(map(_finite, x)):
            res.nonfinite = True
            return res
        outs = {0: _reshape(x, spec.input_shape)}
        cur = outs[0]
        for layer in spec.layers:
            y = {}
            positions = list(itertools.product(*(range(n) for n in layer.out_shape)))
            if layer.kind == "dense":
                flat = _flat(cur)
                for (i,) in positions:
                    y[(i,)] = dot([(weight(layer, (i, j)), flat[j]) for j in range(len(flat))], bias(layer, i))
            elif layer.kind in ("conv1d", "conv2d"):
                for pos in positions:
                    o, op = pos[0], pos[1:]
                    terms = []
                    for c in range(layer.in_shape[0]):
                        for kk in itertools.product(*(range(k) for k in layer.kernel)):
                            src = tuple(p * s + k - pad for p, s, k, pad in zip(op, layer.stride, kk, layer.padding))
                            if all(0 <= i < n for i, n in zip(src, layer.in_shape[1:])):
                                terms.append((weight(layer, (o, c, *kk)), cur[(c, *src)]))
                    y[pos] = dot(terms, bias(layer, o))
            elif layer.kind.startswith("maxpool"):
                for pos in positions:
                    c, op = pos[0], pos[1:]
                    vals = [cur[(c, *(p * s + k for p, s, k in zip(op, layer.stride, kk)))]
                            for kk in itertools.product(*(range(wd) for wd in layer.window))]
                    if len(vals) > 1:
                        res.windows[_tag(layer.index, pos, b)] = vals
                    y[pos] = max(vals)
                outs[layer.index] = cur = y
                continue
            elif layer.kind == "add":
                src = outs[layer.source]
                for pos in positions:
                    y[pos] = acc(cur[pos] + src[pos])
            else:  # activation layer: the input is already stored
                y = dict(cur)
            act = layer.activation
            for pos in positions:
                z = out(y[pos])
                if not _finite(z):
                    res.nonfinite = True
                    return res
                if act is not None and act.n_kinks:
                    res.pre[_tag(layer.index, pos, b)] = z
                y[pos] = out(act(z)) if act is not None else z
            outs[layer.index] = cur = y
    return res


def _reshape(flat, shape) -> dict:
    return dict(zip(itertools.product(*(range(n) for n in shape)), flat))


def _flat(values: dict) -> list:
    return [values[k] for k in sorted(values)]
