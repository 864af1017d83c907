"""dev and prod differ in strength, never in which controls exist."""

from __future__ import annotations

import datetime as dt

from infra.pulumi_names import CONTAINER
from infra.render import RenderedStack
from tests.unit.conftest import argv_value, container


def _leaf_days(stack: RenderedStack, name: str) -> int:
    leaf = next(r for r in stack.resources if r.name == name)
    not_after = dt.datetime.fromisoformat(leaf.outputs["notAfter"])
    return (not_after - dt.datetime.now(dt.UTC)).days


def test_tls__prod_accepts_tls_1_3_only(dev: RenderedStack, prod: RenderedStack) -> None:
    def protocols(stack: RenderedStack) -> str | None:
        return argv_value(container(stack, "redis").props["command"], "--tls-protocols")

    assert (protocols(dev), protocols(prod)) == ("TLSv1.2 TLSv1.3", "TLSv1.3")


def test_passwords__prod_are_longer(dev: RenderedStack, prod: RenderedStack) -> None:
    def length(stack: RenderedStack) -> int:
        return len(
            next(r for r in stack.resources if r.name == "secrets-app-password").outputs["value"]
        )

    assert (length(dev), length(prod)) == (24, 48)


def test_limits__prod_are_tighter(dev: RenderedStack, prod: RenderedStack) -> None:
    for role in ("redis", "app"):
        d, p = container(dev, role).props, container(prod, role).props
        assert p["memory"] < d["memory"], f"{role}: prod memory must be below dev"
        assert float(p["cpus"]) < float(d["cpus"]), f"{role}: prod cpus must be below dev"


def test_certificates__prod_live_shorter(dev: RenderedStack, prod: RenderedStack) -> None:
    assert _leaf_days(prod, "tls-redis-server") < _leaf_days(dev, "tls-redis-server")
    assert _leaf_days(prod, "tls-ca") < _leaf_days(dev, "tls-ca")


def test_keys__prod_uses_p384(dev: RenderedStack, prod: RenderedStack) -> None:
    def algorithm(stack: RenderedStack) -> str:
        return str(next(r for r in stack.resources if r.name == "tls-ca").props["keyAlgorithm"])

    assert (algorithm(dev), algorithm(prod)) == ("ecdsa-p256", "ecdsa-p384")


def test_app__is_told_its_environment(dev: RenderedStack, prod: RenderedStack) -> None:
    def environment(stack: RenderedStack) -> str:
        envs: list[str] = container(stack, "app").props["envs"]
        return next(e for e in envs if e.startswith("ENVIRONMENT=")).split("=", 1)[1]

    assert (environment(dev), environment(prod)) == ("development", "production")


def test_stacks__publish_different_host_ports(dev: RenderedStack, prod: RenderedStack) -> None:
    def port(stack: RenderedStack) -> int:
        return int(container(stack, "app").props["ports"][0]["external"])

    assert port(dev) != port(prod), "both stacks must be deployable side by side"


def test_stacks__have_their_own_ca(dev: RenderedStack, prod: RenderedStack) -> None:
    assert dev.outputs["caCertificate"] != prod.outputs["caCertificate"]


def test_stacks__share_no_docker_object_name(dev: RenderedStack, prod: RenderedStack) -> None:
    def names(stack: RenderedStack) -> set[str]:
        return {str(r.props.get("name")) for r in stack.resources if r.custom and "name" in r.props}

    assert not names(dev) & names(prod)


def test_stacks__have_the_same_controls(dev: RenderedStack, prod: RenderedStack) -> None:
    """Same resources and the same container properties: only values differ."""

    def shape(stack: RenderedStack) -> list[tuple[str, str, tuple[str, ...]]]:
        return sorted(
            (r.type, r.name, tuple(sorted(r.props)) if r.type == CONTAINER else ())
            for r in stack.resources
        )

    assert shape(dev) == shape(prod)
