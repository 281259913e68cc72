"""The network file schema, shipped with the package (``fpad schema`` prints it).

Error messages about network files point here rather than to ``docs/DESIGN.md``, which a
``pip install`` does not ship.
"""

SCHEMA = '''\
# fpad network file (TOML). Every key below is shown with a typical value; comments list the
# alternatives. The shipped examples: fpad examples; fpad check --example NAME.
description = "two-layer ReLU net"  # optional, shown by fpad examples
inputs = [[1.0], [3.0]]       # B rows x N0 features; decimals are read as EXACT rationals
                              # (1.1 means 11/10); strings such as "1/3" also accepted;
                              # every value must be finite
input_shape = [1, 5]          # optional, for conv layers: [C, L] or [C, H, W] (row = flattened)
[[layers]]
kind = "dense"                # dense | conv1d | conv2d | maxpool1d | maxpool2d | add | activation
width = 2                     # dense: output units (a positive integer); conv: `channels`,
                              # `kernel`, `stride`
bias = true                   # true: per-neuron parameter L.b[i] | false: none |
                              # "shared": one scalar parameter L.b[0] | [list]: constant bias
weights = [[1.0], [-1.0]]     # optional constant (non-parameter) weights: then no L.W params
activation = "relu"           # relu, leaky_relu:1/64, relu6, hardtanh[:lo:hi], hardsigmoid, abs, identity
# kind = "add": from = 1  (adds the output of layer 1, shapes must match; then `activation`)
# kind = "maxpool1d"/"maxpool2d": window = 2, stride = 2 (AD picks the first maximiser)
[output]
reduce = "sum"                # sum | weighted (weights = [...] per output unit, summed over
                              # samples) | squared_error (targets = [[...]] per sample)
[ad]
proxy = "pytorch"             # pytorch | tensorflow | left | right | mix:0.5 | const:0
                              # or a table: proxy = {default = "pytorch", relu6 = "left"}
[params]
free = ["L1.W", "L1.b"]       # tensors, entries ("L1.W[0,1]") or layers ("L1"), in enumeration
                              # order; a parameter is free or fixed, not both (--free on the
                              # command line replaces this list)
seed = 0                      # fixed params not in [params.fixed] are drawn uniformly from the
                              # values of the --format, so they differ between formats;
                              # fpad count prints the values drawn
[params.fixed]
"L2.W" = [[1.0, -0.5]]        # exact reals, each a value of the --format (a value that is not
                              # is refused, naming its nearest values)
'''

NAMES = '''\
# Parameter names: dense L{l}.W[i,j] (unit i, input j), L{l}.b[i]; conv1d L{l}.W[o,c,k],
# conv2d L{l}.W[o,c,kh,kw], conv bias L{l}.b[o] shared over positions; shared scalar bias
# L{l}.b[0]. Layers are numbered from 1 in file order (every [[layers]] entry counts).
# Node tags: L{l}[i] s{b} (unit i of layer l, sample b; conv: L{l}[o,pos] s{b}).
'''
