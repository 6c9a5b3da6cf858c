"""The composition root: ``build(settings)`` creates every model session, store, use case and
servicer, and the gRPC server that serves them. Nothing is loaded anywhere else."""

from __future__ import annotations

import dataclasses
import functools
import logging
import platform
import threading
from collections.abc import Collection, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

import bioverify
from bioverify.antispoof.voice_checker import VoiceSpoofChecker
from bioverify.errors import ConfigurationError, Unavailable
from bioverify.face.align import ARCFACE_TEMPLATE_112
from bioverify.face.pipeline import FacePipeline, ImageLimits
from bioverify.face.ports import DetectedFace
from bioverify.face.quality import DEFAULT_THRESHOLDS, QualityThresholds
from bioverify.face.registry import build_detector, build_embedder
from bioverify.index.gallery import Gallery, GalleryFollower, remove_snapshots_in
from bioverify.liveness.av_sync import AvSyncChecker
from bioverify.liveness.challenge import ALL_ACTIONS, POSE_ACTIONS, ChallengeIssuer
from bioverify.liveness.challenges_memory import InMemoryChallenges
from bioverify.liveness.challenges_redis import RedisChallenges
from bioverify.liveness.face_checker import FaceLivenessChecker
from bioverify.liveness.ports import PendingChallenges
from bioverify.liveness.shape68 import load_face_shape
from bioverify.packs import PackCatalog, PackManifest, ensure_verified
from bioverify.server import convert
from bioverify.server.audit import NO_AUDIT, AuditTrail, open_audit_trail
from bioverify.server.auth import TokenAuthInterceptor, load_tokens, server_credentials
from bioverify.server.exposure import (
    exposure_warnings,
    prepare_data_dir,
    private_umask,
    restrict_sqlite_files,
)
from bioverify.server.face_servicer import FaceServicer
from bioverify.server.info_servicer import InfoServicer
from bioverify.server.live_calls import LiveCalls
from bioverify.server.liveness_servicer import LivenessServicer
from bioverify.server.request_reads import RequestReads
from bioverify.server.sample_id_key import sample_id_key
from bioverify.server.status import ErrorMappingInterceptor
from bioverify.server.subjects_servicer import SubjectServicer
from bioverify.server.token_calls import CallsPerToken
from bioverify.server.unimplemented import unimplemented_servicer
from bioverify.server.voice_servicer import VoiceServicer
from bioverify.settings import Settings
from bioverify.store.ports import TemplateStore
from bioverify.store.redis_connection import connect
from bioverify.store.redis_store import RedisTemplateStore
from bioverify.store.sealed_files import FileSealer, file_sealer
from bioverify.store.sealing import blob_sealer, template_keys
from bioverify.store.sqlite_store import SqliteTemplateStore
from bioverify.store.turns import Turns
from bioverify.usecases.common import InferencePool
from bioverify.usecases.face import FaceVerification
from bioverify.usecases.liveness import LivenessChecks, LivenessGate, TenantLivenessPolicy
from bioverify.usecases.subjects import SubjectAdministration, page_bytes
from bioverify.usecases.voice import VoicePolicy, VoiceVerification
from bioverify.v1 import (
    face_pb2,
    face_pb2_grpc,
    info_pb2,
    info_pb2_grpc,
    liveness_pb2,
    liveness_pb2_grpc,
    subjects_pb2,
    subjects_pb2_grpc,
    voice_pb2,
    voice_pb2_grpc,
)
from bioverify.voice.audio_decode import AudioLimits
from bioverify.voice.pipeline import VoicePipeline
from bioverify.voice.quality import VoiceQualityThresholds
from bioverify.voice.registry import build_encoder, build_vad

logger = logging.getLogger(__name__)

