"""Audits of real frameworks' autograd against fpad's exact answers, over whole grids.

:mod:`fpad.audit.torch_audit` runs PyTorch's own autograd (``torch.func.grad`` under ``vmap``) at
every grid point, for the op spellings users write, in float64, float32 and bfloat16, and
classifies each point against fpad's exact AD model and the true derivative. PyTorch is an
optional extra (``pip install "fpad[train]"``); JAX is not audited yet.
"""
