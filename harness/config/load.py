"""Loading the train config: YAML + dotted overrides -> a validated :class:`TrainConfig`.

Errors become one :class:`turngym.errors.ConfigError` naming each dotted key, with a "did you
mean" for a misspelt key; a key (or value) that was renamed or removed fails naming its
replacement (:data:`RENAMED`, :data:`RENAMED_VALUES`), before any other check.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from turngym.errors import ConfigError
from turngym.harness.config.train_config import TrainConfig

#: Old dotted key -> the message that names its replacement. Checked on the raw mapping
#: (YAML + overrides), so an old key fails with this message, not as an unknown key.
RENAMED: dict[str, str] = {
    "algo.adv": ("algo.adv was renamed algo.advantage (the estimator's typed settings, e.g. "
                 "algo.advantage.gamma; algo.name picks the estimator)"),
}

#: (dotted key, old value) -> the message that names the new spelling.
RENAMED_VALUES: dict[tuple[str, str], str] = {
    ("curriculum.name", "tcod_f2b"): ("curriculum.name=tcod_f2b was renamed "
                                      "curriculum.name=tcod with curriculum.mode=f2b"),
    ("curriculum.name", "tcod_b2f"): ("curriculum.name=tcod_b2f was renamed "
                                      "curriculum.name=tcod with curriculum.mode=b2f"),
}


def _lookup(data: Any, key: str) -> tuple[bool, Any]:
    """``(True, value)`` when the nested mapping ``data`` holds dotted ``key``."""
    node = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def check_renamed(data: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` naming the new keys when ``data`` uses an old one."""
    found = [msg for key, msg in RENAMED.items() if _lookup(data, key)[0]]
    for (key, old), msg in RENAMED_VALUES.items():
        present, value = _lookup(data, key)
        if present and value == old:
            found.append(msg)
    if found:
        raise ConfigError(f"bad config: {'; '.join(found)}")


# ---------------------------------------------------------------------------- overrides
def _parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"true"`` -> True, ``"[1,2]"`` -> [1, 2]; anything else stays text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides to a nested dict (values parsed as YAML)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad override {item!r}: expected KEY=VALUE, e.g. algo.name=gigpo")
        parts = key.strip().split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            nxt = node.setdefault(part, {})
            if isinstance(nxt, bool) and _has_enabled(parts[:i + 1]):
                nxt = node[part] = {"enabled": nxt}  # `wandb: true`, then wandb.project=...
            if not isinstance(nxt, dict):
                raise ConfigError(f"bad override {item!r}: {'.'.join(parts[:i + 1])} is not a "
                                  "section")
            node = nxt
        node[parts[-1]] = _parse_value(raw)
    return data


# ---------------------------------------------------------------------------- error text
def _models(annotation: Any) -> dict[str, type[BaseModel]]:
    """The config classes a field's annotation allows: ``{"": cls}`` for one class, ``{tag:
    cls}`` for a union discriminated by ``name``; ``{}`` for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"": annotation}
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        found: dict[str, type[BaseModel]] = {}
        members = [m for a in typing.get_args(annotation) for m in _models(a).values()]
        if len(members) == 1:
            return {"": members[0]}
        for m in members:
            tag = m.model_fields["name"].default if "name" in m.model_fields else None
            found[str(tag)] = m
        return found
    return {}


def _walk(loc: tuple[Any, ...], root: type[BaseModel]) -> tuple[list[str], Any]:
    """``(keys, cls)``: the dotted keys of an error location (a union's tag left out) and
    the config class there (None when it is not a section, or a union without its tag)."""
    keys: list[str] = []
    cls: Any = root
    i = 0
    while i < len(loc):
        part = str(loc[i])
        keys.append(part)
        i += 1
        field = cls.model_fields.get(part) if cls is not None else None
        options = _models(field.annotation) if field is not None else {}
        if "" in options:
            cls = options[""]
        elif options and i < len(loc) and str(loc[i]) in options:
            cls = options[str(loc[i])]
            i += 1  # the tag pydantic puts in the location: not a key
        else:
            cls = None
    return keys, cls


def _section(loc: tuple[Any, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """The config class at dotted location ``loc`` under ``root`` (None if not a section)."""
    return _walk(loc, root)[1]


def _has_enabled(loc: list[str]) -> bool:
    """Whether the section at ``loc`` of :class:`TrainConfig` has an ``enabled`` switch."""
    section = _section(tuple(loc), TrainConfig)
    return section is not None and "enabled" in section.model_fields


def _dotted(prefix: str, keys: list[str]) -> str:
    return ".".join([prefix, *keys]).lstrip(".")


def _suggestion(err: dict[str, Any], root: type[BaseModel], prefix: str) -> str:
    """" (did you mean ...?)" for a misspelt key, or for a value given to a whole section
    (``model=tiny``: ``model.path=tiny``); "" when nothing is close."""
    keys, section = _walk(tuple(err["loc"]), root)
    if err["type"] == "extra_forbidden":
        parent = _walk(tuple(err["loc"])[:-1], root)[1]
        if parent is None:
            return ""
        near = difflib.get_close_matches(keys[-1], list(parent.model_fields), n=2)
        names = [_dotted(prefix, [*keys[:-1], k]) for k in near]
        return f" (did you mean {' or '.join(names)}?)" if names else ""
    if section is not None and not isinstance(err.get("input"), dict):
        if "enabled" in section.model_fields:  # lora=..., logging.wandb=...: a switch
            return f" (did you mean {_dotted(prefix, [*keys, 'enabled'])}=true?)"
        main = next((k for k in ("path", "id", "name") if k in section.model_fields), None)
        if main is not None:
            return f" (did you mean {_dotted(prefix, [*keys, main])}={err.get('input')}?)"
    return ""


def _error_text(exc: ValidationError, root: type[BaseModel] | None = None,
                prefix: str = "") -> str:
    root = root or TrainConfig
    lines = []
    for err in exc.errors():
        keys = _walk(tuple(err["loc"]), root)[0]
        key = _dotted(prefix, keys) or "(config)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "keyed" or not err["loc"]:  # the message names its keys
            lines.append(msg)
        elif err["type"] == "missing":
            lines.append(f"{key}: {msg}")
        elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            ctx = err.get("ctx") or {}
            disc = str(ctx.get("discriminator", "'name'")).strip("'")
            if err["type"] == "union_tag_not_found":
                lines.append(f"{key}.{disc}: missing")
            else:
                lines.append(f"{key}.{disc}: {ctx.get('tag')!r} is not one of "
                             f"{ctx.get('expected_tags')}")
        else:
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            elif err["type"] == "model_type":
                msg = "a section, not a value"
            lines.append(f"{key}: {msg} (got {err.get('input')!r})"
                         f"{_suggestion(err, root, prefix)}")
    return "; ".join(lines)


# ---------------------------------------------------------------------------- loading
def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Validate a nested dict; errors become one :class:`ConfigError` naming each key."""
    check_renamed(data)
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"bad config: {_error_text(exc)}") from None
    cfg.rollout.engine_config(cfg.env.id, cfg.env.kwargs, cfg.seed)  # the engine's own checks
    return cfg


def load_config(path: str | Path | None = None, overrides: list[str] | None = None
                ) -> TrainConfig:
    """Load YAML (optional), apply dotted overrides, validate."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {str(p)!r} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {str(p)!r} must hold a mapping at the top level")
        data = loaded
    return config_from_dict(apply_overrides(data, list(overrides or [])))


def dump_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (round-trips through :func:`load_config`)."""
    Path(path).write_text(yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False))
