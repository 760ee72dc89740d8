"""TensorBoard and wandb get the run's config once, and a resumed run continues the same wandb
run: real wandb in offline mode (nothing leaves the machine), read back from its run files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from turngym.errors import ConfigError
from turngym.harness.config import load_config
from turngym.harness.learn.metrics_log import (
    TB_CONFIG_MARKER,
    MetricsLogger,
    config_text,
    wandb_mode,
)
from turngym.harness.train import train
from turngym.harness.ui.plots import read_metrics

#: 1 step of 1 task x 2 rollouts on a 2x2 maze with the tiny model.
TINY = ["model.path=tiny", "env.id=turngym/Maze-v0", "env.kwargs={size: 2}", "steps=1",
        "rollout.tasks_per_step=1", "rollout.group_size=2", "rollout.max_turns=2",
        "rollout.max_tokens=6", "rollout.history_length=1", "eval.num_tasks=1",
        "eval.at_start=false", "optim.mini_batch_size=4", "optim.micro_batch_size=2",
        "logging.plot=false", "logging.progress=false", "logging.rollouts=0",
        "algo.name=grpo", "algo.loss.kl_coef=0", "algo.loss.entropy_coef=0.01"]


@pytest.fixture
def wandb_env(tmp_path: Path, monkeypatch) -> Path:
    """wandb offline, its settings and caches under ``tmp_path``, no credentials."""
    home = tmp_path / "wandb-home"
    for var in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_SILENT", "WANDB_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("NETRC", str(home / "netrc"))
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(home / var.lower()))
    return home


def wandb_records(path: Path) -> list:
    """The records of a ``run-ID.wandb`` file: a LevelDB log (32 KiB blocks of
    ``crc32 u32, length u16, type u8, data``; FULL=1, FIRST=2, MIDDLE=3, LAST=4) after a
    7-byte ``:W&B`` header, each record a ``wandb_internal_pb2.Record``."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    out, pos, part = [], 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            break
        part += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(part)
            out.append(rec)
            part = b""
    return out


def wandb_run(folder: Path) -> dict:
    """One offline run folder: its run record and its history rows (``_step`` and our keys)."""
    (path,) = folder.glob("run-*.wandb")
    recs = wandb_records(path)
    (run,) = [r.run for r in recs if r.WhichOneof("record_type") == "run"]
    config = {u.key: json.loads(u.value_json) for u in run.config.update if u.key != "_wandb"}
    history = []
    for r in recs:
        if r.WhichOneof("record_type") == "history":
            row = {i.key or "/".join(i.nested_key): json.loads(i.value_json)
                   for i in r.history.item}
            history.append({k: v for k, v in row.items() if k not in ("_runtime", "_timestamp")})
    return {"id": run.run_id, "project": run.project, "name": run.display_name,
            "tags": list(run.tags), "resumed": run.resume, "config": config,
            "history": history}


