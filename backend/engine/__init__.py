"""The training engine: ``python -m backend.engine train|merge|prepare-bundled|generate``.

Import-light on purpose: importing this package (e.g. to run ``python -m backend.engine``) must not pull in torch.
The heavy modules (recipe, data, methods, export, bundled) import torch/transformers themselves.
"""
