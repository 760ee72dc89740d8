"""Turn-level RL maths: advantage estimators, losses, distillation weights, curricula.

Pure functions over numpy arrays (advantages over :class:`turngym.algos.batch.TurnBatch`) and torch
tensors (losses). One algorithm per module; :mod:`turngym.algos.registry` maps config names to
estimators. Submodules are imported on use (``from algos import gigpo``), so importing
``algos`` does not import torch.
"""
