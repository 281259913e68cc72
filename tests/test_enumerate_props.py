"""Property tests: random small networks, the compiled kernels against the oracle on every point.

Networks: 1 or 2 hidden dense layers of width 1-2 with a random activation, bias or not,
minibatch 1-3, random dyadic inputs, a random proxy, 1-3 free parameters drawn from all the
parameters, the rest drawn from M with a random seed; format e2m1 (or e3m2 with k <= 2).
"""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpad import enumerate as E
from fpad.formats import get_format
from fpad.network import NetworkSpec
from fpad.oracle import classify

ACTS = ["relu", "leaky_relu:1/64", "relu6", "hardtanh", "hardsigmoid", "abs", "identity"]
PROXIES = ["pytorch", "left", "right", "mix:1/2", "const:1"]
INPUTS = ["0", "0.5", "-0.5", "1", "-1", "2", "3", "-3", "0.75"]


@st.composite
def networks(draw):
    depth = draw(st.integers(1, 2))
    layers = []
    for _ in range(depth):
        layers.append({"kind": "dense", "width": draw(st.integers(1, 2)), "activation": draw(st.sampled_from(ACTS)),
                       "bias": draw(st.sampled_from([True, False, "shared"]))})
    layers.append({"kind": "dense", "width": 1, "activation": "identity", "bias": draw(st.booleans())})
    batch = draw(st.integers(1, 3))
    inputs = [[draw(st.sampled_from(INPUTS))] for _ in range(batch)]
    d = {"inputs": inputs, "layers": layers, "ad": {"proxy": draw(st.sampled_from(PROXIES))},
         "params": {"free": ["L1.W[0,0]"], "seed": draw(st.integers(0, 3))}}
    spec = NetworkSpec.from_dict(d)
    names = list(spec.param_names)
    fmt = get_format(draw(st.sampled_from(["e2m1", "e2m1", "e3m2"])))
    k = min(len(names), draw(st.integers(2, 3 if fmt.n_values < 20 else 2)))
    free = draw(st.lists(st.sampled_from(names), min_size=k, max_size=k, unique=True))
    return spec.build(fmt, free=free)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_random_networks_kernel_equals_oracle(pb):
    compiled = E.compile_problem(pb)
    codes = E.point_codes(compiled, 0, compiled.n_points)
    want = [E._oracle_code(classify(pb, compiled.free_values(i))) for i in range(compiled.n_points)]
    assert codes.tolist() == want
    c = E.count_range(compiled, 0, compiled.n_points)
    assert c.points == compiled.n_points
    assert c.touched == int((codes != 0).sum()) and c.inc == int((codes == 5).sum())
    assert c.ndf == int(np.isin(codes, (2, 3)).sum()) and c.clarke_ok == int((codes == 2).sum())


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(), st.lists(st.floats(0, 1), min_size=1, max_size=4))
def test_random_splits_and_indices_give_the_same_counts(pb, fractions):
    compiled = E.compile_problem(pb)
    n = compiled.n_points
    whole = E.count_range(compiled, 0, n).to_json()
    cuts = sorted({0, n, *(int(f * n) for f in fractions)})
    merged = None
    for a, b in zip(cuts, cuts[1:]):
        c = E.count_range(compiled, a, b)
        merged = c if merged is None else merged.merge(c)
    assert merged.to_json() == whole
    idx = list(range(n))[::-1]
    assert E.classify_indices(compiled, idx).to_json() == whole
