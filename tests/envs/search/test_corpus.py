"""A user's own corpus and QA files (NQ, HotpotQA, Search-R1) through ``datasets``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turngym import envs
from turngym.envs.search.corpus import load_corpus, load_qa, load_shipped_qa
from turngym.envs.search.index import default_index_dir, open_index
from turngym.errors import ConfigError

PASSAGES = [
    {"id": "d1", "title": "Ada Lovelace", "text": "Ada Lovelace was born in London in 1815."},
    {"id": "d2", "title": "Analytical Engine",
     "text": "The Analytical Engine was designed by Charles Babbage."},
    {"id": "d3", "title": "Charles Babbage", "text": "Charles Babbage was born in Walworth."},
    {"id": "d4", "title": "London", "text": "London is the capital of England."},
]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_user_corpus_jsonl_and_search_r1_contents(tmp_path: Path) -> None:
    rows = [*PASSAGES[:2], {"id": 7, "contents": '"Walworth"\nWalworth is a district.'}]
    got = load_corpus(_write_jsonl(tmp_path / "c.jsonl", rows))
    assert got[2] == {"id": "7", "title": "Walworth", "text": "Walworth is a district."}
    assert [p["id"] for p in got] == ["d1", "d2", "7"]


@pytest.mark.parametrize("rows, needle", [
    ([{"id": "a", "title": "t"}], r"row 1 lacks \['text'\]"),
    ([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], "duplicate"),
    ([], "no passages"),
])
def test_bad_corpus_fails_clearly(tmp_path: Path, rows: list[dict], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_corpus(_write_jsonl(tmp_path / "c.jsonl", rows))


def test_missing_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_corpus(tmp_path / "nope.jsonl")
    with pytest.raises(ConfigError, match="does not exist"):
        load_qa(tmp_path / "nope.jsonl")


def test_qa_formats(tmp_path: Path) -> None:
    nq = _write_jsonl(tmp_path / "nq.jsonl", [
        {"question": "where was ada lovelace born", "answer": ["London", "London, England"]}])
    hotpot = tmp_path / "hotpot.json"
    hotpot.write_text(json.dumps([{
        "_id": "5a8b", "question": "Where was the designer of the Analytical Engine born?",
        "answer": "Walworth", "type": "bridge", "level": "hard",
        "supporting_facts": [["Analytical Engine", 0], ["Charles Babbage", 0],
                             ["Charles Babbage", 1]]}]))
    sr1 = _write_jsonl(tmp_path / "sr1.jsonl", [
        {"id": "q9", "question": "Capital of England?", "data_source": "nq",
         "reward_model": {"ground_truth": {"target": ["London"]}, "style": "rule"}},
        {"id": "q10", "question": "Birth year of Ada?", "golden_answers": ["1815"]}])
    (a,) = load_qa(nq)
    assert (a.id, a.answers, a.type, a.chain) == (
        "nq-00000", ("London", "London, England"), "unknown",
        (("where was ada lovelace born", None),))
    (h,) = load_qa(hotpot)
    assert (h.id, h.answers, h.type) == ("5a8b", ("Walworth",), "bridge")
    assert h.chain == (("Analytical Engine", None), ("Charles Babbage", None))
    s1, s2 = load_qa(sr1)
    assert (s1.id, s1.answers, s1.type) == ("q9", ("London",), "nq")
    assert (s2.answers, s2.type) == (("1815",), "unknown")


def test_qa_without_answer_fails(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "bad.jsonl", [{"question": "why?"}])
    with pytest.raises(ConfigError, match="no answer"):
        load_qa(path)


def test_env_on_user_corpus_builds_index_once_beside_it(tmp_path: Path) -> None:
    corpus = _write_jsonl(tmp_path / "wiki.jsonl", PASSAGES)
    qa = tmp_path / "hotpot.json"
    qa.write_text(json.dumps([{
        "_id": "h1", "question": "Where was the designer of the Analytical Engine born?",
        "answer": "Walworth", "type": "bridge",
        "supporting_facts": [["Analytical Engine", 0], ["Charles Babbage", 0]]}]))
    env = envs.make("turngym/Search-v0", corpus=str(corpus), qa_file=str(qa))
    obs, info = env.reset(seed=0, options={"task_id": "h1"})
    assert obs == "Question: Where was the designer of the Analytical Engine born?"
    assert info["question_type"] == "bridge"
    actions, rewards = [], []
    while True:
        actions.append(env.unwrapped.expert_action())
        obs, r, term, trunc, info = env.step(actions[-1])
        rewards.append(r)
        if term or trunc:
            break
    assert actions == ["<search>Analytical Engine</search>", "<search>Charles Babbage</search>",
                       "<answer>Walworth</answer>"]
    assert rewards == [0.0, 0.0, 1.0] and info["won"]
    index_dir = default_index_dir(corpus)
    assert index_dir == tmp_path / "wiki.bm25s"
    assert (index_dir / "turngym_index.json").is_file()
    assert open_index(corpus) is open_index(corpus)  # cached in-process


def test_shipped_qa_rows_are_complete() -> None:
    items = load_shipped_qa("dev")
    assert len(items) == 400
    counts = {t: sum(q.type == t for q in items) for t in ("1hop", "2hop", "comparison", "3hop")}
    assert counts == {"1hop": 100, "2hop": 100, "comparison": 100, "3hop": 100}
    hops = {"1hop": 1, "2hop": 2, "comparison": 2, "3hop": 3}
    for q in items:
        assert q.answers[0] and len(q.chain) == hops[q.type]
        assert all(p and p.startswith("p") for _, p in q.chain)
    with pytest.raises(ConfigError, match="split"):
        load_shipped_qa("val")


def test_index_is_rebuilt_when_the_corpus_changes(tmp_path: Path) -> None:
    corpus = _write_jsonl(tmp_path / "c.jsonl", PASSAGES[:2])
    first = open_index(corpus)
    assert len(first) == 2 and first.search(["Walworth"], 3) == [[]]
    _write_jsonl(corpus, PASSAGES)
    second = open_index(corpus)
    assert len(second) == 4 and second is not first
    assert [h.id for h in second.search(["Walworth"], 3)[0]] == ["d3"]
    meta = json.loads((tmp_path / "c.bm25s" / "turngym_index.json").read_text())
    assert meta["passages"] == 4


def test_search_scores_and_tie_order_hand_checked(tmp_path: Path) -> None:
    rows = [{"id": f"t{i}", "title": "", "text": "alpha beta"} for i in range(3)]
    rows.append({"id": "t3", "title": "", "text": "alpha gamma gamma"})
    index = open_index(_write_jsonl(tmp_path / "ties.jsonl", rows))
    hits = index.search(["beta"], 2)[0]
    assert [h.id for h in hits] == ["t0", "t1"]  # equal scores: lower index first
    assert hits[0].score == hits[1].score > 0
    (gamma,) = index.search(["gamma"], 5)[0]
    # Lucene BM25 as bm25s computes it (k1=1.5, b=0.75, no (k1+1) factor):
    # idf = ln(1 + (4 - 1 + .5) / (1 + .5)) = 1.20397;
    # tf = 2, dl = 3, avgdl = 9/4: 2 / (2 + 1.5 * (.25 + .75 * 3 / 2.25)) = 0.516129
    assert gamma.id == "t3" and gamma.score == pytest.approx(1.20397 * 0.516129, abs=2e-4)
    assert index.search(["delta"], 5) == [[]]
