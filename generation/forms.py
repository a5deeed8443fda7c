"""The staff forms that launch training runs and generation jobs.

Each form checks everything a researcher can get wrong before anything is written or
enqueued: unknown findings, a resolution the UNet cannot take, a missing Stable Diffusion
folder, a prompt for a class-conditional model. The views then call the services.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db.models import Exists, OuterRef, QuerySet

from generation.backends import backend_for, trainable_kinds
from generation.backends.base import model_findings
from generation.backends.ddpm import PRESETS as DDPM_PRESETS
from generation.backends.ddpm import RECIPES as DDPM_RECIPES
from generation.models import GeneratorKind, GeneratorModel, JobStatus, Scheduler, TrainingRun
from pool.models import Image, Modality, Truth
from pool.selection import source_choices
from readerstudy.models import ReadingSlot, Study, StudyStatus

TRAINABLE_KINDS = [(kind, GeneratorKind(kind).label) for kind in trainable_kinds()]
MIN_RESOLUTION = 64
MAX_RESOLUTION = 512
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def parse_findings(raw: str) -> list[str]:
    """'normal, pneumonia,normal' -> ['normal', 'pneumonia']: order kept, blanks and repeats dropped."""
    findings: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if name and name not in findings:
            findings.append(name)
    return findings


def real_findings(modality: str) -> dict[str, str]:
    """lower-cased finding -> its spelling in the pool, for the real images of this modality.

    Findings match without regard to case, as the training set is chosen (generation.datasets).
    """
    spellings: dict[str, str] = {}
    values = (
        Image.objects.filter(truth=Truth.REAL, modality=modality)
        .exclude(finding="")
        .order_by("finding")
        .values_list("finding", flat=True)
        .distinct()
    )
    for finding in values:
        spellings.setdefault(finding.lower(), finding)
    return spellings


def eligible_studies() -> QuerySet[Study]:
    """Studies images may still be added to: drafts whose readers' orders are not drawn."""
    drawn = ReadingSlot.objects.filter(assignment__study=OuterRef("pk"))
    return Study.objects.filter(status=StudyStatus.DRAFT).filter(~Exists(drawn)).order_by("title")


def usable_generators() -> tuple[list[GeneratorModel], list[GeneratorModel]]:
    """(usable, not yet usable) models by name: whether each can make images now."""
    usable, unusable = [], []
    runs = TrainingRun.objects.filter(generator=OuterRef("pk"))
    for generator in GeneratorModel.objects.annotate(trained=Exists(runs)).order_by("name"):
        usable_now = backend_for(generator.kind).usable_for_generation(generator)
        (usable if usable_now else unusable).append(generator)
    return usable, unusable


