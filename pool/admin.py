"""The image pool in the admin: browse, relabel and preview; images enter through the importer."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from pool import findings
from pool.models import Finding, FindingSynonym, Image


def thumbnail(image: Image | None, size: int = 64) -> str:
    if image is None or not image.public_id:
        return "—"
    url = reverse("staff-image-display", args=[image.public_id])
    return format_html(
        '<img src="{}" width="{}" height="{}" alt="" loading="lazy">', url, size, size
    )

@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["preview", "public_id", "truth", "modality", "finding", "source", "created_at"]
    list_filter = ["truth", "modality", "finding", "source"]
    search_fields = ["public_id", "sha256", "source", "finding"]
    readonly_fields = [
        "preview_large",
        "public_id",
        "sha256",
        "frame_index",
        "original",
        "original_format",
        "original_width",
        "original_height",
        "display",
        "provenance",
        "created_at",
        "updated_at",
    ]
    fields = ["preview_large", "truth", "modality", "finding", "source", *readonly_fields[1:]]

    @admin.display(description="Image")
    def preview(self, image: Image) -> str:
        return thumbnail(image)

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None and obj.is_referenced():
            fields += ["truth", "modality"]  # would silently change a study's or a job's truth
        return fields

    def has_add_permission(self, request):
        return False  # images enter the pool through the import page and command

    def save_model(self, request, obj, form, change):
        obj.finding = findings.canonical(obj.finding)  # relabelling goes through the vocabulary
        super().save_model(request, obj, form, change)

    @admin.display(description="Display derivative")
    def preview_large(self, image: Image) -> str:
        return thumbnail(image, 256)


class FindingSynonymInline(admin.TabularInline):
    model = FindingSynonym
    extra = 1
    verbose_name_plural = "synonyms (imports saying one of these get the finding's name)"


class MergeForm(forms.Form):
    target = forms.ModelChoiceField(
        queryset=Finding.objects.none(), widget=forms.RadioSelect, empty_label=None,
        label="Keep this name",
    )

    def __init__(self, *args, queryset, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = queryset


@admin.register(Finding)
class FindingAdmin(admin.ModelAdmin):
    """The managed vocabulary: rename (images follow), add synonyms, merge duplicates."""

    list_display = ["name", "synonym_list", "image_count"]
    search_fields = ["name", "synonyms__name"]
    inlines = [FindingSynonymInline]
    actions = ["merge_selected"]

    def get_queryset(self, request):
        counts = (
            Image.objects.filter(finding__iexact=OuterRef("name"))
            .annotate(key=Lower("finding"))
            .values("key")
            .annotate(n=Count("id"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .prefetch_related("synonyms")
            .annotate(n_images=Subquery(counts, output_field=IntegerField()))
        )

    @admin.display(description="Synonyms")
    def synonym_list(self, finding: Finding) -> str:
        return ", ".join(synonym.name for synonym in finding.synonyms.all()) or "—"

    @admin.display(description="Images", ordering="n_images")
    def image_count(self, finding: Finding) -> int:
        return finding.n_images or 0

    def save_model(self, request, obj, form, change):
        old_name = form.initial.get("name", "") if change else ""
        super().save_model(request, obj, form, change)
        if old_name and old_name != obj.name:
            moved = findings.rename(obj, old_name)
            self.message_user(request, f"{moved} image(s) now say “{obj.name}”.")

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        saved = formset.new_objects + [obj for obj, _ in formset.changed_objects]
        findings.adopt_synonyms(form.instance, saved)

    @admin.action(description="Merge selected findings into one", permissions=["change"])
    def merge_selected(self, request: HttpRequest, queryset) -> HttpResponse | None:
        chosen = queryset.order_by(Lower("name"))
        if chosen.count() < 2:
            self.message_user(request, "Select at least two findings to merge.", messages.WARNING)
            return None
        form = MergeForm(request.POST if "target" in request.POST else None, queryset=chosen)
        if form.is_valid():
            target = form.cleaned_data["target"]
            moved = findings.merge(target, list(chosen.exclude(pk=target.pk)))
            self.message_user(
                request, f"Merged into “{target}”; {moved} image(s) relabelled.", messages.SUCCESS
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Merge findings",
            "form": form,
            "findings": chosen,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/pool/finding/merge.html", context)
