"""Rewrite every stored template under the service's sealing key (``bioverify
seal-templates``): the step that moves a store written without template keys to encrypted
templates, and that finishes a key rotation (see ``bioverify.store.sealing``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from bioverify.errors import NotEnrolled, TemplateChanged, Unavailable
from bioverify.store.ports import ExpectedTemplate, TemplateStore, TemplateWrite

MODALITIES = ("face", "voice")
ATTEMPTS = 3


@dataclass
class ResealReport:
    sealed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MODALITIES, 0))
    gone: int = 0  # deleted while the run went on: nothing left to seal


def reseal_templates(
    store: TemplateStore,
    modalities: Iterable[str] = MODALITIES,
    progress: Callable[[str, int], None] | None = None,
) -> ResealReport:
    """Write each template again, unchanged, through ``store`` (which seals what it writes).
    Each write expects the template it read, so an enrolment running meanwhile is never
    undone: on a conflict the template is read and written again. The samples, ids, extra
    values and creation time stay; the template's update time and revision move on."""
    report = ResealReport()
    for modality in modalities:
        names = [(t.tenant, t.subject_id) for t in store.iter_templates(modality)]
        for tenant, subject_id in names:
            if _reseal_one(store, tenant, subject_id, modality):
                report.sealed[modality] = report.sealed.get(modality, 0) + 1
                if progress is not None:
                    progress(modality, report.sealed[modality])
            else:
                report.gone += 1
    return report


def _reseal_one(store: TemplateStore, tenant: str, subject_id: str, modality: str) -> bool:
    """Whether the template was written again (False: it was deleted meanwhile)."""
    for _ in range(ATTEMPTS):
        try:
            template = store.get_template(tenant, subject_id, modality)
        except NotEnrolled:
            return False
        no_samples = np.empty((0, template.samples.shape[1]), dtype=np.float32)
        try:
            store.save(
                TemplateWrite(
                    tenant=tenant,
                    subject_id=subject_id,
                    modality=modality,
                    model=template.model,
                    new_samples=no_samples,
                    expected=ExpectedTemplate.of(template),
                )
            )
        except TemplateChanged:
            continue
        return True
    raise Unavailable(
        f"subject {subject_id!r}'s {modality} template kept changing while being sealed; "
        "run seal-templates again"
    )
