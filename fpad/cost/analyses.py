"""The cost analyses as ``fpad reproduce`` entries and ``fpad sweep`` kinds.

``fpad reproduce`` runs where PyTorch is absent (its main job follows a plain ``pip install .``):
there the torch analyses return an :class:`~fpad.sweeps.Analysis` with no rows and a note saying
how to install the extra, so the report shows the skip instead of failing. ``fpad sweep overhead``
(or ``directional``) without torch is an error line and exit status 2 (:func:`fpad.cost.require_train`).
The exact Clarke analysis needs neither torch nor scikit-learn.
"""

from __future__ import annotations

from fpad import cost
from fpad.errors import FpadError
from fpad.sweeps import Analysis, provenance

KINDS = ("overhead", "directional", "clarke")


def skipped(name: str, title: str) -> Analysis:
    note = f"skipped: PyTorch and scikit-learn are not installed ({cost.TRAIN_HINT} to run this analysis)"
    return Analysis(name=name, title=title, columns=["skipped"], rows=[], notes=[note],
                    provenance={**provenance(), "skipped": note})


def overhead(quick: bool, progress=None) -> Analysis:
    if not cost.have_train():
        return skipped("cost_overhead", "backprop overhead ratio (skipped)")
    from fpad.cost.overhead import overhead_sweep

    return overhead_sweep(quick=quick, progress=progress)


def directional(quick: bool, progress=None) -> Analysis:
    if not cost.have_train():
        return skipped("cost_directional", "p directional derivatives against backprop (skipped)")
    from fpad.cost.directional import directional_sweep

    return directional_sweep(quick=quick, progress=progress)


def clarke(quick: bool, progress=None) -> Analysis:
    from fpad.cost.clarke import clarke_sweep

    return clarke_sweep(quick=quick, progress=progress)


def plotter(kind: str):
    """The figure function of a cost analysis (imported on demand: matplotlib only when drawing)."""

    def draw(a, out_dir):
        from fpad.cost import plots

        return {"overhead": plots.plot_overhead, "directional": plots.plot_directional,
                "clarke": plots.plot_clarke}[kind](a, out_dir)

    return draw


def run_sweep(args, progress) -> Analysis:
    """``fpad sweep overhead | directional | clarke`` with the command line's options."""
    k = args.kind
    threads = args.threads if args.threads is not None else 1
    for name in ("threads", "repeats", "networks"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise FpadError(f"--{name} must be a positive integer, got {v}")
    if k == "overhead":
        from fpad.cost.overhead import overhead_sweep

        return overhead_sweep(quick=args.quick, depths=args.depths, widths=args.widths, batches=args.batches,
                              variants=args.programs, features=args.features, threads=threads,
                              repeats=args.repeats, progress=progress)
    if k == "directional":
        from fpad.cost.directional import directional_sweep

        return directional_sweep(quick=args.quick, mlp_ps=args.ps, relu_ps=args.relu_ps, threads=threads,
                                 repeats=args.repeats, progress=progress)
    from fpad.cost.clarke import clarke_sweep

    return clarke_sweep(quick=args.quick, ps=args.ps, networks=args.networks, seed=args.seed, progress=progress)