SERVICE_NAMES = (
    face_pb2.DESCRIPTOR.services_by_name["FaceService"].full_name,
    voice_pb2.DESCRIPTOR.services_by_name["VoiceService"].full_name,
    liveness_pb2.DESCRIPTOR.services_by_name["LivenessService"].full_name,
    subjects_pb2.DESCRIPTOR.services_by_name["SubjectService"].full_name,
    info_pb2.DESCRIPTOR.services_by_name["InfoService"].full_name,
)


def snapshot_root(settings: Settings) -> Path:
    """Where the galleries' snapshots are kept, one folder per modality."""
    return settings.data_dir / "index"


def remove_snapshots_but(
    settings: Settings, keep: Collection[Path], owner: str, *, why: str, retried: str
) -> set[Path]:
    """Remove the gallery snapshots under ``snapshot_root`` but those in the folders ``keep``
    (see ``remove_snapshots_in``); returns the folders whose removal failed."""
    root = snapshot_root(settings)
    if not root.is_dir():
        return set()
    folders = (p for p in root.iterdir() if p.is_dir() and p not in keep)
    return remove_snapshots_in(folders, owner, why=why, retried=retried)


def build_store(
    settings: Settings, *, keys: Sequence[bytes] | None = None, allow_unsealed: bool = False
) -> TemplateStore:
    """The configured store, sealing templates with ``keys`` (by default those of the
    configured key file); ``allow_unsealed`` also reads plain ones (``bioverify
    seal-templates``, which seals them)."""
    sealer = blob_sealer(
        template_keys(settings.template_key_file) if keys is None else keys,
        allow_unsealed=allow_unsealed or settings.allow_unsealed_templates,
    )
    logger.info("stored templates: %s", sealer.description)
    if settings.store == "sqlite":
        # Templates are personal data: the folder 0700, the database files 0600.
        prepare_data_dir(settings.data_dir)
        with private_umask():
            sqlite = SqliteTemplateStore(
                settings.sqlite_path,
                change_retention=settings.change_log_retention,
                sealer=sealer,
            )
        restrict_sqlite_files(settings.sqlite_path)
        return sqlite
    if settings.store == "redis":
        store = RedisTemplateStore(
            settings.redis_url,
            key_prefix=settings.redis_key_prefix,
            change_retention=settings.change_log_retention,
            sealer=sealer,
        )
        try:
            # fail fast at startup when Redis cannot be reached or refuses the credentials
            store.ping()
        except (Unavailable, ConfigurationError):
            store.close()
            raise
        return store
    raise ConfigurationError(f"store {settings.store!r} is unknown; valid: sqlite, redis")


def build_challenges(settings: Settings) -> PendingChallenges:
    """Where liveness challenges wait: in Redis with a Redis store, so that any replica can
    redeem a challenge another issued (and a restart keeps them), else in memory."""
    if settings.store == "redis":
        return RedisChallenges(
            connect(settings.redis_url),
            key_prefix=settings.redis_key_prefix,
            max_per_tenant=settings.challenge_max_pending_per_tenant,
            max_total=settings.challenge_max_pending,
        )
    return InMemoryChallenges(
        max_per_tenant=settings.challenge_max_pending_per_tenant,
        max_total=settings.challenge_max_pending,
    )


def build_face_pipeline(settings: Settings, pack: PackManifest) -> FacePipeline:
    if settings.verify_model_checksums:
        ensure_verified(pack)
    detector = build_detector(pack, settings.onnx_threads)
    embedder = build_embedder(pack, settings.onnx_threads)
    return FacePipeline(
        detector,
        embedder,
        limits=ImageLimits(
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            max_working_side=settings.max_image_working_side,
        ),
        quality=quality_thresholds(pack),
    )


def quality_thresholds(pack: PackManifest) -> QualityThresholds:
    """The default quality gates with the pack's overrides (``"quality"`` in the manifest)."""
    overrides = dict(pack.raw.get("quality", {}))
    try:
        return dataclasses.replace(DEFAULT_THRESHOLDS, **overrides)
    except TypeError as exc:
        raise ConfigurationError(f"pack {pack.id}: invalid quality thresholds ({exc})") from exc


