"""Audio-visual sync through the real service: CheckLiveness(frames=FrameSequence{frames,
fps, audio}) with a real speech clip, a still photo, and frames whose mouth is opened and
closed with the speech envelope (synthesised from a real LFW photo with ``cv2.remap``)."""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterator
from typing import cast

import cv2
import grpc
import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from bioverify.face.detector_dlib import DlibHogDetector
from bioverify.face.ports import ImageBGR
from bioverify.liveness.av_sync import AV_SYNC, AV_SYNC_FAILED
from bioverify.liveness.shape68 import FaceShape68
from bioverify.v1 import common_pb2, liveness_pb2, liveness_pb2_grpc, voice_pb2
from tests.conftest import DATA, lfw

FPS = 15.0
N_FRAMES = 30  # 2 s of video
SPEECH = DATA / "speaker" / "audio" / "libri_367" / "367-130732-0004.flac"
START_S = 0.5  # a 2 s stretch of continuous read speech
FACE = lfw("Nursultan_Nazarbayev", 2)  # frontal, lips closed
MAX_OPENING = 0.25  # of the eye distance, at the loudest frame

Floats = npt.NDArray[np.float32]


@pytest.fixture(scope="module")
def liveness(face_server: str) -> Iterator[liveness_pb2_grpc.LivenessServiceStub]:
    with grpc.insecure_channel(face_server) as channel:
        yield liveness_pb2_grpc.LivenessServiceStub(channel)


@pytest.fixture(scope="module")
def speech() -> tuple[Floats, int]:
    wave, rate = sf.read(SPEECH, dtype="float32")
    return wave, int(rate)


def window(speech: tuple[Floats, int], start_s: float, seconds: float = N_FRAMES / FPS) -> Floats:
    wave, rate = speech
    a = round(start_s * rate)
    return wave[a : a + round(seconds * rate)]


