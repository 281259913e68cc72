"""The operation-count model of backprop on a dense network with softmax cross-entropy.

Costs are counts of elementary scalar operations, exact Python ints, in the paper's style
(paper_bolte2023.md section 5): every multiply, add, comparison, exp, log and division counts 1.
The conventions, one line each (B = batch, i/o = layer input/output width, C = classes,
N = number of entries the operation touches):

forward
  dense     x W^T : matmul (B x i)(i x o) = 2 B i o   (B i o products, B i o additions)
            + b   : B o
  relu, abs       : N (one comparison / select per entry); hardtanh: 2 N (two clamps)
  maxpool w       : (w - 1) N comparisons (window w, stride 1, padded: one output per input)
  maxout K        : the dense layer has K o outputs, then (K - 1) B o comparisons
  cross-entropy   : log_softmax on B x C = row max C, subtract C, exp C, sum C, log 1,
                    subtract C per row = 5 B C + B; nll = pick and negate B, mean B: 5 B C + 3 B
backward (the adjoint sweep; backprop(P) = forward + backward)
  cross-entropy   : dlogits = (softmax - onehot) / B = exp B C, subtract B, scale B C = 2 B C + B
  dense           : dW = dy^T x: 2 B i o; db = column sums: B o; dx = dy W: 2 B i o, except for the
                    first layer (the data need no adjoint)
  relu, abs       : 2 N (select the derivative from the stored input, multiply);
                    hardtanh: 3 N (two comparisons, multiply)
  maxpool, maxout : N_out (route each adjoint to the stored argmax, accumulate)

omega_ops = (forward + backward) / forward, an exact Fraction. Under these conventions a deep or
wide net tends to 3 (each matmul costs 2 B i o forward and 4 B i o backward) and a net dominated by
its first layer to 2 (no dx there), the Epoch AI 2:1 / 1:1 split quoted in the notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from fpad.errors import FpadError

#: pointwise activations: (forward, backward) operations per entry
POINTWISE = {"relu": (1, 2), "abs": (1, 2), "hardtanh": (2, 3)}
#: the hidden-layer programs the overhead analysis times (the ReLU variants share relu's count)
VARIANTS = ("relu", "relu_d0", "relu_d1", "abs", "hardtanh", "maxpool", "maxout")
POOL_WINDOW = 3
MAXOUT_K = 8


@dataclass
class OpCount:
    """Forward and backward operation counts, with a per-term breakdown ``terms``."""

    forward: int = 0
    backward: int = 0
    terms: list[tuple[str, int, int]] = field(default_factory=list)

    def add(self, name: str, fwd: int, bwd: int) -> None:
        self.forward += fwd
        self.backward += bwd
        self.terms.append((name, fwd, bwd))

    @property
    def omega(self) -> Fraction:
        """cost(backprop(P)) / cost(P) = (forward + backward) / forward."""
        return Fraction(self.forward + self.backward, self.forward)


def _hidden(oc: OpCount, variant: str, batch: int, n_in: int, width: int, layer: int) -> None:
    first = layer == 0
    units = width * MAXOUT_K if variant == "maxout" else width
    mm = 2 * batch * n_in * units
    oc.add(f"L{layer + 1} matmul", mm, mm + (0 if first else mm))
    oc.add(f"L{layer + 1} bias", batch * units, batch * units)
    n = batch * width
    if variant == "maxout":
        oc.add(f"L{layer + 1} maxout{MAXOUT_K}", (MAXOUT_K - 1) * n, n)
        return
    f, b = POINTWISE["relu" if variant.startswith("relu") or variant == "maxpool" else variant]
    oc.add(f"L{layer + 1} {variant}", f * n, b * n)
    if variant == "maxpool":
        oc.add(f"L{layer + 1} maxpool{POOL_WINDOW}", (POOL_WINDOW - 1) * n, n)


def mlp_ops(features: int, width: int, depth: int, batch: int, classes: int = 10,
            variant: str = "relu") -> OpCount:
    """The operation count of ``depth`` hidden layers of ``width`` units (activation ``variant``),
    a dense output layer of ``classes`` logits and the mean softmax cross-entropy over ``batch``."""
    if variant not in VARIANTS:
        raise FpadError(f"unknown hidden-layer program {variant!r}; accepted: {', '.join(VARIANTS)}")
    for name, v in (("features", features), ("width", width), ("depth", depth), ("batch", batch),
                    ("classes", classes)):
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "depth" else 1):
            raise FpadError(f"{name} must be a positive integer, got {v!r}")
    oc = OpCount()
    n_in = features
    for layer in range(depth):
        _hidden(oc, variant, batch, n_in, width, layer)
        n_in = width
    mm = 2 * batch * n_in * classes
    oc.add("output matmul", mm, mm + (mm if depth else 0))
    oc.add("output bias", batch * classes, batch * classes)
    oc.add("cross-entropy", 5 * batch * classes + 3 * batch, 2 * batch * classes + batch)
    return oc
