"""Model packs: a manifest (JSON) naming model files with sha256 and licence, the adapters and
preprocessing that use them, and the pack's calibration and operating points.

Where a pack's files live:
- built-in manifests (``bioverify/packs/*.json``) name files relative to the model directory
  (``BIOVERIFY_MODEL_DIR``), or inside an installed Python package (``"package": "..."``);
- imported packs are directories ``<packs dir>/<pack id>/`` holding ``bioverify-pack.json`` and
  the files it names, relative to that directory.

Nothing here downloads; ``bioverify-admin models pull`` is the separate step that does.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from bioverify.errors import ConfigurationError
from bioverify.scoring import Calibration, OperatingPoint, select_operating_point

logger = logging.getLogger(__name__)

T = TypeVar("T")

MANIFEST_NAME = "bioverify-pack.json"
SCHEMA = "bioverify.pack/1"


FITTING_DIGEST = "sha256-16"
"""How a pack names the samples it was fitted on: the first 16 hex digits of each file's
SHA-256 (enough to recognise a file, not to recover anything from it)."""


def fitting_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def fitting_samples_block(files: Iterator[bytes] | list[bytes], fitted_on: str) -> dict[str, Any]:
    """The manifest's ``fitting_samples`` block for the files a pack was fitted on."""
    digests = sorted({fitting_digest(data) for data in files})
    return {"digest": FITTING_DIGEST, "fitted_on": fitted_on, "digests": digests}


def fitting_digests(raw: Mapping[str, Any]) -> frozenset[str] | None:
    """The digests of the samples a pack was fitted on, or None when the pack does not say."""
    block = raw.get("fitting_samples")
    if not isinstance(block, Mapping) or block.get("digest") != FITTING_DIGEST:
        return None
    return frozenset(str(d) for d in block.get("digests", ()))


