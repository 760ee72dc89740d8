"""A generated world of fictional entities with consistent facts, and its passages.

:func:`build_world` draws countries, cities, organisations, people and works from a seed
(``random.Random(seed)``; nothing global). Every fact lives in exactly one passage, so a
question's evidence chain names exact passage ids. :func:`world_passages` writes the
passages (Wikipedia-like chunks: every chunk of an entity has the entity's name as title).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

_ONSETS = ["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
           "br", "dr", "gr", "kr", "th", "st", "tr", "vr", "sh", "ch", "gl", "pl", "qu", "sk"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou", "ia", "y"]
_CODAS = ["", "", "n", "r", "l", "s", "th", "x", "m", "nd", "rk", "ss", "v", "lt"]
OCCUPATIONS = {"novel": "novelist", "symphony": "composer", "painting": "painter",
               "film": "film director", "poem cycle": "poet"}
ORG_KINDS = ["Institute", "Press", "Company", "Foundation", "Bank", "University", "Society",
             "Orchestra", "Studios", "Guild"]
_RIVERS_SUFFIX = ["", "", " Water", " Stream"]
_CONTINENTS = ["Eastmark", "Westreach", "Northholm", "Southfall"]
_HOBBIES = ["sailing", "chess", "beekeeping", "astronomy", "mountaineering", "calligraphy",
            "falconry", "gardening", "fencing", "cartography", "archery", "pottery"]
_TRAITS = ["meticulous", "restless", "generous", "reclusive", "outspoken", "patient",
           "inventive", "stubborn", "cheerful", "austere"]
_WORK_WORDS = ["Silent", "Crimson", "Hollow", "Last", "Endless", "Broken", "Golden", "Winter",
               "Distant", "Burning", "Quiet", "Iron", "Glass", "Seventh", "Hidden", "Pale"]
_SCALE_COUNTS = {"countries": 30, "cities": 900, "orgs": 900, "people": 4000, "works": 2000}


@dataclass
class World:
    """All entities; ids index the lists. Field dicts hold the facts."""

    countries: list[dict] = field(default_factory=list)
    cities: list[dict] = field(default_factory=list)
    orgs: list[dict] = field(default_factory=list)
    people: list[dict] = field(default_factory=list)
    works: list[dict] = field(default_factory=list)


class _Names:
    """Unique pronounceable names from syllables, drawn from one ``random.Random``."""

    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()

    def word(self, syllables: tuple[int, int] = (2, 3)) -> str:
        while True:
            n = self.rng.randint(*syllables)
            parts = [self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) for _ in range(n)]
            w = ("".join(parts) + self.rng.choice(_CODAS)).capitalize()
            if w.lower() not in self.used and len(w) >= 4:
                self.used.add(w.lower())
                return w


def _acronym(name: str) -> str:
    return "".join(p[0] for p in name.split() if p[0].isupper())


def build_world(seed: int = 0, scale: float = 1.0) -> World:
    """Draw a world; ``scale=1`` gives about 20.5k passages, ``scale=10`` about 205k."""
    rng = random.Random(seed)
    names = _Names(rng)
    n = {k: max(2, round(v * scale)) for k, v in _SCALE_COUNTS.items()}
    w = World()
    for i in range(n["countries"]):
        name = names.word((2, 3))
        w.countries.append({"name": name, "aliases": [f"Republic of {name}"],
                            "continent": rng.choice(_CONTINENTS),
                            "year": rng.randint(1200, 1950), "capital": None})
    for i in range(n["cities"]):
        country = i % n["countries"] if i < n["countries"] else rng.randrange(n["countries"])
        w.cities.append({"name": names.word((2, 3)), "country": country,
                         "year": rng.randint(600, 1900), "population": rng.randint(2, 950) * 1000
                         + rng.randint(0, 999), "river": names.word((2, 2))
                         + rng.choice(_RIVERS_SUFFIX)})
        if w.countries[country]["capital"] is None:
            w.countries[country]["capital"] = i
    first_names = [names.word((1, 2)) for _ in range(max(50, n["people"] // 12))]
    for i in range(n["people"]):
        first, last = rng.choice(first_names), names.word((2, 3))
        kind = rng.choice(list(OCCUPATIONS))
        w.people.append({"name": f"{first} {last}", "aliases": [last, f"{first[0]}. {last}"],
                         "year": rng.randint(1700, 1995), "birthplace": rng.randrange(n["cities"]),
                         "occupation": OCCUPATIONS[kind], "kind": kind, "employer": None,
                         "hobby": rng.choice(_HOBBIES), "trait": rng.choice(_TRAITS)})
    for i in range(n["orgs"]):
        name = f"{names.word((2, 3))} {rng.choice(ORG_KINDS)}"
        w.orgs.append({"name": name, "aliases": [_acronym(name)], "year": rng.randint(1750, 2015),
                       "hq": rng.randrange(n["cities"]), "founder": rng.randrange(n["people"]),
                       "staff": rng.randint(5, 9000)})
    for p in w.people:
        p["employer"] = rng.randrange(n["orgs"])
    for i in range(n["works"]):
        creator = rng.randrange(n["people"])
        kind = w.people[creator]["kind"]
        title = f"The {rng.choice(_WORK_WORDS)} {names.word((2, 3))}"
        w.works.append({"name": title, "aliases": [title[4:]], "kind": kind, "creator": creator,
                        "year": min(2024, w.people[creator]["year"] + rng.randint(18, 60)),
                        "publisher": rng.randrange(n["orgs"])})
    return w


def world_passages(w: World) -> tuple[list[dict], dict[tuple[str, int, str], str]]:
    """Passages ``{"id", "title", "text"}`` and a map ``(kind, entity, fact) -> passage id``.

    Facts: country ``capital``/``about``; city ``country``/``population``; org
    ``founded``/``hq``/``about``; person ``born``/``career``/``about``; work
    ``creator``/``publisher``.
    """
    out: list[dict] = []
    where: dict[tuple[str, int, str], str] = {}

    def add(kind: str, idx: int, fact: str, title: str, text: str) -> None:
        pid = f"p{len(out):07d}"
        out.append({"id": pid, "title": title, "text": text})
        where[(kind, idx, fact)] = pid

    C, Y, O, P = w.cities, w.countries, w.orgs, w.people
    for i, c in enumerate(Y):
        cap = C[c["capital"]]["name"] if c["capital"] is not None else "no city of note"
        add("country", i, "capital", c["name"], f"{c['name']} is a country on the continent of "
            f"{c['continent']}. Its capital is {cap}.")
        add("country", i, "about", c["name"], f"{c['name']}, officially the Republic of "
            f"{c['name']}, was established as a state in {c['year']}.")
    for i, c in enumerate(C):
        add("city", i, "country", c["name"], f"{c['name']} is a city in {Y[c['country']]['name']}."
            f" It was founded in {c['year']}.")
        add("city", i, "population", c["name"], f"{c['name']} lies on the {c['river']} river and "
            f"has a population of {c['population']:,}.")
    for i, o in enumerate(O):
        add("org", i, "founded", o["name"], f"The {o['name']} ({o['aliases'][0]}) was founded in "
            f"{o['year']} by {P[o['founder']]['name']}.")
        add("org", i, "hq", o["name"], f"The {o['name']} is headquartered in {C[o['hq']]['name']}.")
        add("org", i, "about", o["name"], f"The {o['name']} has about {o['staff']:,} staff members "
            f"and is known for its annual lectures.")
    for i, p in enumerate(P):
        add("person", i, "born", p["name"], f"{p['name']} was born in {p['year']} in "
            f"{C[p['birthplace']]['name']}.")
        add("person", i, "career", p["name"], f"{p['name']} is a {p['occupation']} who worked "
            f"for the {O[p['employer']]['name']}.")
        add("person", i, "about", p["name"], f"{p['name']} was described by friends as "
            f"{p['trait']} and spent free time on {p['hobby']}.")
    for i, x in enumerate(w.works):
        add("work", i, "creator", x["name"], f"{x['name']} is a {x['kind']} by "
            f"{P[x['creator']]['name']}, completed in {x['year']}.")
        add("work", i, "publisher", x["name"], f"{x['name']} was published by the "
            f"{O[x['publisher']]['name']}.")
    return out, where
