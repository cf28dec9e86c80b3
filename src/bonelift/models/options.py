"""Typed per-network options: each model file declares a frozen dataclass of the switches its network reads.

The command line spells them `--option KEY=VALUE` and a configuration (and so a checkpoint) keeps them as the
plain dict the user gave, so old checkpoints and bench caches stay byte-identical. The registry parses that dict
into the network's dataclass before anything is built: an unknown key or a value of the wrong type (a bool
given "no", an int given 1.5, a choice outside its list) is one `OptionError` naming the option, the network and
what it accepts, instead of a silently truthy string.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from bonelift.errors import OptionError

T = TypeVar("T", bound="NetworkOptions")
_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str"}


def switch(default: Any, help: str, choices: tuple[str, ...] = ()) -> Any:
    """A network option: its default, what it does, and (for a string) the values it accepts."""
    return field(default=default, metadata={"help": help, "choices": choices})


def _accepts(kind: type, value: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


@dataclass(frozen=True)
class NetworkOptions:
    """Base of every network's options (a network without switches uses it as is)."""

    @classmethod
    def parse(cls: type[T], values: Mapping[str, Any], network: str) -> T:
        """The options `values` set, checked key by key; defaults for the rest."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise OptionError(f"unknown option(s) {', '.join(unknown)} for model {network!r} "
                              f"(known: {', '.join(known) or 'none'})")
        hints = typing.get_type_hints(cls)
        out: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in values:
                continue
            value, kinds = values[f.name], _members(hints[f.name])
            choices = f.metadata.get("choices", ())
            ok = any(_accepts(k, value) for k in kinds) and not (isinstance(value, str) and choices
                                                                   and value not in choices)
            if not ok:
                raise OptionError(
                    f"option {f.name}={value!r} of model {network!r}: expected {_allowed(kinds, choices)}"
                )
            out[f.name] = float(value) if kinds == (float,) else value
        return cls(**out)

    @classmethod
    def describe(cls) -> list[str]:
        """One `name=default  (type)  help` entry per option, for `bonelift models`."""
        hints = typing.get_type_hints(cls)
        return [f"{f.name}={_spelling(f.default)}  ({_type_name(hints[f.name], f.metadata.get('choices', ()))})  "
                f"{f.metadata.get('help', '')}" for f in fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _members(kind: Any) -> tuple[type, ...]:
    """The types an annotation allows (`bool | str` -> (bool, str))."""
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        return typing.get_args(kind)
    return (kind,)


def _allowed(kinds: tuple[type, ...], choices: tuple[str, ...]) -> str:
    words = {bool: "true or false", int: "an integer", float: "a number"}
    parts = [words[k] if k in words else ("one of " + ", ".join(choices) if choices else "a string") for k in kinds]
    return " or ".join(parts)


def _spelling(value: Any) -> str:
    """A default as the command line writes it (`true`, not `True`)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _type_name(kind: Any, choices: tuple[str, ...]) -> str:
    names = [("|".join(choices) if k is str and choices else _TYPE_NAMES[k]) for k in _members(kind)]
    return " or ".join(names)
