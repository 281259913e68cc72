"""``fpad train``: train a small network on scikit-learn's digits and check AD at every step.

    fpad train --model vgg --activation relu --epochs 2 --out runs/vgg
    fpad train --model fnn --activation relu6 --precision e4m3fn --json
    fpad train --model resnet --check paper-repo        # the released code's checks, for comparison

Needs the optional extra ``pip install 'fpad[train]'`` (PyTorch and scikit-learn); without it the
command prints one line saying so and exits 2.
"""

from __future__ import annotations

import json
import sys

MODELS_HELP = ("fnn (64-256-64-10 fully connected), vgg (3 conv blocks + maxpools), vgg-bn (the same with "
               "BatchNorm), resnet (stem + maxpool + 2 residual blocks)")


HELP = "train on digits and check at every step whether AD returned a Clarke subderivative"
DESCRIPTION = ("Train a small network on scikit-learn's 8x8 digits (SGD, cosine schedule) and, at every step, "
               "check exactly the ICLR 2024 sufficient conditions (touches, Thm 4/6, Thm 5 ranks, the joint "
               "Algorithm 1 cone per layer) under which AD's output is a Clarke subderivative. Models: "
               + MODELS_HELP + ". Writes DIR/steps.jsonl (one line per step) and DIR/summary.json with --out.")


def arguments(p) -> None:
    p.add_argument("--model", choices=("fnn", "vgg", "vgg-bn", "resnet"), default="fnn", help=MODELS_HELP)
    p.add_argument("--activation", default="relu",
                   choices=("relu", "relu6", "hardtanh", "hardsigmoid", "leaky_relu"), help="activation (default relu)")
    p.add_argument("--precision", choices=("fp32", "bf16", "e4m3fn"), default="fp32",
                   help="fp32; bf16 (model and inputs in bfloat16); e4m3fn (weights rounded to e4m3fn after each step)")
    p.add_argument("--epochs", type=int, default=1, help="epochs over the 1440 training digits (45 steps each)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the minibatch order")
    p.add_argument("--check", choices=("exact", "paper-repo", "off"), default="exact",
                   help="exact (default), paper-repo (the released code's checks, for comparison), off")
    p.add_argument("--compare-repo", action="store_true", help="with --check exact, also run paper-repo and count disagreements")
    p.add_argument("--max-steps", type=int, metavar="N", help="stop after N steps (smoke tests); the schedule spans N steps")
    p.add_argument("--out", metavar="DIR", help="write DIR/steps.jsonl and DIR/summary.json")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def handler(args) -> int:
    from fpad.errors import FpadError
    from fpad.train import INSTALL_HINT
    try:
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        raise FpadError(INSTALL_HINT) from None
    from fpad.train.run import train

    if args.epochs < 1:
        raise FpadError(f"--epochs must be >= 1, got {args.epochs}")
    if args.max_steps is not None and args.max_steps < 1:
        raise FpadError(f"--max-steps must be >= 1, got {args.max_steps}")
    progress = None if args.json else (lambda m: print(f"fpad: {m}", file=sys.stderr, flush=True))
    try:
        s = train(args.model, args.activation, args.precision, args.epochs, args.seed, args.check, args.out,
                  compare_repo=args.compare_repo, max_steps=args.max_steps, progress=progress)
    except KeyboardInterrupt:
        print("fpad: interrupted; the step log is marked incomplete" if args.out else "fpad: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(s, indent=1))
        return 0
    print(f"{s['config']['model']} / {s['config']['activation']} / {s['config']['precision']}: {s['steps']} steps, "
          f"test accuracy {s['test_accuracy']:.3f}")
    if args.check != "off":
        print(f"certified steps: {s['certified_steps']} of {s['steps']} ({s['kinds']}); "
              f"touches: {s['touches_total']} in {s['steps_with_touch']} steps")
        for layer, p in s["pools"].items():
            print(f"  {layer}: {p['tie_percent']:.2f}% of max ops tied, S\\T non-empty in {p['steps_s_minus_t']} steps, "
                  f"mean |S\\T| {p['mean_s_minus_t']:.2f}")
        if s["failed_layers"]:
            print(f"  not certified per layer (steps): {s['failed_layers']}")
    if args.out:
        print(f"wrote {args.out}/steps.jsonl and {args.out}/summary.json")
    return 0
