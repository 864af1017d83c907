"""infra.images: the image tag follows what `docker build` sends, nothing else
(context_digest); a context that lacks what its Dockerfile copies is found before a build
(missing_build_inputs)."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest

from infra.images import (
    BuildContextChanging,
    context_digest,
    copy_sources,
    missing_build_inputs,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A copy of the app's build context rules (its real Dockerfile and .dockerignore) with a
    wheelhouse of one wheel and the sources beside it, as scripts/build-app-image.sh leaves it."""
    app = tmp_path / "app"
    (app / "wheelhouse").mkdir(parents=True)
    for name in ("Dockerfile", ".dockerignore"):
        shutil.copy(ROOT / "app" / name, app / name)
    (app / "wheelhouse" / "secure_cache-0.1.0-py3-none-any.whl").write_bytes(b"wheel v1")
    (app / "wheelhouse" / "requirements.hashed.txt").write_text("secure_cache==0.1.0\n")
    (app / "secure_cache").mkdir()
    (app / "secure_cache" / "core.py").write_text("x = 1\n")
    return app


@pytest.mark.parametrize(
    "leftover",
    [
        "build/lib/secure_cache/core.py",
        "secure_cache.egg-info/PKG-INFO",
        "wheelhouse/.inputs.sha256",
        "secure_cache/core.py",
        "README.md",
    ],
)
def test_files_the_context_ignores__leave_the_digest(context: Path, leftover: str) -> None:
    # What a wheel build leaves behind (or a source edit not yet built into a wheel) never
    # reaches the image, so it must not retag it: a tag moving mid-run replaced containers.
    before = context_digest(context)
    path = context / leftover
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("changed")
    assert context_digest(context) == before


@pytest.mark.parametrize(
    "changed",
    ["wheelhouse/secure_cache-0.1.0-py3-none-any.whl", "wheelhouse/requirements.hashed.txt",
     "Dockerfile"],
)  # fmt: skip
def test_files_the_build_sends__change_the_digest(context: Path, changed: str) -> None:
    before = context_digest(context)
    (context / changed).write_bytes(b"other bytes")
    assert context_digest(context) != before


def test_a_context_without_dockerignore__counts_every_file(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    before = context_digest(tmp_path)
    (tmp_path / "extra.conf").write_text("x")
    assert context_digest(tmp_path) != before


# -- a context that changes while it is read -------------------------------------------------

WHEEL = "wheelhouse/secure_cache-0.1.0-py3-none-any.whl"


def test_a_file_gone_between_its_listing_and_its_read__the_context_is_read_again(
    context: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wheelhouse filled again meanwhile (scripts/build-app-image.sh removes the old wheels
    first): the wheel was listed, then gone when read. That was a FileNotFoundError out of
    the render (and `apply up` ended at exit 3, "an error the applier does not handle"). The
    removal is made to happen at exactly that moment: inside the read of the file."""
    real_read = Path.read_bytes
    wheel = context / WHEEL

    def removed_as_it_is_read(path: Path) -> bytes:
        if path == wheel and wheel.exists():
            wheel.unlink()  # between the listing and this read
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", removed_as_it_is_read)
    digest = context_digest(context)
    monkeypatch.undo()
    assert digest == context_digest(context), "the digest of the context as it is now"


def test_a_context_that_keeps_changing__is_one_clear_refusal(
    context: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_read = Path.read_bytes
    reads: list[Path] = []

    def always_gone(path: Path) -> bytes:
        if path == context / WHEEL:
            reads.append(path)
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", always_gone)
    with pytest.raises(BuildContextChanging) as refused:
        context_digest(context)
    said = str(refused.value)
    assert f"the build context {context} changed while it was read: {WHEEL} was listed" in said
    assert "scripts/build-app-image.sh" in said
    assert "nothing was built or changed" in said
    assert 2 <= len(reads) <= 5, "read again, a bounded number of times"


# -- what the Dockerfile copies from the context ------------------------------------------------


def test_copy_sources__reads_copy_and_add_but_not_copies_from_a_stage() -> None:
    dockerfile = (
        "FROM debian AS build\n"
        "COPY wheelhouse/ /tmp/wheelhouse/\n"
        "COPY --chown=1:1 a.txt \\\n    b.txt /dst/\n"
        'ADD ["c d.txt", "/dst/"]\n'
        "COPY --from=build /opt/x /opt/x\n"
        "RUN echo COPY nothing\n"
    )
    assert copy_sources(dockerfile) == ["wheelhouse/", "a.txt", "b.txt", "c d.txt"]


def test_missing_build_inputs__none_when_the_wheelhouse_is_filled(context: Path) -> None:
    assert missing_build_inputs(context, context / "Dockerfile") == []


def test_missing_build_inputs__a_fresh_checkout_has_no_wheelhouse(context: Path) -> None:
    """The app's real Dockerfile and .dockerignore: `COPY wheelhouse/` finds nothing."""
    shutil.rmtree(context / "wheelhouse")
    assert missing_build_inputs(context, context / "Dockerfile") == ["wheelhouse/"]


def test_missing_build_inputs__files_the_context_ignores_do_not_count(context: Path) -> None:
    """A wheelhouse left with only its stamp (a fill that failed part-way) sends nothing."""
    for wheel in (context / "wheelhouse").iterdir():
        wheel.unlink()
    (context / "wheelhouse" / ".inputs.sha256").write_text("x\n")
    assert missing_build_inputs(context, context / "Dockerfile") == ["wheelhouse/"]
