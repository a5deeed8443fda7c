"""The training curve: a small SVG from the loss log, safe to put in a page."""

import json

from generation.plots import loss_curve_svg, read_loss_log, thin_points


def test_it_reads_a_loss_log_skipping_bad_lines_and_keeping_the_last_row_of_a_step(tmp_path):
    log = tmp_path / "loss.jsonl"
    rows = [
        {"step": 10, "loss": 0.9},
        {"step": 20, "loss": 0.5},
        {"step": 20, "loss": 0.4},
        {"step": 30, "loss": float("nan")},
    ]
    log.write_text("\n".join(json.dumps(r) for r in rows) + '\nnot json\n{"step": 40}\n')
    assert read_loss_log(log) == [(10, 0.9), (20, 0.4)]
    assert read_loss_log(tmp_path / "missing.jsonl") == []


def test_it_thins_long_curves_to_a_fixed_number_of_points():
    points = [(step, 1.0 / step) for step in range(1, 10_001)]
    thinned = thin_points(points, 500)
    assert len(thinned) == 500
    assert thinned[-1][0] == 10_000


def test_it_draws_a_line_with_axes():
    svg = loss_curve_svg([(1, 1.0), (50, 0.5), (100, 0.3)])
    assert svg.startswith('<svg class="loss-curve"') and svg.endswith("</svg>")
    assert svg.count("<path") == 1 and "step 100: 0.3" in svg
    assert "log scale" not in svg


def test_it_switches_to_a_log_axis_when_the_loss_falls_a_long_way():
    svg = loss_curve_svg([(1, 1.0), (100, 0.01)])
    assert "loss (log scale)" in svg


def test_it_escapes_its_text():
    svg = loss_curve_svg([(1, 1.0), (2, 0.5)], title='<script>alert("x")</script>')
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_it_says_so_when_there_is_nothing_to_draw():
    assert "No loss logged yet" in loss_curve_svg([])
    assert "No loss logged yet" in loss_curve_svg([(1, float("inf"))])
    assert "<circle" in loss_curve_svg([(5, 0.5)])
