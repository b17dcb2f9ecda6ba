"""Settings from YAML files and flags to typed, validated config: the one YAML reader, the one
strict validator with one-line errors, and the one device setting every config shares."""

from __future__ import annotations

import difflib
import functools
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from kdaug.errors import UsageError
from kdaug.machine import DEVICE_HELP


class ConfigError(UsageError, ValueError):
    """A setting is invalid; the message names it and says what to do."""


class _AliasFound(Exception):
    """A settings file refers to an anchor (`*name`): refused before anything is expanded."""

    def __init__(self, anchor: str, line: int, column: int) -> None:
        super().__init__(f"*{anchor} at line {line}, column {column}")


# What a strict type error expects, and how a YAML value of each Python type is called.
_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
    type(None): "null",
}
_NUMBER_TEXT = re.compile(r"^\s*[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def _short(value: Any) -> str:
    """A value as YAML spells the scalars (true, null), cut to 60 characters."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _given(value: Any, kind: str) -> str:
    """How a value of the wrong type is shown: its YAML type, a short repr, and a hint."""
    name = _TYPE_NAMES.get(type(value), type(value).__name__)
    hint = ""
    if isinstance(value, str) and (_NUMBER_TEXT.match(value) or value.lower() in ("true", "false")):
        hint = " (write it without quotes)"
    elif kind == "string_type" and isinstance(value, (bool, int, float)):
        hint = " (put it in quotes)"
    return f"{name} {_short(value)}{hint}"


def _describe(err: dict[str, Any], model: type[BaseModel], origins: dict[str, str]) -> str:
    loc = ".".join(str(x) for x in err["loc"]) or "config"
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        names = list(model.model_fields) if len(err["loc"]) == 1 else []
        close = difflib.get_close_matches(str(err["loc"][0]), names, n=1) if names else []
        msg = "unknown setting" + (f" (did you mean {close[0]}?)" if close else "")
    elif kind.endswith("_type") and "input" in err:
        msg = f"{msg}, not {_given(err['input'], kind)}"
    elif kind not in ("missing", "value_error") and "input" in err:
        msg = f"{msg}, got {_short(err['input'])}"
    where = origins.get(str(err["loc"][0])) if err["loc"] else None
    return f"{loc}: {msg}" + (f" (in {where})" if where else "")


def validated(
    model: type[BaseModel],
    settings: dict[str, Any],
    what: str,
    origins: dict[str, str] | None = None,
) -> Any:
    """`settings` validated as `model` in pydantic's strict mode (a bool is not an int, "3" is not
    3, "0.4" is not a float; an int is a float), with the report turned into one ConfigError line.

    `origins` maps a setting to where it came from (a file name), for the message.
    """
    from pydantic import ValidationError

    try:
        return model.model_validate(settings, strict=True)
    except ValidationError as exc:
        parts = [_describe(err, model, origins or {}) for err in exc.errors()]
        message = f"invalid {what} setting: " + "; ".join(parts)
        raise ConfigError(" ".join(message.split())) from None


@functools.cache
def _settings_loader() -> type:
    """PyYAML's safe loader, plus: a setting given twice is an error (YAML keeps the last one
    silently), an alias (`*name`) is refused (a few hundred bytes of aliases can expand to
    millions of values), and `1e-5` is a number (YAML 1.2; PyYAML's YAML 1.1 reads it as a
    string)."""
    import yaml

    class SettingsLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                mark = event.start_mark
                raise _AliasFound(event.anchor, mark.line + 1, mark.column + 1)
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: set[tuple[str, str]] = set()
                for key, _ in node.value:
                    if not isinstance(key, yaml.ScalarNode) or key.tag.endswith(":merge"):
                        continue
                    if (key.tag, key.value) in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"setting {key.value!r} is given twice", key.start_mark
                        )
                    seen.add((key.tag, key.value))
            return super().construct_mapping(node, deep=deep)

    SettingsLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
    return SettingsLoader


def _yaml_problem(exc: Exception) -> str:
    """One line for a PyYAML error: the problem and where it is."""
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError):
        text = exc.problem or exc.context or "syntax error"
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            text += f" at line {mark.line + 1}, column {mark.column + 1}"
    else:
        text = str(exc)
    return " ".join(text.split())


def read_settings(path: str | Path) -> dict[str, Any]:
    """The mapping of settings in a YAML file (UTF-8), or a one-line ConfigError saying what is
    wrong: missing or unreadable file, bytes that are not UTF-8, invalid YAML, a setting given
    twice, an alias (`*name`, merge keys included), a document that is not a mapping of names.
    An empty file is an empty mapping."""
    import yaml

    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {p} is not a file (a directory)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"config file {p} is not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line} "
            "(save it as UTF-8)"
        ) from None
    try:
        data = yaml.load(text, Loader=_settings_loader())  # noqa: S506 (a SafeLoader subclass)
    except _AliasFound as found:
        raise ConfigError(
            f"config file {p} uses a YAML alias ({found}); aliases are refused because a few "
            "of them can expand a small file to millions of values: write the value out"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"config file {p} is not valid YAML: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = _TYPE_NAMES.get(type(data), type(data).__name__)
        raise ConfigError(
            f"config file {p} must hold a mapping of settings (name: value), not {kind}"
        )
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"config file {p}: setting names must be text, not {bad[0]!r}")
    return data


def device_name(device: str) -> str:
    """A device setting in its one spelling (stripped, lowercase): auto, cpu, cuda, cuda:N or
    mps; anything else is a ValueError (pydantic reports it as the setting's error)."""
    d = device.strip().lower()
    if d in ("auto", "cpu", "cuda", "mps") or (d.startswith("cuda:") and d[5:].isdigit()):
        return d
    raise ValueError(f"device must be {DEVICE_HELP}, not {device!r}")


# The device field of every config: `device: Device = "auto"`.
Device = Annotated[
    str,
    AfterValidator(device_name),
    Field(description="'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
]
