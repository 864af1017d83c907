"""infra/pulumi_names.py: URNs as the engine writes them."""

from __future__ import annotations

import pytest

from infra.pulumi_names import CONTAINER, STACK, is_urn, make_urn, urn_parts, urn_type


@pytest.mark.parametrize(
    ("urn", "expected"),
    [
        pytest.param(make_urn("dev", "p", STACK, "p-dev"), STACK, id="the-root-stack"),
        pytest.param(make_urn("dev", "p", f"p:infra:RedisServer${CONTAINER}", "c"), CONTAINER,
                     id="a-child-of-a-component"),
        pytest.param(make_urn("dev", "p", CONTAINER, "a::b"), CONTAINER, id="a-name-with-colons"),
    ],
)  # fmt: skip
def test_urn_type__is_the_last_link_of_the_type_chain(urn: str, expected: str) -> None:
    assert urn_type(urn) == expected


@pytest.mark.parametrize("urn", ["", "urn:pulumi:dev::p::t", "urn:other:dev::p::t::n", None])
def test_is_urn__needs_four_parts(urn: object) -> None:
    assert not is_urn(urn)
    if isinstance(urn, str):
        with pytest.raises(ValueError, match="not a Pulumi URN"):
            urn_type(urn)


def test_urn_parts__stack_and_project() -> None:
    assert urn_parts(make_urn("prod", "secure-redis", CONTAINER, "x")) == ("prod", "secure-redis")
    assert urn_parts("urn:pulumi:dev") == ("dev", "")
    assert urn_parts("not-a-urn") == ("", "")
