"""The PyTorch adapter of :mod:`fpad.audit.core`: ``F.linear`` per layer, ``torch.func.grad``
under ``vmap``; spellings ``F.relu``, ``torch.clamp(x, min=0)``, ``torch.maximum(x, 0)``,
``torch.where(x > 0, x, 0)``, ``F.relu6``, ``torch.clamp(x, 0, 6)``, ``F.hardsigmoid``."""

from __future__ import annotations

import numpy as np

from fpad.audit import core
from fpad.errors import FpadError

NAME = "pytorch"
DTYPES = ("float64", "float32", "bfloat16")
CLASSES = core.CLASSES


def _torch():
    try:
        import torch
    except ImportError:
        raise FpadError('the PyTorch audit needs PyTorch: pip install "fpad[train]"') from None
    return torch


def variants() -> dict[str, dict]:
    """activation name -> {spelling: callable on a tensor}."""
    torch = _torch()
    import torch.nn.functional as F

    zero = torch.zeros_like
    return {
        "relu": {"F.relu": F.relu, "torch.clamp(x, min=0)": lambda x: torch.clamp(x, min=0),
                 "torch.maximum(x, 0)": lambda x: torch.maximum(x, zero(x)),
                 "torch.where(x > 0, x, 0)": lambda x: torch.where(x > 0, x, zero(x))},
        "relu6": {"F.relu6": F.relu6, "torch.clamp(x, 0, 6)": lambda x: torch.clamp(x, 0, 6)},
        "hardsigmoid": {"F.hardsigmoid": F.hardsigmoid},
        "identity": {"identity": lambda x: x},
    }


def network_fn(arrays, fns, dtype):
    """f(full parameter vector) -> (P, tuple of pre-activations of the kinked layers)."""
    torch = _torch()
    import torch.nn.functional as F

    td = getattr(torch, dtype)
    x = torch.tensor(arrays["inputs"], dtype=td)
    ow = None if arrays["out_weights"] is None else torch.tensor(arrays["out_weights"], dtype=td)

    def take(w, spec):
        kind, a = spec
        return torch.tensor(a, dtype=td) if kind == "const" else w[torch.as_tensor(a)]

    return core.network(arrays, fns, F.linear, take, x, ow)


def gradients(arrays, fns, dtype, w: np.ndarray):
    """Gradients (n x W, float64) and pre-activations (per kinked layer: n x (B * units)) at the
    n full parameter vectors ``w``."""
    torch = _torch()
    from torch.func import grad, vmap

    g, pres = vmap(grad(network_fn(arrays, fns, dtype), has_aux=True))(torch.tensor(w).to(getattr(torch, dtype)))
    n = len(w)
    return g.to(torch.float64).numpy(), [t.to(torch.float64).reshape(n, -1).numpy() for t in pres]


def roundtrip(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` stored in ``dtype`` and read back as float64."""
    torch = _torch()
    return torch.tensor(values, dtype=torch.float64).to(getattr(torch, dtype)).to(torch.float64).numpy()


def kink_derivatives(fn, kinks, dtype) -> list[float]:
    """What ``fn``'s autograd returns at each kink, in ``dtype``."""
    torch = _torch()
    from torch.func import grad, vmap

    if not kinks:
        return []
    return vmap(grad(fn))(torch.tensor(kinks, dtype=getattr(torch, dtype))).to(torch.float64).tolist()


def audit(problem, dtypes=DTYPES, spellings=None, chunk: int = 4096, progress=None) -> dict:
    """:func:`fpad.audit.core.run` with PyTorch."""
    import sys

    return core.run(problem, sys.modules[__name__], dtypes, spellings, chunk, progress)
