"""The research admin: studies with their cases and readers.

A study is edited freely while it is a draft. Opening it (button or list action) checks
the refusal rules and draws every reader's order; from then on its cases and the options
that shape orders are read-only, and readers added later get their order on save.
"""

from functools import partial

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse

from access.forms import ReaderField
from pool.admin import thumbnail
from readerstudy.admin_actions import export_readings_csv
from readerstudy.extensions import StudyAdminView, study_admin_views
from readerstudy.forms import CaseRuleForm
from readerstudy.models import Assignment, PresentationProfile, Study, StudyCase, StudyStatus
from readerstudy.progress import progress_label, with_progress
from readerstudy.services.copies import copy_title, duplicate_study
from readerstudy.services.studies import (
    OpenNeedsConfirmation,
    StudyRefused,
    add_cases_by_rule,
    close_study,
    draw_missing_orders,
    open_study,
)

DESIGN_FIELDS = (
    "design",
    "allow_reuse",
    "ask_finding",
    "finding_vocabulary",
    "exposure_start_ms",
    "exposure_step_ms",
    "exposure_min_ms",
    "exposure_max_ms",
    "staircase_down",
    "staircase_up",
    "exposure_mask",
)

FROZEN_ONCE_DRAWN = (
    "seed",
    "confidence_scale",
    "allow_revisions",
    "repeat_fraction",
    "repeat_min_gap",
    *DESIGN_FIELDS,
)


class StudyCaseInline(admin.TabularInline):
    model = StudyCase
    extra = 0
    raw_id_fields = ["image"]
    fields = ["preview", "image", "truth", "finding", "is_practice"]
    readonly_fields = ["preview", "truth", "finding"]
    verbose_name_plural = "cases (frozen once the study opens)"

    @admin.display(description="Image")
    def preview(self, case: StudyCase) -> str:
        return thumbnail(case.image if case.image_id else None, 48)

    @admin.display(description="Truth")
    def truth(self, case: StudyCase) -> str:
        return case.image.get_truth_display() if case.image_id else "—"

    @admin.display(description="Finding")
    def finding(self, case: StudyCase) -> str:
        return case.image.finding if case.image_id else "—"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("image")

    def _editable(self, obj: Study | None) -> bool:
        return obj is None or (obj.status == StudyStatus.DRAFT and not obj.has_drawn_orders())

    def has_add_permission(self, request, obj=None):
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(obj) and super().has_delete_permission(request, obj)