def choose_face_pack(settings: Settings) -> PackManifest:
    catalog = PackCatalog(settings.model_dir, settings.data_dir / "packs")
    pack = catalog.choose("face", settings.face_pack)
    if pack.calibration is None or not pack.operating_points:
        raise ConfigurationError(
            f"face pack {pack.id} has no calibration; run `bioverify-admin calibrate` first"
        )
    return pack


def audio_limits(settings: Settings) -> AudioLimits:
    return AudioLimits(
        max_bytes=settings.max_audio_bytes, max_duration_s=settings.max_audio_seconds
    )


def build_voice_pipeline(settings: Settings, pack: PackManifest) -> VoicePipeline:
    if settings.verify_model_checksums:
        ensure_verified(pack)
    overrides = dict(pack.raw.get("quality", {}))
    try:
        thresholds = VoiceQualityThresholds(**overrides)
    except TypeError as exc:
        raise ConfigurationError(f"pack {pack.id}: invalid quality thresholds ({exc})") from exc
    return VoicePipeline(
        build_vad(pack, settings.onnx_threads),
        build_encoder(pack, settings.onnx_threads),
        audio_limits(settings),
        thresholds,
    )


def choose_voice_pack(settings: Settings) -> PackManifest | None:
    """The voice pack to serve, or None when voice is switched off or no pack is usable."""
    if settings.voice_pack == "none":
        return None
    catalog = PackCatalog(settings.model_dir, settings.data_dir / "packs")
    try:
        pack = catalog.choose("voice", settings.voice_pack)
    except ConfigurationError:
        if settings.voice_pack != "auto":
            raise
        logger.warning("no usable voice model pack: VoiceService answers UNIMPLEMENTED")
        return None
    if pack.calibration is None or not pack.operating_points:
        raise ConfigurationError(
            f"voice pack {pack.id} has no calibration; run `bioverify-admin calibrate` first"
        )
    return pack


def optional_pack(settings: Settings, modality: str, wanted: str) -> PackManifest | None:
    """A liveness / anti-spoofing pack: named, or with ``auto`` the first usable one."""
    if wanted == "none":
        return None
    catalog = PackCatalog(settings.model_dir, settings.data_dir / "packs")
    try:
        pack = catalog.choose(modality, wanted)
    except ConfigurationError:
        if wanted != "auto":
            raise
        logger.warning("no usable %s pack: that check is not available", modality)
        return None
    if settings.verify_model_checksums:
        ensure_verified(pack)
    return pack


