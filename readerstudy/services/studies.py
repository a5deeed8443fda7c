"""A study's life: assigning readers, drawing and storing their orders, opening, closing.

Decisions that matter for auditing:

* A reader's order is drawn when the study opens (for everyone assigned then) or when a
  reader is assigned to an open study, and stored as ``ReadingSlot`` rows. It is never
  redrawn.
* From the first drawn order on, the case set and the order options (seed, repeats,
  confidence, going back) are frozen: cases cannot be added, removed or swapped. Every
  reader therefore reads exactly the same cases, and a stored order can always be
  recomputed from the study seed, the reader id and the case ids. To read other cases,
  make a new study.
* A study is opened only with at least one (non-practice) case and one reader, and only
  when the repeat share fits the gap; the refusal says why.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from pool.models import Truth
from pool.selection import Selection
from readerstudy.models import Assignment, Design, ReadingSlot, Study, StudyCase, StudyStatus
from readerstudy.ordering import ALGORITHM, OrderingError, check_feasible, plan_order
from readerstudy.services.designs import pair_slots
from readerstudy.services.leaks import refuse_truth_leaks
from readerstudy.signals import cases_added


class StudyRefused(Exception):
    """A study operation that is not allowed; the message is meant for the researcher."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Checks other apps add (``register_open_check``, from their AppConfig.ready): each
# ``prepare(study)`` runs before the study is locked (its writes are kept even when opening is
# refused), each ``check(study)`` with the locked study after the checks below, refusing by
# raising StudyRefused.
_open_checks: list = []


def register_open_check(check, *, prepare=None) -> None:
    """Add ``check(study)`` (and its ``prepare(study)``) to what ``open_study`` runs, once."""
    if all(check is not registered for registered, _ in _open_checks):
        _open_checks.append((check, prepare))


class OpenNeedsConfirmation(StudyRefused):
    """Opening would go ahead, but the researcher must confirm ``warnings`` first."""

    def __init__(self, title: str, warnings: list[str]) -> None:
        super().__init__(f"“{title}”: {' '.join(warnings)} Confirm to open it anyway.")
        self.warnings = warnings


def _one_sided(study: Study) -> str | None:
    """A study with no synthetic or no real (non-practice) cases measures nothing about fakes."""
    counts = study.cases.filter(is_practice=False).aggregate(
        real=Count("id", filter=Q(image__truth=Truth.REAL)),
        synthetic=Count("id", filter=Q(image__truth=Truth.SYNTHETIC)),
    )
    if counts["synthetic"] == 0:
        return (
            f"It has no synthetic cases (and {counts['real']} real): readers can only be "
            f"right by calling everything real."
        )
    if counts["real"] == 0:
        return (
            f"It has no real cases (and {counts['synthetic']} synthetic): readers can only be "
            f"right by calling everything fake."
        )
    return None


# Warnings asked about before a draft study first opens: ``warning(study)`` returns a sentence,
# or None when all is well. The reader study's own come first; other apps add theirs through
# ``register_open_warning`` from their AppConfig.ready.
_open_warnings: list = [_one_sided]


def register_open_warning(warning) -> None:
    """Add ``warning(study) -> str | None`` to what is confirmed before a study opens, once."""
    if all(warning is not registered for registered in _open_warnings):
        _open_warnings.append(warning)


def open_warnings(study: Study) -> list[str]:
    """The sentences a researcher confirms before opening ``study`` (empty: nothing to ask)."""
    return [text for warning in _open_warnings if (text := warning(study))]


def draw_order(assignment: Assignment) -> bool:
    """Draw and store this reader's order once; True if drawn now, False if already stored."""
    with transaction.atomic():
        locked = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("study")
            .get(pk=assignment.pk)
        )
        if locked.order_drawn_at is not None:
            return False
        study = locked.study
        if study.status == StudyStatus.DRAFT:
            raise StudyRefused("Orders are drawn only when the study opens.")
        if study.design == Design.PAIR:
            try:
                slots, algorithm = pair_slots(locked, study)
            except OrderingError as error:
                raise StudyRefused(str(error)) from error
            return _store_order(assignment, locked, slots, algorithm)
        cases = list(study.cases.values_list("id", "is_practice"))
        try:
            plan = plan_order(
                seed=study.seed,
                reader_id=locked.reader_id,
                case_ids=[case_id for case_id, practice in cases if not practice],
                practice_case_ids=[case_id for case_id, practice in cases if practice],
                repeat_fraction=study.repeat_fraction,
                repeat_min_gap=study.repeat_min_gap,
            )
        except OrderingError as error:
            raise StudyRefused(str(error)) from error
        slots = [
            ReadingSlot(
                assignment=locked,
                case_id=slot.case_id,
                position=slot.position,
                showing=slot.showing,
                is_practice=slot.is_practice,
            )
            for slot in plan
        ]
        return _store_order(assignment, locked, slots, ALGORITHM)


