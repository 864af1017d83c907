"""The local applier's pure translation: pulumi-docker 5.2.0 props -> docker SDK arguments.

Records are hand-written in the provider's schema (camelCase engine names), so these tests do
not depend on what the program happens to declare today.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from infra.applier.errors import UnsupportedProperty
from infra.applier.translate import (
    Upload,
    destroy_grace_s,
    parse_duration_ns,
    translate_container,
    translate_image,
    translate_network,
    translate_volume,
    upload_archive,
    uploads_archive,
)

MIB = 1024 * 1024


def container(**props: Any) -> dict[str, Any]:
    return {"image": "sha256:" + "a" * 64, "name": "c1", **props}


def translate(tmp_path: Path | None = None, **props: Any) -> Any:
    return translate_container("res", container(**props), root=tmp_path or Path("/"))


# -- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("10s", 10_000_000_000),
        ("500ms", 500_000_000),
        ("1m30s", 90_000_000_000),
        ("1.5s", 1_500_000_000),
        ("0s", 0),
        ("2h", 7_200_000_000_000),
    ],
)
def test_parse_duration__go_durations_to_nanoseconds(text: str, ns: int) -> None:
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize("text", ["10", "s", "10 s", "1x", "5s garbage"])
def test_parse_duration__rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_ns(text)


# -- networks, volumes -----------------------------------------------------------------------


def test_network__internal_labels_options() -> None:
    spec = translate_network(
        "net",
        {
            "name": "n1",
            "driver": "bridge",
            "internal": True,
            "attachable": False,
            "ingress": False,
            "options": {"com.docker.network.bridge.host_binding_ipv4": "127.0.0.1"},
            "labels": [{"label": "io.secure-redis.stack", "value": "dev"}],
        },
    )
    assert spec.name == "n1"
    assert spec.kwargs["internal"] is True
    assert spec.kwargs["labels"] == {"io.secure-redis.stack": "dev"}
    assert spec.kwargs["options"] == {"com.docker.network.bridge.host_binding_ipv4": "127.0.0.1"}


def test_network__custom_ipam_is_an_error_naming_resource_and_property() -> None:
    with pytest.raises(UnsupportedProperty, match=r"^net: cannot honour property `ipamConfigs`"):
        translate_network("net", {"name": "n1", "ipamConfigs": [{"subnet": "10.0.0.0/24"}]})


def test_network__ipam_options_are_named_as_themselves() -> None:
    with pytest.raises(UnsupportedProperty, match=r"^net: cannot honour property `ipamOptions`"):
        translate_network("net", {"name": "n1", "ipamOptions": {"foo": "bar"}})


def test_volume__labels_and_driver() -> None:
    spec = translate_volume(
        "vol", {"name": "v1", "driver": "local", "labels": [{"label": "a", "value": "b"}]}
    )
    assert (spec.name, spec.kwargs["driver"], spec.kwargs["labels"]) == ("v1", "local", {"a": "b"})


def test_unknown_property__is_an_error_not_dropped() -> None:
    with pytest.raises(UnsupportedProperty, match="`shinyNewFlag`"):
        translate_volume("vol", {"name": "v1", "shinyNewFlag": True})


# -- images ----------------------------------------------------------------------------------


def image_props(**build: Any) -> dict[str, Any]:
    return {
        "imageName": "secure-redis-dev-redis:abc",
        "skipPush": True,
        "buildOnPreview": False,
        "build": {"context": "/ctx", "args": {"SECURE_REDIS_STACK": "dev"}, **build},
    }


def test_image__built_locally_with_declared_tag_and_args() -> None:
    spec = translate_image("img", image_props(dockerfile="/ctx/Dockerfile"))
    assert spec.tag == "secure-redis-dev-redis:abc"
    assert spec.build_kwargs["path"] == "/ctx"
    assert spec.build_kwargs["dockerfile"] == "/ctx/Dockerfile"
    assert spec.build_kwargs["buildargs"] == {"SECURE_REDIS_STACK": "dev"}
    assert spec.build_kwargs["tag"] == "secure-redis-dev-redis:abc"


def test_image__default_dockerfile_is_in_the_context() -> None:
    assert translate_image("img", image_props()).build_kwargs["dockerfile"] == "/ctx/Dockerfile"


def test_image__push_is_refused() -> None:
    props = image_props()
    props["skipPush"] = False
    with pytest.raises(UnsupportedProperty, match="`skipPush`"):
        translate_image("img", props)


def test_image__buildkit_only_options_are_refused() -> None:
    with pytest.raises(UnsupportedProperty, match=r"`build\.builderVersion`"):
        translate_image("img", image_props(builderVersion="BuilderBuildKit"))


# -- containers: create and host config ------------------------------------------------------


def test_container__argv_env_user_labels() -> None:
    spec = translate(
        command=["redis-server", "/etc/r.conf"],
        entrypoints=["sh", "-c"],
        envs=["A=1"],
        user="999:999",
        labels=[{"label": "io.secure-redis.role", "value": "redis"}],
    )
    assert spec.create["command"] == ["redis-server", "/etc/r.conf"]
    assert spec.create["entrypoint"] == ["sh", "-c"]
    assert spec.create["environment"] == ["A=1"]
    assert spec.create["user"] == "999:999"
    assert spec.create["labels"] == {"io.secure-redis.role": "redis"}


def test_container__hardening_properties() -> None:
    spec = translate(
        readOnly=True,
        tmpfs={"/tmp": "rw,noexec,size=16m"},
        capabilities={"drops": ["ALL"]},
        securityOpts=["no-new-privileges:true"],
        privileged=False,
        ipcMode="private",
    )
    host = spec.host_config
    assert host["read_only"] is True
    assert host["tmpfs"] == {"/tmp": "rw,noexec,size=16m"}
    assert host["cap_drop"] == ["ALL"]
    assert host["cap_add"] == []
    assert host["security_opt"] == ["no-new-privileges:true"]
    assert host["privileged"] is False
    assert host["ipc_mode"] == "private"


def test_container__limits_in_megabytes_and_cpus() -> None:
    host = translate(memory=256, memorySwap=256, cpus="0.5", cpuShares=512).host_config
    assert host["mem_limit"] == 256 * MIB
    assert host["memswap_limit"] == 256 * MIB
    assert host["nano_cpus"] == 500_000_000
    assert host["cpu_shares"] == 512


def test_container__unlimited_swap_is_passed_through() -> None:
    assert translate(memory=64, memorySwap=-1).host_config["memswap_limit"] == -1


def test_container__restart_policy_default_is_no() -> None:
    assert translate().host_config["restart_policy"] == {"Name": "no"}
    policy = translate(restart="on-failure", maxRetryCount=5).host_config["restart_policy"]
    assert policy == {"Name": "on-failure", "MaximumRetryCount": 5}


def test_container__healthcheck_durations_in_nanoseconds() -> None:
    spec = translate(
        healthcheck={
            "tests": ["CMD-SHELL", "true"],
            "interval": "10s",
            "timeout": "5s",
            "startPeriod": "1m",
            "retries": 5,
        }
    )
    assert spec.create["healthcheck"] == {
        "test": ["CMD-SHELL", "true"],
        "interval": 10_000_000_000,
        "timeout": 5_000_000_000,
        "start_period": 60_000_000_000,
        "retries": 5,
    }


def test_container__ports_keep_the_declared_host_ip() -> None:
    spec = translate(ports=[{"internal": 8080, "external": 18080, "ip": "127.0.0.1"}])
    assert spec.create["ports"] == [(8080, "tcp")]
    assert spec.host_config["port_bindings"] == {"8080/tcp": [("127.0.0.1", 18080)]}


def test_container__port_without_ip_gets_the_providers_default() -> None:
    spec = translate(ports=[{"internal": 8080, "external": 18080}])
    assert spec.host_config["port_bindings"] == {"8080/tcp": [("0.0.0.0", 18080)]}


def test_container__mounts() -> None:
    (mount,) = translate(
        mounts=[{"type": "volume", "source": "v1", "target": "/etc/x", "readOnly": True}]
    ).host_config["mounts"]
    assert (mount["Type"], mount["Source"], mount["Target"], mount["ReadOnly"]) == (
        "volume",
        "v1",
        "/etc/x",
        True,
    )


def test_container__log_config() -> None:
    log = translate(logDriver="json-file", logOpts={"max-size": "10m"}).host_config["log_config"]
    assert (log["Type"], log["Config"]) == ("json-file", {"max-size": "10m"})


def test_container__networks_advanced_first_at_creation_with_aliases() -> None:
    spec = translate(
        networksAdvanced=[{"name": "backend", "aliases": ["redis"]}, {"name": "frontend"}]
    )
    assert spec.host_config["network_mode"] == "backend"
    assert [(e.network, e.aliases) for e in spec.endpoints] == [
        ("backend", ("redis",)),
        ("frontend", ()),
    ]


def test_container__network_mode_none() -> None:
    spec = translate(networkMode="none")
    assert spec.host_config["network_mode"] == "none"
    assert spec.endpoints == ()


def test_container__network_mode_and_networks_advanced_together_are_refused() -> None:
    with pytest.raises(UnsupportedProperty, match="`networkMode`"):
        translate(networkMode="none", networksAdvanced=[{"name": "backend"}])


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        ("devices", [{"hostPath": "/dev/kmsg"}]),
        ("volumes", [{"containerPath": "/x", "hostPath": "/etc"}]),
        ("gpus", "all"),
        ("logs", True),
        ("someFutureProperty", 1),
    ],
)
def test_container__unhonoured_property_is_an_error_naming_it(prop: str, value: Any) -> None:
    with pytest.raises(UnsupportedProperty) as info:
        translate(**{prop: value})
    assert info.value.resource == "res"
    assert info.value.prop == prop


def test_container__nested_unknown_property_names_its_path() -> None:
    with pytest.raises(UnsupportedProperty, match=r"`healthcheck\.startInterval`"):
        translate(healthcheck={"tests": ["CMD", "true"], "startInterval": "1s"})


def test_container__empty_argv_word_is_refused_like_the_provider() -> None:
    with pytest.raises(UnsupportedProperty, match="`command`"):
        translate(command=["redis-server", ""])


# -- containers: lifecycle -------------------------------------------------------------------


def test_lifecycle__provider_defaults() -> None:
    life = translate().lifecycle
    assert (life.start, life.attach, life.must_run, life.wait, life.wait_timeout_s) == (
        True,
        False,
        True,
        False,
        60,
    )


def test_lifecycle__one_shot_initialiser() -> None:
    life = translate(attach=True, mustRun=False, restart="no").lifecycle
    assert (life.attach, life.must_run) == (True, False)


def test_lifecycle__wait_for_healthy() -> None:
    life = translate(wait=True, waitTimeout=120, healthcheck={"tests": ["CMD", "true"]}).lifecycle
    assert (life.wait, life.wait_timeout_s) == (True, 120)


@pytest.mark.parametrize(
    ("props", "prop"),
    [
        ({"attach": True}, "mustRun"),  # mustRun defaults to true; an attached container exits
        ({"attach": True, "mustRun": False, "wait": True}, "wait"),
        ({"start": False, "wait": True}, "wait"),
        ({"start": False, "attach": True, "mustRun": False}, "attach"),
        ({"start": False, "mustRun": True}, "mustRun"),
    ],
)
def test_lifecycle__contradictions_are_refused_before_anything_runs(
    props: dict[str, Any], prop: str
) -> None:
    with pytest.raises(UnsupportedProperty, match=rf"cannot honour property `{prop}`"):
        translate(**props)


def test_lifecycle__destroy_grace_seconds_at_create_and_from_the_recorded_inputs() -> None:
    """pulumi-docker's `destroyGraceSeconds` (the app declares 10 s, infra/components/app.py):
    read at create, and at removal from the state's inputs, the same way (a JSON double)."""
    assert translate().lifecycle.destroy_grace_s == 0
    assert translate(destroyGraceSeconds=10.0).lifecycle.destroy_grace_s == 10
    assert destroy_grace_s("app", {"destroyGraceSeconds": 10.0}) == 10
    assert destroy_grace_s("app", {}) == 0
    with pytest.raises(UnsupportedProperty, match="destroyGraceSeconds") as refused:
        destroy_grace_s("app", {"destroyGraceSeconds": "soon-7f3a"})
    assert "soon-7f3a" not in str(refused.value)


