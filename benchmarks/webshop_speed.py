"""WebShop: steps/s in text and browser mode, and expert vs random success.

    python benchmarks/webshop_speed.py            # full run (test split, 240 tasks)
    python benchmarks/webshop_speed.py --quick    # a smoke run

Side by side in one run: text-mode steps/s next to its baseline (raw HTTP page loads/s from
the same server, no env logic), browser-mode steps/s next to text mode, and expert success
next to a random policy's success on the same tasks. The random policy searches with the
whole instruction on the search page and clicks uniformly at random everywhere else.
Writes ``benchmarks/results/webshop_speed.json``.
"""

from __future__ import annotations

import argparse
import time

import httpx
import numpy as np

from turngym.envs import make
from turngym.envs.webshop.server import start_server
from turngym.envs.webshop.state import PageState, to_path
from turngym.harness.eval.results import write_result

SEED = 0
MAX_TURNS = 15


def random_action(env, info, rng: np.random.Generator) -> str:
    """Search the instruction on the search page, else a uniform random clickable."""
    adm = [a for a in info["admissible_actions"] if not a.startswith("search[")]
    if "search[<your query>]" in info["admissible_actions"]:
        return f"search[{env.unwrapped.goal.instruction}]"
    return adm[int(rng.integers(len(adm)))]


def episode(env, task: str, policy: str, rng: np.random.Generator) -> tuple[float, int]:
    """Play one episode; return (final reward, turns)."""
    _, info = env.reset(seed=SEED, options={"task_id": task})
    for turn in range(1, MAX_TURNS + 1):
        action = env.unwrapped.expert_action() if policy == "expert" else \
            random_action(env, info, rng)
        _, reward, term, trunc, info = env.step(action)
        if term or trunc:
            return float(reward), turn
    return 0.0, MAX_TURNS


def steps_per_s(env, tasks: list[str], n_steps: int, rng: np.random.Generator) -> float:
    """Random-policy steps per second (resets excluded from the count, included in time)."""
    steps, t0 = 0, time.perf_counter()
    while steps < n_steps:
        _, info = env.reset(seed=SEED, options={"task_id": tasks[steps % len(tasks)]})
        for _ in range(MAX_TURNS):
            _, _, term, trunc, info = env.step(random_action(env, info, rng))
            steps += 1
            if term or trunc or steps >= n_steps:
                break
    return steps / (time.perf_counter() - t0)


def raw_http_per_s(url: str, goal: int, query: str, n: int) -> float:
    """Baseline: plain GETs of results and item pages, no parsing, no env."""
    with httpx.Client(base_url=url) as http:
        sid = http.post("/api/sessions", json={"goal": goal}).json()["session"]
        asin = None
        t0 = time.perf_counter()
        for i in range(n):
            if i % 2 == 0 or asin is None:
                page = http.get(to_path(PageState("results", query, 1 + i % 5), sid))
                asin = page.text.split("/item/", 1)[1].split("?", 1)[0]
            else:
                http.get(to_path(PageState("item", query, 1, asin), sid))
        return n / (time.perf_counter() - t0)


def success(env, tasks: list[str], policy: str, rng: np.random.Generator) -> dict:
    rewards, turns = zip(*(episode(env, t, policy, rng) for t in tasks))
    return {"success": float(np.mean(np.array(rewards) == 1.0)),
            "mean_reward": float(np.mean(rewards)), "mean_turns": float(np.mean(turns)),
            "episodes": len(tasks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=240, help="test-split tasks to score")
    parser.add_argument("--text-steps", type=int, default=600)
    parser.add_argument("--browser-steps", type=int, default=150)
    parser.add_argument("--browser-tasks", type=int, default=20, help="expert episodes in Chromium")
    parser.add_argument("--quick", action="store_true", help="small numbers for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.text_steps, args.browser_steps, args.browser_tasks = 20, 100, 30, 3
    rng = np.random.default_rng(SEED)
    server = start_server()
    text = make("turngym/WebShop-v0", split="test", server_url=server.url)
    tasks = text.unwrapped.task_ids("test")[: args.tasks]
    goal = text.unwrapped.goals[0]
    results = {
        "raw_http_pages_per_s": raw_http_per_s(server.url, 0, goal.query, args.text_steps),
        "text_steps_per_s": steps_per_s(text, tasks, args.text_steps, rng),
        "expert_text": success(text, tasks, "expert", rng),
        "random_text": success(text, tasks, "random", rng),
    }
    browser = make("turngym/WebShopBrowser-v0", split="test", server_url=server.url)
    results["browser_steps_per_s"] = steps_per_s(browser, tasks, args.browser_steps, rng)
    results["expert_browser"] = success(browser, tasks[: args.browser_tasks], "expert", rng)
    browser.close()
    text.close()
    server.stop()

    print(f"{'metric':<34}{'value':>10}   baseline")
    print(f"{'text steps/s':<34}{results['text_steps_per_s']:>10.1f}   raw HTTP page loads/s "
          f"{results['raw_http_pages_per_s']:.1f}")
    print(f"{'browser steps/s':<34}{results['browser_steps_per_s']:>10.1f}   text steps/s "
          f"{results['text_steps_per_s']:.1f}")
    for name in ("expert_text", "expert_browser"):
        r = results[name]
        print(f"{name + ' success':<34}{r['success']:>10.1%}   random "
              f"{results['random_text']['success']:.1%} (mean reward "
              f"{results['random_text']['mean_reward']:.3f}); {r['episodes']} episodes, "
              f"{r['mean_turns']:.1f} turns")
    path = write_result("webshop_speed", results, seeds=[SEED], config=vars(args))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
