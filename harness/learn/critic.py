"""The critic's input: the final hidden state of each turn's last prompt token.

PPO with GAE (``algo.name=ppo``) reads ``V(s_t)`` from a linear value head
(:class:`turngym.harness.learn.learner.Learner`) on this hidden state; the value loss is
:func:`turngym.algos.value_loss.value_loss`.
"""

from __future__ import annotations

import torch


def prompt_hidden(model: torch.nn.Module, prompts: list[list[int]], pad_id: int) -> torch.Tensor:
    """Final hidden state of the last token of each (left-padded) prompt, ``h_BH`` float32,
    without gradient: the decoder of ``model`` (the base model's under LoRA, adapters on)."""
    P = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), P), pad_id, dtype=torch.long)
    att = torch.zeros((len(prompts), P), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, P - len(p):] = torch.tensor(p, dtype=torch.long)
        att[i, P - len(p):] = 1
    pos = (att.cumsum(1) - 1).clamp(min=0)
    device = next(model.parameters()).device
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    with torch.no_grad():
        out = base.get_decoder()(input_ids=ids.to(device), attention_mask=att.to(device),
                                 position_ids=pos.to(device), use_cache=False)
    return out.last_hidden_state[:, -1, :].float()
