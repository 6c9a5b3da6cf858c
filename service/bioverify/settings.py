"""Typed settings, built once in ``main()`` from the environment (prefix ``BIOVERIFY_``) and an
optional YAML file (``BIOVERIFY_CONFIG``), then passed down. Tests construct them directly."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from bioverify.errors import ConfigurationError

ENV_PREFIX = "BIOVERIFY_"
NOT_SETTINGS = frozenset(
    ENV_PREFIX + name
    for name in (
        "CONFIG",  # the YAML settings file
        "TOKEN",  # the admin tool's and SDK examples' API token
        "SHARED_DIR",  # where the tests and benchmarks find ../shared
    )
)
"""``BIOVERIFY_*`` variables that are not settings, so not refused as misspelt ones."""
MIN_SAMPLE_ID_KEY_LENGTH = 32
MIN_MESSAGE_BYTES = 1024 * 1024
"""The smallest ``max_message_bytes``: a ListSubjects page (half of it) then holds the largest
subject the metadata limits allow (about 300 KB)."""
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def default_model_dir() -> Path:
    """``../shared/models`` next to the working directory, the layout of a source checkout."""
    return Path("..") / "shared" / "models"


@dataclass(frozen=True)
class Settings:
    # Network and access
    host: str = "127.0.0.1"
    port: int = 50051
    tls_cert_file: str = ""  # PEM; with tls_key_file the port serves TLS only
    tls_key_file: str = ""
    tls_client_ca_file: str = ""  # PEM; when set, clients must present a certificate (mTLS)
    auth_tokens_file: str = ""  # SHA-256 digests of accepted API tokens (and their tenants)
    # One JSON line per enrol/verify/identify/liveness/subject call: who, about whom, when,
    # the outcome; never samples or scores (see bioverify.server.audit). Empty: none
    audit_log_file: str = ""
    # Storage
    data_dir: Path = Path("bioverify-data")
    store: str = "sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = "bioverify:"
    # Newest changes the store's change feed keeps (it names subjects, also deleted ones); a
    # replica whose gallery is further behind rebuilds it from the templates
    change_log_retention: int = 100_000
    # Secret that sample ids (HMAC-SHA256 of each enrolled sample's bytes) are keyed with: the
    # key itself, or a file holding it; neither: DATA_DIR/sample-id.key, made once (mode 0600)
    sample_id_key: str = field(default="", repr=False)
    sample_id_key_file: str = ""
    # Encryption of stored embeddings (AES-256-GCM, see bioverify.store.sealing): a file of
    # keys, 64 hex digits per line, the first one sealing; empty: stored unencrypted. Every
    # replica of a shared store needs the same file. While migrating a store written without
    # keys, allow_unsealed_templates reads its plain templates until `bioverify seal-templates`
    # has sealed them; otherwise a plain template is refused (it may have been planted).
    template_key_file: str = ""
    allow_unsealed_templates: bool = False
    # Models
    model_dir: Path = field(default_factory=default_model_dir)
    face_pack: str = "auto"
    voice_pack: str = "auto"  # "none" serves no voice
    verify_model_checksums: bool = True
    # Decisions
    face_operating_point: str = ""  # empty: the pack's default operating point
    voice_operating_point: str = ""
    # Identify* without an operating point: at least as strict as keeps the chance that someone
    # not enrolled matches anyone in the tenant's gallery within this
    identify_target_fpir: float = 0.01
    voice_min_verify_speech_s: float = 1.0
    voice_min_enroll_clip_speech_s: float = 1.0
    voice_min_enroll_total_speech_s: float = 2.0
    voice_interim_every_speech_s: float = 3.0
    # Limits
    max_message_bytes: int = 32 * 1024 * 1024
    max_image_bytes: int = 15 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    # Larger images are shrunk to this longest side before analysis (bounds held memory)
    max_image_working_side: int = 2048
    max_images_per_enrollment: int = 20
    max_subject_id_length: int = 128
    max_audio_bytes: int = 25 * 1024 * 1024
    max_audio_seconds: float = 300.0
    max_clips_per_enrollment: int = 20
    max_call_seconds: float = 3600.0
    max_stream_chunk_bytes: int = 64 * 1024
    # Liveness / anti-spoofing
    face_liveness_pack: str = "auto"  # "none": no face liveness
    voice_antispoof_pack: str = "auto"  # "none": no voice anti-spoofing
    require_face_liveness: bool = False  # service default for enroll/verify/identify
    require_voice_liveness: bool = False
    liveness_observe_only: bool = False  # report liveness findings but never block
    # False: telephone-band audio fails required voice liveness (no downgrade to the weaker
    # telephone-band spoofing model)
    voice_liveness_allow_narrowband: bool = True
    # YAML file: tenant -> {require_face, require_voice, observe_only}
    liveness_tenant_policies: str = ""
    challenge_ttl_s: float = 120.0
    # Liveness challenges a tenant may have pending at once; one more is refused
    # (RESOURCE_EXHAUSTED, TOO_MANY_CHALLENGES) until some are answered or expire
    challenge_max_pending_per_tenant: int = 1000
    # ... and all tenants together (in memory: per replica; in Redis: shared); one more is
    # refused (RESOURCE_EXHAUSTED, OVERLOADED) until some are answered or expire
    challenge_max_pending: int = 100_000
    # Gallery (1:N search)
    gallery_exact_max: int = 50_000  # exact search up to this many templates per tenant, ANN above
    gallery_snapshots: bool = True  # save the index at shutdown, load it at startup
    gallery_follow_poll_s: float = 0.5  # how quickly other replicas' changes are applied
    # Execution
    inference_workers: int = 2
    onnx_threads: int = 1
    max_concurrent_rpcs: int = 64
    # Of those, the most one API token has in progress (0: no own cap); one more is refused at
    # once (RESOURCE_EXHAUSTED, OVERLOADED)
    max_concurrent_rpcs_per_token: int = 0
    rpc_threads: int = 64
    # VerifyVoiceStream calls at once (each holds an RPC thread for the whole call); 0: half
    # of the smaller of rpc_threads and max_concurrent_rpcs (see ``live_call_limit``)
    max_live_calls: int = 0
    live_call_idle_s: float = 30.0  # a live call silent this long is cancelled
    request_read_timeout_s: float = 60.0  # a unary call's message must arrive within this
    max_live_calls_per_tenant: int = 0  # of those, the most one tenant holds (0: no own cap)
    grace_seconds: float = 5.0
    reflection: bool = False  # gRPC server reflection: lists every service and message type
    log_level: str = "INFO"

    @property
    def live_call_limit(self) -> int:
        """``max_live_calls``, or when it is 0, half the RPCs served at once (at least 1), so
        live calls always leave threads for other requests and health checks."""
        if self.max_live_calls:
            return self.max_live_calls
        return max(1, min(self.rpc_threads, self.max_concurrent_rpcs) // 2)

    def with_overrides(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "bioverify.sqlite3"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``BIOVERIFY_*`` variables over an optional YAML file over defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        config_file = env.get(ENV_PREFIX + "CONFIG")
        names = {ENV_PREFIX + f.name.upper(): f.name for f in dataclasses.fields(cls)}
        if config_file:
            # A key with no value (``key:``, YAML's null) means the default, as an empty
            # variable does; ``key: ""`` is the empty string, as it always was (e.g. no Redis
            # key prefix, or all interfaces); a key that is not a setting is still refused.
            settings_names = set(names.values())
            values.update(
                (name, value)
                for name, value in _load_yaml(Path(config_file)).items()
                if name not in settings_names or value is not None
            )
        misspelt = sorted(
            key
            for key in env
            if key.startswith(ENV_PREFIX) and key not in names and key not in NOT_SETTINGS
        )
        if misspelt:  # a typo must not silently drop a setting (e.g. REQUIRE_FACE_LIVENESS)
            raise ConfigurationError(
                f"unknown variable(s) {', '.join(misspelt)}; settings are "
                + ", ".join(sorted(names))
            )
        for key, name in names.items():
            raw = env.get(key)
            if raw is not None and raw != "":
                values[name] = raw
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        hints = get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
            )
        converted = {name: _convert(name, value, hints[name]) for name, value in values.items()}
        settings = cls(**converted)
        settings.validate()
        return settings

    def validate(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ConfigurationError("tls_cert_file and tls_key_file go together")
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise ConfigurationError("tls_client_ca_file needs tls_cert_file and tls_key_file")
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"port must be 0..65535, got {self.port}")
        if self.sample_id_key and self.sample_id_key_file:
            raise ConfigurationError("set sample_id_key or sample_id_key_file, not both")
        if self.sample_id_key and len(self.sample_id_key) < MIN_SAMPLE_ID_KEY_LENGTH:
            raise ConfigurationError(
                f"sample_id_key must be at least {MIN_SAMPLE_ID_KEY_LENGTH} characters "
                "(e.g. `openssl rand -hex 32`)"
            )
        if self.allow_unsealed_templates and not self.template_key_file:
            raise ConfigurationError(
                "allow_unsealed_templates is for moving a store to encrypted templates: it "
                "needs template_key_file"
            )
        if self.store not in ("sqlite", "redis"):
            raise ConfigurationError(f"store must be 'sqlite' or 'redis', got {self.store!r}")
        if self.max_image_working_side < 256:
            raise ConfigurationError(
                f"max_image_working_side must be at least 256, got {self.max_image_working_side}"
            )
        if not 0.0 < self.identify_target_fpir < 1.0:
            raise ConfigurationError(
                f"identify_target_fpir must be in (0, 1), got {self.identify_target_fpir}"
            )
        if self.log_level.upper() not in LOG_LEVELS:
            raise ConfigurationError(
                f"log_level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}"
            )
        for name in (
            "max_message_bytes",
            "max_image_bytes",
            "max_image_pixels",
            "max_images_per_enrollment",
            "max_audio_bytes",
            "max_audio_seconds",
            "max_clips_per_enrollment",
            "max_call_seconds",
            "max_stream_chunk_bytes",
            "inference_workers",
            "onnx_threads",
            "max_concurrent_rpcs",
            "rpc_threads",
            "change_log_retention",
            "max_subject_id_length",
            "challenge_ttl_s",
            "challenge_max_pending_per_tenant",
            "challenge_max_pending",
            "gallery_follow_poll_s",
            "voice_interim_every_speech_s",
            "gallery_exact_max",
            "live_call_idle_s",
            "request_read_timeout_s",
        ):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be positive")
        if self.max_message_bytes < MIN_MESSAGE_BYTES:
            raise ConfigurationError(
                f"max_message_bytes must be at least {MIN_MESSAGE_BYTES} (1 MiB): a subject "
                "with the most metadata allowed takes about 300 KB in a reply"
            )
        if self.max_live_calls < 0:
            raise ConfigurationError("max_live_calls must not be negative (0: automatic)")
        if self.max_concurrent_rpcs_per_token < 0:
            raise ConfigurationError(
                "max_concurrent_rpcs_per_token must not be negative (0: no cap per token)"
            )
        if self.max_concurrent_rpcs_per_token and not self.auth_tokens_file:
            raise ConfigurationError(
                "max_concurrent_rpcs_per_token caps the calls of each API token: it needs "
                "auth_tokens_file (without tokens, any caller could send a new one each call)"
            )
        if self.max_live_calls_per_tenant < 0:
            raise ConfigurationError(
                "max_live_calls_per_tenant must not be negative (0: no cap per tenant)"
            )
        if self.max_live_calls and self.max_live_calls >= min(
            self.rpc_threads, self.max_concurrent_rpcs
        ):
            raise ConfigurationError(
                f"max_live_calls ({self.max_live_calls}) must be below rpc_threads "
                f"({self.rpc_threads}) and max_concurrent_rpcs ({self.max_concurrent_rpcs}): "
                "each live call holds an RPC thread, and other requests need some"
            )
        for name in (
            "grace_seconds",
            "voice_min_verify_speech_s",
            "voice_min_enroll_clip_speech_s",
            "voice_min_enroll_total_speech_s",
        ):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"{name} must not be negative")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigurationError(f"{f.name} must be a finite number, got {value}")


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"config file {path} is not valid YAML") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"config file {path} must hold a mapping of settings")
    return {str(k): v for k, v in loaded.items()}


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(name: str, value: Any, hint: Any) -> Any:
    if value is None:  # never the setting "None"
        raise ConfigurationError(f"setting {name} has no value")
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(text)
        if hint is int:
            return int(value)
        if hint is float:
            return float(value)
        if hint is Path:
            return Path(str(value)).expanduser()
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"setting {name}: cannot use {value!r} as {hint}") from exc