def tb_events(tb_dir: Path) -> dict:
    """The text summaries and ``env/success`` points in a ``tb/`` folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    texts = [e.tensor_proto.string_val[0].decode() for e in acc.Tensors("config/text_summary")]
    success = [(e.step, e.value) for e in acc.Scalars("env/success")]
    return {"texts": texts, "success": success}


@pytest.mark.slow
def test_a_resumed_run_gets_the_config_once_and_continues_its_wandb_run(
        tmp_path: Path, wandb_env: Path) -> None:
    out = tmp_path / "run"
    first = load_config(None, [*TINY, f"out_dir={out}", "logging.wandb=true",
                               "logging.wandb.project=tg-test", "logging.wandb.tags=[a, b]"])
    train(first)
    second = first.model_copy(update={"steps": 2})  # resumed, then trained one step longer
    train(second, resume=out)

    run_id = (out / "wandb" / "run-id").read_text().strip()
    folders = sorted((out / "wandb").glob("offline-run-*"))
    assert [f.name.endswith(f"-{run_id}") for f in folders] == [True, True]
    a, b = wandb_run(folders[0]), wandb_run(folders[1])
    rows = read_metrics(out / "metrics.jsonl")  # step 1, its final eval, step 2, final eval
    assert [r["step"] for r in rows] == [1, 1, 2, 2]
    assert a == {"id": run_id, "project": "tg-test", "name": "run", "tags": ["a", "b"],
                 "resumed": False, "config": json.loads(json.dumps(first.model_dump())),
                 "history": a["history"]}
    assert b == {"id": run_id, "project": "tg-test", "name": "run", "tags": ["a", "b"],
                 "resumed": True, "config": {}, "history": b["history"]}
    # each history row holds the step's metrics and its final eval (logged at that step)
    for hist, step in ((a["history"], 1), (b["history"], 2)):
        merged = {k: v for r in rows if r["step"] == step for k, v in r.items() if k != "step"}
        assert hist == [{"_step": step, **merged}]

    tb = tb_events(out / "tb")
    assert tb["texts"] == [config_text(first.model_dump())]  # once, not again on resume
    assert tb["success"] == [(1, rows[0]["env/success"]), (2, rows[2]["env/success"])]


def test_tensorboard_config_text_once_across_a_resume(tmp_path: Path) -> None:
    config = {"algo": {"name": "grpo"}, "optim": {"betas": (0.9, 0.999)}, "steps": 3}
    log = MetricsLogger(tmp_path, config=config)
    log.log(1, {"env/success": 0.5})
    log.close()
    assert (tmp_path / "tb" / TB_CONFIG_MARKER).is_file()
    log = MetricsLogger(tmp_path, config=config, resume=True, resume_step=1)
    log.log(2, {"env/success": 0.75})
    log.close()
    tb = tb_events(tmp_path / "tb")
    assert tb["texts"] == [("    algo:\n      name: grpo\n    optim:\n      betas:\n"
                            "      - 0.9\n      - 0.999\n    steps: 3")]
    assert tb["success"] == [(1, 0.5), (2, 0.75)]


def test_wandb_disabled_writes_nothing(tmp_path: Path, wandb_env: Path) -> None:
    cfg = load_config(None, ["logging.wandb.enabled=true", "logging.wandb.mode=disabled"])
    log = MetricsLogger(tmp_path, tensorboard=False, wandb=cfg.logging.wandb, config={})
    log.log(1, {"env/success": 1.0})
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


@pytest.mark.parametrize("mode, env_mode, api_key, netrc, expected", [
    ("offline", None, "k" * 40, None, "offline"),  # set: used as is
    ("online", "offline", None, None, "online"),
    ("disabled", None, None, None, "disabled"),
    (None, "offline", "k" * 40, None, "offline"),  # $WANDB_MODE next
    (None, "dryrun", None, None, "offline"),  # wandb's old name for offline
    (None, None, "k" * 40, None, "online"),  # credentials: online
    (None, None, None, "machine api.wandb.ai login user password " + "k" * 40, "online"),
    (None, None, None, "machine example.com login user password secret", "offline"),
    (None, None, None, None, "offline"),  # no credentials: offline
])
def test_wandb_mode(mode, env_mode, api_key, netrc, expected, tmp_path: Path,
                    monkeypatch) -> None:
    for var, value in (("WANDB_MODE", env_mode), ("WANDB_API_KEY", api_key)):
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    if netrc is not None:
        (tmp_path / "netrc").write_text(netrc + "\n")
        (tmp_path / "netrc").chmod(0o600)
    assert wandb_mode(mode) == expected


@pytest.mark.parametrize("overrides, expected", [
    (["logging.wandb=true"], {"enabled": True, "project": "turngym", "entity": None,
                              "name": None, "tags": [], "mode": None}),
    (["logging.wandb=false"], {"enabled": False, "project": "turngym", "entity": None,
                               "name": None, "tags": [], "mode": None}),
    (["logging.wandb=true", "logging.wandb.project=p", "logging.wandb.entity=team",
      "logging.wandb.name=first", "logging.wandb.tags=[x, y]", "logging.wandb.mode=online"],
     {"enabled": True, "project": "p", "entity": "team", "name": "first", "tags": ["x", "y"],
      "mode": "online"}),
])
def test_wandb_section_and_its_shorthand(overrides: list[str], expected: dict) -> None:
    assert load_config(None, overrides).logging.wandb.model_dump() == expected


def test_wandb_shorthand_in_yaml_then_a_dotted_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("logging:\n  wandb: true\n")
    cfg = load_config(path, ["logging.wandb.mode=offline"])
    assert (cfg.logging.wandb.enabled, cfg.logging.wandb.mode) == (True, "offline")


@pytest.mark.parametrize("override, message", [
    ("logging.wandb.mode=sometimes", ("logging.wandb.mode: Input should be 'online', "
                                      "'offline' or 'disabled' (got 'sometimes')")),
    ("logging.wandb.project=me/p", ("logging.wandb.project: a W&B project name cannot "
                                    "contain / (got 'me/p')")),
    ("logging.wandb.tags=['']", ("logging.wandb.tags.0: String should have at least 1 "
                                 "character (got '')")),
    ("logging.wandb=sometimes", ("logging.wandb: a section, not a value (got 'sometimes') "
                                 "(did you mean logging.wandb.enabled=true?)")),
    ("logging.wandb.projct=p", ("logging.wandb.projct: unknown key (got 'p') (did you mean "
                                "logging.wandb.project?)")),
])
def test_bad_wandb_values_fail_at_load_naming_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value) == f"bad config: {message}"
