"""The controlled test of fair presentation: real X-rays against the same X-rays made "synthetic"
by a simulated generator path (downsampled to 64 px, saved as PNG).

Both halves are real anatomy from one dataset, so everything that separates them is
presentation. With the default profile (each image at its native resolution) the audit must
find that; with matched source resolution nothing it measures may separate them.
"""

import io
import json
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image as PILImage

from evaluation.services import run_blinding_audit
from pool.importing import ImportLabels, import_bytes
from pool.models import Truth
from readerstudy.models import StudyCase
from readerstudy.models.presentation import SourceResolution
from readerstudy.services.presentation import profile_of, resolve_profile
from tests.factories import StudyFactory

pytestmark = pytest.mark.django_db

SAMPLE = Path(settings.BASE_DIR) / "sample_data" / "chest-xray-pediatric" / "images"
GENERATOR_SIZE = 64


def simulated_generator_png(path: Path) -> bytes:
    """What a 64-px generator trained on these images would hand over: a small 8-bit PNG."""
    with PILImage.open(path) as image:
        grey = image.convert("L")
        scale = GENERATOR_SIZE / max(grey.size)
        small = grey.resize(
            (round(grey.width * scale), round(grey.height * scale)), PILImage.Resampling.LANCZOS
        )
    buffer = io.BytesIO()
    small.save(buffer, format="PNG")
    return buffer.getvalue()


def build_halves_study():
    paths = sorted(SAMPLE.glob("*/*.jpg"))
    assert len(paths) >= 80, "the controlled test needs at least 40 + 40 images"
    study = StudyFactory(title="Controlled presentation test")
    for index, path in enumerate(paths):
        if index % 2 == 0:
            labels = ImportLabels(truth=Truth.REAL, modality="CXR", source="sample")
            outcome = import_bytes(path.read_bytes(), name=path.name, labels=labels)
        else:
            labels = ImportLabels(truth=Truth.SYNTHETIC, modality="CXR", source="simulated-64")
            outcome = import_bytes(simulated_generator_png(path), name="gen.png", labels=labels)
        assert outcome.status == "imported", outcome.line()
        StudyCase.objects.create(study=study, image=outcome.images[0])
    return study


def cue_aucs(audit_row) -> dict[str, float]:
    return {
        cue["name"]: cue["auc"]["estimate"]
        for cue in audit_row.report["cues"]
        if cue["auc"].get("estimate") is not None
    }


def test_it_flags_the_generator_path_by_default_and_not_with_matched_resolution(test_output_dir):
    study = build_halves_study()
    profile = profile_of(study)
    profile.display_size = 512
    profile.save()

    native = run_blinding_audit(study)
    native_aucs = cue_aucs(native)
    assert native.report["n_real"] >= 40 and native.report["n_synthetic"] >= 40
    assert max(native_aucs.values()) >= 0.9, native_aucs
    flagged = {cue["name"]: cue for cue in native.blocking}
    assert "high_frequency_share" in flagged or "effective_resolution" in flagged, flagged
    detail = flagged.get("effective_resolution") or flagged["high_frequency_share"]
    assert "match source resolution to 64 px" in detail["remedy"]
    assert set(native.report["mean_images"]) == {"real", "synthetic"}

    profile.source_resolution_mode = SourceResolution.LOWEST
    profile.save()
    assert resolve_profile(study).source_resolution == GENERATOR_SIZE
    matched = run_blinding_audit(study)
    matched_aucs = cue_aucs(matched)
    assert matched.cases_signature != native.cases_signature  # the profile is part of it
    assert {"laplacian_energy", "high_frequency_share", "gradient_magnitude",
            "effective_resolution", "border_intensity", "corner_intensity",
            "lr_asymmetry", "noise_sigma", "blockiness"} <= set(matched_aucs)
    too_high = {name: auc for name, auc in matched_aucs.items() if auc > 0.65}
    assert too_high == {}, too_high
    assert matched.blocking == []

    figures = {"native": native_aucs, "matched_64": matched_aucs,
               "n_real": matched.report["n_real"], "n_synthetic": matched.report["n_synthetic"]}
    (test_output_dir / "controlled_audit.json").write_text(json.dumps(figures, indent=1))