def test_lifecycle__not_started_is_allowed_alone() -> None:
    assert translate(start=False).lifecycle.start is False


@pytest.mark.parametrize(
    ("props", "path"),
    [
        ({"hosts": [{"host": "h", "ip": "10.0.0.1", "aliases": ["x"]}]}, "hosts[0].aliases"),
        ({"ulimits": [{"name": "nofile", "soft": 1, "hard": 2, "x": 1}]}, "ulimits[0].x"),
    ],
)
def test_container__unknown_keys_in_list_items_are_errors(props: dict[str, Any], path: str) -> None:
    with pytest.raises(UnsupportedProperty, match=re.escape(f"`{path}`")):
        translate(**props)


@pytest.mark.parametrize(
    ("props", "path"),
    [
        ({"memory": "lots-s3cret"}, "memory"),
        ({"ports": [{"internal": "eighty-s3cret"}]}, "ports[0].internal"),
        ({"healthcheck": {"tests": ["CMD", "true"], "retries": "s3cret"}}, "healthcheck.retries"),
        ({"waitTimeout": "s3cret"}, "waitTimeout"),
        ({"uploads": [{"file": "/k", "contentBase64": "s3cret!"}]}, "uploads[0].contentBase64"),
        (
            {"uploads": [{"file": "/k", "content": "s3cret", "permissions": "s3cret"}]},
            "uploads[0].permissions",
        ),
    ],
)
def test_container__an_unreadable_number_names_the_property_not_the_value(
    props: dict[str, Any], path: str
) -> None:
    with pytest.raises(UnsupportedProperty, match=re.escape(f"`{path}`")) as caught:
        translate(**props)
    assert "s3cret" not in str(caught.value)


