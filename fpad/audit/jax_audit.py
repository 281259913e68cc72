"""The JAX adapter of :mod:`fpad.audit.core`: ``x @ W.T + b`` per layer, ``jax.grad`` under
``jax.vmap``; spellings ``jax.nn.relu``, ``jnp.maximum(x, 0)``, ``jnp.where(x > 0, x, 0)``,
``jax.nn.relu6``, ``jnp.clip(x, 0, 6)``, ``jax.nn.hard_sigmoid``. float64 needs JAX's x64 mode,
which the adapter switches on (``jax_enable_x64``) for the process.

Gradients are compiled once per network and dtype with ``jax.jit``, as JAX code runs in practice.
Run eagerly, JAX compiles every primitive on its own: 344 XLA compilations and 12 s of the quick
audit's 23 s. Both ways gave the same gradients at every audited point (checked when this changed)."""

from __future__ import annotations

import numpy as np

from fpad.audit import core
from fpad.errors import FpadError

NAME = "jax"
DTYPES = ("float64", "float32", "bfloat16")


def _jax():
    try:
        import jax
    except ImportError:
        raise FpadError('the JAX audit needs JAX: pip install "fpad[jax]"') from None
    jax.config.update("jax_enable_x64", True)
    _persistent_cache(jax)
    return jax


def _persistent_cache(jax) -> None:
    """JAX's persistent compilation cache beside numba's (``~/.cache/fpad/jax``), as numba's
    ``cache=True`` does for the kernels: the quick audit's 78 XLA compilations (5 of its 10 s) are
    made once per machine. A cache the user configured (``JAX_COMPILATION_CACHE_DIR``) is kept."""
    import os

    from fpad import _numba_cache

    if jax.config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    path = _numba_cache.cache_dir("jax")
    if _numba_cache._writable_dir(path):
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def variants() -> dict[str, dict]:
    jax = _jax()
    jnp = jax.numpy
    return {
        "relu": {"jax.nn.relu": jax.nn.relu, "jnp.maximum(x, 0)": lambda x: jnp.maximum(x, 0),
                 "jnp.where(x > 0, x, 0)": lambda x: jnp.where(x > 0, x, 0)},
        "relu6": {"jax.nn.relu6": jax.nn.relu6, "jnp.clip(x, 0, 6)": lambda x: jnp.clip(x, 0, 6)},
        "hardsigmoid": {"jax.nn.hard_sigmoid": jax.nn.hard_sigmoid},
        "identity": {"identity": lambda x: x},
    }


def network_fn(arrays, fns, dtype):
    jax = _jax()
    jnp = jax.numpy
    dt = getattr(jnp, dtype)
    x = jnp.asarray(arrays["inputs"], dtype=dt)
    ow = None if arrays["out_weights"] is None else jnp.asarray(arrays["out_weights"], dtype=dt)

    def take(w, spec):
        kind, a = spec
        return jnp.asarray(a, dtype=dt) if kind == "const" else w[a]

    def linear(z, W, b):
        return z @ W.T if b is None else z @ W.T + b

    return core.network(arrays, fns, linear, take, x, ow)


def gradients(arrays, fns, dtype, w: np.ndarray):
    jax = _jax()
    jnp = jax.numpy
    g, pres = jax.jit(jax.vmap(jax.grad(network_fn(arrays, fns, dtype), has_aux=True)))(jnp.asarray(w, dtype=getattr(jnp, dtype)))
    n = len(w)
    return np.asarray(g, dtype=np.float64), [np.asarray(t, dtype=np.float64).reshape(n, -1) for t in pres]


def roundtrip(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` stored in ``dtype`` and read back as float64."""
    jax = _jax()
    return np.asarray(jax.numpy.asarray(values, dtype=getattr(jax.numpy, dtype)), dtype=np.float64)


def kink_derivatives(fn, kinks, dtype) -> list[float]:
    jax = _jax()
    if not kinks:
        return []
    return [float(v) for v in jax.jit(jax.vmap(jax.grad(fn)))(jax.numpy.asarray(kinks, dtype=getattr(jax.numpy, dtype)))]


def audit(problem, dtypes=DTYPES, spellings=None, chunk: int = 4096, progress=None) -> dict:
    """:func:`fpad.audit.core.run` with JAX."""
    import sys

    return core.run(problem, sys.modules[__name__], dtypes, spellings, chunk, progress)
