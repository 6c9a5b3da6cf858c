"""Face use cases: compare, enroll, identify, verify."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bioverify.errors import (
    BioverifyError,
    InvalidImage,
    InvalidInput,
    MultipleFaces,
    TooLarge,
    Unavailable,
)
from bioverify.face.pipeline import FaceFinding, FacePipeline, FaceSample, PreparedFace
from bioverify.index.gallery import Gallery
from bioverify.packs import PackManifest
from bioverify.scoring import (
    Calibration,
    MatchResult,
    OperatingPoint,
    cosine_similarity,
    decide_match,
)
from bioverify.store.ports import ExpectedTemplate, Template, TemplateStore, TemplateWrite
from bioverify.usecases.common import (
    DEFAULT_TENANT,
    ENROLMENT_WRITE_ATTEMPTS,
    NOTHING_ACCEPTED,
    InferencePool,
    Issue,
    RequestPolicy,
    against_current_template,
    enrolment_subject_id,
    issue_of,
    legacy_sample_id,
    on_stored_form,
    prepare_all,
    prepare_each,
    refuse_unlike_subject,
    sample_id,
    save_enrollment,
    stored_template,
    template_for,
    validate_enrollment,
    validate_tenant,
)
from bioverify.usecases.gallery_search import Duplicate, IdentifyResult, identify
from bioverify.usecases.liveness import (
    CaptureBinding,
    LiveCapture,
    LivenessChecks,
    LivenessGate,
    LivenessResult,
    not_checked,
    spoof_issues,
)

logger = logging.getLogger(__name__)

FACE = "face"


@dataclass(frozen=True)
class CompareOutcome:
    match: MatchResult
    model: str
    face_a: FaceFinding
    face_b: FaceFinding
    retry: tuple[Issue, ...]  # quality problems that make the decision unreliable
    liveness_a: LivenessResult | None = None
    liveness_b: LivenessResult | None = None


@dataclass(frozen=True)
class FaceCount:
    """What is known of an image rejected before one face was chosen in it (several faces of
    similar size): how many faces were found, and its size as sent."""

    faces_detected: int
    image_width: int
    image_height: int


@dataclass(frozen=True)
class SampleOutcome:
    index: int
    accepted: bool
    reasons: tuple[Issue, ...]
    finding: FaceFinding | None
    liveness: LivenessResult | None = None
    counted: FaceCount | None = None  # without a finding: the faces found (MULTIPLE_FACES)


@dataclass(frozen=True)
class EnrollOutcome:
    subject_id: str
    samples: tuple[SampleOutcome, ...]
    template: Template | None
    duplicates: tuple[Duplicate, ...] = ()
    refusal: tuple[Issue, ...] = ()  # why no template was written, when none was
    liveness: LivenessResult | None = None  # the live capture's, when one was sent


@dataclass(frozen=True)
class IdentifyOutcome:
    result: IdentifyResult
    model: str
    finding: FaceFinding
    retry: tuple[Issue, ...]
    liveness: LivenessResult | None = None


@dataclass(frozen=True)
class VerifyOutcome:
    subject_id: str
    match: MatchResult
    model: str
    finding: FaceFinding
    retry: tuple[Issue, ...]
    liveness: LivenessResult | None = None


class FaceVerification:
    def __init__(
        self,
        pipeline: FacePipeline,
        pack: PackManifest,
        store: TemplateStore,
        pool: InferencePool,
        gallery: Gallery,
        *,
        live_capture: LivenessChecks,
        default_operating_point: str = "",
        max_images_per_enrollment: int = 20,
        max_subject_id_length: int = 128,
        sample_id_key: bytes,
        identify_target_fpir: float = 0.01,
    ) -> None:
        """``sample_id_key``: the deployment's secret that sample ids are keyed with;
        ``identify_target_fpir``: see :func:`gallery_search.search_point`."""
        if pack.calibration is None:
            raise ValueError(f"pack {pack.id} has no calibration")
        self.pipeline = pipeline
        self.pack = pack
        self.calibration: Calibration = pack.calibration
        self.store = store
        self.pool = pool
        self.gallery = gallery
        self.live_capture = live_capture
        self.liveness: LivenessGate = live_capture.gate
        self.default_operating_point = pack.operating_point(default_operating_point).name
        self.max_images = max_images_per_enrollment
        self.max_subject_id_length = max_subject_id_length
        self.sample_id_key = sample_id_key
        self.identify_target_fpir = identify_target_fpir

    @property
    def model(self) -> str:
        return self.pack.template_model

    def operating_point(self, policy: RequestPolicy) -> OperatingPoint:
        name = policy.operating_point or self.default_operating_point
        try:
            return self.pack.operating_point(name)
        except BioverifyError as exc:
            raise InvalidInput(exc.message) from exc

    # -- use cases --------------------------------------------------------------------------
    def compare(self, image_a: bytes, image_b: bytes, policy: RequestPolicy) -> CompareOutcome:
        point = self.operating_point(policy)
        _require_image(image_a, "image_a")
        _require_image(image_b, "image_b")
        prepared = prepare_all(
            self.pool, self.pipeline.prepare, [image_a, image_b], ("image_a", "image_b")
        )
        wait_a = self._start_liveness(policy, DEFAULT_TENANT, prepared[0], compare=True)
        wait_b = self._start_liveness(policy, DEFAULT_TENANT, prepared[1], compare=True)
        samples = self.pool.run(self.pipeline.embed, prepared)
        live_a, live_b = wait_a(), wait_b()
        similarity = cosine_similarity(samples[0].embedding, samples[1].embedding)
        return CompareOutcome(
            match=decide_match(similarity, self.calibration, point),
            model=self.model,
            face_a=samples[0].finding,
            face_b=samples[1].finding,
            retry=_quality_issues(samples),
            liveness_a=live_a,
            liveness_b=live_b,
        )

    def enroll(
        self,
        *,
        tenant: str,
        subject_id: str,
        images: Sequence[bytes],
        metadata: Mapping[str, str],
        replace: bool,
        policy: RequestPolicy,
        dry_run: bool = False,
        refuse_duplicates: bool = False,
        capture: LiveCapture | None = None,
    ) -> EnrollOutcome:
        """``capture``: frames of one capture vouching that the images are of a live person;
        their liveness replaces the per-image check. Every accepted image must match the
        frames' face at the operating point, and so must the subject's existing template
        (also when replacing it: delete the subject to enroll someone else under its id). A
        capture judged not live writes nothing and rejects every sample; on a dry run, an
        answered challenge is used up all the same (a dry run must not let a client try
        answers). Samples that do not look like the subject (``mismatched_samples`` at the pack's
        loosest operating point) are refused with SUBJECT_MISMATCH, with or without a capture.
        The write expects the subject's face template (of any model) to be still the one read
        for these checks, or still absent. When another request or replica changed it in
        between, nothing is written: without a capture the samples are checked again against
        the new template (``against_current_template``); with one, TemplateChanged ends the
        request (the challenge is used up). A save that fails with Unavailable gives the
        challenge back for the retry."""
        sent_id = subject_id
        tenant, subject_id, meta = validate_enrollment(
            tenant,
            subject_id,
            metadata,
            images,
            noun="images",
            max_samples=self.max_images,
            max_subject_id_length=self.max_subject_id_length,
        )
        subject_id = enrolment_subject_id(
            self.store, tenant, sent_id, subject_id, self.max_subject_id_length
        )
        point = self.operating_point(policy)
        self._validate_capture(capture)
        outcomes: list[SampleOutcome] = []
        good: list[PreparedFace] = []
        good_ids: list[str] = []
        legacy_ids: list[str] = []
        checking: list[tuple[int, PreparedFace, Callable[[], LivenessResult | None]]] = []
        for index, prepared in enumerate(prepare_each(self.pool, self.pipeline.prepare, images)):
            if isinstance(prepared, InvalidInput | TooLarge):
                counted = (
                    FaceCount(prepared.faces_detected, prepared.image_width, prepared.image_height)
                    if isinstance(prepared, MultipleFaces)
                    else None
                )
                outcomes.append(
                    SampleOutcome(index, False, (issue_of(prepared),), None, counted=counted)
                )
                continue
            quality = prepared.finding.quality
            if not quality.ok:
                reasons = tuple(Issue(i.code, i.message) for i in quality.issues)
                outcomes.append(SampleOutcome(index, False, reasons, prepared.finding))
                continue
            # With a capture, the capture decides liveness for every image.
            live_image = capture is None
            wait = self._start_liveness(policy, tenant, prepared) if live_image else not_checked
            checking.append((index, prepared, wait))
        for index, prepared, wait in checking:  # every sample's liveness runs at once
            live = wait()
            if live is not None and live.blocks:
                reasons = spoof_issues(live)
                outcomes.append(SampleOutcome(index, False, reasons, prepared.finding, live))
                continue
            outcomes.append(SampleOutcome(index, True, (), prepared.finding, live))
            good.append(prepared)
            good_ids.append(sample_id(self.sample_id_key, images[index]))
            legacy_ids.append(legacy_sample_id(images[index]))
        outcomes.sort(key=lambda o: o.index)
        if not good:
            return EnrollOutcome(subject_id, tuple(outcomes), None, refusal=(NOTHING_ACCEPTED,))
        embedded: list[FaceSample] = self.pool.run(self.pipeline.embed, good)
        stored = stored_template(self.store, tenant, subject_id, FACE)
        live = None
        if capture is not None:
            names = [f"enrolment image {o.index}" for o in outcomes if o.accepted]
            existing = self._comparable(stored)
            binding = CaptureBinding(
                images=tuple(zip(names, (s.embedding for s in embedded), strict=True)),
                threshold=point.threshold,
                subject_id=subject_id,
                template=existing.vector if existing is not None else None,
                images_at_threshold=True,
            )
            live = self.live_capture.vouch_for(capture, binding, policy, tenant)
            if live.blocks:
                refusal = spoof_issues(live)
                rejected = tuple(
                    SampleOutcome(o.index, False, refusal, o.finding) if o.accepted else o
                    for o in outcomes
                )
                return EnrollOutcome(subject_id, rejected, None, refusal=refusal, liveness=live)
        embeddings = np.stack([s.embedding for s in embedded])

        def write_against(current: Template | None) -> EnrollOutcome:
            checked, kept = refuse_unlike_subject(outcomes, embeddings, current, self.pack)
            if not kept:
                return EnrollOutcome(
                    subject_id, tuple(checked), None, refusal=(NOTHING_ACCEPTED,), liveness=live
                )
            write = TemplateWrite(
                tenant=tenant,
                subject_id=subject_id,
                modality=FACE,
                model=self.model,
                new_samples=embeddings[kept],
                metadata=meta,
                replace=replace,
                sample_ids=[good_ids[row] for row in kept],
                legacy_sample_ids=[legacy_ids[row] for row in kept],
                expected=ExpectedTemplate.of(current),
            )
            template, duplicates = save_enrollment(
                self.store,
                self.gallery,
                write,
                calibration=self.calibration,
                point=point,
                refuse_duplicates=refuse_duplicates,
                dry_run=dry_run,
            )
            return EnrollOutcome(subject_id, tuple(checked), template, duplicates, liveness=live)

        try:
            # A capture vouched for the images against the template read: its answer cannot
            # be checked again against another one, so a changed template ends the request.
            return against_current_template(
                lambda: stored_template(self.store, tenant, subject_id, FACE),
                write_against,
                stored=stored,
                attempts=1 if capture is not None else ENROLMENT_WRITE_ATTEMPTS,
            )
        except Unavailable:
            # No verdict given: the retry (the SDK retries UNAVAILABLE) answers the challenge
            # again. Had the write gone through before the store failed, the retry adds the
            # same samples, which a template holds once.
            self.live_capture.give_back(live)
            raise

    def identify(
        self,
        *,
        tenant: str,
        image: bytes,
        top_k: int,
        min_confidence: float,
        policy: RequestPolicy,
        capture: LiveCapture | None = None,
    ) -> IdentifyOutcome:
        """``capture``: frames of the same capture vouching for ``image``; their liveness
        (``image`` and, when one is found, the top candidate bound to them) replaces the
        single-image check."""
        tenant = validate_tenant(tenant)
        one_to_one = self.operating_point(policy)  # binds the capture to the found subject
        _require_image(image, "image")
        self._validate_capture(capture)  # before any image work
        live, sample = self._sample(image, policy, tenant, capture)
        result = identify(
            self.gallery,
            tenant,
            sample.embedding,
            top_k=top_k,
            min_confidence=min_confidence,
            calibration=self.calibration,
            point=one_to_one,
            scale_among=() if policy.operating_point else self.pack.operating_points,
            target_fpir=self.identify_target_fpir,
        )
        if capture is not None:
            template = None
            if result.found:
                template = self._comparable_template(tenant, result.candidates[0].subject_id)
                if template is None:  # deleted or re-enrolled since the gallery saw it
                    raise Unavailable("the face gallery is catching up with a change; retry")
            binding = CaptureBinding(
                images=(("the identified image", sample.embedding),),
                threshold=one_to_one.threshold,
                template=template.vector if template is not None else None,
            )
            live = self.live_capture.vouch_for(capture, binding, policy, tenant)
        return IdentifyOutcome(result, self.model, sample.finding, _quality_issues([sample]), live)

    def verify(
        self,
        *,
        tenant: str,
        subject_id: str,
        image: bytes,
        policy: RequestPolicy,
        capture: LiveCapture | None = None,
    ) -> VerifyOutcome:
        """``capture``: frames of the same capture vouching for ``image``; their liveness
        (``image`` and the enrolled subject bound to them) replaces the single-image check."""
        tenant = validate_tenant(tenant)
        point = self.operating_point(policy)
        _require_image(image, "image")
        self._validate_capture(capture)  # a malformed request is refused before any look-up
        ((subject_id, template),) = on_stored_form(
            subject_id,
            self.max_subject_id_length,
            lambda form: template_for(self.store, tenant, form, FACE, self.model),
        )
        live, sample = self._sample(image, policy, tenant, capture)
        if capture is not None:
            binding = CaptureBinding(
                images=(("the verified image", sample.embedding),),
                threshold=point.threshold,
                subject_id=subject_id,
                template=template.vector,
            )
            live = self.live_capture.vouch_for(capture, binding, policy, tenant)
        similarity = cosine_similarity(template.vector, sample.embedding)
        return VerifyOutcome(
            subject_id=subject_id,
            match=decide_match(similarity, self.calibration, point),
            model=self.model,
            finding=sample.finding,
            retry=_quality_issues([sample]),
            liveness=live,
        )

    # -- helpers ----------------------------------------------------------------------------
    def _validate_capture(self, capture: LiveCapture | None) -> None:
        if capture is not None:
            self.live_capture.validate(capture)

    def _comparable_template(self, tenant: str, subject_id: str) -> Template | None:
        """The subject's face template when this service's model made it, else None."""
        return self._comparable(stored_template(self.store, tenant, subject_id, FACE))

    def _comparable(self, template: Template | None) -> Template | None:
        """``template`` when this service's model made it, else None."""
        return template if template is not None and template.model == self.model else None

    def _start_liveness(
        self, policy: RequestPolicy, tenant: str, prepared: PreparedFace, compare: bool = False
    ) -> Callable[[], LivenessResult | None]:
        """Start the liveness check on the pool (when the request, the tenant or the service
        asks for it) and return what waits for its result, so it runs beside other work.
        CompareFaces stores nothing and decides nothing about an enrolled person, so there it
        runs only when the request asks."""
        if compare and not policy.require_liveness:
            return not_checked
        return self.pool.submit(self.liveness.face_result, policy, tenant, prepared).result

    def _sample(
        self, image: bytes, policy: RequestPolicy, tenant: str, capture: LiveCapture | None
    ) -> tuple[LivenessResult | None, FaceSample]:
        """The image's face, embedded, and its single-image liveness (None: not checked).
        Both start from the detected face and are independent, so they run side by side on
        the pool and liveness adds little to a request's latency. With a live capture the
        capture decides liveness (validated and then checked by the caller)."""
        prepared = self.pool.run(self.pipeline.prepare, image)
        wait = self._start_liveness(policy, tenant, prepared) if capture is None else not_checked
        sample = self.pool.run(self.pipeline.embed, [prepared])[0]
        return wait(), sample


def _require_image(data: bytes, label: str) -> None:
    if not data:
        raise InvalidImage(f"{label} is empty: send a JPEG, PNG or WebP image")


def _quality_issues(samples: Sequence[FaceSample]) -> tuple[Issue, ...]:
    issues: list[Issue] = []
    for sample in samples:
        issues.extend(Issue(i.code, i.message) for i in sample.finding.quality.issues)
    return tuple(issues)
