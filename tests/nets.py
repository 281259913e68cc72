"""Network files the tests write: one hidden dense layer, then one linear output unit."""


def one_hidden_toml(width: int, inputs: str, free: str) -> str:
    """``inputs`` as TOML (e.g. ``"[[1.0], [3.0]]"``), ``free`` as a TOML list of names."""
    return f"""inputs = {inputs}
[[layers]]
kind = "dense"
width = {width}
bias = true
activation = "relu"
[[layers]]
kind = "dense"
width = 1
bias = true
activation = "identity"
[params]
free = {free}
seed = 0
"""