class AssignmentInline(admin.TabularInline):
    model = Assignment
    extra = 0
    fields = ["reader", "progress", "order_drawn_at", "completed_at"]
    readonly_fields = ["progress", "order_drawn_at", "completed_at"]
    verbose_name_plural = "readers (an order is drawn for each when the study is open)"

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        # By name or e-mail with completion, not by raw user id; one query per page. Not
        # wrapped in the admin's add/change-user links, which expect a user id in the box.
        if db_field.name == "reader":
            return ReaderField(label="Reader", required=True)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="Answered")
    def progress(self, assignment: Assignment) -> str:
        if assignment.pk is None or assignment.order_drawn_at is None:
            return "—"
        total = assignment.slots.count()
        answered = assignment.slots.filter(reading__isnull=False).count()
        return f"{answered} of {total}"

    def has_add_permission(self, request, obj=None):
        closed = obj is not None and obj.status == StudyStatus.CLOSED
        return not closed and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        # A reader is never swapped for another: remove (if no readings) and add instead.
        return obj is None or obj.status == StudyStatus.DRAFT

    def has_delete_permission(self, request, obj=None):
        # Readings are protected: the admin refuses to remove a reader who has any.
        return super().has_delete_permission(request, obj)


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = [
        "title", "status", "case_count", "reader_count", "progress", "opened_at", "closed_at"
    ]
    list_filter = ["status"]
    search_fields = ["title", "public_id"]
    inlines = [StudyCaseInline, AssignmentInline]
    actions = ["open_selected", "close_selected", "duplicate_selected", export_readings_csv]
    change_form_template = "admin/readerstudy/study/change_form.html"
    fieldsets = [
        (
            None,
            {
                "fields": ["title", "instructions", "status", "public_id"],
                "description": "While the study is a draft, cases and readers can change "
                "freely and no reader has an order yet. Opening it draws and stores every "
                "assigned reader's order; from then on the cases and the options that shape "
                "the orders are frozen, and a reader added later gets an order over exactly "
                "the same cases. To read other cases, create a new study.",
            },
        ),
        (
            "Options (fixed once orders are drawn)",
            {
                "fields": [
                    "confidence_scale",
                    "allow_revisions",
                    "repeat_fraction",
                    "repeat_min_gap",
                    "seed",
                ]
            },
        ),
        (
            "Design (fixed once orders are drawn; see docs/study-designs.md)",
            {
                "fields": list(DESIGN_FIELDS),
                "description": "Single image, two-alternative forced-choice pairs, or "
                "time-limited exposure with a staircase (HYPE-time defaults); optionally the "
                "diagnostic question.",
            },
        ),
        (
            "Readers' feedback",
            {
                "fields": ["reader_feedback"],
                "description": "Can be changed at any time; readers see their own score only "
                "once the study is closed.",
            },
        ),
        ("History", {"fields": ["created_by", "created_at", "opened_at", "closed_at"]}),
    ]

    def get_queryset(self, request):
        return with_progress(
            super()
            .get_queryset(request)
            .annotate(
                n_cases=Count("cases", filter=Q(cases__is_practice=False), distinct=True),
                n_readers=Count("assignments", distinct=True),
            )
        )

    @admin.display(description="Cases", ordering="n_cases")
    def case_count(self, study: Study) -> int:
        return study.n_cases

    @admin.display(description="Readers", ordering="n_readers")
    def reader_count(self, study: Study) -> int:
        return study.n_readers

    @admin.display(description="Readings answered", ordering="readings_answered")
    def progress(self, study: Study) -> str:
        return progress_label(study)

    def get_readonly_fields(self, request, obj=None):
        fields = ["status", "public_id", "created_by", "created_at", "opened_at", "closed_at"]
        if obj is not None and (obj.status != StudyStatus.DRAFT or obj.has_drawn_orders()):
            fields += FROZEN_ONCE_DRAWN
        return fields

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        study = form.instance
        if study.status == StudyStatus.OPEN:
            try:
                drawn = draw_missing_orders(study)
            except StudyRefused as refusal:
                self.message_user(request, refusal.message, messages.ERROR)
            else:
                if drawn:
                    self.message_user(
                        request, f"Drew and stored the order of {drawn} new reader(s)."
                    )

    # --- open / close -----------------------------------------------------------------

    def _run(self, request: HttpRequest, study: Study, operation, done: str) -> bool:
        try:
            result = operation(study)
        except OpenNeedsConfirmation:
            raise  # the caller asks the researcher
        except StudyRefused as refusal:
            self.message_user(request, refusal.message, messages.ERROR)
            return False
        suffix = f" ({result} reader order(s) drawn)" if isinstance(result, int) and result else ""
        self.message_user(request, f"“{study}” {done}{suffix}.", messages.SUCCESS)
        return True

    @admin.action(
        description="Open selected studies (draws each reader's order)", permissions=["change"]
    )
    def open_selected(self, request, queryset):
        confirmed = request.POST.get("confirm") == "yes"
        asking = []
        for study in queryset:
            try:
                self._run(request, study, partial(open_study, ask_confirmation=not confirmed),
                          "is open")
            except OpenNeedsConfirmation as question:
                asking.append((study, question.warnings))
        if asking:
            return self._confirm_open_page(request, asking, action="open_selected")
        return None

    def _confirm_open_page(self, request, asking, *, action: str = "") -> HttpResponse:
        """The warnings of the studies that need a confirmation, and the button giving it."""
        if action:
            form_action = back_url = reverse("admin:readerstudy_study_changelist")
        else:
            [(study, _warnings)] = asking
            form_action = reverse("admin:readerstudy_study_open", args=[study.pk])
            back_url = reverse("admin:readerstudy_study_change", args=[study.pk])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Open anyway?",
            "asking": asking,
            "action": action,
            "form_action": form_action,
            "back_url": back_url,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return render(request, "admin/readerstudy/study/confirm_open.html", context)

    @admin.action(description="Duplicate selected studies (as drafts, without readings)",
                  permissions=["add"])
    def duplicate_selected(self, request, queryset):
        for study in queryset.order_by("pk"):
            copy = duplicate_study(study, user=request.user)
            self.message_user(
                request, f"“{study}” duplicated as the draft “{copy}”.", messages.SUCCESS
            )

    @admin.action(description="Close selected studies", permissions=["change"])
    def close_selected(self, request, queryset):
        for study in queryset:
            self._run(request, study, close_study, "is closed")

    def get_urls(self):
        own = [
            path(
                "<int:pk>/open/",
                self.admin_site.admin_view(self.open_view),
                name="readerstudy_study_open",
            ),
            path(
                "<int:pk>/close/",
                self.admin_site.admin_view(self.close_view),
                name="readerstudy_study_close",
            ),
            path(
                "<int:pk>/add-cases/",
                self.admin_site.admin_view(self.add_cases_view),
                name="readerstudy_study_add_cases",
            ),
            path(
                "<int:pk>/duplicate/",
                self.admin_site.admin_view(self.duplicate_view),
                name="readerstudy_study_duplicate",
            ),
        ]
        # Pages other apps add (the evaluation app's "acknowledge the blinding audit").
        added = [
            path(
                f"<int:pk>/{view.route}/",
                self.admin_site.admin_view(partial(self._added_view, view=view)),
                name=view.name,
            )
            for view in study_admin_views()
        ]
        return own + added + super().get_urls()

    def _added_view(self, request: HttpRequest, pk: int, *, view: StudyAdminView) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        study = self._study_for_change(request, pk)
        view.handle(request, study)
        return self._back(study)

    def _study_for_change(self, request: HttpRequest, pk: int) -> Study:
        study = get_object_or_404(Study, pk=pk)
        if not self.has_change_permission(request, study):
            raise PermissionDenied
        return study

    def _back(self, study: Study) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:readerstudy_study_change", args=[study.pk]))

    def open_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Open, after a confirmation when the study is one-sided (see ``open_warnings``)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        study = self._study_for_change(request, pk)
        confirmed = request.POST.get("confirm") == "yes"
        try:
            self._run(request, study, partial(open_study, ask_confirmation=not confirmed),
                      "is open")
        except OpenNeedsConfirmation as question:
            return self._confirm_open_page(request, [(study, question.warnings)])
        return self._back(study)

    def duplicate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """GET: what a copy takes; POST: make it (a draft) and go to it."""
        study = get_object_or_404(Study, pk=pk)
        if not (self.has_view_permission(request, study) and self.has_add_permission(request)):
            raise PermissionDenied
        if request.method == "POST":
            copy = duplicate_study(
                study, user=request.user, with_readers=request.POST.get("with_readers") == "on"
            )
            self.message_user(
                request, f"“{study}” duplicated as the draft “{copy}”.", messages.SUCCESS
            )
            return self._back(copy)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": study,
            "title": f"Duplicate “{study}”",
            # The title duplicate_study() will give: "(copy 2)" and so on once "(copy)" is taken.
            "copy_title": copy_title(study.title),
            "n_cases": study.cases.count(),
            "n_readers": study.assignments.count(),
        }
        return render(request, "admin/readerstudy/study/duplicate.html", context)

    def close_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._post_operation(request, pk, close_study, "is closed")

    def _post_operation(self, request, pk, operation, done) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        study = self._study_for_change(request, pk)
        self._run(request, study, operation, done)
        return self._back(study)

    def add_cases_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        study = self._study_for_change(request, pk)
        editable = study.status == StudyStatus.DRAFT and not study.has_drawn_orders()
        form = CaseRuleForm(request.POST or None)
        if editable and request.method == "POST" and form.is_valid():
            try:
                added = add_cases_by_rule(study, form.rule())
            except StudyRefused as refusal:
                form.add_error(None, refusal.message)
            else:
                self.message_user(
                    request, f"Added {len(added)} case(s) to “{study}”.", messages.SUCCESS
                )
                return self._back(study)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": study,
            "title": f"Add cases to “{study}”",
            "form": form,
            "editable": editable,
        }
        return render(request, "admin/readerstudy/study/add_cases.html", context)


