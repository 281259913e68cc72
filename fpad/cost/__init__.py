"""The cost of nonsmooth AD (issue 12; paper_bolte2023.md): measured beside fpad's exact tools.

* :mod:`fpad.cost.opcount` -- the operation-count model of a dense MLP with softmax
  cross-entropy (matmul 2mkn, elementwise ops), forward and backward, in exact integers;
* :mod:`fpad.cost.timing`  -- median / IQR timing with warm-up, thread pinning, dispatch share;
* :mod:`fpad.cost.overhead` -- omega = time(forward + backward) / time(forward) of backprop on
  scikit-learn's digits, swept over depth, width and batch, and over kink conventions and
  nonsmooth-heavy programs (PyTorch, CPU, float32);
* :mod:`fpad.cost.directional` -- the alternative: p directional derivatives (``torch.func.jvp``
  with ``vmap``, and a loop) against p; the matrix-product reduction x -> ReLU(Ax) at 0;
* :mod:`fpad.cost.clarke` -- the price of exactness: fpad's exact Clarke subdifferential of
  F(x) = M_L ReLU(... M_1 x) at 0 (time against p) beside the polynomial-time construction of two
  distinct AD-conservative elements, with their exact Clarke membership;
* :mod:`fpad.cost.plots` -- the figures.

Importing this package never imports torch or scikit-learn; the functions that need them call
:func:`require_train`, which raises one :class:`fpad.errors.FpadError` line naming the extra.
"""

from __future__ import annotations

import importlib.util

from fpad.errors import FpadError

TRAIN_HINT = "pip install 'fpad[train]'"


def have_train() -> bool:
    """True iff PyTorch and scikit-learn can be imported (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "sklearn"))


def require_train(what: str) -> None:
    if not have_train():
        raise FpadError(f"{what} needs PyTorch and scikit-learn: {TRAIN_HINT}")
