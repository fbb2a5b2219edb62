"""YAML files of configurations: read with every key given once.

Plain YAML keeps the last value of a repeated key (``n_members: 3`` then ``n_members: 4`` runs
4), and a whole section given twice silently drops the first. :func:`read_yaml` refuses both,
naming the dotted key and the lines of both occurrences.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lsegeo.errors import ConfigError

__all__ = ["read_yaml"]


class _DuplicateKey(Exception):
    """A key given twice in one YAML mapping (raised by :class:`_UniqueKeyLoader`)."""

    def __init__(self, key: str, first: int, second: int) -> None:
        super().__init__(key, first, second)
        self.key, self.first, self.second = key, first, second


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML SafeLoader that refuses a key given twice in the same mapping, at any depth.

    Plain YAML keeps the last value of a repeated key (``n_members: 3`` then ``n_members: 4``
    runs 4), and a whole section given twice silently drops the first. Here the composed node
    tree is walked before construction, and a repeat raises :class:`_DuplicateKey` with the
    dotted path of the key and the 1-based lines of both occurrences (from the nodes' marks).
    Keys brought in by YAML's merge key ``<<`` may be overridden, as the merge key intends.
    """

    def get_single_data(self) -> Any:  # noqa: D102 (yaml.BaseConstructor's)
        node = self.get_single_node()
        if node is None:
            return None
        self._check_unique(node, (), set())
        return self.construct_document(node)

    def _check_unique(self, node: yaml.Node, path: tuple[str, ...], visited: set[int]) -> None:
        if id(node) in visited:  # an alias of a node already checked
            return
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                if isinstance(key_node, yaml.ScalarNode):
                    key = self.construct_object(key_node, deep=True)
                    line = key_node.start_mark.line + 1
                    if key in seen:
                        raise _DuplicateKey(".".join((*path, str(key))), seen[key], line)
                    seen[key] = line
                    self._check_unique(value_node, (*path, str(key)), visited)
                else:  # a complex key: pydantic refuses it later
                    self._check_unique(value_node, (*path, "?"), visited)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._check_unique(item, (*path, str(i)), visited)


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file in which no mapping gives a key twice.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    object
        The document (a mapping for a configuration file; ``None`` for an empty file).

    Raises
    ------
    ConfigError
        The file is absent or not YAML, or a key is given twice in one mapping (the message
        names the dotted key and both line numbers).
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"configuration file {path} does not exist")
    try:
        loader = _UniqueKeyLoader(path.read_text())  # a SafeLoader: plain data only
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except _DuplicateKey as dup:
        raise ConfigError(f"{path}: {dup.key}: given twice, on lines {dup.first} and {dup.second}; give each "
                          "key once (YAML would silently keep only the last)") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
