"""Paths into property trees, and the walk over their string leaves: defined once.

The checker wraps secret leaves by path (`policies/analyzer.py`), rules search every string
leaf (`policies/rules/secret.py`, `policies/rules/tls.py`) and tests resolve recorded secret
paths; all of them walk the same way, here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

PropPath = tuple[str | int, ...]
"""A path into a property tree: object keys and list indexes, e.g. ("uploads", 3, "content")."""


class NoSuchPath(LookupError):
    """The path does not lead to a value in this tree."""


def get(tree: Any, path: PropPath) -> Any:
    """The value at `path`, or NoSuchPath."""
    node = tree
    for segment in path:
        try:
            node = node[segment]
        except (KeyError, IndexError, TypeError) as exc:
            raise NoSuchPath(path) from exc
    return node


def leads_to_leaf(tree: Any, path: PropPath) -> bool:
    try:
        node = get(tree, path)
    except NoSuchPath:
        return False
    return not isinstance(node, Mapping | list | tuple)


def string_leaves(tree: Any, path: PropPath = ()) -> Iterator[tuple[PropPath, str]]:
    """Every string leaf with its path, depth first (any Mapping/Sequence, as proxies are)."""
    if isinstance(tree, str):
        yield path, tree
    elif isinstance(tree, Mapping):
        for key in tree:
            yield from string_leaves(tree[key], (*path, key))
    elif isinstance(tree, Sequence) and not isinstance(tree, bytes):
        for index, element in enumerate(tree):
            yield from string_leaves(element, (*path, index))
