"""The generators in the research admin.

The list shows each model with its latest training run and how many images it made (both
annotated: one query for the page, whatever its length). A model's name opens its page
(checkpoints, training curve, sample grid, images); the list's tools lead to Train, Generate
and the jobs. Models are normally created by Train; the add form is for the kinds that need
no training (Stable Diffusion from a folder as it is, the hosted image API).
"""

from django import forms
from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.urls import reverse
from django.utils.html import format_html

from generation.backends import backend_for
from generation.models import GeneratorModel, JobStatus, TrainingRun

# the model folder is MODEL_ROOT/name, and kind decides how it is read: both fixed once made
FIXED_ONCE_CREATED = ("name", "kind")


class GeneratorModelAdminForm(forms.ModelForm):
    class Meta:
        model = GeneratorModel
        fields = ("name", "kind", "modality", "findings", "resolution", "base_checkpoint", "config")

    def clean(self):
        data = super().clean()
        kind = data.get("kind") or (self.instance.kind if self.instance.pk else None)
        backend = backend_for(kind) if kind else None
        if self.instance.pk is None and backend and backend.made_by_training:
            self.add_error(
                "kind", "Pixel diffusion models are made by training: use “Train a model”."
            )
        if (
            backend
            and backend.needs_base_checkpoint
            and not (data.get("base_checkpoint") or "").strip()
        ):
            self.add_error("base_checkpoint", "Stable Diffusion needs a base checkpoint folder.")
        return data


@admin.register(GeneratorModel)
class GeneratorModelAdmin(admin.ModelAdmin):
    form = GeneratorModelAdminForm
    list_display = (
        "name_link",
        "kind_code",
        "modality_code",
        "findings_list",
        "resolution",
        "latest_run",
        "images_produced",
        "edit_link",
    )
    list_display_links = None
    list_filter = ("kind", "modality")
    search_fields = ("name",)
    change_list_template = "admin/generation/generatormodel/change_list.html"
    change_form_template = "admin/generation/generatormodel/change_form.html"

    def get_queryset(self, request):
        latest = TrainingRun.objects.filter(generator=OuterRef("pk")).order_by("-created_at", "-id")
        return (
            super()
            .get_queryset(request)
            .annotate(
                latest_run_status=Subquery(latest.values("status")[:1]),
                images_count=Count("jobs__outputs", distinct=True),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        fields = ["trained_steps", "created_by", "created_at", "updated_at"]
        if obj is not None:
            fields = [*FIXED_ONCE_CREATED, *fields]
        return fields

    def get_fields(self, request, obj=None):
        fields = ["name", "kind", "modality", "findings", "resolution", "base_checkpoint", "config"]
        if obj is not None:
            fields += ["trained_steps", "created_by", "created_at", "updated_at"]
        return fields

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="Name", ordering="name")
    def name_link(self, generator: GeneratorModel) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("generation-model", args=[generator.pk]), generator.name
        )

    @admin.display(description="Kind", ordering="kind")
    def kind_code(self, generator: GeneratorModel) -> str:
        return generator.kind

    @admin.display(description="Modality", ordering="modality")
    def modality_code(self, generator: GeneratorModel) -> str:
        return generator.modality

    @admin.display(description="Findings")
    def findings_list(self, generator: GeneratorModel) -> str:
        return ", ".join(str(f) for f in generator.findings) or "—"

    @admin.display(description="Latest run", ordering="latest_run_status")
    def latest_run(self, generator: GeneratorModel) -> str:
        status = getattr(generator, "latest_run_status", None)
        return JobStatus(status).label if status else "—"

    @admin.display(description="Images", ordering="images_count")
    def images_produced(self, generator: GeneratorModel) -> int:
        return getattr(generator, "images_count", 0)

    @admin.display(description="")
    def edit_link(self, generator: GeneratorModel) -> str:
        url = reverse("admin:generation_generatormodel_change", args=[generator.pk])
        return format_html('<a href="{}">Edit</a>', url)
