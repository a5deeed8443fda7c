"""Which pool images a study may draw from: by modality, finding, source and generation.

A study is fair when its real and synthetic cases come from populations the researcher chose
(adult real images are not mixed with a pediatric model's fakes by accident), so every rule
that picks images at random (the reader study's "add cases by rule", a generation job's
"keep the balance") narrows the pool with a :class:`Selection`. Generation provenance is read
from the image's own indexed fields (set by the generation app when it stores an image), so
the pool and the reader study filter on it without knowing the generation app.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from pool.findings import canonical_name
from pool.models import Image, Truth

#: Separates generator and checkpoint in a checkpoint choice's value (generator names are slugs).
CHECKPOINT_SEPARATOR = "|"


@dataclass(frozen=True)
class Selection:
    """Every field given narrows the pool; an empty one leaves it open. Within a field, any of
    the values matches; across fields, all must."""

    modality: str = ""
    finding: str = ""
    sources: tuple[str, ...] = ()
    generators: tuple[str, ...] = ()
    checkpoints: tuple[tuple[str, str], ...] = ()  # (generator, checkpoint)
    generation_jobs: tuple[int, ...] = ()

    def images(self, truth: str) -> QuerySet[Image]:
        """The pool's images of ``truth`` this selection allows."""
        queryset = Image.objects.filter(truth=truth)
        if self.modality:
            queryset = queryset.filter(modality=self.modality)
        if self.finding:
            queryset = queryset.filter(finding__iexact=canonical_name(self.finding))
        if self.sources:
            queryset = queryset.filter(source__in=self.sources)
        if self.generators:
            queryset = queryset.filter(generator__in=self.generators)
        if self.checkpoints:
            either = Q()
            for generator, checkpoint in self.checkpoints:
                either |= Q(generator=generator, checkpoint=checkpoint)
            queryset = queryset.filter(either)
        if self.generation_jobs:
            queryset = queryset.filter(generation_job__in=self.generation_jobs)
        return queryset

    def describe(self) -> str:
        """“CXR, finding pneumonia, from adult-cxr”: for messages and job logs."""
        parts = [self.modality] if self.modality else []
        if self.finding:
            parts.append(f"finding {canonical_name(self.finding)}")
        if self.sources:
            parts.append("from " + " or ".join(self.sources))
        if self.generators:
            parts.append("made by " + " or ".join(self.generators))
        if self.checkpoints:
            parts.append("checkpoint " + " or ".join(c for _g, c in self.checkpoints))
        if self.generation_jobs:
            parts.append("job " + " or ".join(f"#{job}" for job in self.generation_jobs))
        return ", ".join(parts)


def parse_checkpoint(value: str) -> tuple[str, str]:
    generator, _, checkpoint = value.partition(CHECKPOINT_SEPARATOR)
    return generator, checkpoint


# --- the choices a form offers: what the pool actually holds ------------------------------


def source_choices(truth: str) -> list[tuple[str, str]]:
    """The sources (datasets, generator names) of the pool's images of ``truth``."""
    sources = (
        Image.objects.filter(truth=truth)
        .exclude(source="")
        .order_by("source")
        .values_list("source", flat=True)
        .distinct()
    )
    return [(source, source) for source in sources]


def generator_choices() -> list[tuple[str, str]]:
    generators = (
        Image.objects.filter(truth=Truth.SYNTHETIC)
        .exclude(generator="")
        .order_by("generator")
        .values_list("generator", flat=True)
        .distinct()
    )
    return [(generator, generator) for generator in generators]


def checkpoint_choices() -> list[tuple[str, str]]:
    pairs = (
        Image.objects.filter(truth=Truth.SYNTHETIC)
        .exclude(checkpoint="")
        .order_by("generator", "checkpoint")
        .values_list("generator", "checkpoint")
        .distinct()
    )
    return [
        (f"{generator}{CHECKPOINT_SEPARATOR}{checkpoint}", f"{generator}: {checkpoint}")
        for generator, checkpoint in pairs
    ]


def generation_job_choices() -> list[tuple[str, str]]:
    jobs = (
        Image.objects.filter(truth=Truth.SYNTHETIC, generation_job__isnull=False)
        .order_by("-generation_job")
        .values_list("generation_job", "generator")
        .distinct()
    )
    return [(str(job), f"#{job} ({generator})") for job, generator in jobs]
