"""The small networks of the training experiments (ICLR 2024 Section 4 at digits scale, 8x8 inputs).

* ``fnn``: 64-256-64-10 fully connected, the paper's FNN scenario (Thm 5);
* ``vgg`` / ``vgg-bn``: three 3x3 conv blocks (16, 32, 64 channels) each followed by a 2x2 maxpool
  (8 -> 4 -> 2 -> 1), then a linear classifier; with or without BatchNorm;
* ``resnet``: a 3x3 stem (16 channels, BatchNorm, activation), a 2x2 maxpool after it, two basic
  residual blocks, a linear classifier.
"""

from __future__ import annotations

from torch import nn

from fpad.errors import FpadError

MODELS = ("fnn", "vgg", "vgg-bn", "resnet")
ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardtanh": nn.Hardtanh, "hardsigmoid": nn.Hardsigmoid,
               "leaky_relu": nn.LeakyReLU}


def _act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise FpadError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def fnn(act: str) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 256), _act(act), nn.Linear(256, 64), _act(act), nn.Linear(64, 10))


def vgg(act: str, bn: bool, width: int = 1) -> nn.Module:
    layers, c_in = [], 1
    for c in (16 * width, 32 * width, 64 * width):
        layers += [nn.Conv2d(c_in, c, 3, padding=1)] + ([nn.BatchNorm2d(c)] if bn else []) + [_act(act), nn.MaxPool2d(2)]
        c_in = c
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * width, 10))


class BasicBlock(nn.Module):
    def __init__(self, c: int, act: str):
        super().__init__()
        self.conv1, self.bn1, self.act1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), _act(act)
        self.conv2, self.bn2, self.act2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), _act(act)

    def forward(self, x):
        out = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(out)) + x)


def resnet(act: str, width: int = 1) -> nn.Module:
    c = 16 * width
    return nn.Sequential(nn.Conv2d(1, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), _act(act), nn.MaxPool2d(2),
                         BasicBlock(c, act), BasicBlock(c, act), nn.Flatten(), nn.Linear(c * 16, 10))


def build(name: str, act: str = "relu", width: int = 1) -> nn.Module:
    """One of :data:`MODELS`; ``width`` multiplies the conv channels (benchmarks only)."""
    if name == "fnn":
        return fnn(act)
    if name in ("vgg", "vgg-bn"):
        return vgg(act, name == "vgg-bn", width)
    if name == "resnet":
        return resnet(act, width)
    raise FpadError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
