from django import forms

from pool.importing import ImportLabels
from pool.models import Modality, Truth


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in files if item]


class ImageUploadForm(forms.Form):
    files = MultipleFileField(help_text="PNG, JPEG or DICOM; a handful at a time.")
    truth = forms.ChoiceField(choices=Truth.choices, initial=Truth.REAL)
    modality = forms.ChoiceField(
        choices=[("", "From DICOM, else chest X-ray"), *Modality.choices], required=False
    )
    finding = forms.CharField(
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"list": "finding-names", "autocomplete": "off"}),
        help_text="e.g. normal, pneumonia: any case or a synonym gives the vocabulary's name; "
        "a new finding joins the vocabulary.",
    )
    source = forms.CharField(max_length=200, required=False, help_text="Dataset name.")

    MAX_FILES = 50

    def clean_files(self):
        files = self.cleaned_data["files"]
        if not files:
            raise forms.ValidationError("Choose at least one file.")
        if len(files) > self.MAX_FILES:
            raise forms.ValidationError(
                f"At most {self.MAX_FILES} files per upload; use the import_images command for more."
            )
        return files

    def labels(self) -> ImportLabels:
        data = self.cleaned_data
        return ImportLabels(
            truth=data["truth"],
            modality=data["modality"] or None,
            finding=data["finding"].strip(),
            source=data["source"].strip(),
        )
