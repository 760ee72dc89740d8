"""Is multi-turn chat rendering append-only in token space?

Training on per-turn samples needs the ids trained on to be the ids generated. When the
whole conversation is kept in the prompt (full history), that holds only if the prompt of
turn t+1 starts with the prompt of turn t followed by the response ids of turn t (the
response ends with the end-of-turn token the model generated). Templates that rewrite
history (e.g. strip ``<think>`` blocks from earlier turns) or re-tokenise across a turn
boundary break it. :func:`check_template` renders a conversation turn by turn with the
agent's own message layout and reports the first divergence.

It also checks env-text masking: in the full-history sequence, the loss mask must cover
exactly the response tokens (which decode to the responses) and no observation text.

With a memory window (``history_length``) the prompt is rebuilt each turn and each turn is
its own sample, so append-only cannot hold once history starts to be dropped; the report
gives the first turn where the windowed prompts stop being append-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The conversation used when none is given: (observation, response) per turn.
DEFAULT_CONVERSATION: tuple[tuple[str, str], ...] = (
    ("You are in the kitchen. You see a fridge 1, a countertop 1 and a cabinet 2.",
     "<think>The apple may be on the countertop.</think><action>go to countertop 1</action>"),
    ("On the countertop 1 you see an apple 1 and a knife 2.\n  (indented line)",
     "<think>Take it.</think><action>take apple 1 from countertop 1</action>"),
    ("You pick up the apple 1. Prices: 3 × €2 = €6 — naïve café.",
     '<think>Search.</think><tool_call>{"name": "search", "arguments": {"q": "fridge"}}'
     "</tool_call>"),
    ("Nothing happens.", "<think>Open the fridge.</think><action>open fridge 1</action>"),
    ("The fridge 1 is open. It is empty.", "<action>put apple 1 in/on fridge 1</action>"),
)


@dataclass(frozen=True)
class Divergence:
    """Where prompt t+1 stops extending prompt t + response t."""

    turn: int
    """The turn whose prompt diverges (t+1)."""
    position: int
    """Token index of the first differing id."""
    expected: list[int]
    """Up to 8 ids expected from ``position`` (prompt t + response t)."""
    got: list[int]
    """Up to 8 ids prompt t+1 has there."""
    expected_text: str
    got_text: str


@dataclass(frozen=True)
class TemplateReport:
    """Result of :func:`check_template`."""

    turns: int
    append_only: bool
    """Full-history rendering is append-only in token space."""
    divergence: Divergence | None
    mask_ok: bool
    """The loss mask covers exactly the response tokens and no env text."""
    mask_error: str | None
    history_length: int
    window_break_turn: int | None
    """First turn whose windowed prompt does not extend the previous one (None: never)."""

    @property
    def ok(self) -> bool:
        return self.append_only and self.mask_ok

    def format(self) -> str:
        """A human-readable summary (used by ``turngym check-template``)."""
        lines = [f"full history, {self.turns} turns: "
                 + ("append-only" if self.append_only else "NOT append-only")]
        d = self.divergence
        if d is not None:
            lines.append(f"  first divergence at turn {d.turn}, token {d.position}:")
            lines.append(f"    expected {d.expected} {d.expected_text!r}")
            lines.append(f"    got      {d.got} {d.got_text!r}")
        lines.append("env-text mask: " + ("ok" if self.mask_ok else f"FAILED: {self.mask_error}"))
        w = self.window_break_turn
        lines.append(f"memory window {self.history_length}: " + (
            "append-only at every turn" if w is None else
            f"prompts stop being append-only at turn {w} (expected: each turn is its own sample)"))
        return "\n".join(lines)


def _first_mismatch(prefix: list[int], ids: list[int]) -> int | None:
    for i, tok in enumerate(prefix):
        if i >= len(ids) or ids[i] != tok:
            return i
    return None


def _end_ids(tokenizer: Any) -> list[int]:
    eos = tokenizer.eos_token_id
    return [eos] if eos is not None else []


def _prompts(agent: Any, convo: tuple[tuple[str, str], ...], task: str) -> list[list[int]]:
    out = []
    for t in range(len(convo)):
        keep = list(convo[:t])[-agent.history_length:] if agent.history_length else []
        msgs = agent.messages(task=task, history=keep, observation=convo[t][0], admissible=None)
        out.append(agent.render(msgs)[1])
    return out


def _check_mask(tokenizer: Any, prompts: list[list[int]], responses: list[list[int]],
                convo: tuple[tuple[str, str], ...]) -> str | None:
    """Build the full sequence + loss mask from the last prompt; None when it is right."""
    full = prompts[-1] + responses[-1]
    mask = [0] * len(full)
    for p, r in zip(prompts, responses):
        if full[len(p):len(p) + len(r)] != r:
            return f"response ids of a turn are not found at position {len(p)}"
        mask[len(p):len(p) + len(r)] = [1] * len(r)
    spans, cur = [], []
    for tok, m in zip(full, mask):
        if m:
            cur.append(tok)
        elif cur:
            spans.append(cur)
            cur = []
    if cur:
        spans.append(cur)
    texts = [tokenizer.decode(s, skip_special_tokens=True) for s in spans]
    if len(texts) != len(convo):
        return f"{len(texts)} masked spans for {len(convo)} responses"
    for (obs, resp), text in zip(convo, texts):
        if text.strip() != resp.strip():
            return f"masked span decodes to {text!r}, not the response {resp!r}"
    env_text = tokenizer.decode([t for t, m in zip(full, mask) if not m])
    missing = [obs for obs, _ in convo if obs not in env_text]
    if missing:
        return f"observation {missing[0]!r} is not in the unmasked (env) text"
    return None


def check_template(tokenizer: Any, conversation: tuple[tuple[str, str], ...] | None = None,
                   *, family: str = "generic", history_length: int = 2,
                   task: str = "put a clean apple in the fridge") -> TemplateReport:
    """Render ``conversation`` turn by turn; check append-only ids and the env-text mask."""
    from turngym.agents.agent import Agent

    convo = tuple(conversation or DEFAULT_CONVERSATION)
    full = Agent(tokenizer=tokenizer, family=family, history_length=len(convo),
                 max_prompt_tokens=1 << 30)
    prompts = _prompts(full, convo, task)
    responses = [tokenizer(r, add_special_tokens=False)["input_ids"] + _end_ids(tokenizer)
                 for _, r in convo]
    divergence = None
    for t in range(len(convo) - 1):
        prefix = prompts[t] + responses[t]
        pos = _first_mismatch(prefix, prompts[t + 1])
        if pos is not None:
            nxt = prompts[t + 1]
            divergence = Divergence(
                turn=t + 1, position=pos, expected=prefix[pos:pos + 8], got=nxt[pos:pos + 8],
                expected_text=tokenizer.decode(prefix[pos:pos + 8]),
                got_text=tokenizer.decode(nxt[pos:pos + 8]))
            break
    mask_error = _check_mask(tokenizer, prompts, responses, convo) if divergence is None \
        else "not checked: rendering is not append-only"
    windowed = Agent(tokenizer=tokenizer, family=family, history_length=history_length,
                     max_prompt_tokens=1 << 30)
    wprompts = _prompts(windowed, convo, task)
    wbreak = next((t + 1 for t in range(len(convo) - 1)
                   if _first_mismatch(wprompts[t] + responses[t], wprompts[t + 1]) is not None),
                  None)
    return TemplateReport(turns=len(convo), append_only=divergence is None,
                          divergence=divergence, mask_ok=mask_error is None,
                          mask_error=mask_error, history_length=history_length,
                          window_break_turn=wbreak)