def fitting_samples_digest(raw: Mapping[str, Any]) -> str:
    """SHA-256 of a manifest's ``fitting_samples`` block as canonical JSON; "" without one."""
    block = raw.get("fitting_samples")
    if block is None:
        return ""
    canonical = json.dumps(block, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def builtin_manifest_data(pack_id: str) -> dict[str, Any] | None:
    """The raw built-in manifest of ``pack_id`` shipped with this installation, if any."""
    entry = resources.files("bioverify") / "packs" / f"{pack_id}.json"
    if not entry.is_file():
        return None
    data: dict[str, Any] = json.loads(entry.read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class PackFile:
    role: str
    path: str
    sha256: str
    size_bytes: int
    licence: str = ""
    source: str = ""
    url: str = ""
    package: str = ""  # name of a Python package whose directory is this file's root


@dataclass(frozen=True)
class ComponentSpec:
    """Which adapter runs a component (detector, embedder, ...) and with which parameters."""

    adapter: str
    files: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)


NARROWBAND_CHANNEL = "narrowband"
"""The channel of telephone-band voice (8 kHz, G.711), fitted by `calibrate voice --telephony`."""


@dataclass(frozen=True)
class ChannelCalibration:
    calibration: Calibration
    operating_points: tuple[OperatingPoint, ...]


@dataclass(frozen=True)
class PackManifest:
    id: str
    version: str
    modality: str
    description: str
    licence: str
    files: Mapping[str, PackFile]
    components: Mapping[str, ComponentSpec]
    embedding_dim: int
    calibration: Calibration | None
    operating_points: tuple[OperatingPoint, ...]
    default_operating_point: str
    root: Path
    manifest_path: Path | None
    raw: Mapping[str, Any]
    # Calibration and thresholds for another capture channel (e.g. "narrowband": telephone
    # audio), whose impostor scores sit elsewhere; same operating point names as the default.
    channels: Mapping[str, ChannelCalibration] = field(default_factory=dict)

    @property
    def template_model(self) -> str:
        """Identity of the embedding model: templates made by it only match its own embeddings."""
        embedder = self.components.get("embedder") or self.components.get("encoder")
        if embedder is None or not embedder.files:
            return f"{self.id}@{self.version}"
        file = self.files[embedder.files[0]]
        return f"{embedder.adapter}:{Path(file.path).stem}:{file.sha256[:12]}"

    def file_path(self, role: str) -> Path:
        try:
            entry = self.files[role]
        except KeyError as exc:
            raise ConfigurationError(f"pack {self.id} has no file for {role!r}") from exc
        return resolve_file(entry, self.root)

    def calibration_for(self, channel: str = "") -> Calibration | None:
        """The calibration for ``channel`` where the pack has one, else the default."""
        special = self.channels.get(channel)
        return special.calibration if special is not None else self.calibration

    def operating_points_for(self, channel: str = "") -> tuple[OperatingPoint, ...]:
        """The operating points for ``channel`` where the pack has them, else the default."""
        special = self.channels.get(channel)
        return special.operating_points if special is not None else self.operating_points

    def operating_point(self, name: str = "", channel: str = "") -> OperatingPoint:
        wanted = name or self.default_operating_point
        try:
            return select_operating_point(self.operating_points_for(channel), wanted)
        except KeyError as exc:
            raise ConfigurationError(f"pack {self.id}: {exc.args[0]}") from exc

    def loosest_operating_point(self) -> OperatingPoint:
        """The operating point with the highest target false-match rate."""
        if not self.operating_points:
            raise ConfigurationError(f"pack {self.id} has no operating points")
        return max(self.operating_points, key=lambda p: p.target_fmr)


ComponentFactory = Callable[[PackManifest, ComponentSpec, int], T]


def build_component(
    registry: Mapping[str, ComponentFactory[T]], kind: str, pack: PackManifest, threads: int
) -> T:
    """Build the pack's ``kind`` component with the adapter its manifest names."""
    try:
        spec = pack.components[kind]
    except KeyError as exc:
        raise ConfigurationError(f"pack {pack.id} has no {kind} component") from exc
    try:
        factory = registry[spec.adapter]
    except KeyError as exc:
        valid = ", ".join(sorted(registry))
        raise ConfigurationError(
            f"pack {pack.id}: unknown {kind} adapter {spec.adapter!r}; valid: {valid}"
        ) from exc
    try:
        return factory(pack, spec, threads)
    except TypeError as exc:
        raise ConfigurationError(f"pack {pack.id}: bad {kind} parameters ({exc})") from exc


def resolve_file(entry: PackFile, root: Path) -> Path:
    if entry.package:
        spec = importlib.util.find_spec(entry.package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigurationError(
                f"model file {entry.path} comes with the Python package {entry.package!r}, "
                "which is not installed (pip install it)"
            )
        return Path(next(iter(spec.submodule_search_locations))) / entry.path
    return root / entry.path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def parse_manifest(
    data: Mapping[str, Any], *, root: Path, manifest_path: Path | None
) -> PackManifest:
    where = str(manifest_path) if manifest_path else "built-in manifest"
    try:
        if data.get("schema") != SCHEMA:
            raise ConfigurationError(f"{where}: schema must be {SCHEMA!r}")
        files = {
            role: PackFile(
                role=role,
                path=str(entry["path"]),
                sha256=str(entry["sha256"]).lower(),
                size_bytes=int(entry.get("size_bytes", 0)),
                licence=str(entry.get("licence", "")),
                source=str(entry.get("source", "")),
                url=str(entry.get("url", "")),
                package=str(entry.get("package", "")),
            )
            for role, entry in dict(data["files"]).items()
        }
        components = {
            name: ComponentSpec(
                adapter=str(spec["adapter"]),
                files=tuple(str(f) for f in spec.get("files", ())),
                params=dict(spec.get("params", {})),
            )
            for name, spec in dict(data["components"]).items()
        }
        for name, spec in components.items():
            for role in spec.files:
                if role not in files:
                    raise ConfigurationError(f"{where}: component {name} names unknown file {role}")
        calibration = (
            Calibration.from_dict(data["calibration"]) if data.get("calibration") else None
        )
        points = tuple(OperatingPoint.from_dict(p) for p in data.get("operating_points", ()))
        default_point = str(data.get("default_operating_point", points[0].name if points else ""))
        if points and default_point not in {p.name for p in points}:
            raise ConfigurationError(f"{where}: default operating point {default_point} unknown")
        channels = {
            str(name): ChannelCalibration(
                calibration=Calibration.from_dict(block["calibration"]),
                operating_points=tuple(
                    OperatingPoint.from_dict(p) for p in block["operating_points"]
                ),
            )
            for name, block in dict(data.get("channel_calibrations", {})).items()
        }
        for name, channel in channels.items():
            if {p.name for p in channel.operating_points} != {p.name for p in points}:
                raise ConfigurationError(
                    f"{where}: channel {name} must define the same operating points as the pack"
                )
        return PackManifest(
            id=str(data["id"]),
            version=str(data.get("version", "1")),
            modality=str(data["modality"]),
            description=str(data.get("description", "")),
            licence=str(data.get("licence", "")),
            files=files,
            components=components,
            embedding_dim=int(data.get("embedding_dim", 0)),
            calibration=calibration,
            operating_points=points,
            default_operating_point=default_point,
            root=root,
            manifest_path=manifest_path,
            raw=dict(data),
            channels=channels,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"{where}: invalid pack manifest ({exc})") from exc


def load_manifest_file(path: Path, *, root: Path | None = None) -> PackManifest:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read pack manifest {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"pack manifest {path} is not valid JSON") from exc
    return parse_manifest(data, root=root if root is not None else path.parent, manifest_path=path)


def builtin_manifests(model_dir: Path) -> Iterator[PackManifest]:
    """Manifests shipped with bioverify; their files are looked up in ``model_dir``."""
    folder = resources.files("bioverify") / "packs"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            yield parse_manifest(data, root=model_dir, manifest_path=Path(str(entry)))


def imported_manifests(packs_dir: Path) -> Iterator[PackManifest]:
    if not packs_dir.is_dir():
        return
    for manifest in sorted(packs_dir.glob(f"*/{MANIFEST_NAME}")):
        yield load_manifest_file(manifest)


class PackCatalog:
    """All packs this installation knows: built-in ones and those imported into ``packs_dir``."""

    def __init__(self, model_dir: Path, packs_dir: Path) -> None:
        self.model_dir = model_dir
        self.packs_dir = packs_dir
        self._packs: dict[str, PackManifest] = {}
        for pack in (*builtin_manifests(model_dir), *imported_manifests(packs_dir)):
            self._packs[pack.id] = pack  # an imported pack may override a built-in one

    def __iter__(self) -> Iterator[PackManifest]:
        return iter(self._packs.values())

    def get(self, pack_id: str) -> PackManifest:
        try:
            return self._packs[pack_id]
        except KeyError as exc:
            valid = ", ".join(sorted(self._packs)) or "none"
            raise ConfigurationError(
                f"unknown model pack {pack_id!r}; known packs: {valid}"
            ) from exc

    def for_modality(self, modality: str) -> list[PackManifest]:
        """Packs of one modality, in the manifest's preference order (``priority``, lower first)."""
        packs = [p for p in self._packs.values() if p.modality == modality]
        return sorted(packs, key=lambda p: (int(p.raw.get("priority", 100)), p.id))

    def choose(self, modality: str, wanted: str) -> PackManifest:
        """The named pack, or with ``auto`` the first pack whose files are all present."""
        if wanted != "auto":
            return self.get(wanted)
        missing: list[str] = []
        for pack in self.for_modality(modality):
            absent = missing_files(pack)
            if not absent:
                return pack
            missing.append(f"{pack.id} (missing {', '.join(absent)})")
        raise ConfigurationError(
            f"no usable {modality} model pack: " + ("; ".join(missing) or "none installed")
        )


def missing_files(pack: PackManifest) -> list[str]:
    absent = []
    for entry in pack.files.values():
        try:
            path = resolve_file(entry, pack.root)
        except ConfigurationError:
            absent.append(entry.path)
            continue
        if not path.is_file():
            absent.append(str(path))
    return absent


@dataclass(frozen=True)
class FileCheck:
    role: str
    path: Path
    ok: bool
    problem: str = ""


def verify_pack(pack: PackManifest) -> list[FileCheck]:
    """Check every file of a pack: present, right size, right sha256."""
    checks = []
    for entry in pack.files.values():
        try:
            path = resolve_file(entry, pack.root)
        except ConfigurationError as exc:
            checks.append(FileCheck(entry.role, Path(entry.path), False, str(exc)))
            continue
        if not path.is_file():
            checks.append(FileCheck(entry.role, path, False, "file not found"))
            continue
        size = path.stat().st_size
        if entry.size_bytes and size != entry.size_bytes:
            checks.append(
                FileCheck(entry.role, path, False, f"size {size} B, expected {entry.size_bytes} B")
            )
            continue
        digest = sha256_file(path)
        if digest != entry.sha256:
            checks.append(
                FileCheck(
                    entry.role, path, False, f"sha256 {digest[:16]}… expected {entry.sha256[:16]}…"
                )
            )
            continue
        checks.append(FileCheck(entry.role, path, True))
    return checks


def ensure_verified(pack: PackManifest) -> None:
    """Refuse a pack with a missing or tampered file, naming the file and the problem."""
    bad = [c for c in verify_pack(pack) if not c.ok]
    if bad:
        details = "; ".join(f"{c.path}: {c.problem}" for c in bad)
        raise ConfigurationError(
            f"model pack {pack.id} failed verification ({details}). Refusing to serve with a "
            "missing or modified model file: restore it, or re-import the pack."
        )
    logger.info("model pack %s verified (%d files)", pack.id, len(pack.files))
