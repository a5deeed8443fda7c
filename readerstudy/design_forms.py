"""Answer forms of the pair and exposure reading pages (and the diagnostic question)."""

from __future__ import annotations

from django import forms

from readerstudy.forms import AnswerForm
from readerstudy.models import Answer, Study

MAX_EXPOSURE_MS = 60_000
SIDES = (("left", "Left"), ("right", "Right"))


class FindingMixin(forms.Form):
    """ "What finding do you see?": one of the study's vocabulary, required when asked."""

    finding = forms.ChoiceField(
        choices=(), required=False, error_messages={"required": "Choose the finding you see."}
    )

    def setup_finding(self, study: Study) -> None:
        self.asks_finding = study.ask_finding
        self.fields["finding"].choices = [(item, item) for item in study.findings]
        self.fields["finding"].required = study.ask_finding

    def clean_finding(self) -> str:
        return self.cleaned_data.get("finding", "") if self.asks_finding else ""


class DesignAnswerForm(FindingMixin, AnswerForm):
    def __init__(self, *args, study: Study, **kwargs) -> None:
        super().__init__(*args, study=study, **kwargs)
        self.setup_finding(study)

    def extra_fields(self) -> dict:
        return {"finding_answer": self.cleaned_data["finding"]}


class PairAnswerForm(DesignAnswerForm):
    """Which side is synthetic; stored as the judgement of the left image."""

    side = forms.ChoiceField(
        choices=SIDES, error_messages={"required": "Choose the side you think is synthetic."}
    )

    def __init__(self, *args, study: Study, **kwargs) -> None:
        super().__init__(*args, study=study, **kwargs)
        self.fields["answer"].required = False

    def clean(self):
        data = super().clean()
        side = data.get("side")
        if side:
            data["answer"] = Answer.FAKE if side == "left" else Answer.REAL
            self.errors.pop("answer", None)
        return data

    def extra_fields(self) -> dict:
        return {**super().extra_fields(), "chosen_side": self.cleaned_data["side"]}


class ExposureAnswerForm(DesignAnswerForm):
    # Measured by the page's script; a missing or odd value is stored as unknown.
    achieved_ms = forms.CharField(required=False)

    def clean_achieved_ms(self) -> float | None:
        raw = (self.cleaned_data.get("achieved_ms") or "").strip()
        try:
            value = float(raw)
        except ValueError:
            return None
        return round(value, 1) if 0 <= value <= MAX_EXPOSURE_MS else None

    def extra_fields(self) -> dict:
        return {**super().extra_fields(), "achieved_exposure_ms": self.cleaned_data["achieved_ms"]}


class SingleAnswerForm(DesignAnswerForm):
    """The single-image form with the diagnostic question (used only when the study asks it)."""


def answer_form_class(study: Study) -> type[AnswerForm]:
    return SingleAnswerForm if study.ask_finding else AnswerForm


def finding_choices(study: Study, chosen: str | None, *, keys: str = "") -> list[dict]:
    """The diagnostic question's choices for a template (empty when the study does not ask)."""
    if not study.ask_finding:
        return []
    return [
        {"value": item, "key": keys[i] if i < len(keys) else "", "chosen": item == chosen}
        for i, item in enumerate(study.findings)
    ]
