"""Domain errors of bioverify.

Every error a client can cause or observe is one of these; the gRPC layer maps them to status
codes in exactly one place (``bioverify.server.status``). Messages are written for client
developers and never contain biometric data or internal paths.

    BioverifyError
    ├── InvalidInput                       INVALID_ARGUMENT
    │   ├── InvalidImage                   (corrupt, truncated, unsupported format)
    │   ├── InvalidAudio                   (corrupt, unsupported, wrongly declared format)
    │   ├── InvalidSubjectId
    │   ├── NoFaceDetected
    │   ├── MultipleFaces
    │   ├── PoorQuality                    (face too small, blurred, extreme pose, exposure)
    │   ├── AudioTooShort                  (not enough net speech)
    │   └── StreamProtocolError            (stream messages out of order / format change)
    ├── TooLarge                           RESOURCE_EXHAUSTED (bytes, pixels, duration)
    ├── Overloaded                         RESOURCE_EXHAUSTED (server busy)
    │   └── TooManyChallenges              (the tenant's pending liveness challenges at the cap)
    ├── NotEnrolled                        NOT_FOUND
    ├── ModelMismatch                      FAILED_PRECONDITION (template made by another model)
    ├── AlreadyExists                      ALREADY_EXISTS
    ├── TemplateChanged                    ABORTED (changed since the request read it; retry)
    ├── TemplateUnreadable                 DATA_LOSS (a stored template fails its seal's check)
    │   └── MetadataUnreadable             (a subject's stored metadata fails it)
    ├── SpoofSuspected                     (never raised to clients: decisions carry it)
    ├── Unauthenticated                    UNAUTHENTICATED (no valid API token)
    ├── PermissionDenied                   PERMISSION_DENIED
    │   └── TenantNotAllowed               (the API token may not act on the request's tenant)
    ├── ChallengeInvalid                   FAILED_PRECONDITION (unknown/expired/used nonce)
    ├── Unavailable                        UNAVAILABLE (store down, models not ready)
    ├── NotImplementedYet                  UNIMPLEMENTED
    └── ConfigurationError                 raised at startup only (bad settings, bad model pack)
"""

from __future__ import annotations


class BioverifyError(Exception):
    """Base of all domain errors. ``reason`` is a stable machine-readable code."""

    reason: str = "ERROR"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason

    def __str__(self) -> str:
        return self.message


class InvalidInput(BioverifyError):
    reason = "INVALID_INPUT"


class InvalidImage(InvalidInput):
    reason = "INVALID_IMAGE"


class InvalidAudio(InvalidInput):
    reason = "INVALID_AUDIO"


class InvalidSubjectId(InvalidInput):
    reason = "INVALID_SUBJECT_ID"


class NoFaceDetected(InvalidInput):
    reason = "NO_FACE"


class MultipleFaces(InvalidInput):
    """Several faces of similar size: ``faces_detected`` of them, in an image of
    ``image_width`` x ``image_height`` pixels as sent."""

    reason = "MULTIPLE_FACES"

    def __init__(
        self, message: str, *, faces_detected: int, image_width: int = 0, image_height: int = 0
    ) -> None:
        super().__init__(message)
        self.faces_detected = faces_detected
        self.image_width = image_width
        self.image_height = image_height


class PoorQuality(InvalidInput):
    reason = "POOR_QUALITY"


class AudioTooShort(InvalidInput):
    reason = "NOT_ENOUGH_SPEECH"


class StreamProtocolError(InvalidInput):
    reason = "STREAM_PROTOCOL"


class TooLarge(BioverifyError):
    reason = "TOO_LARGE"


class Overloaded(BioverifyError):
    reason = "OVERLOADED"


class TooManyChallenges(Overloaded):
    reason = "TOO_MANY_CHALLENGES"


class NotEnrolled(BioverifyError):
    reason = "NOT_ENROLLED"


class ModelMismatch(BioverifyError):
    reason = "MODEL_MISMATCH"


class AlreadyExists(BioverifyError):
    reason = "ALREADY_EXISTS"


class TemplateChanged(BioverifyError):
    """A compare-and-set write found the template changed since it was read; nothing written."""

    reason = "TEMPLATE_CHANGED"


class TemplateUnreadable(BioverifyError):
    """A stored template this service cannot open: its encryption's integrity check fails
    (the bytes were changed, or moved from another subject), or it is sealed with a key the
    service does not hold."""

    reason = "TEMPLATE_UNREADABLE"


class MetadataUnreadable(TemplateUnreadable):
    """A subject's stored metadata this service cannot open (as for a template)."""

    reason = "METADATA_UNREADABLE"


class SpoofSuspected(BioverifyError):
    reason = "SPOOF_SUSPECTED"


class Unauthenticated(BioverifyError):
    reason = "UNAUTHENTICATED"


class PermissionDenied(BioverifyError):
    reason = "PERMISSION_DENIED"


class TenantNotAllowed(PermissionDenied):
    reason = "TENANT_NOT_ALLOWED"


class ChallengeInvalid(BioverifyError):
    reason = "CHALLENGE_INVALID"


class Unavailable(BioverifyError):
    reason = "UNAVAILABLE"


class NotImplementedYet(BioverifyError):
    reason = "UNIMPLEMENTED"


class ConfigurationError(BioverifyError):
    reason = "CONFIGURATION"
