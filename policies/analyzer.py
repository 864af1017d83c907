"""Drive the real policy pack through pulumi_policy's analyzer gRPC interface, as the engine does.

`PackServer` starts `python -m pulumi.policy <engine address> .` in the pack directory (the
command line the Pulumi CLI's `pulumi-analyzer-policy-python` uses), reads the port the pack
prints, and talks to it with the stubs in `pulumi.runtime.proto`: `GetAnalyzerInfo`,
`Configure` (policy config resolved as the CLI does: schema defaults, then the config file),
`ConfigureStack`, `Analyze` per resource and `AnalyzeStack`. Properties are marshalled like the
engine's `MarshalProperties(KeepUnknowns, KeepSecrets)`: secret leaves travel wrapped in
Pulumi's secret signature, and pulumi_policy unwraps them before the policies see them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import grpc
import jsonschema
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from infra.proppath import PropPath, get
from infra.pulumi_internals import wrap_secret
from policies.records import Record

PACK_DIR: Final = Path(__file__).resolve().parent
# The pack never calls the engine back; pulumi.policy only parses this argument.
_NO_ENGINE: Final = "127.0.0.1:0"
_START_TIMEOUT: Final = 60.0
_LEVEL_NAMES: Final = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}
_LEVEL_VALUES: Final = {name: value for value, name in _LEVEL_NAMES.items()}


class PackError(RuntimeError):
    """The policy pack could not be started or failed while analysing."""


class ConfigError(ValueError):
    """The policy configuration does not fit the pack's policies or their schemas."""


@dataclass(frozen=True)
class PolicyInfo:
    name: str
    description: str
    enforcement: str
    kind: str  # "resource" or "stack"
    config_schema: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Finding:
    policy: str
    level: str
    urn: str
    resource: str
    message: str


def _wrap_secrets(props: Mapping[str, Any], paths: Iterable[PropPath]) -> dict[str, Any]:
    """A deep copy of props with each secret leaf wrapped as the engine marshals secrets."""
    result: Any = _copy(props)
    for path in paths:
        if not path:
            continue
        parent = get(result, path[:-1])
        parent[path[-1]] = wrap_secret(parent[path[-1]])
    return dict(result)


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


def _struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(props)
    return message


def _options(record: Record) -> analyzer_pb2.AnalyzerResourceOptions:
    options = record.options
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=bool(options.get("protect")),
        ignoreChanges=[str(x) for x in options.get("ignoreChanges") or []],
        deleteBeforeReplace=bool(options.get("deleteBeforeReplace")),
        deleteBeforeReplaceDefined="deleteBeforeReplace" in options,
        additionalSecretOutputs=[str(x) for x in options.get("additionalSecretOutputs") or []],
        parent=str(options.get("parent") or ""),
    )


def resolve_config(
    policies: Sequence[PolicyInfo], user: Mapping[str, Any]
) -> dict[str, tuple[str, dict[str, Any]]]:
    """policy -> (enforcement, properties): schema defaults, then `user` (--policy-pack-config).

    As the Pulumi CLI applies a policy pack config (pkg/resource/analyzer/config.go,
    applyConfig): `all` (a level, or an object with `enforcementLevel`) sets every policy's
    level first, then each named policy's level and properties. Stricter than the CLI, which
    ignores them, a name that is no policy of the pack and a property of `all` are errors: a
    typo there would silently leave a policy enforced or a setting at its default.

    Raises:
        ConfigError: an unknown policy or property, or a value its schema does not allow.
    """
    by_name = {p.name: p for p in policies}
    unknown = sorted(k for k in user if k != "all" and k not in by_name)
    if unknown:
        raise ConfigError(f"policy config names no policy of this pack: {', '.join(unknown)}")
    everything = _level_of_all(user["all"]) if "all" in user else None
    resolved: dict[str, tuple[str, dict[str, Any]]] = {}
    for policy in policies:
        level = everything or policy.enforcement
        properties = {k: s["default"] for k, s in policy.config_schema.items() if "default" in s}
        if policy.name in user:
            entry = user[policy.name]
            if isinstance(entry, str):
                level = entry
            elif isinstance(entry, Mapping):
                _validate(policy, entry)
                level = str(entry.get("enforcementLevel", level))
                properties.update({k: v for k, v in entry.items() if k != "enforcementLevel"})
            else:
                raise ConfigError(
                    f"config for policy {policy.name} must be a level or an object, "
                    f'e.g. "advisory" or {{"enforcementLevel": "advisory"}}'
                )
        if level not in _LEVEL_VALUES:
            raise ConfigError(
                f"enforcement level for {policy.name} must be one of {sorted(_LEVEL_VALUES)}"
            )
        resolved[policy.name] = (level, properties)
    return resolved


def _level_of_all(entry: Any) -> str | None:
    """The level `all` gives every policy, or None when it gives none (`{}`)."""
    if isinstance(entry, Mapping):
        extra = sorted(str(k) for k in entry if k != "enforcementLevel")
        if extra:
            raise ConfigError(
                f"policy config all takes only enforcementLevel; it gives {', '.join(extra)}, "
                f"which belongs under a policy's own name"
            )
        if "enforcementLevel" not in entry:
            return None
        entry = entry["enforcementLevel"]
    if not isinstance(entry, str):
        raise ConfigError(
            'config for all must be a level or an object, e.g. "advisory" or '
            '{"enforcementLevel": "advisory"}'
        )
    if entry not in _LEVEL_VALUES:
        raise ConfigError(f"enforcement level for all must be one of {sorted(_LEVEL_VALUES)}")
    return entry


