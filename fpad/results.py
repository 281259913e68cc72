"""What a count over a grid returns: exact integers, an exact density, and how it was obtained.

One :class:`CountResult` type is shared by every method (exhaustive kernels, structured exact
methods, sampled or line estimates), so the CLI, the sweeps and the tests treat them alike; it is
built in one place, :func:`count_result`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from fractions import Fraction

METHODS = ("exhaustive", "structured", "sample", "line")


def scientific(n: int, sig: int) -> str:
    """A positive integer as a mantissa of ``sig`` significant digits (truncated) and a decimal
    exponent, computed in integers: grids of 253^3073 points have more digits than Python will
    turn into a string by default, and more than a reader wants."""
    e = int((n.bit_length() - 1) * 0.30102999566398120)  # floor(log10 n), or one below
    while 10 ** (e + 1) <= n:
        e += 1
    m = str(n // 10 ** (e - sig + 1)) if e >= sig - 1 else str(n * 10 ** (sig - 1 - e))
    return f"{m[0]}.{m[1:]}e{e}"


@dataclass
class CountResult:
    format: str
    M: int  # |M|, the number of distinct finite values of the format
    free: list[str]  # names of the free parameters, in enumeration order
    points: int  # points classified (|M|^k for exact methods; the sample size for estimates)
    touched: int  # points where some activation input is on a kink or some max has a tie
    ndf: int
    inc: int
    clarke_ok: int  # ndf points where AD's output lies in the (first-order) Clarke set
    kinks_total: int  # n: neurons x samples x kinks per activation (plus tied-max candidates: none)
    method: str  # one of METHODS
    elapsed_s: float = 0.0
    ci: dict | None = None  # estimates only: {"ndf": [lo, hi], "inc": [lo, hi], "level": 0.95}
    per_neuron: dict[str, dict[str, int]] = field(default_factory=dict)
    witnesses: dict[str, list[list[str]]] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    codes: object = field(default=None, repr=False, compare=False)  # per-point codes (maps), not in JSON

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")

    @property
    def is_estimate(self) -> bool:
        return self.method in ("sample", "line")

    @property
    def density(self) -> Fraction:
        """|ndf| / points, exact (for estimates: the sample proportion)."""
        return Fraction(self.ndf, self.points) if self.points else Fraction(0)

    @property
    def bound(self) -> Fraction:
        """The papers' bound n/|M| on the ndf density (valid with bias parameters)."""
        return Fraction(self.kinks_total, self.M)

    @property
    def bound_holds(self) -> bool:
        return self.density <= self.bound

    def to_json(self) -> dict:
        d = asdict(dataclasses.replace(self, codes=None))
        del d["codes"]
        d["density"] = str(self.density)
        d["bound"] = str(self.bound)
        d["bound_holds"] = self.bound_holds
        d["estimate"] = self.is_estimate
        return d


def count_result(problem, counts, method: str, *, elapsed_s: float = 0.0, ci: dict | None = None,
                 extra: dict | None = None, codes=None) -> CountResult:
    """The :class:`CountResult` of ``problem`` from exact ``counts`` (anything with ``points,
    touched, ndf, inc, clarke_ok`` and optionally ``per_neuron``, ``witnesses``): the one place
    a result is built. Per-neuron and witness keys are sorted, so the JSON output is
    byte-identical whatever the chunking."""
    fmt = problem.fmt
    per = getattr(counts, "per_neuron", None) or {}
    wit = getattr(counts, "witnesses", None) or {}
    return CountResult(
        format=fmt.name, M=fmt.n_values, free=problem.free_names, points=counts.points, touched=counts.touched,
        ndf=counts.ndf, inc=counts.inc, clarke_ok=counts.clarke_ok, kinks_total=problem.kinks_total,
        method=method, elapsed_s=elapsed_s, ci=ci, per_neuron={t: per[t] for t in sorted(per)},
        witnesses={c: wit[c] for c in sorted(wit)}, extra=dict(extra or {}), codes=codes)