def wav_bytes(wave: Floats, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def jpeg(image: ImageBGR) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return data.tobytes()


def open_mouth(image: ImageBGR, points: Floats, opening: float) -> ImageBGR:
    """Drop the lower lip by ``opening`` px below the lip line (a parabolic window across the
    mouth, corners fixed), compressing the chin region, and darken the gap (the mouth)."""
    height, width = image.shape[:2]
    lip = float((points[62, 1] + points[66, 1]) / 2)
    chin = float(points[8, 1])
    centre = float((points[48, 0] + points[54, 0]) / 2)
    half = float((points[54, 0] - points[48, 0]) / 2) * 1.1
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    across = np.clip(1 - ((xx - centre) / half) ** 2, 0, 1)
    drop = opening * across
    below = (yy > lip) & (yy < chin)
    gap = below & (yy < lip + drop) & (across > 0)
    squeezed = lip + (yy - lip - drop) * (chin - lip) / np.maximum(chin - lip - drop, 1)
    map_y = np.where(gap, lip, np.where(below, squeezed, yy)).astype(np.float32)
    out = cast(
        ImageBGR, cv2.remap(image, xx, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    )
    out[gap] = (out[gap] * 0.35).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def talking_frames(speech: tuple[Floats, int]) -> list[bytes]:
    """A face whose mouth opening follows the speech amplitude, frame by frame."""
    rate = speech[1]
    clip = window(speech, START_S)
    bounds = [round(i * rate / FPS) for i in range(N_FRAMES + 1)]
    amplitude = np.array([np.sqrt(np.mean(clip[a:b] ** 2)) for a, b in itertools.pairwise(bounds)])
    amplitude /= amplitude.max()
    image = cast("ImageBGR | None", cv2.imread(str(FACE), cv2.IMREAD_COLOR))
    assert image is not None, FACE
    face = DlibHogDetector().detect(image)[0]
    points = FaceShape68().landmarks(image, face)
    eyes = float(np.linalg.norm(points[36:42].mean(axis=0) - points[42:48].mean(axis=0)))
    return [jpeg(open_mouth(image, points, MAX_OPENING * eyes * a)) for a in amplitude]


def check(
    stub: liveness_pb2_grpc.LivenessServiceStub, frames: list[bytes], fps: float, audio: bytes
) -> liveness_pb2.CheckLivenessResponse:
    sequence = liveness_pb2.FrameSequence(frames=frames, fps=fps, audio=voice_pb2.Audio(data=audio))
    reply: liveness_pb2.CheckLivenessResponse = stub.CheckLiveness(
        liveness_pb2.CheckLivenessRequest(frames=sequence), timeout=120
    )
    return reply


def av_check(reply: liveness_pb2.CheckLivenessResponse) -> common_pb2.LivenessCheck:
    found: list[common_pb2.LivenessCheck] = [c for c in reply.liveness.checks if c.name == AV_SYNC]
    assert len(found) == 1, [c.name for c in reply.liveness.checks]
    return found[0]


def correlation(check: common_pb2.LivenessCheck) -> float:
    match = re.search(r"correlation with speech energy (-?\d+\.\d+)", check.detail)
    assert match, check.detail
    return float(match.group(1))


def test_still_photo_with_a_voice_fails_av_sync(
    liveness: liveness_pb2_grpc.LivenessServiceStub, speech: tuple[Floats, int]
) -> None:
    still = lfw("Roger_Federer", 8).read_bytes()
    audio = wav_bytes(window(speech, START_S), speech[1])
    reply = check(liveness, [still] * N_FRAMES, FPS, audio)
    result = av_check(reply)
    print(f"still photo: {result.detail}")
    assert not result.passed and result.weight == 0.0
    assert "barely moves" in result.detail and correlation(result) == 0.0
    assert not reply.liveness.live and reply.decision == common_pb2.SPOOF_SUSPECTED
    assert AV_SYNC_FAILED in [r.code for r in reply.reasons]


def test_mouth_moving_with_the_speech_passes_and_mismatched_audio_fails(
    liveness: liveness_pb2_grpc.LivenessServiceStub,
    speech: tuple[Floats, int],
    talking_frames: list[bytes],
) -> None:
    rate = speech[1]
    matched = window(speech, START_S)
    reply = check(liveness, talking_frames, FPS, wav_bytes(matched, rate))
    result = av_check(reply)
    print(f"synthetic talking face, its own audio: {result.detail}")
    assert result.passed and correlation(result) >= 0.5, result.detail
    assert AV_SYNC_FAILED not in [r.code for r in reply.reasons]

    mismatched = {
        "time-reversed": np.ascontiguousarray(matched[::-1]),
        "shifted by 1 s": window(speech, START_S + 1.0),
    }
    for name, wave in mismatched.items():
        reply = check(liveness, talking_frames, FPS, wav_bytes(wave, rate))
        result = av_check(reply)
        print(f"synthetic talking face, audio {name}: {result.detail}")
        assert not result.passed and "does not move with the speech" in result.detail
        assert correlation(result) < 0.3
        assert not reply.liveness.live and reply.decision == common_pb2.SPOOF_SUSPECTED
        assert AV_SYNC_FAILED in [r.code for r in reply.reasons]


def test_frames_and_audio_must_describe_the_same_capture(
    liveness: liveness_pb2_grpc.LivenessServiceStub, speech: tuple[Floats, int]
) -> None:
    still = lfw("Roger_Federer", 8).read_bytes()
    rate = speech[1]
    cases = {
        "frame rate": (0.0, window(speech, START_S)),
        "2.00 s": (FPS, window(speech, START_S, 5.0)),  # audio much longer than the frames
        "0.40 s": (FPS, window(speech, START_S, 0.4)),  # much shorter
    }
    for expected, (fps, wave) in cases.items():
        with pytest.raises(grpc.RpcError) as info:
            check(liveness, [still] * N_FRAMES, fps, wav_bytes(wave, rate))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert expected in (info.value.details() or ""), info.value.details()


def test_a_moving_face_with_someone_elses_speech_is_never_scored_live(
    liveness: liveness_pb2_grpc.LivenessServiceStub, speech: tuple[Floats, int]
) -> None:
    """A live webcam recording (DEV PAD set: the face moves, so motion passes) sent with read
    speech that its lips do not follow: the sync check alone rejects it, and a rejected
    sample's score stays below the threshold like every other rejection."""
    webcam = DATA / "face_pad" / "webcam_replay" / "Krzysiek354"
    frames = [p.read_bytes() for p in sorted(webcam.glob("real_*.png"))] * 2
    fps = 8.0
    wave = window(speech, START_S, len(frames) / fps)
    reply = check(liveness, frames, fps, wav_bytes(wave, speech[1]))
    codes = [r.code for r in reply.reasons]
    assert AV_SYNC_FAILED in codes and "NO_MOTION" not in codes, codes
    assert not reply.liveness.live and reply.decision == common_pb2.SPOOF_SUSPECTED
    assert reply.liveness.score < reply.liveness.threshold
