"""The import_images command and the import service, on files the tests make."""

import io

import pydicom
import pytest
from django.core.management import CommandError, call_command, load_command_class
from PIL import Image as PILImage

from pool.importing import ImportLabels, import_bytes
from pool.models import Image
from tests.pool.conftest import ct_dicom_bytes, png_bytes

pytestmark = pytest.mark.django_db


def run(*args: str, failures: int = 0) -> str:
    """The command's output; with ``failures``, it must end in an error naming that many."""
    out = io.StringIO()
    if not failures:
        call_command("import_images", *args, "--no-progress", stdout=out)
        return out.getvalue()
    with pytest.raises(CommandError, match=rf"^{failures} of \d+ file\(s\) failed to import$"):
        call_command("import_images", *args, "--no-progress", stdout=out)
    return out.getvalue()


def media_files(settings) -> list:
    return sorted(p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file())


def test_it_imports_a_folder_recursively_and_reports_each_file(image_folder):
    output = run(str(image_folder), "--finding", "normal", "--source", "unit", failures=2)
    assert "4 imported (4 images), 0 duplicate, 2 failed" in output
    assert "failed    " in output and "broken.png" in output and "notes.txt" in output
    assert Image.objects.count() == 4
    assert set(Image.objects.values_list("original_format", flat=True)) == {"png", "jpeg", "dicom"}
    assert set(Image.objects.values_list("source", flat=True)) == {"unit"}


def test_it_skips_duplicates_on_a_second_run(image_folder):
    run(str(image_folder), failures=2)
    output = run(str(image_folder), failures=2)
    assert "0 imported (0 images), 4 duplicate, 2 failed" in output
    assert Image.objects.count() == 4


def test_it_takes_modality_from_the_dicom_unless_told(image_folder):
    run(str(image_folder / "ct.dcm"))
    assert Image.objects.get().modality == "CT"


def test_it_makes_the_same_derivative_size_for_every_source(image_folder, settings):
    run(str(image_folder), failures=2)
    sizes = set()
    for image in Image.objects.all():
        data = image.display.read()
        picture = PILImage.open(io.BytesIO(data))
        assert (picture.format, picture.mode, picture.size) == ("PNG", "L", (512, 512))
        sizes.add(len(data))
    assert len(sizes) == 1


def test_it_stores_the_dicom_original_de_identified(image_folder):
    run(str(image_folder / "ct.dcm"))
    stored = pydicom.dcmread(Image.objects.get().original.open("rb"))
    assert "PatientName" not in stored or str(stored.PatientName) in ("", "ANONYMOUS")
    assert stored.get("PatientID", "") != "MRN-0042"
    assert "InstitutionName" not in stored
    assert stored.get("PatientBirthDate", "") == ""


def test_it_imports_each_frame_or_a_chosen_range(tmp_path):
    path = tmp_path / "multi.dcm"
    path.write_bytes(ct_dicom_bytes(frames=4))
    output = run(str(path), "--frames", "1:2")
    assert "1 imported (2 images)" in output
    assert sorted(Image.objects.values_list("frame_index", flat=True)) == [1, 2]
    originals = set(Image.objects.values_list("original", flat=True))
    assert len(originals) == 1


def test_it_imports_a_manifest_with_per_row_labels(tmp_path):
    (tmp_path / "x1.png").write_bytes(png_bytes(10))
    (tmp_path / "x2.png").write_bytes(png_bytes(11))
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,modality\nx1.png,pneumonia,CXR\nx2.png,normal,\n")
    output = run("--manifest", str(manifest), "--source", "kermany")
    assert "2 imported" in output
    assert dict(Image.objects.values_list("finding", "source").distinct()) == {
        "pneumonia": "kermany",
        "normal": "kermany",
    }


def test_it_rejects_bad_arguments_clearly(tmp_path):
    with pytest.raises(CommandError, match="no such file or folder"):
        run(str(tmp_path / "missing"))
    manifest = tmp_path / "m.csv"
    manifest.write_text("file\nx.png\n")
    with pytest.raises(CommandError, match="needs a 'path' column"):
        run("--manifest", str(manifest))
    manifest.write_text("path,truth\nx.png,maybe\n")
    with pytest.raises(CommandError, match="line 2: truth must be one of"):
        run("--manifest", str(manifest))


def test_it_refuses_files_over_the_limits(tmp_path, settings):
    settings.IMAGE_MAX_FILE_BYTES = 2000
    big = tmp_path / "big.png"
    big.write_bytes(png_bytes(5, size=(200, 200)))
    assert "over the 0.00191 MiB limit" in run(str(big), failures=1)
    settings.IMAGE_MAX_FILE_BYTES = 10**8
    settings.IMAGE_MAX_PIXELS = 100
    outcome = import_bytes(png_bytes(6), name="wide.png", labels=ImportLabels())
    assert outcome.status == "failed" and "limit" in outcome.detail
    assert Image.objects.count() == 0


def test_it_exits_non_zero_with_a_summary_when_any_file_failed(image_folder, capsys):
    command = load_command_class("pool", "import_images")
    with pytest.raises(SystemExit) as exit_info:
        command.run_from_argv(["manage.py", "import_images", str(image_folder), "--no-progress"])
    assert exit_info.value.code == 1
    out, err = capsys.readouterr()
    summary = out.strip().splitlines()
    assert summary[-1] == "4 imported (4 images), 0 duplicate, 2 failed"
    assert summary[-4] == "failed files (2):"
    assert sorted(line.split(":")[0].strip().rsplit("/", 1)[-1] for line in summary[-3:-1]) == [
        "broken.png",
        "notes.txt",
    ]
    assert "2 of 6 file(s) failed to import" in err


def test_it_exits_zero_when_every_file_imported_or_was_a_duplicate(image_folder):
    (image_folder / "broken.png").unlink()
    (image_folder / "notes.txt").unlink()
    assert run(str(image_folder)).strip().splitlines()[-1] == "4 imported (4 images), 0 duplicate, 0 failed"
    assert run(str(image_folder)).strip().splitlines()[-1] == "0 imported (0 images), 4 duplicate, 0 failed"


def test_it_leaves_nothing_behind_when_storing_fails(settings, monkeypatch):
    def explode(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Image, "save", explode)
    with pytest.raises(RuntimeError):
        import_bytes(ct_dicom_bytes(frames=2), name="multi.dcm", labels=ImportLabels())
    assert media_files(settings) == []


def test_it_refuses_unknown_labels():
    with pytest.raises(ValueError, match="modality must be one of"):
        ImportLabels(modality="MRI")


def test_it_imports_the_dicom_files_pydicom_ships():
    from pydicom.data import get_testdata_file

    for name in ("CT_small.dcm", "MR_small.dcm"):
        data = open(get_testdata_file(name), "rb").read()
        outcome = import_bytes(data, name=name, labels=ImportLabels())
        assert outcome.status == "imported", outcome.line()
    assert Image.objects.get(original_format="dicom", modality="CT").original_width == 128
