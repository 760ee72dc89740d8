"""``turngym/Search-v0``: multi-hop question answering with a BM25 search tool."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from turngym.envs.core import TurnEnv
from turngym.envs.search.actions import TOOLS, parse_action
from turngym.envs.search.corpus import SHIPPED_CORPUS, SPLITS, QAItem, load_qa, load_shipped_qa
from turngym.envs.search.grading import exact_match, f1_score
from turngym.envs.search.index import Hit, query_terms
from turngym.errors import ConfigError

MAX_QUERY_CHARS = 300
MAX_ANSWER_CHARS = 300
_SNIPPET_CHARS = 600


@lru_cache(maxsize=8)
def _questions(qa_file: str | None, split: str | None) -> tuple[QAItem, ...]:
    if qa_file is not None:
        return tuple(load_qa(Path(qa_file)))
    splits = [split] if split else list(SPLITS)
    return tuple(q for s in splits for q in load_shipped_qa(s))


class SearchEnv(TurnEnv):
    """Answer a question by searching a passage corpus (Search-R1 style).

    **Description.** The first observation is a question. The agent searches a BM25
    index over the corpus (by default the shipped corpus of about 20.5k passages about
    fictional people, places, organisations and works) and then answers. The shipped
    questions come in four types: ``1hop``, ``2hop`` (bridge), ``comparison`` and ``3hop``.

    **Actions.** Tag format ``<search>query</search>`` / ``<answer>text</answer>`` (text
    around the tag, such as a ``<think>`` block, is ignored; the first tag counts), or a
    JSON tool call ``{"name": "search", "arguments": {"query": "...", "k": 3}}`` /
    ``{"name": "answer", "arguments": {"text": "..."}}``. Invalid: no tool call, bad JSON,
    unknown tool or argument, an empty query, a query over 300 characters or with no
    searchable word (only stopwords or symbols), ``k`` outside ``1..max_k``, an empty
    answer. An invalid action leaves the state unchanged.

    **Observations.** The question; after a search, the top-k passages as
    ``[rank] id | title`` followed by the text; after an invalid action, what was wrong.

    **Tools.** ``search(query, k)`` and ``answer(text)`` (:data:`TOOLS`).

    **Rewards.** On ``answer``: exact match (``reward="em"``) or token F1 (``"f1"``)
    against the gold answer and its aliases after SQuAD normalisation (lowercase, no
    punctuation, no articles). ``-format_penalty`` for an invalid action. 0 otherwise.

    **Episode end.** ``terminated`` after an answer; the turn budget (``max_turns``, 4 by
    default) truncates.

    **Info keys.** ``state_key`` (question hash plus the sorted ids of every passage
    retrieved so far: order-independent), ``action_valid``, ``won`` (exact match),
    ``task_id``, ``admissible_actions`` (always ``None``), ``question_type``,
    ``searches`` (valid searches so far), ``retrieved`` (distinct passages seen),
    ``answered`` (bool), ``em`` and ``f1`` (of the answer; 0.0 before it).

    **Arguments.** ``split`` (``train``/``dev``/``test``, ``None`` = all),
    ``qa_file`` (a NQ / HotpotQA / Search-R1 / turngym QA file instead of the shipped
    questions), ``corpus`` (a JSONL corpus of ``id, title, text``; default the shipped
    one), ``index_dir`` (where its index is saved; default beside the corpus),
    ``retriever_url`` (use a ``turngym serve retriever`` server instead of the in-process
    index), ``top_k`` (default 3), ``max_k`` (default 10), ``reward`` (``em``/``f1``),
    ``format_penalty`` (default 0.1).

    **Version history.** v0: first version.
    """

    family = "search"
    tools = TOOLS
    extra_info_keys = ("question_type", "searches", "retrieved", "answered", "em", "f1")

    def __init__(self, split: str | None = None, qa_file: str | None = None,
                 corpus: str | None = None, index_dir: str | None = None,
                 retriever_url: str | None = None, top_k: int = 3, max_k: int = 10,
                 reward: str = "em", format_penalty: float = 0.1,
                 render_mode: str | None = None):
        super().__init__(render_mode)
        if split is not None and split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS} or None, got {split!r}")
        if reward not in ("em", "f1"):
            raise ConfigError(f"reward must be 'em' or 'f1', got {reward!r}")
        if not 1 <= max_k <= 100 or not 1 <= top_k <= max_k:
            raise ConfigError(f"need 1 <= top_k <= max_k <= 100, got top_k={top_k}, "
                              f"max_k={max_k}")
        if corpus is not None and qa_file is None:
            raise ConfigError("corpus needs qa_file: the shipped questions are about the "
                              "shipped corpus")
        if format_penalty < 0:
            raise ConfigError(f"format_penalty must be >= 0, got {format_penalty}")
        self.split, self.qa_file, self.retriever_url = split, qa_file, retriever_url
        self.corpus = str(corpus) if corpus else str(SHIPPED_CORPUS)
        self.index_dir = index_dir
        self.top_k, self.max_k, self.reward = int(top_k), int(max_k), reward
        self.format_penalty = float(format_penalty)
        items = _questions(qa_file, split)
        self._items = {q.id: q for q in items}
        self._ids = [q.id for q in items]
        self._retriever = None
        self.item: QAItem | None = None
        self.retrieved: frozenset[str] = frozenset()
        self.queries: tuple[str, ...] = ()
        self.answer: str | None = None
        self.em = self.f1 = 0.0

    # ------------------------------------------------------------------ retrieval
    def retriever(self):
        """The in-process index (cached per corpus) or the remote client, built lazily."""
        if self._retriever is None:
            if self.retriever_url:
                from turngym.envs.search.remote import RemoteRetriever

                self._retriever = RemoteRetriever(self.retriever_url)
            else:
                from turngym.envs.search.index import open_index

                self._retriever = open_index(Path(self.corpus), self.index_dir and
                                             Path(self.index_dir))
        return self._retriever

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_retriever"] = None  # an index or an HTTP client does not travel
        return state

    # ------------------------------------------------------------------ contract
    def task_ids(self, split: str | None = None) -> list[str]:
        if split is None:
            return list(self._ids)
        return [i for i in self._ids if i.startswith(f"{split}-")]

    def _reset(self, task_id: str) -> str:
        self.item = self._items[task_id]
        self.retrieved, self.queries, self.answer = frozenset(), (), None
        self.em = self.f1 = 0.0
        return f"Question: {self.item.question}"

    def _invalid(self, msg: str) -> tuple[str, float, bool, bool, bool]:
        return f"Invalid action: {msg}", -self.format_penalty, False, False, False

    def _step(self, action: str) -> tuple[str, float, bool, bool, bool]:
        if self.answer is not None:
            return "The question is already answered.", 0.0, True, False, self.won()
        call = parse_action(action)
        if call.error:
            return self._invalid(call.error)
        if call.name == "answer":
            return self._answer(call.args["text"])
        return self._search(call.args["query"], call.args["k"])

    def _answer(self, text: str) -> tuple[str, float, bool, bool, bool]:
        text = " ".join(text.split())
        if not text:
            return self._invalid("the answer is empty.")
        if len(text) > MAX_ANSWER_CHARS:
            return self._invalid(f"the answer has {len(text)} characters; keep it under "
                                 f"{MAX_ANSWER_CHARS} (a short name, year or phrase).")
        self.answer = text
        self.em = exact_match(text, list(self.item.answers))
        self.f1 = f1_score(text, list(self.item.answers))
        reward = self.em if self.reward == "em" else self.f1
        verdict = "correct" if self.em else "incorrect"
        return f"Your answer {text!r} is {verdict}.", reward, True, True, self.won()

    def _search(self, query: str, k: int | None) -> tuple[str, float, bool, bool, bool]:
        query = " ".join(query.split())
        k = self.top_k if k is None else k
        if not query:
            return self._invalid("the search query is empty; search for a name or a phrase.")
        if len(query) > MAX_QUERY_CHARS:
            return self._invalid(f"the search query has {len(query)} characters; the limit "
                                 f"is {MAX_QUERY_CHARS}.")
        if not 1 <= k <= self.max_k:
            return self._invalid(f"k must be between 1 and {self.max_k}, got {k}.")
        if not query_terms(query):
            return self._invalid(f"the query {query[:60]!r} has no searchable word (only "
                                 "stopwords or symbols).")
        hits = self.retriever().search([query], k)[0]
        self.retrieved = self.retrieved | {h.id for h in hits}
        self.queries = self.queries + (query.lower(),)
        return format_hits(query, hits), 0.0, False, True, False

    def won(self) -> bool:
        return self.em == 1.0

    def state_key(self) -> str:
        qhash = hashlib.sha1(self.item.question.encode()).hexdigest()[:12] if self.item else "-"
        done = "|answered" if self.answer is not None else ""
        return f"{qhash}|{','.join(sorted(self.retrieved))}{done}"

    def extra_info(self) -> dict[str, Any]:
        return {"question_type": self.item.type if self.item else "unknown",
                "searches": len(self.queries), "retrieved": len(self.retrieved),
                "answered": self.answer is not None, "em": self.em, "f1": self.f1}

    def expert_action(self) -> str | None:
        """Search each hop of the gold chain not yet covered, then give the gold answer."""
        if self.item is None or self.answer is not None:
            return None
        for query, passage in self.item.chain:
            done = passage in self.retrieved if passage else query.lower() in self.queries
            if not done:
                return f"<search>{query}</search>"
        return f"<answer>{self.item.answers[0]}</answer>"

    def random_action(self, rng: Any) -> str | None:
        """Half the time search two consecutive words of the question, else answer with a
        random capitalised word of the last observation (a name, most likely)."""
        if self.item is None or self.answer is not None:
            return None
        if rng.random() < 0.5:
            words = self.item.question.rstrip("?").split()
            i = int(rng.integers(max(1, len(words) - 1)))
            return f"<search>{' '.join(words[i:i + 2])}</search>"
        caps = [w.strip(".,?:;()[]") for w in (self._last_obs or "").split() if w[:1].isupper()]
        caps = [w for w in caps if w] or ["unknown"]
        return f"<answer>{caps[int(rng.integers(len(caps)))]}</answer>"

    def _state(self) -> Any:
        return (self.item.id if self.item else None, self.retrieved, self.queries, self.answer,
                self.em, self.f1)

    def _set_state(self, state: Any) -> None:
        item_id, self.retrieved, self.queries, self.answer, self.em, self.f1 = state
        self.item = self._items[item_id] if item_id is not None else None

    def close(self) -> None:
        if self._retriever is not None and hasattr(self._retriever, "close"):
            self._retriever.close()
        self._retriever = None
        super().close()


def format_hits(query: str, hits: list[Hit]) -> str:
    """The observation of a search: ``[rank] id | title`` and the passage text."""
    if not hits:
        return f"No passage matched {query!r}. Try other words, such as a full name."
    lines = [f"Results for {query!r}:"]
    for rank, h in enumerate(hits, 1):
        lines.append(f"[{rank}] {h.id} | {h.title}\n{h.text[:_SNIPPET_CHARS]}")
    return "\n".join(lines)
