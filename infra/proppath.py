"""Paths into property trees, and the walk over their string leaves: defined once.

The render records secret leaves by path and redacts them (`infra/mock_engine.py`,
`infra/rendered_resource.py`), the local applier reports changed paths (`infra/applier/diff.py`),
the checker wraps secret leaves by path (`policies/analyzer.py`), rules search every string
leaf (`policies/rules/secret.py`, `policies/rules/tls.py`) and tests resolve recorded secret
paths; all of them walk and print paths the same way, here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

PropPath = tuple[str | int, ...]
"""A path into a property tree: object keys and list indexes, e.g. ("uploads", 3, "content")."""


_SIMPLE_KEY: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


def format_path(path: PropPath) -> str:
    """`uploads[4].content`; keys that are not identifiers are quoted: `logOpts["max-size"]`."""
    text = ""
    for segment in path:
        if isinstance(segment, int):
            text += f"[{segment}]"
        elif _SIMPLE_KEY.match(segment):
            text += f".{segment}" if text else segment
        else:
            text += f'["{segment}"]'
    return text