class TrainForm(forms.Form):
    kind = forms.ChoiceField(
        choices=TRAINABLE_KINDS,
        initial=TRAINABLE_KINDS[0][0],
        error_messages={
            "invalid_choice": "“%(value)s” cannot be trained here: choose pixel diffusion (ddpm) "
            "or Stable Diffusion. A hosted image API is not trainable; use it from Generate."
        },
    )
    name = forms.SlugField(
        max_length=100,
        widget=forms.TextInput(attrs={"list": "generator-names", "autocomplete": "off"}),
        help_text="Letters, digits, - and _. A new name makes a new model; the name of an "
        "existing model continues its training from the last checkpoint.",
    )
    modality = forms.ChoiceField(choices=Modality.choices, initial=Modality.CXR)
    findings = forms.CharField(
        max_length=1000,
        help_text="Comma-separated class labels, e.g. normal, pneumonia. Each must label real "
        "images of this modality in the pool; those images are the training set.",
    )
    resolution = forms.IntegerField(
        min_value=MIN_RESOLUTION,
        max_value=MAX_RESOLUTION,
        initial=64,
        help_text="Pixels per side: 64, 128, 256 or 512.",
    )
    steps = forms.IntegerField(
        min_value=1,
        max_value=1_000_000,
        initial=2000,
        label="Train to step",
        help_text="A model already trained to 1000 steps and asked for 1500 trains 500 more.",
    )
    batch_size = forms.IntegerField(min_value=1, max_value=1024, initial=16)
    learning_rate = forms.FloatField(
        min_value=1e-7,
        max_value=1.0,
        initial=2e-4,
        widget=forms.NumberInput(attrs={"step": "any"}),
        help_text="Typical: 2e-4 for pixel diffusion, 1e-4 for Stable Diffusion LoRA.",
    )
    gpus = forms.IntegerField(
        min_value=1,
        max_value=16,
        initial=1,
        required=False,
        label="GPUs",
        help_text="GPUs of one worker host to train on together, for pixel diffusion and "
        "LoRA runs (one process each; the batch is split between them).",
    )
    preset = forms.ChoiceField(
        choices=DDPM_PRESETS,
        initial="small",
        required=False,
        label="Network size",
        help_text="Pixel diffusion only. Fixed once the model has a checkpoint.",
    )
    # the ddpm recipe (README, "For researchers: generators"): blank fields take the recipe's value
    recipe = forms.ChoiceField(
        choices=DDPM_RECIPES,
        initial="default",
        required=False,
        label="Training recipe",
        help_text="Pixel diffusion only. The schedule and prediction type are fixed once the "
        "model has a checkpoint; a model made before the recipe options keeps the legacy one.",
    )
    prediction_type = forms.ChoiceField(
        choices=[("", "the recipe's"), ("v_prediction", "v-prediction"), ("epsilon", "epsilon")],
        required=False,
        label="Prediction type",
        help_text="Pixel diffusion only. The samplers read the model's output the same way.",
    )
    beta_schedule = forms.ChoiceField(
        choices=[
            ("", "the recipe's"),
            ("squaredcos_cap_v2", "cosine"),
            ("linear", "linear"),
            ("scaled_linear", "scaled linear"),
        ],
        required=False,
        label="Noise schedule",
        help_text="Pixel diffusion only. Zero-terminal SNR applies with v-prediction.",
    )
    min_snr_gamma = forms.FloatField(
        min_value=0.0,
        max_value=1000.0,
        required=False,
        label="Min-SNR γ",
        help_text="Pixel diffusion only. Loss weighting (Hang et al. 2023); 0 turns it off. "
        "Blank: 5.",
    )
    offset_noise = forms.FloatField(
        min_value=0.0,
        max_value=1.0,
        required=False,
        label="Offset noise",
        help_text="Pixel diffusion only. Strength; blank: 0.",
    )
    dropout = forms.FloatField(
        min_value=0.0,
        max_value=0.5,
        required=False,
        label="UNet dropout",
        help_text="Pixel diffusion only. Blank: 0.",
    )
    hflip = forms.BooleanField(
        required=False,
        label="Mirror images left-right",
        help_text="Pixel diffusion only. Off by default: in a chest X-ray laterality is anatomy "
        "(the heart on the left); a mirrored film shows a patient who does not exist.",
    )
    base_checkpoint = forms.CharField(
        max_length=500,
        required=False,
        label="Base checkpoint folder",
        help_text="Stable Diffusion only: a diffusers-format folder on the workers' shared disk.",
    )
    lora_rank = forms.IntegerField(
        min_value=1,
        max_value=256,
        initial=8,
        required=False,
        label="LoRA rank",
        help_text="Stable Diffusion only.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.existing: GeneratorModel | None = None

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        self.existing = GeneratorModel.objects.filter(name=name).first()
        return name

    def clean_resolution(self) -> int:
        resolution = self.cleaned_data["resolution"]
        if resolution & (resolution - 1):
            raise forms.ValidationError(
                f"{resolution} is not a power of two: choose 64, 128, 256 or 512."
            )
        return resolution

    def clean_findings(self) -> list[str]:
        findings = parse_findings(self.cleaned_data["findings"])
        if not findings:
            raise forms.ValidationError("Name at least one finding, e.g. normal.")
        return findings

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        modality = data.get("modality")
        if modality and data.get("findings"):
            self._check_findings_in_pool(modality, data["findings"])
        if kind:
            backend_for(kind).clean_train_form(self, data)
        if kind and self.existing is not None:
            self._check_existing(self.existing, data)
        return data

    def _check_findings_in_pool(self, modality: str, findings: list[str]) -> None:
        known = real_findings(modality)
        unknown = [finding for finding in findings if finding.lower() not in known]
        if unknown:
            label = Modality(modality).label.lower()
            listed = ", ".join(f"“{name}”" for name in unknown)
            available = ", ".join(known.values()) if known else "none yet; import real images first"
            self.add_error(
                "findings",
                f"No real {label} images labelled {listed} in the pool. "
                f"Findings with real {label} images: {available}.",
            )
            return
        self.cleaned_data["findings"] = list(dict.fromkeys(known[f.lower()] for f in findings))

    def _check_existing(self, generator: GeneratorModel, data: dict[str, Any]) -> None:
        """Training an existing model continues it: it must be the same model."""
        if generator.kind != data["kind"]:
            self.add_error(
                "name",
                f"“{generator.name}” is a {generator.get_kind_display()} model; choose a new name "
                f"to train a different kind.",
            )
            return
        fixed = {
            "modality": (generator.modality, data.get("modality")),
            "findings": (model_findings(generator), data.get("findings")),
            "resolution": (generator.resolution, data.get("resolution")),
        }
        fixed.update(backend_for(generator.kind).fixed_on_continue(generator, data))
        changed = [name for name, (old, new) in fixed.items() if new is not None and old != new]
        if changed:
            self.add_error(
                "name",
                f"“{generator.name}” was trained with another {', '.join(changed)}; training it "
                f"again continues the same model. Choose a new name for a different model.",
            )
        if TrainingRun.objects.filter(generator=generator, status__in=ACTIVE).exists():
            self.add_error(
                "name", f"“{generator.name}” already has a training run queued or running."
            )

    # --- what the view hands to the services ------------------------------------------

    def generator(self, user) -> GeneratorModel:
        """The model to train: the existing one, or a new row (inside the view's transaction)."""
        if self.existing is not None:
            return self.existing
        data = self.cleaned_data
        return GeneratorModel.objects.create(
            name=data["name"],
            kind=data["kind"],
            modality=data["modality"],
            findings=data["findings"],
            resolution=data["resolution"],
            base_checkpoint=backend_for(data["kind"]).base_checkpoint_from(data),
            created_by=user,
        )

    def params(self) -> dict[str, Any]:
        """The run's settings, named as `generation.tasks` reads them."""
        data = self.cleaned_data
        return backend_for(data["kind"]).train_form_params(data)


class GenerateForm(forms.Form):
    generator = forms.ModelChoiceField(
        queryset=GeneratorModel.objects.order_by("name"), label="Model", empty_label=None
    )
    count = forms.IntegerField(min_value=1, initial=16, label="Images")
    finding = forms.CharField(
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"list": "finding-names", "autocomplete": "off"}),
        help_text="Pixel diffusion: the class to draw (one of the model's findings). Text "
        "models: the label the images get, and the prompt if none is given.",
    )
    prompt = forms.CharField(
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Text models only (Stable Diffusion, image API).",
    )
    negative_prompt = forms.CharField(
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Stable Diffusion only.",
    )
    scheduler = forms.ChoiceField(choices=Scheduler.choices, initial=Scheduler.DDIM)
    steps = forms.IntegerField(min_value=1, max_value=1000, initial=50, label="Sampling steps")
    guidance = forms.FloatField(
        min_value=0.0,
        max_value=30.0,
        required=False,
        widget=forms.NumberInput(attrs={"step": "any"}),
        help_text="Classifier-free guidance scale. Empty: the model's default (pixel diffusion "
        "2.0, Stable Diffusion 7.5).",
    )
    seed = forms.IntegerField(
        min_value=0, max_value=2**62, initial=0, help_text="Image k gets seed + k."
    )
    batch_size = forms.IntegerField(min_value=1, max_value=256, initial=8)
    shards = forms.IntegerField(
        min_value=1,
        max_value=64,
        initial=1,
        required=False,
        help_text="Split the images into this many tasks on the GPU queue: with N GPU workers, "
        "N shards make the job about N times faster.",
    )
    study = forms.ModelChoiceField(
        queryset=Study.objects.none(),
        required=False,
        empty_label="None: only add the images to the pool",
        help_text="Only draft studies whose readers' orders are not drawn yet.",
    )
    keep_study_balance = forms.BooleanField(
        required=False,
        label="Keep the study's real/synthetic balance",
        help_text="Also add as many real pool images (same modality and finding) to the study.",
    )
    balance_sources = forms.MultipleChoiceField(
        required=False,
        choices=(),
        widget=forms.CheckboxSelectMultiple,
        label="Balancing real images from",
        help_text="Keeping the balance: the datasets the real images are drawn from, so that "
        "they match the population the model learned (none ticked: any dataset).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["study"].queryset = eligible_studies()
        self._offer_usable_models()
        self.fields["balance_sources"].choices = source_choices(Truth.REAL)
        count = self.fields["count"]
        count.max_value = settings.GENERATION_MAX_COUNT
        count.validators.append(MaxValueValidator(settings.GENERATION_MAX_COUNT))
        count.widget.attrs["max"] = settings.GENERATION_MAX_COUNT

    def _offer_usable_models(self) -> None:
        """List only the models that can make images now (a trained checkpoint, a base).

        The field still accepts any model, so that one posted anyway (an old tab, a
        `?model=` link) is refused by its backend with the reason, not "invalid choice".
        """
        usable, self.unusable_models = usable_generators()
        self.fields["generator"].widget.choices = [(model.pk, str(model)) for model in usable]
        if usable and self.initial.get("generator") not in {str(model.pk) for model in usable}:
            self.initial["generator"] = str(usable[0].pk)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in ("finding", "prompt", "negative_prompt"):
            if name in data:
                data[name] = data[name].strip()
        generator: GeneratorModel | None = data.get("generator")
        if generator is not None:
            backend_for(generator.kind).clean_generate_form(self, generator, data)
        if data.get("keep_study_balance") and not data.get("study"):
            self.add_error("keep_study_balance", "Choose a study to keep the balance of.")
        return data

    def job_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            name: data[name]
            for name in (
                "generator",
                "count",
                "finding",
                "prompt",
                "negative_prompt",
                "scheduler",
                "steps",
                "guidance",
                "seed",
                "batch_size",
                "study",
                "keep_study_balance",
                "balance_sources",
            )
        } | {"shards": min(data.get("shards") or 1, data["count"])}
