"""Voice spoof decision: AASIST and the explainable signals, fused by the pack's logistic
model, reported as checks (the same shape as face liveness).

``VoiceSpoofChecker.assess`` scores one clip; live calls are followed window by window by
:class:`bioverify.usecases.voice.StreamSpoofMonitor`, which calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bioverify.antispoof.bandwidth import Bandwidth, assess_bandwidth
from bioverify.antispoof.fusion import LogisticFusion
from bioverify.antispoof.ports import Check, SpoofAssessment, VoiceSpoofModel
from bioverify.antispoof.voice_signals import SIGNAL_NAMES, Signal, compute_signals
from bioverify.errors import AudioTooShort, ConfigurationError
from bioverify.scoring import sigmoid
from bioverify.voice.ports import SpeechSegment, Waveform
from bioverify.voice.quality import shortfall

AASIST_FEATURE = "aasist"
BANDWIDTH_CHECK = "bandwidth"
"""The informational check naming the model used: wideband or telephone band."""
NARROWBAND_FUSION_KEY = "fusion_narrowband"
"""The pack manifest block of the telephone-band fusion (``fusion`` is the wideband one)."""
AASIST_CLIP = 15.0
"""AASIST log-odds are clipped to ±15 before fusion (beyond that the model is saturated)."""
MIN_SPEECH_S = 1.0

_CODES = {
    AASIST_FEATURE: "VOICE_SPOOF_MODEL",
    "mel_modulation": "VOICE_OVERSMOOTHED",
    "spectral_contrast": "VOICE_FLAT_SPECTRUM",
    "hf_contrast": "VOICE_VOCODER_NOISE",
    "hf_ratio": "VOICE_BAND_LIMIT",
    "hf_cliff": "VOICE_BAND_EDGE",
    "hf_flatness": "VOICE_VOCODER_NOISE",
    "f0_variation": "VOICE_FLAT_PROSODY",
    "f0_perturbation": "VOICE_REGULAR_PHONATION",
    "amp_perturbation": "VOICE_REGULAR_PHONATION",
    "noise_floor": "VOICE_DIGITAL_SILENCE",
    "zero_fraction": "VOICE_DIGITAL_SILENCE",
    "lf_ratio": "VOICE_REPLAY_CHANNEL",
    "reverb_tail": "VOICE_REPLAY_CHANNEL",
    "nb_modulation": "VOICE_OVERSMOOTHED",
    "nb_contrast": "VOICE_FLAT_SPECTRUM",
    "nb_texture": "VOICE_VOCODER_NOISE",
}


def reason_code(feature: str) -> str:
    return _CODES.get(feature, "VOICE_SPOOF_" + feature.upper())


def _check_fusion(fusion: LogisticFusion, model: VoiceSpoofModel | None, what: str) -> None:
    unknown = [f for f in fusion.features if f != AASIST_FEATURE and f not in SIGNAL_NAMES]
    if unknown:
        raise ConfigurationError(f"voice anti-spoofing {what}: unknown features {unknown}")
    if AASIST_FEATURE in fusion.features and model is None:
        raise ConfigurationError(f"voice anti-spoofing {what} uses AASIST but no model given")


class VoiceSpoofChecker:
    """Fuses AASIST with the signals of :mod:`~bioverify.antispoof.voice_signals`.

    ``model`` may be None only when no fusion uses the ``aasist`` feature. ``threshold``
    defaults to the fusion's own (the pack's calibrated operating threshold) and applies to
    the wideband fusion only.

    ``narrowband_fusion`` (the pack's ``fusion_narrowband``, fitted on the same labels after
    an 8 kHz mu-law round trip, using only telephone-band features) scores narrowband input:
    audio declared at 8 kHz or in G.711, or measured to have no energy above the telephone
    band (:mod:`~bioverify.antispoof.bandwidth`). Without it, narrowband input is scored by
    the wideband fusion (and says so), which rejects most genuine phone callers.
    """

    def __init__(
        self,
        model: VoiceSpoofModel | None,
        fusion: LogisticFusion,
        *,
        narrowband_fusion: LogisticFusion | None = None,
        threshold: float | None = None,
        max_reasons: int = 3,
    ) -> None:
        _check_fusion(fusion, model, "fusion")
        if narrowband_fusion is not None:
            _check_fusion(narrowband_fusion, model, "narrowband fusion")
        self.model = model
        self.fusion = fusion
        self.narrowband_fusion = narrowband_fusion
        self.threshold = fusion.threshold if threshold is None else threshold
        self.max_reasons = max_reasons

    @classmethod
    def from_manifest(
        cls, manifest: Mapping[str, Any], model: VoiceSpoofModel | None
    ) -> VoiceSpoofChecker:
        """The checker of a voice-antispoof pack manifest (its ``fusion`` block and, when
        present, its ``fusion_narrowband`` block)."""
        block = manifest.get("fusion")
        if not isinstance(block, Mapping):
            raise ConfigurationError(f"pack {manifest.get('id')} has no fusion block")
        narrow = manifest.get(NARROWBAND_FUSION_KEY)
        if narrow is not None and not isinstance(narrow, Mapping):
            raise ConfigurationError(f"pack {manifest.get('id')}: bad {NARROWBAND_FUSION_KEY}")
        return cls(
            model,
            LogisticFusion.from_dict(block),
            narrowband_fusion=LogisticFusion.from_dict(narrow) if narrow is not None else None,
        )

    def fusion_for(self, bandwidth: Bandwidth) -> tuple[LogisticFusion, float]:
        """(fusion, threshold) for input of this bandwidth."""
        if bandwidth.narrowband and self.narrowband_fusion is not None:
            return self.narrowband_fusion, self.narrowband_fusion.threshold
        return self.fusion, self.threshold

    def threshold_for(self, narrowband: bool) -> float:
        """The operating threshold used for wideband or narrowband input."""
        if narrowband and self.narrowband_fusion is not None:
            return self.narrowband_fusion.threshold
        return self.threshold

    def assess(
        self,
        wave16k: Waveform,
        speech_segments: Sequence[SpeechSegment],
        *,
        aasist_log_odds: float | None = None,
        bandwidth: Bandwidth | None = None,
    ) -> SpoofAssessment:
        """Assess one clip (16 kHz mono). ``aasist_log_odds`` reuses an AASIST result
        computed elsewhere (e.g. the running mean of a live call) instead of running it.

        ``bandwidth`` is the caller's :func:`assess_bandwidth` (which knows whether the
        input was declared telephone band: sent at 8 kHz or in G.711); without it the
        bandwidth is measured on the audio itself, which also catches 16 kHz files
        upsampled from a phone recording."""
        speech_s = sum(max(0.0, s.end_s - s.start_s) for s in speech_segments)
        if speech_s < MIN_SPEECH_S:
            found, needed = shortfall(speech_s, MIN_SPEECH_S)
            raise AudioTooShort(
                f"need at least {needed} s of speech to check for spoofing, got {found} s"
            )
        if bandwidth is None:
            bandwidth = assess_bandwidth(wave16k, speech_segments)
        fusion, threshold = self.fusion_for(bandwidth)
        signals = compute_signals(wave16k, speech_segments)
        values: dict[str, float] = {name: s.value for name, s in signals.items()}
        aasist: float | None = None
        if AASIST_FEATURE in fusion.features and self.model is not None:
            raw = self.model.log_odds(wave16k) if aasist_log_odds is None else aasist_log_odds
            aasist = float(np.clip(raw, -AASIST_CLIP, AASIST_CLIP))
            values[AASIST_FEATURE] = aasist
        return self._decide(values, signals, aasist, fusion, threshold, bandwidth)

    def _decide(
        self,
        values: Mapping[str, float],
        signals: Mapping[str, Signal],
        aasist: float | None,
        fusion: LogisticFusion,
        threshold: float,
        bandwidth: Bandwidth,
    ) -> SpoofAssessment:
        score = fusion.probability(values)
        live = score >= threshold
        contributions = fusion.contributions(values)
        # A component fails when the clip is rejected and it pushed towards "spoof" (the
        # least live-looking one, if none pushed that way): it is part of why.
        weakest = min(fusion.features, key=lambda f: contributions[f])
        checks: list[Check] = []
        for name in fusion.features:
            c = contributions[name]
            if name == AASIST_FEATURE:
                assert aasist is not None
                detail = f"AASIST bona fide log-odds {aasist:+.1f} (P = {sigmoid(aasist):.2f})"
                own = sigmoid(aasist)
                available = True
            else:
                sig = signals[name]
                detail, own, available = sig.detail, sigmoid(c), sig.available
            if not available:
                detail = f"not measured: {detail}"
            blamed = not live and (c < 0.0 or (name == weakest and contributions[name] >= 0.0))
            checks.append(Check(name=name, score=own, weight=c, passed=not blamed, detail=detail))
        detail = bandwidth.detail
        if bandwidth.narrowband and fusion is self.fusion:
            detail += "; no telephone-band model in the pack, so the wideband one is used"
        checks.append(
            Check(name=BANDWIDTH_CHECK, score=0.5, weight=0.0, passed=True, detail=detail)
        )
        for name, sig in signals.items():
            if name not in contributions:
                checks.append(
                    Check(
                        name=name,
                        score=0.5,
                        weight=0.0,
                        passed=True,
                        detail=f"informational, not scored: {sig.detail}",
                    )
                )
        reasons: tuple[tuple[str, str], ...] = ()
        if not live:
            against = sorted((c for c in checks if c.weight < 0.0), key=lambda c: c.weight)[
                : self.max_reasons
            ]
            reasons = tuple((reason_code(c.name), f"{c.name}: {c.detail}") for c in against)
        return SpoofAssessment(
            live=live,
            score=score,
            threshold=threshold,
            checks=tuple(checks),
            reasons=reasons,
        )
