"""Pack manifests with channel calibrations (e.g. telephone audio): parsing, lookup and the
calibrate tool writing them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bioverify.errors import ConfigurationError
from bioverify.packs import load_manifest_file, parse_manifest
from bioverify.scoring import Calibration, OperatingPoint
from bioverify_admin.calibrate import write_into_manifest


def manifest(**extra: Any) -> dict[str, Any]:
    return {
        "schema": "bioverify.pack/1",
        "id": "voice-test",
        "modality": "voice",
        "files": {},
        "components": {},
        "calibration": {"method": "platt", "slope": 40.0, "intercept": -20.0},
        "operating_points": [
            {"name": "fmr_1e-2", "target_fmr": 0.01, "threshold": 0.4},
            {"name": "fmr_1e-3", "target_fmr": 0.001, "threshold": 0.5},
        ],
        "default_operating_point": "fmr_1e-3",
        **extra,
    }


NARROW: dict[str, dict[str, Any]] = {
    "narrowband": {
        "calibration": {"method": "platt", "slope": 45.0, "intercept": -25.0},
        "operating_points": [
            {"name": "fmr_1e-2", "target_fmr": 0.01, "threshold": 0.55},
            {"name": "fmr_1e-3", "target_fmr": 0.001, "threshold": 0.63},
        ],
    }
}


def test_channel_thresholds_and_calibration_are_looked_up_by_name() -> None:
    pack = parse_manifest(manifest(channel_calibrations=NARROW), root=Path("."), manifest_path=None)
    assert pack.operating_point().threshold == 0.5
    assert pack.operating_point(channel="narrowband").threshold == 0.63
    assert pack.operating_point("fmr_1e-2", "narrowband").threshold == 0.55
    assert pack.operating_point("fmr_1e-2", "no-such-channel").threshold == 0.4
    narrow = pack.calibration_for("narrowband")
    assert narrow is not None and narrow.slope == 45.0
    assert pack.calibration_for("") is pack.calibration
    with pytest.raises(ConfigurationError, match=r"fmr_1e-4.*valid: fmr_1e-2, fmr_1e-3"):
        pack.operating_point("fmr_1e-4", "narrowband")


def test_a_channel_must_define_the_packs_operating_points() -> None:
    partial = {"narrowband": {**NARROW["narrowband"]}}
    partial["narrowband"]["operating_points"] = NARROW["narrowband"]["operating_points"][:1]
    with pytest.raises(ConfigurationError, match="same operating points"):
        parse_manifest(manifest(channel_calibrations=partial), root=Path("."), manifest_path=None)


def test_calibrate_writes_a_channel_without_touching_the_default(tmp_path: Path) -> None:
    path = tmp_path / "bioverify-pack.json"
    path.write_text(json.dumps(manifest()))
    fit = Calibration(slope=45.0, intercept=-25.0)
    points = [OperatingPoint("fmr_1e-2", 0.01, 0.55), OperatingPoint("fmr_1e-3", 0.001, 0.63)]
    write_into_manifest(path, fit, points, "fmr_1e-3", channel="narrowband")
    pack = load_manifest_file(path)
    assert pack.operating_point().threshold == 0.5 and pack.calibration is not None
    assert pack.calibration.slope == 40.0
    assert pack.operating_point(channel="narrowband").threshold == 0.63
    with pytest.raises(ValueError, match="same operating points"):
        write_into_manifest(path, fit, points[:1], "fmr_1e-2", channel="narrowband")
