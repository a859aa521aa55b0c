"""One strict codec for the frozen records of the spec documents (hardware, environment...).

A record is a ``@dataclass(frozen=True, kw_only=True, slots=True)`` subclass of
:class:`Record`; its field annotations (strings, with ``from __future__ import annotations``)
say what each JSON/TOML value must be: ``str``, ``int``, ``bool``, ``float`` (an integer is
accepted and converted), ``tuple[X, ...]``, ``Mapping[str, str]``, another record by class
name, or an alias (``Literal`` type names) mapped to ``str``. ``from_dict`` checks every
value and names the key path of the first one that is wrong; absent and None fields are
left out by ``to_dict``. Each module passes its own :class:`Codec`, which knows its record
classes and how its errors read (``mlpack.json: hardware.cudnn_version must be of type int``).

    codec = Codec(records={"ThreadPool": ThreadPool}, error=lambda path, why, member: ...)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields
from typing import Any, ClassVar

__all__ = ["Codec", "Record"]

_TYPES: dict[str, Any] = {"str": str, "int": int, "bool": bool, "float": (int, float)}


class Codec:
    """How one module's records decode: its record classes, aliases and error factory."""

    def __init__(self, *, error: Callable[[str, str, str], Exception], records: Mapping[str, Any] | None = None,
                 aliases: Mapping[str, str] | None = None, strings: str = "an object of strings") -> None:
        self.error = error
        self.records: dict[str, Any] = dict(records or {})
        self.aliases = dict(aliases or {})
        self.strings = strings

    def value(self, v: Any, kind: str, path: str, member: str) -> Any:
        """One value checked against a field annotation (strict types)."""
        kind = kind.removesuffix(" | None")
        if kind.startswith("tuple["):
            if not isinstance(v, list):
                raise self.error(path, "must be an array", member)
            item = kind[6:].split(",")[0]
            return tuple(self.value(x, item, f"{path}[{i}]", member) for i, x in enumerate(v))
        if kind.startswith("Mapping["):
            if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
                raise self.error(path, f"must be {self.strings}", member)
            return dict(v)
        if kind in self.records:
            return self.records[kind].from_dict(v, path, member)
        kind = self.aliases.get(kind, kind)
        ok = _TYPES[kind]
        # bool is an int subclass, but JSON and TOML distinguish the two.
        if not isinstance(v, ok) or (kind != "bool" and isinstance(v, bool)):
            shown = "number" if kind == "float" else kind
            raise self.error(path, f"must be of type {shown}", member)
        return float(v) if kind == "float" else v


class Record:
    """``from_dict``/``to_dict`` for the frozen records of one module (see :class:`Codec`)."""

    __slots__ = ()
    _codec: ClassVar[Codec]
    _where: ClassVar[str] = ""
    """The key path of the record when it is a document's root (used in error messages)."""
    _keys: ClassVar[dict[str, str]] = {}
    """Field name -> key in the document, where they differ."""

    @classmethod
    def from_dict(cls, d: object, where: str | None = None, member: str = "mlpack.json") -> Any:
        where = cls._where if where is None else where
        if not isinstance(d, dict):
            raise cls._codec.error(where or "section", "must be an object", member)
        kw: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            key = cls._keys.get(f.name, f.name)
            path = f"{where}.{key}" if where else key
            if key in d:
                kw[f.name] = cls._codec.value(d[key], str(f.type), path, member)
            elif f.default is MISSING and f.default_factory is MISSING:
                raise cls._codec.error(path, "is required", member)
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = [x.to_dict() if isinstance(x, Record) else x for x in v]
            elif isinstance(v, Record):
                v = v.to_dict()
            if v is not None:
                out[self._keys.get(f.name, f.name)] = dict(v) if isinstance(v, Mapping) else v
        return out