def _store_order(
    assignment: Assignment, locked: Assignment, slots: list[ReadingSlot], algorithm: str
) -> bool:
    """Inside draw_order's transaction: store the slots and stamp the assignment."""
    ReadingSlot.objects.bulk_create(slots)
    locked.order_drawn_at = timezone.now()
    locked.order_algorithm = algorithm
    locked.save(update_fields=["order_drawn_at", "order_algorithm"])
    assignment.order_drawn_at = locked.order_drawn_at
    assignment.order_algorithm = locked.order_algorithm
    return True


def draw_missing_orders(study: Study) -> int:
    """Draw the order of every reader of an open study who has none yet; returns how many."""
    if study.status != StudyStatus.OPEN:
        return 0
    pending = study.assignments.filter(order_drawn_at__isnull=True)
    return sum(draw_order(assignment) for assignment in pending)


def assign_reader(study: Study, reader: AbstractBaseUser) -> Assignment:
    """Assign a reader (idempotent); in an open study their order is drawn at once."""
    if study.status == StudyStatus.CLOSED:
        raise StudyRefused("The study is closed: reopen it before assigning readers.")
    if study.status == StudyStatus.OPEN:
        refuse_truth_leaks(study, [reader.pk])
    assignment, _ = Assignment.objects.get_or_create(study=study, reader=reader)
    if study.status == StudyStatus.OPEN:
        draw_order(assignment)
    return assignment


def open_study(study: Study, *, ask_confirmation: bool = False) -> int:
    """Open (or reopen) a study and draw every missing order; returns how many were drawn.

    With ``ask_confirmation`` (the admin's open button and action, until the researcher has
    confirmed), a draft study with :func:`open_warnings` is refused with OpenNeedsConfirmation
    once every hard check has passed. Callers without a person to ask (the demo, commands)
    open as before.
    """
    for _check, prepare in _open_checks:
        if prepare is not None and study.status != StudyStatus.OPEN:
            prepare(study)
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if locked.status == StudyStatus.OPEN:
            raise StudyRefused(f"“{locked}” is already open.")
        n_cases = locked.cases.filter(is_practice=False).count()
        if n_cases == 0:
            raise StudyRefused(
                f"“{locked}” has no cases (practice cases do not count): add cases before opening."
            )
        if not locked.assignments.exists():
            raise StudyRefused(f"“{locked}” has no readers: assign readers before opening.")
        try:
            if locked.design != Design.PAIR:  # pairs are never repeated
                check_feasible(n_cases, locked.repeat_fraction, locked.repeat_min_gap)
        except OrderingError as error:
            raise StudyRefused(f"“{locked}” cannot open: {error}") from error
        for check, _prepare in _open_checks:  # e.g. the blinding audit (evaluation app)
            check(locked)
        if ask_confirmation and locked.status == StudyStatus.DRAFT:
            if warnings := open_warnings(locked):
                raise OpenNeedsConfirmation(locked.title, warnings)
        locked.status = StudyStatus.OPEN
        locked.opened_at = locked.opened_at or timezone.now()
        locked.closed_at = None
        locked.save(update_fields=["status", "opened_at", "closed_at", "updated_at"])
        drawn = draw_missing_orders(locked)
    study.refresh_from_db()
    return drawn


def close_study(study: Study) -> None:
    """Close an open study: readers keep their progress but can no longer answer."""
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if locked.status != StudyStatus.OPEN:
            raise StudyRefused(f"“{locked}” is not open.")
        locked.status = StudyStatus.CLOSED
        locked.closed_at = timezone.now()
        locked.save(update_fields=["status", "closed_at", "updated_at"])
    study.refresh_from_db()


@dataclass(frozen=True)
class CaseRule:
    """“N real + N synthetic (+ practice), modality X, finding Y”, and where each side comes
    from: real images from these sources (datasets); synthetic images from these sources,
    generators, checkpoints ((generator, checkpoint) pairs) and generation jobs. An empty
    filter allows anything; the filters of :class:`pool.selection.Selection` apply."""

    n_real: int
    n_synthetic: int
    n_practice: int = 0
    modality: str = ""
    finding: str = ""
    real_sources: tuple[str, ...] = ()
    synthetic_sources: tuple[str, ...] = ()
    generators: tuple[str, ...] = ()
    checkpoints: tuple[tuple[str, str], ...] = ()
    generation_jobs: tuple[int, ...] = ()

    def selection(self, truth: str) -> Selection:
        if truth == Truth.REAL:
            return Selection(self.modality, self.finding, sources=tuple(self.real_sources))
        return Selection(
            self.modality,
            self.finding,
            sources=tuple(self.synthetic_sources),
            generators=tuple(self.generators),
            checkpoints=tuple(self.checkpoints),
            generation_jobs=tuple(self.generation_jobs),
        )


