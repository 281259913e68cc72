"""Training-time verification: is AD's output a Clarke subderivative at this step of a real run?

The ICLR 2024 paper (Park, Chun, Lee) gives sufficient conditions, checkable on the values of one
forward pass, under which PyTorch's backprop returns an element of the Clarke (or Bouligand)
subdifferential of the minibatch loss. This subpackage checks them exactly on a torch model:

* :func:`capture` / :class:`~fpad.train.trace.Capture`: one ``with`` line around the forward pass
  records layer inputs, pre-activations, pool windows and AD's routed indices (a torch function
  mode, then a checked torch.fx replay; the training code is otherwise unchanged);
* :func:`check_trace` / :func:`check`: touches (exact equality), Thm 4/6 (static), Thm 5 (exact
  rank), Algorithm 1 / Thm 8 (joint cone per layer, decided by :mod:`fpad.exact` with a
  certificate), T_j by exact equality; ``mode="paper-repo"`` reproduces the released code's checks
  for comparison only;
* :func:`exact_verdict`: lowers a small model and its minibatch to fpad's network description and
  decides with the exact oracle whether AD's output lies in the Clarke set (the ground truth).

PyTorch is an optional extra (``pip install 'fpad[train]'``); importing this package does not
import torch, its functions do.
"""

from __future__ import annotations

INSTALL_HINT = "this needs PyTorch and scikit-learn; install them with: pip install 'fpad[train]'"


def require_torch():
    """Import torch or raise FpadError with the one-line install hint."""
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        from fpad.errors import FpadError
        raise FpadError(INSTALL_HINT) from None
    return torch


def capture(model):
    """``with fpad.train.capture(model) as cap: out = model(x)``; then ``check_trace(cap.trace)``."""
    require_torch()
    from fpad.train.trace import Capture
    return Capture(model)


def check_trace(trace, mode: str = "exact"):
    """The step report for a captured forward pass (see :func:`check`)."""
    from fpad.train.checks import check_trace as _check
    return _check(trace, mode)


def check(model, inputs, loss_fn=None, targets=None, mode: str = "exact"):
    """Run ``model(inputs)`` under capture and return the step report.

    The report has ``.certified`` (bool), ``.kind`` ("bouligand", "clarke" or None),
    ``.reasons`` (failed conditions per layer), ``.touches`` / ``.n_touches`` and ``.pools``
    (tie statistics). ``loss_fn(output, targets)`` must return a scalar; the conditions hold for
    any analytic loss, so it is only evaluated to validate it. Batch-norm running statistics are
    restored afterwards, so calling this does not change the model.
    """
    torch = require_torch()
    from fpad.errors import FpadError
    from fpad.train.trace import Capture
    saved = {n: b.detach().clone() for n, b in model.named_buffers()}
    try:
        with torch.no_grad(), Capture(model) as cap:
            out = model(inputs)
        if loss_fn is not None:
            loss = loss_fn(out, targets)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise FpadError("fpad.train.check: loss_fn(output, targets) must return a scalar tensor")
    finally:
        with torch.no_grad():
            for n, b in model.named_buffers():
                b.copy_(saved[n])
    return check_trace(cap.trace, mode)


def exact_verdict(model, inputs, loss_fn, targets=None):
    """Is AD's output in the Clarke set? Decided by the exact oracle; None if the model is too large
    or uses what fpad's network description cannot express (batch norm, cross-entropy, ...)."""
    require_torch()
    from fpad.train.lower import exact_verdict as _ev
    return _ev(model, inputs, loss_fn, targets)


def __getattr__(name):
    if name in ("LinearLoss", "SquaredErrorLoss"):
        from fpad.train import lower
        return getattr(lower, name)
    raise AttributeError(name)
