"""Rewrite every stored template, and with it its subject's metadata, under the service's
sealing key (``bioverify seal-templates``): the step that moves a store written without
template keys to encrypted templates, and that finishes a key rotation (see
``bioverify.store.sealing``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from bioverify.errors import (
    MetadataUnreadable,
    NotEnrolled,
    TemplateChanged,
    TemplateUnreadable,
    Unavailable,
)
from bioverify.store.ports import ExpectedTemplate, Template, TemplateStore, TemplateWrite

logger = logging.getLogger(__name__)

MODALITIES = ("face", "voice")
ATTEMPTS = 3


@dataclass
class ResealReport:
    sealed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MODALITIES, 0))
    gone: int = 0  # deleted while the run went on: nothing left to seal
    unreadable: int = 0  # could not be opened (logged): not sealed; delete or re-enrol them
    # (tenant, subject) whose metadata could not be opened (logged): their templates were not
    # written again either; delete those subjects and enrol them again
    unreadable_metadata: set[tuple[str, str]] = field(default_factory=set)

    def left_out(self, _: TemplateUnreadable) -> None:
        self.unreadable += 1


def reseal_templates(store: TemplateStore) -> ResealReport:
    """Write each template again, unchanged, through ``store`` (which seals what it writes,
    the subject's metadata included).
    Each write expects the template it read, so an enrolment running meanwhile is never
    undone: on a conflict the template is read and written again. The samples, ids, extra
    values and creation time stay; the template's update time and revision move on."""
    report = ResealReport()
    for modality in MODALITIES:
        # Written as read: a template's write leaves the scan's order and pages as they are.
        for template in store.iter_templates(modality, left_out=report.left_out):
            try:
                resealed = _reseal_one(store, template)
            except MetadataUnreadable as exc:
                logger.error("%s; its %s template was not sealed again", exc, modality)
                report.unreadable_metadata.add((template.tenant, template.subject_id))
                continue
            if resealed:
                report.sealed[modality] += 1
            else:
                report.gone += 1
    return report


def _reseal_one(store: TemplateStore, template: Template) -> bool:
    """Whether ``template`` (as read) was written again; False: it was deleted meanwhile."""
    current: Template | None = template
    for _ in range(ATTEMPTS):
        if current is None:
            return False
        try:
            store.save(
                TemplateWrite(
                    tenant=current.tenant,
                    subject_id=current.subject_id,
                    modality=current.modality,
                    model=current.model,
                    new_samples=np.empty((0, current.samples.shape[1]), dtype=np.float32),
                    expected=ExpectedTemplate.of(current),
                )
            )
        except TemplateChanged:
            current = _read_again(store, current)
            continue
        return True
    if current is None:
        return False
    raise Unavailable(
        f"subject {template.subject_id!r}'s {template.modality} template kept changing while "
        "being sealed; run seal-templates again"
    )


def _read_again(store: TemplateStore, template: Template) -> Template | None:
    try:
        return store.get_template(template.tenant, template.subject_id, template.modality)
    except NotEnrolled:
        return None