# -- uploads: exactly as the provider sends them ---------------------------------------------


def members(upload: Upload) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(upload_archive(upload))) as archive:
        return archive.getmembers()


def test_uploads_archive__every_upload_in_order_as_its_own_archive_has_it() -> None:
    uploads = translate(
        uploads=[
            {"file": "/etc/a.conf", "content": "a"},
            {"file": "/run/k.pem", "content": "kk", "permissions": "0400", "owner": "7"},
            {"file": "/etc/a.conf", "content": "again"},
        ]
    ).uploads
    with tarfile.open(fileobj=io.BytesIO(uploads_archive(uploads, mtime=5))) as archive:
        together = [(m.name, m.mode, m.uid, m.size, m.mtime) for m in archive.getmembers()]
        last = archive.extractfile(archive.getmembers()[-1])
        assert last is not None
        assert last.read() == b"again", "a later upload of the same path wins, as one by one"
    one_by_one = []
    for upload in uploads:
        with tarfile.open(fileobj=io.BytesIO(upload_archive(upload, mtime=5))) as archive:
            one_by_one += [(m.name, m.mode, m.uid, m.size, m.mtime) for m in archive.getmembers()]
    assert together == one_by_one
    assert [name for name, *_ in together] == ["/etc/a.conf", "/run/k.pem", "/etc/a.conf"]


