"""Config files: a YAML (or JSON) mapping validated by a pydantic model, with errors that name
the file and the key path of every problem. Every command's `--config` goes through here."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config file cannot be read, or its values do not fit the model; the message says where."""


def read_config_mapping(path: str | Path) -> dict:
    """The top-level mapping of a YAML/JSON file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read the config ({e})") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys to values, got {type(data).__name__}")
    return data


def set_dotted(data: dict, overrides: dict, skip_none: bool = True) -> dict:
    """`data` with `overrides` ({"player.scene.image_size": v}) written in; None values are skipped
    (an unset flag) unless `skip_none` is False (None is then a value: an optional part switched off)."""
    for dotted, value in overrides.items():
        if value is None and skip_none:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return data


def validate_config(model: type[M], data: dict, source: str, what: str = "config") -> M:
    """`model` validated from `data`; every problem is listed by its key path."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = "\n".join(
            f"  {'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            + (f" (got {err['input']!r})" if err["type"] != "extra_forbidden" and not isinstance(err["input"], dict) else "")
            for err in e.errors(include_url=False)
        )
        raise ConfigError(f"{source}: invalid {what}:\n{problems}") from None


def load_config(model: type[M], path: str | Path | None, overrides: dict | None = None, what: str = "config") -> M:
    """`model` from an optional config file with dotted-key `overrides` applied on top."""
    data = read_config_mapping(path) if path is not None else {}
    data = set_dotted(data, overrides or {})
    return validate_config(model, data, str(path) if path is not None else "options", what)
