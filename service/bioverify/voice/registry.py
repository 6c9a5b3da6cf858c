"""Explicit registry of voice adapters, chosen by name from a model pack's manifest."""

from __future__ import annotations

from collections.abc import Callable

from bioverify.packs import ComponentSpec, PackManifest, build_component
from bioverify.voice.ports import SpeakerEncoder, VoiceActivityDetector


def _silero(pack: PackManifest, spec: ComponentSpec, threads: int) -> VoiceActivityDetector:
    from bioverify.voice.vad_silero import SileroVad

    return SileroVad(pack.file_path(spec.files[0]), threads=threads, **spec.params)


def _onnx_speaker(pack: PackManifest, spec: ComponentSpec, threads: int) -> SpeakerEncoder:
    from bioverify.voice.encoder_onnx import OnnxSpeakerEncoder, SpeakerEncoderSpec

    values = {**spec.params, "model_path": pack.file_path(spec.files[0])}
    return OnnxSpeakerEncoder(SpeakerEncoderSpec.from_mapping(values), threads=threads)


VADS: dict[str, Callable[[PackManifest, ComponentSpec, int], VoiceActivityDetector]] = {
    "silero": _silero,
}

ENCODERS: dict[str, Callable[[PackManifest, ComponentSpec, int], SpeakerEncoder]] = {
    "onnx-speaker": _onnx_speaker,
}


def build_vad(pack: PackManifest, threads: int) -> VoiceActivityDetector:
    return build_component(VADS, "vad", pack, threads)


def build_encoder(pack: PackManifest, threads: int) -> SpeakerEncoder:
    return build_component(ENCODERS, "encoder", pack, threads)
