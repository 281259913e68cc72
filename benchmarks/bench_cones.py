"""The cone decision on small systems: HiGHS (with its exact certificate) against the exact simplex.

    python benchmarks/bench_cones.py [--systems 30]

Random dyadic systems (entries (4..7)/4 * 2^e, e in -16..16, 30% zeros; seed 2) of K rows and n
columns, each decided by both paths of :mod:`fpad.exact` (the same verdicts, each certified).
Prints the time per system and the ratio; fpad.exact._TINY_ENTRIES (rows x columns) is where the
exact simplex stops winning.
"""

from __future__ import annotations

import argparse
import random
import time
from fractions import Fraction

from fpad import exact

SIZES = [(4, 4), (8, 6), (12, 8), (16, 16), (20, 10), (32, 16), (40, 20)]


def _system(rng, K, n):
    def val():
        if rng.random() < 0.3:
            return Fraction(0)
        return Fraction(rng.choice([-1, 1]) * rng.randint(4, 7), 4) * Fraction(2) ** rng.randint(-16, 16)
    return [[val() for _ in range(n)] for _ in range(K)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--systems", type=int, default=30, help="systems per size (default 30)")
    args = ap.parse_args(argv)
    rng = random.Random(2)
    print(f"{'K x n':>8} {'highs ms':>9} {'simplex ms':>11} {'highs/simplex':>14}  nonempty  (tiny: K*n <= "
          f"{exact._TINY_ENTRIES})")
    for K, n in SIZES:
        systems = [_system(rng, K, n) for _ in range(args.systems)]
        times, verdicts = [], []
        for fn in (exact._propose_and_certify, exact._simplex_gordan):
            t = time.perf_counter()
            verdicts.append([fn(S, n)[0] is not None for S in systems])
            times.append((time.perf_counter() - t) / len(systems))
        assert verdicts[0] == verdicts[1], "the two paths disagree"
        print(f"{K:>3} x {n:<3} {times[0] * 1e3:9.2f} {times[1] * 1e3:11.2f} {times[0] / times[1]:14.1f}  "
              f"{sum(verdicts[0]):>3}/{len(systems)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
