"""Blinding audit: every cue but anatomy that could tell synthetic from real."""

import io
import math

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from evaluation.metrics import AuditItem, audit, image_cues, sniff_format
from pool.imaging.display import encode_grey_png, make_display_png
from tests.evaluation.phantoms import xray_like

HEADERS = {"Content-Type": "image/png", "Cache-Control": "private, no-store"}


def items(
    real_images,
    synthetic_images,
    *,
    real_encode=encode_grey_png,
    synthetic_encode=encode_grey_png,
    real_headers=None,
    synthetic_headers=None,
):
    out = [
        AuditItem(
            real_encode(image), dict(real_headers(i) if real_headers else HEADERS), False, f"r{i}"
        )
        for i, image in enumerate(real_images)
    ]
    out += [
        AuditItem(
            synthetic_encode(image),
            dict(synthetic_headers(i) if synthetic_headers else HEADERS),
            True,
            f"s{i}",
        )
        for i, image in enumerate(synthetic_images)
    ]
    return out


def pil_png(image, **kwargs):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", **kwargs)
    return buffer.getvalue()


def jpeg(image, quality=40):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def real():
    return xray_like(30, 64, seed=1)


@pytest.fixture(scope="module")
def synthetic():
    return xray_like(30, 64, seed=2)


@pytest.fixture(scope="module")
def clean(real, synthetic):
    return audit(items(real, synthetic))


def test_it_finds_nothing_in_the_file_of_display_derivatives(clean):
    assert clean.defined and (clean.n_synthetic, clean.n_real) == (30, 30)
    for name in (
        "file_size",
        "width",
        "height",
        "format",
        "pixel_mode",
        "decodes",
        "metadata_count",
        "exif_tag_count",
        "padding_fraction",
        "header:content-type",
        "header:cache-control",
    ):
        cue = clean.cue(name)
        assert cue.value == 0.5, name
        assert cue.direction == "no difference"


def test_it_sorts_cues_by_auc_and_blocks_above_the_threshold(clean):
    values = [cue.value for cue in clean.cues]
    assert values == sorted(values, reverse=True)
    assert all(cue.value > 0.5 for cue in clean.blocking(0.5))
    assert clean.blocking(1.0) == []


def test_it_flags_a_brightness_shift_on_the_intensity_cue(real, synthetic):
    brighter = np.clip(synthetic.astype(int) + 25, 0, 255).astype(np.uint8)
    report = audit(items(real, brighter))
    cue = report.cue("mean_intensity")
    assert cue.value == 1.0 and cue.raw_auc == 1.0 and cue.direction == "higher in synthetic"
    assert cue in report.blocking() and report.cues[0].value == 1.0
    # Perfect separation: a zero-width DeLong interval is not shown as one; the note says why.
    assert cue.auc.ci_low is None and "perfect separation" in cue.auc.note
    assert "median" in cue.synthetic_summary
    darker = audit(items(real, np.clip(synthetic.astype(int) - 25, 0, 255).astype(np.uint8)))
    cue = darker.cue("mean_intensity")
    assert cue.value == 1.0 and cue.raw_auc == 0.0 and cue.direction == "lower in synthetic"
    assert cue.auc.ci_low is None and "perfect separation" in cue.auc.note


def test_it_catches_a_different_file_size(real, synthetic):
    # the same pixels, but the synthetic files deflate-compressed while the real ones are stored
    report = audit(
        items(real, synthetic, synthetic_encode=lambda image: pil_png(image, optimize=True))
    )
    assert report.cue("file_size").value == 1.0
    assert report.cue("file_size").direction == "lower in synthetic"
    assert "file_size" in [cue.name for cue in report.blocking()]
    assert report.cue("mean_intensity").value < 0.8


def test_it_catches_different_dimensions(real, synthetic):
    report = audit(
        items(real, synthetic, synthetic_encode=lambda image: make_display_png(image, 72))
    )
    blocking = {cue.name for cue in report.blocking()}
    assert {"width", "height", "file_size"} <= blocking
    assert report.cue("width").value == 1.0 and "72" in report.cue("width").synthetic_summary


def test_it_catches_a_different_format_and_jpeg_blocks(real, synthetic):
    report = audit(items(real, synthetic, synthetic_encode=jpeg))
    assert report.cue("format").value == 1.0
    assert "'jpeg' x30" in report.cue("format").synthetic_summary
    assert report.cue("blockiness").value > 0.65
    assert report.cue("blockiness").direction == "higher in synthetic"


def test_it_catches_metadata_chunks(real, synthetic):
    def with_text(image):
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", "diffusers")
        return pil_png(image, pnginfo=info)

    report = audit(items(real, synthetic, real_encode=pil_png, synthetic_encode=with_text))
    assert report.cue("metadata_count").value == 1.0
    assert image_cues(with_text(real[0]))["metadata_count"] == 1.0


