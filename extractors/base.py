"""What every extractor is, and the registry that the CLI, the cache and the tests read.

An extractor is a small class with a ``name``, a ``version``, the ``modality``
it produces, the pip extra it needs, the distributions whose code or models
shape its output, and a frozen config dataclass. Its identity (name, version,
output-affecting config, and the installed versions of those distributions)
keys the feature cache, so upgrading a library recomputes rather than serving
features the new one would not make.
The registry maps names to import paths, so listing the choices imports no
heavy dependency.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.core.recording import Recording
from sgdtam_pipe.core.timeline import ExtractorIdentity, ModalityResult

REGISTRY: dict[str, dict[str, str]] = {
    "text": {"whisper-minilm": "sgdtam_pipe.extractors.text.embedding:TextExtractor"},
    "audio": {"opensmile": "sgdtam_pipe.extractors.acoustic.opensmile_frames:OpenSmileExtractor",
              "librosa": "sgdtam_pipe.extractors.acoustic.librosa_frames:LibrosaExtractor"},
    "video": {"mediapipe": "sgdtam_pipe.extractors.face.landmarker:FaceExtractor"},
}
DEFAULT_BACKEND: dict[str, str] = {"text": "whisper-minilm", "audio": "opensmile", "video": "mediapipe"}
RUNTIME_FIELDS: frozenset[str] = frozenset({"threads", "workers", "verbose", "device"})


class MissingExtra(ImportError):
    """A stage whose optional dependency is not installed; the message says how to fix it."""

    def __init__(self, package: str, extra: str, hint: str | None = None) -> None:
        fix = hint or f"pip install 'sgdtam-pipe[{extra}]'"
        super().__init__(f"{package} is not installed (needed by the {extra} stage); install it with: {fix}")
        self.extra = extra


def require(module: str, extra: str, hint: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(module.split(".")[0], extra, hint) from exc


@dataclass(frozen=True)
class ExtractorConfig:
    """Base for extractor configs. Fields named in ``RUNTIME_FIELDS`` stay out of the identity."""

    def output_config(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self) if f.name not in RUNTIME_FIELDS}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return value


class Extractor(ABC):
    """One modality from one media file, as a timed stream or a missing marker."""

    name: ClassVar[str]
    version: ClassVar[str]
    modality: ClassVar[str]
    extra: ClassVar[str]
    libraries: ClassVar[tuple[str, ...]] = ()  # distributions whose version can change the output
    Config: ClassVar[type[ExtractorConfig]]

    def __init__(self, config: ExtractorConfig | None = None, **options: Any) -> None:
        self.config = config if config is not None else self.Config(**options)

    def identity(self) -> ExtractorIdentity:
        """Name, version, output config, and ``libraries`` with their installed versions."""
        config = dict(self.config.output_config(), libraries={d: installed_version(d) for d in self.libraries})
        return ExtractorIdentity(self.name, self.version, config)

    def identity_for(self, source: Path) -> ExtractorIdentity:
        """The identity of this extractor's output for the clip at ``source``: :meth:`identity` plus
        any file it reads beside the clip, named by content hash (the cache keys on it)."""
        return self.identity()

    def warm_up(self) -> None:
        """Load what a later call will need, from any thread; the pipeline calls it in the background
        while other work of the same clip runs. Loads nothing by default."""

    @abstractmethod
    def extract(self, source: Recording | str | Path, *, hook: Hook | None = None) -> ModalityResult:
        """Features of a recording (or a path, opened for this call); ``MediaError`` for a file
        that is not usable media."""


@lru_cache(maxsize=None)
def installed_version(distribution: str) -> str:
    """The installed version of ``distribution``, or ``"missing"``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "missing"


def extractor_class(modality: str, backend: str | None = None) -> type[Extractor]:
    """The registered class for ``modality``'s ``backend`` (its default when ``None``)."""
    backend = backend or DEFAULT_BACKEND[modality]
    try:
        target = REGISTRY[modality][backend]
    except KeyError:
        choices = ", ".join(REGISTRY.get(modality, {}))
        raise UserError(f"unknown {modality} backend {backend!r}; choose one of: {choices}") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def create_extractor(modality: str, backend: str | None = None, **options: Any) -> Extractor:
    return extractor_class(modality, backend)(**options)