def tenant_liveness_policies(settings: Settings) -> dict[str, TenantLivenessPolicy]:
    if not settings.liveness_tenant_policies:
        return {}
    path = Path(settings.liveness_tenant_policies)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return {
            str(tenant): TenantLivenessPolicy(
                require_face=bool(p.get("require_face", settings.require_face_liveness)),
                require_voice=bool(p.get("require_voice", settings.require_voice_liveness)),
                observe_only=bool(p.get("observe_only", settings.liveness_observe_only)),
                allow_narrowband_voice=bool(
                    p.get("allow_narrowband_voice", settings.voice_liveness_allow_narrowband)
                ),
            )
            for tenant, p in dict(data).items()
        }
    except (OSError, yaml.YAMLError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigurationError(f"invalid liveness tenant policies file {path}: {exc}") from exc


def build_voice_spoof_checker(pack: PackManifest, threads: int) -> VoiceSpoofChecker:
    """AASIST (ONNX, exported when the pack was built) fused with the explainable signals."""
    from bioverify.antispoof.aasist_onnx import AasistDetector

    model = (
        AasistDetector(pack.file_path("aasist"), threads=threads)
        if "aasist" in pack.files
        else None
    )
    return VoiceSpoofChecker.from_manifest(pack.raw, model)


def liveness_packs(settings: Settings) -> dict[str, PackManifest]:
    """The face-liveness and voice-antispoof packs this service runs, by role."""
    packs = {
        "face-liveness": optional_pack(settings, "face-liveness", settings.face_liveness_pack),
        "voice-antispoof": optional_pack(
            settings, "voice-antispoof", settings.voice_antispoof_pack
        ),
    }
    return {role: pack for role, pack in packs.items() if pack is not None}


def build_liveness_gate(settings: Settings, packs: dict[str, PackManifest]) -> LivenessGate:
    face_pack, voice_pack = packs.get("face-liveness"), packs.get("voice-antispoof")
    return LivenessGate(
        face=FaceLivenessChecker.from_pack(face_pack, settings.onnx_threads) if face_pack else None,
        voice=build_voice_spoof_checker(voice_pack, settings.onnx_threads) if voice_pack else None,
        default=TenantLivenessPolicy(
            require_face=settings.require_face_liveness,
            require_voice=settings.require_voice_liveness,
            observe_only=settings.liveness_observe_only,
            allow_narrowband_voice=settings.voice_liveness_allow_narrowband,
        ),
        tenants=tenant_liveness_policies(settings),
    )


def build_gallery(
    settings: Settings, modality: str, pack: PackManifest, turns: Turns, files: FileSealer
) -> Gallery:
    """The gallery of ``modality``, taking enrolment turns from ``turns`` and writing its
    snapshots through ``files`` (sealed with the template keys, if any)."""
    return Gallery(
        modality,
        pack.template_model,
        pack.embedding_dim,
        exact_max=settings.gallery_exact_max,
        turns=turns,
        files=files,
    )


def warm_up(pipeline: FacePipeline) -> None:
    """Run every model once so the first request does not pay for lazy initialisation.

    The crop comes from the embedder's own ``align`` on a synthetic face, so it has whatever
    size that model takes (112 px ArcFace crops, dlib's 150 px chips).
    """
    image = np.full((256, 256, 3), 127, dtype=np.uint8)
    pipeline.detector.detect(image)
    landmarks = (ARCFACE_TEMPLATE_112 + 72.0).astype(np.float32)
    face = DetectedFace(x1=72.0, y1=72.0, x2=184.0, y2=184.0, score=1.0, landmarks=landmarks)
    pipeline.embedder.embed([pipeline.embedder.align(image, face)])


def warm_up_voice(pipeline: VoicePipeline) -> None:
    rng = np.random.default_rng(0)
    wave = (0.01 * rng.standard_normal(pipeline.encoder.sample_rate)).astype(np.float32)
    pipeline.vad.speech_segments(wave)
    pipeline.encoder.embed(wave)


@dataclass
class Application:
    settings: Settings
    server: grpc.Server
    health: health.HealthServicer
    store: TemplateStore
    pool: InferencePool
    face_pack: PackManifest
    face_pipeline: FacePipeline
    challenges: PendingChallenges
    voice_pack: PackManifest | None = None
    voice_pipeline: VoicePipeline | None = None
    galleries: tuple[Gallery, ...] = ()
    live_calls: LiveCalls | None = None
    request_reads: RequestReads | None = None
    audit: AuditTrail = NO_AUDIT
    port: int = 0
    _followers: list[GalleryFollower] = field(default_factory=list)
    _stopped: threading.Event = field(default_factory=threading.Event)
    # Health: SERVING once warm, and NOT_SERVING while a follower finds the store unreachable.
    _health_lock: threading.Lock = field(default_factory=threading.Lock)
    _warm: bool = False
    _store_unreachable: set[str] = field(default_factory=set)  # modalities of those followers

    def start(self) -> None:
        if self.live_calls is not None:
            self.live_calls.start()
        if self.request_reads is not None:
            self.request_reads.start()
        self.server.start()
        self._remove_unused_snapshots()
        for gallery in self.galleries:
            how = gallery.restore(self.store, self._snapshot_dir(gallery))
            logger.info(
                "%s gallery ready from %s: %d templates", gallery.modality, how, len(gallery)
            )
            follower = GalleryFollower(
                gallery,
                self.store,
                poll=self.settings.gallery_follow_poll_s,
                on_store_reachable=functools.partial(self._store_reachable, gallery.modality),
            )
            follower.start()
            self._followers.append(follower)
        warm_up(self.face_pipeline)
        if self.voice_pipeline is not None:
            warm_up_voice(self.voice_pipeline)
        with self._health_lock:
            self._warm = True
            self._set_health()
        logger.info(
            "bioverify %s serving on %s:%d (%s, store %s)",
            bioverify.__version__,
            self.settings.host,
            self.port,
            self.describe_packs(),
            self.store.name,
        )
        for warning in exposure_warnings(self.settings.with_overrides(port=self.port)):
            logger.warning("%s", warning)

    def _store_reachable(self, modality: str, reachable: bool) -> None:
        """A follower's news: the store is (un)reachable. Serving needs every follower's."""
        with self._health_lock:
            was_down = bool(self._store_unreachable)
            if reachable:
                self._store_unreachable.discard(modality)
            else:
                self._store_unreachable.add(modality)
            if bool(self._store_unreachable) != was_down:
                if was_down:
                    logger.info("the template store is reachable again")
                else:
                    logger.warning("the template store is unreachable: health NOT_SERVING")
            self._set_health()

    def _set_health(self) -> None:
        """SERVING when warm and the store reachable (caller holds ``_health_lock``). Ignored
        once ``stop()`` has begun (the health servicer's graceful shutdown)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self._warm and not self._store_unreachable
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in (*SERVICE_NAMES, ""):
            self.health.set(name, status)

    def describe_packs(self) -> str:
        voice = self.voice_pack.id if self.voice_pack else "none"
        return f"face pack {self.face_pack.id}, voice pack {voice}"

    def stop(self, grace: float | None = None) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(self.settings.grace_seconds if grace is None else grace).wait()
        if self.live_calls is not None:
            self.live_calls.stop()
        if self.request_reads is not None:
            self.request_reads.stop()
        for follower in self._followers:
            follower.stop()
        for gallery in self.galleries:
            snapshot = self._snapshot_dir(gallery)
            if snapshot is not None:
                try:
                    with private_umask():
                        gallery.save(snapshot)
                except OSError as exc:
                    logger.warning(
                        "could not save the %s gallery snapshot: %s", gallery.modality, exc
                    )
                except Exception:  # the rest of the stop (store, audit trail) must still run
                    logger.exception("could not save the %s gallery snapshot", gallery.modality)
        self.pool.shutdown()
        self.store.close()
        self.challenges.close()
        self.audit.close()

    def _snapshot_dir(self, gallery: Gallery) -> Path | None:
        """None when snapshots are off (those already there are removed at startup)."""
        if not self.settings.gallery_snapshots:
            return None
        return snapshot_root(self.settings) / gallery.modality

    def _remove_unused_snapshots(self) -> None:
        """Remove the snapshots under ``DATA_DIR/index/`` that no gallery of this run restores
        or saves (snapshots switched off, a modality no longer served): no gallery would remove
        them when a subject they hold is deleted. One that cannot be removed is logged and tried
        again at the next start."""
        remove_snapshots_but(
            self.settings,
            {d for g in self.galleries if (d := self._snapshot_dir(g)) is not None},
            "unused gallery",
            why="not used by this run",
            retried="tried again at the next start",
        )

    def wait(self) -> None:
        self.server.wait_for_termination()


def build(settings: Settings) -> Application:
    face_pack = choose_face_pack(settings)
    face_pipeline = build_face_pipeline(settings, face_pack)
    prepare_data_dir(settings.data_dir)  # gallery snapshots live there with any store
    keys = template_keys(settings.template_key_file)
    store = build_store(settings, keys=keys)
    snapshot_files = file_sealer(keys)
    if settings.gallery_snapshots:
        logger.info("gallery snapshots: %s", snapshot_files.description)
    challenges = build_challenges(settings)
    sample_ids = sample_id_key(settings)
    pool = InferencePool(settings.inference_workers, max_queue=settings.max_concurrent_rpcs * 2)
    turns = store.turns()
    face_gallery = build_gallery(settings, "face", face_pack, turns, snapshot_files)
    checking_packs = liveness_packs(settings)
    liveness = build_liveness_gate(settings, checking_packs)
    voice_pack = choose_voice_pack(settings)
    voice_pipeline = build_voice_pipeline(settings, voice_pack) if voice_pack else None
    # Blinks and av_sync only run on frames the face liveness checker accepts.
    face_shape, no_shape = (
        load_face_shape()
        if liveness.face is not None
        else (None, "no face liveness pack is installed")
    )
    checks = LivenessChecks(
        liveness,
        face_pipeline,
        pool,
        ChallengeIssuer(
            challenges,
            ttl_seconds=settings.challenge_ttl_s,
            actions=ALL_ACTIONS if face_shape is not None else POSE_ACTIONS,
        ),
        # Frames of one burst are one capture session, far closer than the photos the
        # verification thresholds were set on: the most permissive one separates people.
        identity_threshold=face_pack.loosest_operating_point().threshold,
        max_subject_id_length=settings.max_subject_id_length,
        av_sync=AvSyncChecker(
            vad=voice_pipeline.vad if voice_pipeline else None,
            unavailable=f"the mouth landmark model cannot be loaded ({no_shape})",
        ),
        face_shape=face_shape,
        audio_limits=audio_limits(settings),
    )
    faces = FaceVerification(
        face_pipeline,
        face_pack,
        store,
        pool,
        face_gallery,
        live_capture=checks,
        default_operating_point=settings.face_operating_point,
        max_images_per_enrollment=settings.max_images_per_enrollment,
        max_subject_id_length=settings.max_subject_id_length,
        sample_id_key=sample_ids,
        identify_target_fpir=settings.identify_target_fpir,
    )
    voice_gallery = (
        build_gallery(settings, "voice", voice_pack, turns, snapshot_files) if voice_pack else None
    )
    voices = (
        VoiceVerification(
            voice_pipeline,
            voice_pack,
            store,
            pool,
            voice_gallery,
            liveness=liveness,
            limits=audio_limits(settings),
            policy=VoicePolicy(
                min_verify_speech_s=settings.voice_min_verify_speech_s,
                min_enroll_clip_speech_s=settings.voice_min_enroll_clip_speech_s,
                min_enroll_total_speech_s=settings.voice_min_enroll_total_speech_s,
                max_clips_per_enrollment=settings.max_clips_per_enrollment,
                max_call_seconds=settings.max_call_seconds,
                max_stream_chunk_bytes=settings.max_stream_chunk_bytes,
                interim_every_speech_s=settings.voice_interim_every_speech_s,
            ),
            default_operating_point=settings.voice_operating_point,
            max_subject_id_length=settings.max_subject_id_length,
            sample_id_key=sample_ids,
            identify_target_fpir=settings.identify_target_fpir,
        )
        if voice_pack is not None and voice_pipeline is not None and voice_gallery is not None
        else None
    )
    galleries = tuple(g for g in (face_gallery, voice_gallery) if g is not None)
    subjects = SubjectAdministration(
        store,
        max_subject_id_length=settings.max_subject_id_length,
        galleries=galleries,
        page_bytes=page_bytes(settings.max_message_bytes),
    )

    # The first is outermost: the error mapping answers what the token check raises (a
    # request naming a tenant its token may not act on) and logs refused calls too.
    request_reads = RequestReads(settings.request_read_timeout_s)
    tokens = load_tokens(Path(settings.auth_tokens_file)) if settings.auth_tokens_file else {}
    calls = CallsPerToken(settings.max_concurrent_rpcs_per_token, tokens)
    audit = open_audit_trail(settings.audit_log_file)
    interceptors: list[grpc.ServerInterceptor] = [
        ErrorMappingInterceptor(request_reads, calls, audit)
    ]
    if settings.auth_tokens_file:
        interceptors.append(TokenAuthInterceptor(tokens))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.rpc_threads, thread_name_prefix="rpc"),
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # A second service on a port in use must fail, not share its traffic.
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    for name in (*SERVICE_NAMES, ""):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    live_calls = LiveCalls(
        settings.live_call_limit,
        settings.live_call_idle_s,
        max_per_tenant=settings.max_live_calls_per_tenant,
    )
    face_pb2_grpc.add_FaceServiceServicer_to_server(FaceServicer(faces), server)
    subjects_pb2_grpc.add_SubjectServiceServicer_to_server(SubjectServicer(subjects), server)
    voice_pb2_grpc.add_VoiceServiceServicer_to_server(
        VoiceServicer(voices, live_calls)
        if voices is not None
        else unimplemented_servicer(
            voice_pb2_grpc.VoiceServiceServicer,
            "VoiceService",
            ["CompareVoices", "EnrollVoice", "VerifyVoice", "IdentifyVoice", "VerifyVoiceStream"],
            "this service runs without a voice model pack (BIOVERIFY_VOICE_PACK=none, or none "
            "installed)",
        ),
        server,
    )
    liveness_pb2_grpc.add_LivenessServiceServicer_to_server(
        LivenessServicer(checks, voices), server
    )
    info = service_info(settings, face_pack, faces.default_operating_point, store.name)
    if voices is not None and voice_pack is not None:
        info.models.append(
            convert.pack_to_proto(voice_pack, "speaker", voices.default_operating_point)
        )
    for role, pack in checking_packs.items():
        info.models.append(convert.pack_to_proto(pack, role, ""))
    info_pb2_grpc.add_InfoServiceServicer_to_server(InfoServicer(info), server)
    if settings.reflection:
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
    address = listen_address(settings.host, settings.port)
    try:
        if settings.tls_cert_file:
            credentials = server_credentials(
                Path(settings.tls_cert_file),
                Path(settings.tls_key_file),
                Path(settings.tls_client_ca_file) if settings.tls_client_ca_file else None,
            )
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpc raises when the address cannot be bound
        port = 0
        logger.debug("bind of %s failed: %s", address, exc)
    if port == 0:
        store.close()
        challenges.close()
        audit.close()
        raise ConfigurationError(
            f"cannot listen on {address}: the port is in use or the address is not this host's"
        )
    return Application(
        settings=settings,
        server=server,
        health=health_servicer,
        store=store,
        pool=pool,
        face_pack=face_pack,
        face_pipeline=face_pipeline,
        challenges=challenges,
        voice_pack=voice_pack,
        voice_pipeline=voice_pipeline,
        galleries=galleries,
        live_calls=live_calls,
        request_reads=request_reads,
        audit=audit,
        port=port,
    )


def listen_address(host: str, port: int) -> str:
    """``host:port`` for gRPC, with an IPv6 literal in brackets (``[::1]:50051``)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def service_info(
    settings: Settings, face_pack: PackManifest, face_point: str, store: str
) -> info_pb2.ServiceInfo:
    import onnxruntime

    return info_pb2.ServiceInfo(
        service_version=bioverify.__version__,
        api_version="bioverify.v1",
        models=[convert.pack_to_proto(face_pack, "face-matcher", face_point)],
        limits=info_pb2.Limits(
            max_message_bytes=settings.max_message_bytes,
            max_image_bytes=settings.max_image_bytes,
            max_image_pixels=settings.max_image_pixels,
            max_images_per_enrollment=settings.max_images_per_enrollment,
            max_audio_bytes=settings.max_audio_bytes,
            max_audio_seconds=settings.max_audio_seconds,
            max_call_seconds=settings.max_call_seconds,
        ),
        store=store,
        runtime_versions={
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
            "grpcio": grpc.__version__,
        },
    )