FIELDSETS = (
    ("Display", {"fields": ("display_size", "aspect")}),
    (
        "Matched source resolution",
        {"fields": ("source_resolution_mode", "source_resolution")},
    ),
    (
        "Harmonisation (applied identically to every case)",
        {"fields": ("border_crop_percent", "standardise_intensity", "percentile_low",
                    "percentile_high")},
    ),
    (
        "CT (Hounsfield units)",
        {"fields": ("ct_window", "ct_window_centre", "ct_window_width", "ct_presets_for_readers")},
    ),
    ("Reading", {"fields": ("min_viewing_seconds",)}),
    ("Frozen with the drawn orders", {"fields": ("frozen_at", "frozen_key", "frozen_params")}),
)
READONLY = ("frozen_at", "frozen_key", "frozen_params")
EDITABLE = tuple(
    name for _title, options in FIELDSETS for name in options["fields"] if name not in READONLY
)


@admin.register(PresentationProfile)
class PresentationProfileAdmin(admin.ModelAdmin):
    list_display = ("study", "display_size", "aspect", "source_resolution_mode", "ct_window",
                    "frozen_at")
    fieldsets = ((None, {"fields": ("study",)}), *FIELDSETS)
    readonly_fields = READONLY

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_frozen:
            return ("study", *READONLY, *EDITABLE)
        return READONLY
