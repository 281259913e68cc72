"""Resource guards refuse before allocating or computing (issue 8): a huge --sample is drawn one
chunk at a time after the budget check, the refusal's advice is sized by the rate of the path it
advises, and sweeps refuse formats they cannot handle."""

from __future__ import annotations

import numpy as np
import pytest

from fpad import engine, estimate
from fpad.cli import main
from fpad.errors import FpadError
from test_engine import problem


def test_huge_sample_is_refused_before_drawing_it(monkeypatch):
    drawn = []
    real = estimate.sample_digits

    def counting(m, k, n, seed, start=0):
        drawn.append(n)
        return real(m, k, n, seed, start)

    monkeypatch.setattr(estimate, "sample_digits", counting)
    p = problem(free=("L1.W", "L1.b"), fmt="e4m3fn")
    with pytest.raises(FpadError, match=r"sample estimate of 100,000,000 points"):
        engine.count(p, sample=10**8, max_seconds=1, store=False, progress=False)
    assert sum(drawn) <= 2 * (1 << 20)  # only the calibration probes, never the 10^8 points


def test_sample_draws_do_not_depend_on_chunking():
    n = estimate.DRAW_BLOCK + 300
    whole = estimate.sample_digits(253, 4, n, 3)
    parts = [estimate.sample_digits(253, 4, 1000, 3, start) for start in range(0, n, 1000)]
    assert (np.concatenate(parts)[:n] == whole).all()
    assert (estimate.sample_digits(253, 4, 5, 3) != estimate.sample_digits(253, 4, 5, 4)).any()


@pytest.fixture
def fake_rates(monkeypatch):
    """Exhaustive kernel 10^9 points/s, the sampling path 10^4 (the real ratio is also large)."""
    monkeypatch.setattr(engine, "measure_rate",
                        lambda compiled, plan, settled=None: 1e9 if plan.method == "exhaustive" else 1e4)


def test_refusal_advice_uses_the_sampling_rate(fake_rates):
    p = problem(free=("L1.W", "L1.b"), fmt="bf16")
    with pytest.raises(FpadError) as exc:
        engine.count(p, "exhaustive", max_seconds=2, store=False, progress=False)
    msg = str(exc.value)
    assert "about 20,000 points fit the budget" in msg  # 1e4 points/s x 2 s, not 1e9 x 2
    assert "N up to about 0)" not in msg and "--method auto" in msg


def test_refusal_after_auto_does_not_suggest_structured(fake_rates, monkeypatch):
    import fpad.structured

    monkeypatch.setattr(fpad.structured, "structured_count", lambda problem, *args: None)  # none applies
    p = problem(free=("L1.W", "L1.b"), fmt="bf16")
    with pytest.raises(FpadError) as exc:
        engine.count(p, "auto", max_seconds=2, store=False, progress=False)
    assert "structured" not in str(exc.value) and "--method auto" not in str(exc.value)


class _Fmt:
    n_values = 65279


class _Problem:  # 65279^11 > 10^52 points: the message must still print (no 4300-digit limit trip)
    fmt, free = _Fmt(), list(range(11))


class _Compiled:
    n_points = 65279**11


def test_refusal_of_an_astronomical_grid_prints(fake_rates):
    plan = engine._exhaustive_plan(65279**11, 1 << 22)
    with pytest.raises(FpadError, match=r"grid of 65279\^11 = about 9\.1\d\de52 points"):
        engine._check_budget(_Problem(), _Compiled(), plan, 65279**11, 2, "exhaustive", 1)


@pytest.mark.parametrize("kind,fmt", [("ad-map", "bf16"), ("counterexample", "bf16"), ("inc-table", "e5m3")])
def test_sweep_refuses_formats_it_cannot_handle(capsys, kind, fmt):
    assert main(["sweep", kind, "--formats", fmt]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and f"format {fmt} has" in err and "fpad count" in err


@pytest.mark.parametrize("kw,what", [({"seed": -7, "sample": 10}, "seed must be an integer >= 0"),
                                     ({"max_seconds": float("nan")}, "max_seconds must be a positive"),
                                     ({"max_seconds": 0}, "max_seconds must be a positive")])
def test_api_refuses_what_the_cli_refuses(kw, what):
    with pytest.raises(FpadError, match=what):
        engine.count(problem(), progress=False, **kw)


def test_sweep_refuses_a_negative_seed(capsys):
    assert main(["sweep", "width", "--seed", "-7"]) == 2
    assert "--seed must be an integer >= 0, got -7" in capsys.readouterr()[1]


def test_report_of_an_installed_package_names_its_code(monkeypatch):
    from fpad import reproduce, store, sweeps

    monkeypatch.setattr(sweeps, "git_commit", lambda: None)
    text = reproduce.render_report({}, ["width"], {}, True, complete=False)
    assert f"installed package (not a git checkout), code identity {store.code_identity()}" in text
    assert "unknown" not in text
