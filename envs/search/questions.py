"""Question templates over a :class:`~turngym.envs.search.world.World`: 1-hop, 2-hop bridge,
comparison and 3-hop, each with its gold answer, aliases and gold evidence chain.

A chain is a list of hops ``{"query": str, "passage": id}``: the search that finds the
passage holding the next fact. The env's expert replays it, then answers.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from turngym.envs.search.world import World

QUESTION_TYPES = ("1hop", "2hop", "comparison", "3hop")
#: The search words the expert adds to an entity name to reach each fact's passage.
FACT_WORDS = {"born": "born", "career": "worked for", "founded": "founded",
              "hq": "headquartered", "country": "city in", "population": "population",
              "creator": "by", "publisher": "published by"}

Where = dict[tuple[str, int, str], str]


def _hop(where: Where, kind: str, idx: int, fact: str, name: str) -> dict:
    return {"query": f"{name} {FACT_WORDS[fact]}", "passage": where[(kind, idx, fact)]}


def _q(q: str, a: str, al: list[str], chain: list[dict]) -> dict:
    return {"q": q, "a": a, "al": al, "chain": chain}


def _ans(ent: dict) -> tuple[str, list[str]]:
    return ent["name"], list(ent.get("aliases", []))


def one_hop(w: World, where: Where, rng: random.Random) -> dict:
    """Single fact about one named entity."""
    t = rng.randrange(4)
    if t == 0:
        i = rng.randrange(len(w.people)); p = w.people[i]
        a, al = _ans(w.cities[p["birthplace"]])
        return _q(q=f"In which city was {p['name']} born?", a=a, al=al,
                    chain=[_hop(where, "person", i, "born", p["name"])])
    if t == 1:
        i = rng.randrange(len(w.orgs)); o = w.orgs[i]
        return _q(q=f"In what year was the {o['name']} founded?", a=str(o["year"]), al=[],
                    chain=[_hop(where, "org", i, "founded", o["name"])])
    if t == 2:
        i = rng.randrange(len(w.works)); x = w.works[i]
        a, al = _ans(w.people[x["creator"]])
        return _q(q=f"Who created {x['name']}?", a=a, al=al,
                    chain=[_hop(where, "work", i, "creator", x["name"])])
    i = rng.randrange(len(w.cities)); c = w.cities[i]
    a, al = _ans(w.countries[c["country"]])
    return _q(q=f"In which country is the city of {c['name']}?", a=a, al=al,
                chain=[_hop(where, "city", i, "country", c["name"])])


def two_hop(w: World, where: Where, rng: random.Random) -> dict:
    """A bridge entity found in the first passage leads to the answer in the second."""
    t = rng.randrange(4)
    if t in (0, 1):
        i = rng.randrange(len(w.works)); x = w.works[i]
        if t == 0:
            pi = x["creator"]; p = w.people[pi]
            a, al = _ans(w.cities[p["birthplace"]])
            return _q(q=f"In which city was the creator of {x['name']} born?", a=a, al=al,
                        chain=[_hop(where, "work", i, "creator", x["name"]),
                               _hop(where, "person", pi, "born", p["name"])])
        oi = x["publisher"]; o = w.orgs[oi]
        a, al = _ans(w.people[o["founder"]])
        return _q(q=f"Who founded the publisher of {x['name']}?", a=a, al=al,
                    chain=[_hop(where, "work", i, "publisher", x["name"]),
                           _hop(where, "org", oi, "founded", o["name"])])
    i = rng.randrange(len(w.people)); p = w.people[i]
    if t == 2:
        ci = p["birthplace"]; c = w.cities[ci]
        a, al = _ans(w.countries[c["country"]])
        return _q(q=f"In which country was {p['name']} born?", a=a, al=al,
                    chain=[_hop(where, "person", i, "born", p["name"]),
                           _hop(where, "city", ci, "country", c["name"])])
    oi = p["employer"]; o = w.orgs[oi]
    a, al = _ans(w.cities[o["hq"]])
    return _q(q=f"In which city is the employer of {p['name']} headquartered?", a=a, al=al,
                chain=[_hop(where, "person", i, "career", p["name"]),
                       _hop(where, "org", oi, "hq", o["name"])])


def three_hop(w: World, where: Where, rng: random.Random) -> dict:
    """Two bridge entities, then the answer."""
    t = rng.randrange(3)
    i = rng.randrange(len(w.works)); x = w.works[i]
    if t == 0:
        pi = x["creator"]; p = w.people[pi]; ci = p["birthplace"]; c = w.cities[ci]
        a, al = _ans(w.countries[c["country"]])
        chain = [_hop(where, "work", i, "creator", x["name"]),
                 _hop(where, "person", pi, "born", p["name"]),
                 _hop(where, "city", ci, "country", c["name"])]
        return _q(q=f"In which country was the creator of {x['name']} born?", a=a, al=al,
                    chain=chain)
    if t == 1:
        pi = x["creator"]; p = w.people[pi]; oi = p["employer"]; o = w.orgs[oi]
        chain = [_hop(where, "work", i, "creator", x["name"]),
                 _hop(where, "person", pi, "career", p["name"]),
                 _hop(where, "org", oi, "founded", o["name"])]
        return _q(q=f"In what year was the employer of the creator of {x['name']} founded?",
                    a=str(o["year"]), al=[], chain=chain)
    oi = x["publisher"]; o = w.orgs[oi]; pi = o["founder"]; p = w.people[pi]
    a, al = _ans(w.cities[p["birthplace"]])
    chain = [_hop(where, "work", i, "publisher", x["name"]),
             _hop(where, "org", oi, "founded", o["name"]),
             _hop(where, "person", pi, "born", p["name"])]
    return _q(q=f"In which city was the founder of the publisher of {x['name']} born?",
                a=a, al=al, chain=chain)


def comparison(w: World, where: Where, rng: random.Random) -> dict | None:
    """Compare one numeric fact of two entities of the same kind (ties are skipped)."""
    t = rng.randrange(3)
    pools = [("person", w.people, "born", "year", "Who was born earlier, {} or {}?", min),
             ("org", w.orgs, "founded", "year", "Which was founded first, the {} or the {}?",
              min),
             ("city", w.cities, "population", "population",
              "Which city has the larger population, {} or {}?", max)]
    kind, pool, fact, key, template, pick = pools[t]
    i, j = rng.sample(range(len(pool)), 2)
    if pool[i][key] == pool[j][key]:
        return None
    best = pick((i, j), key=lambda k: pool[k][key])
    a, al = _ans(pool[best])
    return _q(q=template.format(pool[i]["name"], pool[j]["name"]), a=a, al=al,
                chain=[_hop(where, kind, i, fact, pool[i]["name"]),
                       _hop(where, kind, j, fact, pool[j]["name"])])


MAKERS: dict[str, Callable[[World, Where, random.Random], dict | None]] = {
    "1hop": one_hop, "2hop": two_hop, "comparison": comparison, "3hop": three_hop}
