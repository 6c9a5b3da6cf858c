"""``models list|verify|import|pull``: model packs on this machine (local files, no service)."""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from bioverify.errors import ConfigurationError
from bioverify.packs import (
    MANIFEST_NAME,
    PackCatalog,
    PackManifest,
    load_manifest_file,
    missing_files,
    sha256_file,
    verify_pack,
)

DOWNLOAD_TIMEOUT_S = 60.0


def describe(pack: PackManifest) -> dict[str, Any]:
    return {
        "id": pack.id,
        "version": pack.version,
        "modality": pack.modality,
        "licence": pack.licence,
        "installed": not missing_files(pack),
        "calibrated": pack.calibration is not None,
        "default_operating_point": pack.default_operating_point,
        "template_model": pack.template_model,
        "files": [
            {"role": f.role, "path": f.path, "sha256": f.sha256, "size_bytes": f.size_bytes}
            for f in pack.files.values()
        ],
    }


def list_packs(catalog: PackCatalog) -> list[dict[str, Any]]:
    return [describe(p) for p in catalog]


def verify(catalog: PackCatalog, pack_id: str | None) -> list[dict[str, Any]]:
    packs = [catalog.get(pack_id)] if pack_id else list(catalog)
    out = []
    for pack in packs:
        checks = verify_pack(pack)
        out.append(
            {
                "id": pack.id,
                "ok": all(c.ok for c in checks),
                "files": [
                    {"role": c.role, "path": str(c.path), "ok": c.ok, "problem": c.problem}
                    for c in checks
                ],
            }
        )
    return out


def import_pack(source_dir: Path, packs_dir: Path) -> PackManifest:
    """Copy a pack directory (manifest + files) into ``packs_dir/<id>/`` after verifying it."""
    manifest_path = source_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ConfigurationError(f"{source_dir} has no {MANIFEST_NAME}")
    pack = load_manifest_file(manifest_path)
    bad = [c for c in verify_pack(pack) if not c.ok]
    if bad:
        raise ConfigurationError(
            "refusing to import: " + "; ".join(f"{c.path}: {c.problem}" for c in bad)
        )
    target = packs_dir / pack.id
    staging = Path(tempfile.mkdtemp(prefix=f".{pack.id}-", dir=_ensure(packs_dir)))
    for entry in pack.files.values():
        dest = staging / entry.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source_dir / entry.path, dest)
    shutil.copy2(manifest_path, staging / MANIFEST_NAME)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return load_manifest_file(target / MANIFEST_NAME)


def pull(pack: PackManifest, dest_root: Path) -> list[Path]:
    """Download every missing file of a pack from its pinned https URL (``...zip#member`` for a
    file inside a zip archive) and check its sha256 before moving it into place. Needs internet
    access; never runs inside the service."""
    fetched = []
    for entry in pack.files.values():
        if entry.package:
            continue  # shipped inside a Python package: install that package instead
        dest = dest_root / entry.path
        if dest.is_file():
            continue
        url, _, member = entry.url.partition("#")
        if not url.startswith("https://"):
            raise ConfigurationError(f"{entry.path}: no https download URL in the manifest")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmpdir:
            download = Path(tmpdir) / "download"
            try:
                with (
                    urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
                    download.open("wb") as out,
                ):
                    shutil.copyfileobj(response, out, 1 << 20)
            except OSError as exc:
                raise ConfigurationError(f"download of {entry.path} failed: {exc}") from exc
            candidate = download
            if member:
                candidate = Path(tmpdir) / "member"
                try:
                    with zipfile.ZipFile(download) as archive:
                        names = [
                            n for n in archive.namelist() if n.endswith("/" + member) or n == member
                        ]
                        if not names:
                            raise ConfigurationError(f"{url} has no member {member}")
                        with archive.open(names[0]) as src, candidate.open("wb") as out:
                            shutil.copyfileobj(src, out, 1 << 20)
                except zipfile.BadZipFile as exc:
                    raise ConfigurationError(f"{url} is not a zip archive") from exc
            digest = sha256_file(candidate)
            if digest != entry.sha256:
                raise ConfigurationError(
                    f"{entry.path}: downloaded file has sha256 {digest}, the manifest pins "
                    f"{entry.sha256}; not installed"
                )
            candidate.replace(dest)
        fetched.append(dest)
    return fetched


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False)


def describe_built(directory: Path) -> dict[str, Any]:
    """What a pack build wrote: its directory, files (path, sha256, size, whether the manifest
    records that sha256) and the parity check recorded in the manifest's ``build`` section."""
    pack = load_manifest_file(directory / MANIFEST_NAME)
    files = []
    for role, entry in pack.files.items():
        path = pack.file_path(role)
        digest = sha256_file(path)
        files.append(
            {
                "role": role,
                "path": str(path),
                "sha256": digest,
                "size_bytes": path.stat().st_size,
                "matches_manifest": digest == entry.sha256,
            }
        )
    build = pack.raw.get("build")
    parity = build.get("parity_max_abs_diff") if isinstance(build, dict) else None
    return {
        "id": pack.id,
        "directory": str(directory),
        "manifest": str(directory / MANIFEST_NAME),
        "files": files,
        "parity_max_abs_diff": float(parity) if parity is not None else None,
    }