def _practice_split(n_practice: int, chooser: random.Random) -> tuple[int, int]:
    """Practice cases split between real and synthetic, the odd one either way at random."""
    real = synthetic = n_practice // 2
    if n_practice % 2:
        if chooser.random() < 0.5:
            real += 1
        else:
            synthetic += 1
    return real, synthetic


def _pick_by_rule(
    study: Study, rule: CaseRule, chooser: random.Random
) -> list[tuple[int, bool]]:
    """(image id, is practice) of every image drawn; StudyRefused if a side is short."""
    practice_real, practice_synthetic = _practice_split(rule.n_practice, chooser)
    wanted = {
        Truth.REAL: (rule.n_real, practice_real),
        Truth.SYNTHETIC: (rule.n_synthetic, practice_synthetic),
    }
    picked: list[tuple[int, bool]] = []
    shortages = []
    for truth, (n_cases, n_practice) in wanted.items():
        selection = rule.selection(truth)
        pool = selection.images(truth).exclude(study_cases__study=study)
        ids = sorted(pool.values_list("id", flat=True))
        needed = n_cases + n_practice
        if needed > len(ids):
            which = selection.describe()
            shortages.append(
                f"{needed} {truth} wanted, {len(ids)} available{f' ({which})' if which else ''}"
            )
            continue
        chosen = chooser.sample(ids, needed)
        picked += [(image_id, False) for image_id in chosen[:n_cases]]
        picked += [(image_id, True) for image_id in chosen[n_cases:]]
    if shortages:
        raise StudyRefused("Not enough matching images in the pool: " + "; ".join(shortages) + ".")
    return picked


def add_cases_by_rule(
    study: Study, rule: CaseRule, *, rng: random.Random | None = None
) -> list[StudyCase]:
    """Pick images from the pool that are not in the study yet; all or nothing.

    Practice cases are split between real and synthetic as evenly as possible (the odd
    one is real or synthetic at random).
    """
    chooser = rng or random.SystemRandom()
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if locked.status != StudyStatus.DRAFT or locked.has_drawn_orders():
            raise StudyRefused("Cases can be added only to a draft study.")
        picked = _pick_by_rule(locked, rule, chooser)
        return bulk_add_cases(
            locked,
            [StudyCase(study=locked, image_id=image_id, is_practice=practice)
             for image_id, practice in picked],
        )


def bulk_add_cases(study: Study, cases: list[StudyCase]) -> list[StudyCase]:
    """Add many cases in one query, and say so: bulk_create sends no post_save signal."""
    created = StudyCase.objects.bulk_create(cases)
    if created:
        cases_added.send(sender=Study, study=study)
    return created



@dataclass(frozen=True)
class Balance:
    """Real images to add alongside, one per new image: of this modality (and finding), from
    these sources (datasets; empty: any)."""

    modality: str
    finding: str = ""
    sources: tuple[str, ...] = ()

    def selection(self) -> Selection:
        return Selection(self.modality, self.finding, sources=tuple(self.sources))


@dataclass(frozen=True)
class ImagesAdded:
    """What :func:`add_images` did; ``study_title`` is None when the study no longer exists."""

    study_title: str | None
    frozen: bool = False
    added: int = 0
    balancing: int = 0


def add_images(
    study_pk: int, image_ids: list[int], *, balance: Balance | None = None
) -> ImagesAdded:
    """Add pool images as cases of a study whose orders are not drawn yet (others refuse).

    Images already in the study are skipped. With ``balance``, as many real images matching
    it and not yet in the study are drawn at random, as far as the pool has them. The apps
    above the reader study (generation) add their images through here.
    """
    with transaction.atomic():
        study = Study.objects.select_for_update().filter(pk=study_pk).first()
        if study is None:
            return ImagesAdded(study_title=None)
        if study.has_drawn_orders():
            return ImagesAdded(study_title=study.title, frozen=True)
        in_study = set(StudyCase.objects.filter(study=study).values_list("image_id", flat=True))
        new_ids = [image_id for image_id in image_ids if image_id not in in_study]
        bulk_add_cases(study, [StudyCase(study=study, image_id=pk) for pk in new_ids])
        chosen: list[int] = []
        if balance is not None and new_ids:
            chosen = _balancing_reals(study, balance, len(new_ids))
            bulk_add_cases(study, [StudyCase(study=study, image_id=pk) for pk in chosen])
        return ImagesAdded(study_title=study.title, added=len(new_ids), balancing=len(chosen))


def _balancing_reals(study: Study, balance: Balance, count: int) -> list[int]:
    real = balance.selection().images(Truth.REAL).exclude(study_cases__study=study)
    candidates = sorted(real.values_list("id", flat=True))
    return random.SystemRandom().sample(candidates, min(count, len(candidates)))