def test_upload__default_is_0644_root_owned() -> None:
    (upload,) = translate(uploads=[{"file": "/etc/x.conf", "content": "port 0\n"}]).uploads
    assert (upload.mode, upload.uid, upload.gid) == (0o644, 0, 0)
    assert upload.content == b"port 0\n"


def test_upload__executable_is_0744() -> None:
    (upload,) = translate(uploads=[{"file": "/x", "content": "#!", "executable": True}]).uploads
    assert upload.mode == 0o744


def test_upload__declared_permissions_and_numeric_owner() -> None:
    (upload,) = translate(
        uploads=[
            {
                "file": "/run/i/server.key",
                "content": "k",
                "permissions": "0400",
                "owner": "999",
                "group": "999",
            }
        ]
    ).uploads
    (member,) = members(upload)
    assert member.name == "/run/i/server.key"  # absolute, as the provider names it; Docker
    # extracts the archive at "/"
    assert (member.mode, member.uid, member.gid, member.size) == (0o400, 999, 999, 1)
    assert member.isfile()


def test_upload__an_owner_of_non_ascii_digits_is_a_name_not_a_crash() -> None:
    """'²' is a digit to str.isdigit() that int() refuses: it raised ValueError; as a name
    this host does not know, it is the usual one-line refusal."""
    with pytest.raises(UnsupportedProperty, match="no such owner on this host"):
        translate(uploads=[{"file": "/a", "content": "1", "owner": "\u00b2"}])


def test_upload__one_tar_per_file_with_a_single_member() -> None:
    spec = translate(uploads=[{"file": "/a", "content": "1"}, {"file": "/b", "content": "2"}])
    assert [len(members(u)) for u in spec.uploads] == [1, 1]


def test_upload__base64_and_source(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"from file")
    spec = translate(
        tmp_path,
        uploads=[
            {"file": "/a", "contentBase64": "AAEC"},
            {"file": "/b", "source": "f.txt", "sourceHash": "h"},
        ],
    )
    assert [u.content for u in spec.uploads] == [b"\x00\x01\x02", b"from file"]


def test_upload__two_content_sources_are_refused() -> None:
    with pytest.raises(UnsupportedProperty, match=r"`uploads\[0\]`"):
        translate(uploads=[{"file": "/a", "content": "1", "contentBase64": "AA=="}])


def test_upload__content_never_appears_in_the_spec_repr() -> None:
    spec = translate(uploads=[{"file": "/k", "content": "TOP-SECRET-KEY-MATERIAL"}])
    assert "TOP-SECRET" not in repr(spec)
    assert "TOP-SECRET" not in repr(spec.uploads[0])