def test_it_catches_a_header_that_differs_by_truth_and_ignores_constant_and_unique_ones(
    real, synthetic
):
    def headers(kind):
        def make(i):
            return {
                **HEADERS,
                "X-Cache": "HIT" if kind == "synthetic" else "MISS",  # differs by truth
                "ETag": f'"{kind}-{i}"',  # unique per image: no separation by value alone
                "Last-Modified": (
                    "Tue, 01 Jan 2019 10:00:00 GMT"
                    if kind == "real"
                    else f"Wed, 0{1 + i % 9} Oct 2025 10:00:00 GMT"
                ),
                "Date": "Mon, 01 Dec 2025 10:00:00 GMT"
                if kind == "real"
                else "Mon, 01 Dec 2025 10:00:05 GMT",
            }

        return make

    report = audit(
        items(real, synthetic, real_headers=headers("real"), synthetic_headers=headers("synthetic"))
    )
    cue = report.cue("header:x-cache")
    assert cue.value == 1.0 and cue in report.blocking() and "HIT" in cue.direction
    assert report.cue("header:etag").value == 0.5
    assert report.cue("header:content-type").value == 0.5
    assert report.cue("header:last-modified:numeric").value == 1.0
    assert report.cue("header:last-modified:numeric").direction == "higher in synthetic"
    assert report.ignored_headers == ("date",)
    with pytest.raises(KeyError):
        report.cue("header:date")


def test_it_catches_a_header_present_only_on_one_class(real, synthetic):
    report = audit(
        items(real, synthetic, synthetic_headers=lambda i: {**HEADERS, "X-Generator": "ddpm"})
    )
    cue = report.cue("header:x-generator")
    assert cue.value == 1.0 and "'(absent)' x30" in cue.real_summary


def test_it_catches_padding_and_smoothness(real, synthetic):
    padded = synthetic.copy()
    padded[:, :6, :] = 0
    padded[:, -6:, :] = 0
    report = audit(items(real, padded))
    assert report.cue("padding_fraction").value == 1.0
    assert report.cue("black_fraction").value == 1.0
    smooth = xray_like(30, 64, seed=2, noise=1.0)
    report = audit(items(real, smooth))
    assert report.cue("noise_sigma").value == 1.0
    assert report.cue("noise_sigma").direction == "lower in synthetic"


def test_it_measures_noise_with_immerkaer_and_padding_by_constant_lines():
    flat = np.full((128, 128), 128.0) + np.random.default_rng(0).normal(0, 10, (128, 128))
    cues = image_cues(encode_grey_png(np.clip(np.rint(flat), 0, 255).astype(np.uint8)))
    assert cues["noise_sigma"] == pytest.approx(10, rel=0.1)
    assert cues["padding_fraction"] == 0.0 and cues["blockiness"] == pytest.approx(1.0, abs=0.1)
    frame = np.full((40, 60), 100, np.uint8)
    frame[5:-5, 10:-10] = np.random.default_rng(1).integers(0, 255, (30, 40))
    cues = image_cues(encode_grey_png(frame))
    assert cues["padding_fraction"] == pytest.approx((5 + 5 + 10 + 10) / (40 + 60))
    assert cues["width"] == 60.0 and cues["height"] == 40.0 and cues["format"] == "png"
    assert image_cues(encode_grey_png(np.zeros((8, 8), np.uint8)))["padding_fraction"] == 1.0


def test_it_sniffs_formats_from_magic_bytes():
    assert sniff_format(jpeg(np.zeros((16, 16), np.uint8))) == "jpeg"
    assert sniff_format(b"GIF89a....") == "gif"
    assert sniff_format(b"\x00" * 128 + b"DICM") == "dicom"
    assert sniff_format(b"") == "empty" and sniff_format(b"hello") == "unknown"


def test_it_survives_undecodable_files(real, synthetic):
    broken = items(real[:5], synthetic[:5])
    broken[7] = AuditItem(b"not an image at all", HEADERS, True)
    report = audit(broken)
    assert report.undecodable == (7,)
    assert report.cue("decodes").value > 0.5
    assert report.cue("mean_intensity").n_synthetic == 4
    cues = image_cues(b"\x89PNG\r\n\x1a\n truncated")
    assert cues["decodes"] == "no" and math.isnan(cues["mean_intensity"])


def test_it_explains_degenerate_inputs_without_crashing(real, synthetic):
    one = audit(items([], synthetic[:1]))
    assert not one.defined and "only one image" in one.not_defined and one.blocking() == []
    assert "no images" in audit([]).not_defined
    only_real = audit(items(real[:5], []))
    assert "got 0 synthetic and 5 real" in only_real.not_defined
    assert "at least 2 synthetic and 2 real" in audit(items(real[:5], synthetic[:1])).not_defined
    # two of each: defined, and a cue measurable on fewer than 2 of a class is NotDefined
    tiny = items(real[:2], synthetic[:2])
    tiny[3] = AuditItem(b"garbage", HEADERS, True)
    report = audit(tiny)
    assert report.defined
    cue = report.cue("mean_intensity")
    assert cue.value is None and "got 1 and 2" in cue.auc.reason
    assert report.cues[-1].value is None  # not-defined cues sort last


def test_it_rejects_malformed_items(real):
    with pytest.raises(TypeError, match="is_synthetic must be True or False"):
        audit([AuditItem(encode_grey_png(real[0]), HEADERS, "synthetic")])
    with pytest.raises(TypeError, match="content must be the file's bytes"):
        audit([AuditItem("a path", HEADERS, True)])
