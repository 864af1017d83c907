"""`python -m infra.preview --stack S [--json]`: render stack S offline and print it.

Runs the real program under Pulumi's mock runtime (no engine, no Docker, nothing deployed).
Secret values are always printed as "[secret]". Exit 2 when the stack or its configuration is
unusable, 1 when rendering fails otherwise.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from infra.cli import OneLineParser, exit_with, reader_gone
from infra.settings import SettingsError

if TYPE_CHECKING:
    from infra.render import RenderedStack

_NOTE = "rendered offline with Pulumi's mock runtime; nothing was deployed"


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = OneLineParser(
        prog="python -m infra.preview",
        description="Render a secure-redis stack offline (secrets redacted).",
    )
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or prod")
    parser.add_argument(
        "--json", action="store_true", help='print a JSON list of {"type","name","props",...}'
    )
    args = parser.parse_args(argv)
    # The program and Pulumi's SDK after the arguments: `--help` or a typo answers at once
    # instead of after 1.5 s of CPU loading them (measured).
    from infra.images import BuildContextChanging  # noqa: PLC0415
    from infra.mock_engine import RenderError  # noqa: PLC0415
    from infra.render import render_stack  # noqa: PLC0415

    try:
        rendered = render_stack(args.stack)
    except (SettingsError, BuildContextChanging) as exc:
        print(f"preview: error: {exc}", file=sys.stderr)
        return 2
    except RenderError as exc:
        print(f"preview: error: could not render stack {args.stack!r}: {exc}", file=sys.stderr)
        return 3  # operational (README, "Exit codes")
    if args.json:
        json.dump(rendered.records(redact=True), out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        _table(rendered, out)
    return 0


def _table(stack: RenderedStack, out: TextIO) -> None:
    from infra.render import format_path  # noqa: PLC0415 - loaded by main() already

    rows = [("TYPE", "NAME", "DOCKER NAME", "SECRET PROPS")]
    for r in stack.resources:
        docker_name = str(r.props.get("name") or r.props.get("imageName") or "") if r.custom else ""
        secrets = ", ".join(format_path(p) for p in r.secret_paths) or "-"
        rows.append((r.type, r.name, docker_name or "-", secrets))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    print(f"stack {stack.stack} ({stack.settings.environment}): {_NOTE}", file=out)
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        print("  ".join(cells) + "  " + row[3], file=out)
    print("\noutputs:", file=out)
    for name, value in stack.outputs_record(redact=True).items():
        print(f"  {name}: {_short(value)}", file=out)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    first = text.strip().splitlines()[0] if text.strip() else text
    return first if len(first) <= 100 and "\n" not in text.strip() else first[:97] + "..."


if __name__ == "__main__":
    try:
        exit_with(main)
    except BrokenPipeError:  # e.g. `| head`: the reader left; nothing more to say
        reader_gone()
        sys.exit(0)
