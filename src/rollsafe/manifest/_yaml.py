"""YAML loading that remembers where each key and value stood in the file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

try:  # the C loader is several times faster; fall back to pure Python where it is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

__all__ = ["LineMap", "YamlSyntaxError", "load_yaml"]

Path = tuple[str | int, ...]


class YamlSyntaxError(Exception):
    """The text is not YAML. ``line`` is 1-based."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class LineMap:
    """Maps a key path (``("services", "backend", "env", "X")``) to its 1-based line."""

    lines: dict[Path, int]

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        probe = tuple(path)
        while probe:
            found = self.lines.get(probe)
            if found is not None:
                return found
            probe = probe[:-1]
        return self.lines.get(())


class _Builder:
    """Builds plain Python data from a composed node tree, recording lines on the way."""

    def __init__(self) -> None:
        # SafeConstructor resolves scalars (int, bool, null, dates) exactly as safe_load does
        self._scalars = yaml.constructor.SafeConstructor()
        self.lines: dict[Path, int] = {}

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._key(key_node)
                if key in result:
                    raise YamlSyntaxError(f"duplicate key '{key}'", key_node.start_mark.line + 1)
                child = (*path, key)
                # the key's own line, so errors point at the key rather than at its value
                self.lines[child] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalars.construct_object(node, deep=True)

    def _key(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise YamlSyntaxError("a key must be a plain value", node.start_mark.line + 1)
        return self._scalars.construct_object(node, deep=True)


def load_yaml(text: str) -> tuple[Any, LineMap]:
    """Parse ``text`` and return the data and the line of every key path."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlSyntaxError(problem, line) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc), None) from exc
    builder = _Builder()
    if node is None:
        return None, LineMap(builder.lines)
    data = builder.build(node, ())
    return data, LineMap(builder.lines)
