"""Forms of the reader's pages and of the study admin."""

from django import forms

from pool import selection
from pool.findings import findings_in_use
from pool.models import Modality, Truth
from readerstudy.models import Answer, Study
from readerstudy.services.reading import AnswerData
from readerstudy.services.studies import CaseRule

CONFIDENCE_LEVELS = (1, 2, 3, 4, 5)
MAX_CLIENT_MS = 24 * 3600 * 1000
MAX_COMMENT = 2000


class AnswerForm(forms.Form):
    answer = forms.ChoiceField(
        choices=Answer.choices, error_messages={"required": "Choose real, fake or unsure."}
    )
    confidence = forms.TypedChoiceField(
        choices=[(level, str(level)) for level in CONFIDENCE_LEVELS],
        coerce=int,
        required=False,
        empty_value=None,
        error_messages={"required": "Choose a confidence from 1 to 5."},
    )
    comment = forms.CharField(max_length=MAX_COMMENT, required=False)
    # Filled in by the page's script; a missing or odd value is simply not stored.
    client_ms = forms.CharField(required=False)

    def __init__(self, *args, study: Study, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.collects_confidence = study.collects_confidence
        self.fields["confidence"].required = self.collects_confidence

    def clean_confidence(self) -> int | None:
        return self.cleaned_data["confidence"] if self.collects_confidence else None

    def clean_client_ms(self) -> int | None:
        raw = (self.cleaned_data.get("client_ms") or "").strip()
        try:
            value = int(float(raw))
        except ValueError:
            return None
        return value if 0 <= value <= MAX_CLIENT_MS else None

    def answer_data(self) -> AnswerData:
        data = self.cleaned_data
        return AnswerData(
            answer=data["answer"],
            confidence=data["confidence"],
            comment=data["comment"],
            client_ms=data["client_ms"],
            extra=self.extra_fields(),
        )

    def extra_fields(self) -> dict:
        """Reading fields a study design adds to the answer; none for a plain single image."""
        return {}


def _finding_choices() -> list[tuple[str, str]]:
    return [("", "Any finding")] + [(name, name) for name in findings_in_use()]


def _multiple(label: str, help_text: str) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=label,
        required=False,
        choices=(),
        widget=forms.CheckboxSelectMultiple,
        help_text=help_text,
    )


class CaseRuleForm(forms.Form):
    """The admin's “add cases by rule” form: counts, what both sides share, and where each
    side comes from (none ticked: any)."""

    n_real = forms.IntegerField(label="Real cases", min_value=0, max_value=10_000, initial=10)
    n_synthetic = forms.IntegerField(
        label="Synthetic cases", min_value=0, max_value=10_000, initial=10
    )
    n_practice = forms.IntegerField(
        label="Practice cases",
        min_value=0,
        max_value=50,
        initial=0,
        help_text="Extra cases shown first with the truth revealed; half real, half synthetic.",
    )
    modality = forms.ChoiceField(choices=[("", "Any modality"), *Modality.choices], required=False)
    finding = forms.ChoiceField(
        choices=(), required=False, help_text="From the finding vocabulary (synonyms merged)."
    )
    real_sources = _multiple(
        "Real images from", "Datasets the real cases come from; none ticked: any."
    )
    synthetic_sources = _multiple(
        "Synthetic images from", "Sources (generator or dataset names) of the synthetic cases."
    )
    generators = _multiple("Generator", "Synthetic cases made by these generator models.")
    checkpoints = _multiple("Checkpoint", "Synthetic cases made with these weights.")
    generation_jobs = _multiple("Generation job", "Synthetic cases made by these jobs.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["finding"].choices = _finding_choices()
        self.fields["real_sources"].choices = selection.source_choices(Truth.REAL)
        self.fields["synthetic_sources"].choices = selection.source_choices(Truth.SYNTHETIC)
        self.fields["generators"].choices = selection.generator_choices()
        self.fields["checkpoints"].choices = selection.checkpoint_choices()
        self.fields["generation_jobs"].choices = selection.generation_job_choices()

    def clean(self):
        data = super().clean()
        if not self.errors and not (data["n_real"] + data["n_synthetic"] + data["n_practice"]):
            raise forms.ValidationError("Ask for at least one case.")
        return data

    def rule(self) -> CaseRule:
        data = self.cleaned_data
        return CaseRule(
            n_real=data["n_real"],
            n_synthetic=data["n_synthetic"],
            n_practice=data["n_practice"],
            modality=data["modality"],
            finding=data["finding"],
            real_sources=tuple(data["real_sources"]),
            synthetic_sources=tuple(data["synthetic_sources"]),
            generators=tuple(data["generators"]),
            checkpoints=tuple(selection.parse_checkpoint(v) for v in data["checkpoints"]),
            generation_jobs=tuple(int(job) for job in data["generation_jobs"]),
        )