def _validate(policy: PolicyInfo, entry: Mapping[str, Any]) -> None:
    """Validate one policy's config object against its schema, as the Pulumi CLI does."""
    for key in entry:
        if key != "enforcementLevel" and key not in policy.config_schema:
            raise ConfigError(f"policy {policy.name} has no config property {key!r}")
    schema = {
        "type": "object",
        "properties": {**policy.config_schema, "enforcementLevel": {"type": "string"}},
    }
    # Pulumi validates policy config with JSON Schema draft 7 (pulumi-policy's config_schema).
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft7Validator(schema).iter_errors(dict(entry))
    )
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path)
        raise ConfigError(f"{policy.name}.{where}: {error.message}")


class PackServer:
    """One running pack; start it once and analyse as many stacks as needed."""

    def __init__(self, pack_dir: Path = PACK_DIR, env: Mapping[str, str] | None = None) -> None:
        self._pack_dir = pack_dir
        self._env = dict(os.environ if env is None else env)
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        self._channel: grpc.Channel | None = None
        self._stub: Any = None
        self._policies: list[PolicyInfo] | None = None

    def __enter__(self) -> PackServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        command = [sys.executable, "-u", "-m", "pulumi.policy", _NO_ENGINE, "."]
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and pack
            command,
            cwd=self._pack_dir,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        port = self._read_port()
        self._channel = grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)]
        )
        try:
            grpc.channel_ready_future(self._channel).result(timeout=_START_TIMEOUT)
        except grpc.FutureTimeoutError as exc:
            raise PackError(f"the policy pack did not answer on port {port}") from exc
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)

    def _read_port(self) -> int:
        assert self._process is not None
        assert self._process.stdout is not None
        line: list[bytes] = []
        reader = threading.Thread(
            target=lambda: line.append(self._process.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(_START_TIMEOUT)
        text = line[0].decode(errors="replace").strip() if line else ""
        if not (text.isascii() and text.isdigit()):
            self.close()
            raise PackError(
                f"the policy pack in {self._pack_dir} did not start (no port printed): "
                f"{self.stderr_tail() or 'no error output'}"
            )
        return int(text)

    def stderr_tail(self, limit: int = 2000) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-limit:].strip()

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None
        self._stderr.close()

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request)
        except grpc.RpcError as exc:
            detail = exc.details() if hasattr(exc, "details") else str(exc)
            raise PackError(f"the policy pack failed in {method}: {detail}") from exc

    def policies(self) -> list[PolicyInfo]:
        if self._policies is None:
            info = self._call("GetAnalyzerInfo", empty_pb2.Empty())
            self._policies = [
                PolicyInfo(
                    name=p.name,
                    description=p.description,
                    enforcement=_LEVEL_NAMES.get(p.enforcementLevel, "advisory"),
                    kind="stack" if p.policy_type == analyzer_pb2.POLICY_TYPE_STACK else "resource",
                    config_schema=json_format.MessageToDict(p.configSchema.properties),
                )
                for p in info.policies
            ]
        return self._policies

    def configure(self, user_config: Mapping[str, Any]) -> None:
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, (level, properties) in resolve_config(self.policies(), user_config).items():
            entry = request.policyConfig[name]
            entry.enforcementLevel = _LEVEL_VALUES[level]
            entry.properties.update(properties)
        self._call("Configure", request)

    def configure_stack(self, stack: str, project: str) -> None:
        self._call(
            "ConfigureStack",
            analyzer_pb2.AnalyzerStackConfigureRequest(
                stack=stack, project=project, dry_run=True, tags={"pulumi:project": project}
            ),
        )

    def analyze(self, records: Sequence[Record]) -> list[Finding]:
        """Analyze every resource, then the stack; findings in the engine's order."""
        descriptions = {p.name: p.description for p in self.policies()}
        names = {r.urn: r.name for r in records}
        marshalled = [(r, _struct(_wrap_secrets(r.props, r.secret_paths))) for r in records]
        findings: list[Finding] = []
        for record, props in marshalled:
            response = self._call(
                "Analyze",
                analyzer_pb2.AnalyzeRequest(
                    type=record.type,
                    urn=record.urn,
                    name=record.name,
                    properties=props,
                    options=_options(record),
                ),
            )
            findings += [_finding(d, record.urn, names, descriptions) for d in response.diagnostics]
        resources = [
            analyzer_pb2.AnalyzerResource(
                type=record.type,
                urn=record.urn,
                name=record.name,
                properties=props,
                options=_options(record),
                parent=str(record.options.get("parent") or ""),
                dependencies=[str(d) for d in record.options.get("dependencies") or []],
                propertyDependencies={
                    str(key): analyzer_pb2.AnalyzerPropertyDependencies(urns=[str(u) for u in urns])
                    for key, urns in (record.options.get("propertyDependencies") or {}).items()
                },
            )
            for record, props in marshalled
        ]
        response = self._call("AnalyzeStack", analyzer_pb2.AnalyzeStackRequest(resources=resources))
        findings += [_finding(d, d.urn, names, descriptions) for d in response.diagnostics]
        return findings


def _finding(
    diagnostic: Any, urn: str, names: Mapping[str, str], descriptions: Mapping[str, str]
) -> Finding:
    message = diagnostic.message
    prefix = descriptions.get(diagnostic.policyName, diagnostic.description) + "\n"
    # pulumi_policy prefixes every violation with the policy description; keep the sentence.
    message = message.removeprefix(prefix)
    return Finding(
        policy=diagnostic.policyName,
        level=_LEVEL_NAMES.get(diagnostic.enforcementLevel, "advisory"),
        urn=urn,
        resource=names.get(urn, "(stack)") if urn else "(stack)",
        message=message,
    )
