"""Rounded arithmetic: the network evaluated as hardware computes it, beside the exact model.

fpad's counts use the papers' model (parameters in M, arithmetic exact). Here every product,
partial sum and stored activation is rounded to a format of its own (:mod:`fpad.rounded.arith`),
the rounded forward pass is evaluated exactly in rationals with one rounding per operation
(:mod:`fpad.rounded.forward`), and each grid point is classified by what rounding changes
(:mod:`fpad.rounded.count`): kinks touched after rounding, branch flips, and points where AD run on
the rounded branches returns something else than the true derivative.
"""
