"""Resources made by hand, as the render records them, for the local applier's tests."""

from __future__ import annotations

from typing import Any

from infra.rendered_resource import RenderedResource


def declared(
    type_: str,
    name: str,
    props: dict[str, Any],
    *,
    deps: tuple[str, ...] = (),
    outputs: dict[str, Any] | None = None,
    custom: bool = True,
) -> RenderedResource:
    """One resource named `name` (URN `urn:<name>`), depending on the resources named `deps`."""
    return RenderedResource(
        type=type_,
        name=name,
        urn=f"urn:{name}",
        props=props,
        secret_paths=(),
        options={"dependencies": [f"urn:{d}" for d in deps]},
        custom=custom,
        outputs=outputs or {},
    )
