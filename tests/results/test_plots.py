"""Server-side SVG plots: well-formed, escaped, and plain about what is not defined."""

import xml.etree.ElementTree as ET

from readerstudy import plots
from readerstudy.analysis import ReadingTable, analyse

SVG = "{http://www.w3.org/2000/svg}"


def payload(records, **kwargs):
    table = ReadingTable.from_records(records, **kwargs)
    return analyse(table, n_bootstrap=50, seed=1).to_jsonable()


def study(confidence=True, readers=("alice", "bob<script>")):
    records = []
    answers = ["real", "fake", "unsure", "fake", "real", "real"]
    for j, reader in enumerate(readers):
        for i, answer in enumerate(answers):
            records.append({"reader": reader, "case": f"c{i}", "is_fake": i % 2 == 1,
                            "answer": answers[(i + j) % len(answers)] if j else answer,
                            "confidence": (1 + (i + j) % 5) if confidence else None})
    groups = {"generator": {f"c{i}": ("m-a" if i < 3 else "m&b") for i in range(6)}}
    return payload(records, case_groups=groups)


def parse(svg) -> ET.Element:
    root = ET.fromstring(str(svg))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    return root


def texts(root) -> list[str]:
    return [el.text or "" for el in root.iter(f"{SVG}text")]


def test_it_draws_sensitivity_and_specificity_with_interval_bars_and_escapes_names():
    data = study()
    svg = plots.reader_performance_plot(data["readers"])
    root = parse(svg)
    assert "bob<script>" in texts(root)  # escaped in the source, intact once parsed
    assert "<script>" not in str(svg)
    tips = [el.text for el in root.iter(f"{SVG}title")]
    assert any(t.startswith("alice: sensitivity 0.") and "[" in t for t in tips)
    assert len(list(root.iter(f"{SVG}circle"))) >= 2


def test_it_writes_not_defined_beside_a_reader_without_fakes():
    data = payload([{"reader": "r", "case": "a", "is_fake": False, "answer": "real"}])
    root = parse(plots.reader_performance_plot(data["readers"]))
    assert "sensitivity not defined" in " ".join(texts(root))


def test_it_draws_the_kappa_matrix_with_values_and_grey_for_undefined_pairs():
    data = study()
    labels = [r["reader"] for r in data["readers"]]
    root = parse(plots.kappa_heatmap(labels, data["agreement"]["pairwise_cohen_kappa"]))
    kappa = data["agreement"]["pairwise_cohen_kappa"][0]["kappa"]["estimate"]
    assert texts(root).count(f"{kappa:.2f}") == 2  # both halves of the symmetric matrix

    same = payload([{"reader": r, "case": f"c{i}", "is_fake": i == 0, "answer": "real"}
                    for r in ("a", "b") for i in range(3)])
    svg = plots.kappa_heatmap(["a", "b"], same["agreement"]["pairwise_cohen_kappa"])
    assert plots.NOT_DEFINED_FILL in str(svg) and "n/d" in texts(parse(svg))


def test_it_says_the_kappa_matrix_needs_two_readers():
    root = parse(plots.kappa_heatmap(["alone"], []))
    assert texts(root) == ["Pairwise kappa not defined: needs at least two readers."]


def test_it_colours_kappa_on_a_diverging_scale():
    assert plots.kappa_colour(0.0) == "#ffffff"
    assert plots.kappa_colour(1.0) == "#08519c"
    assert plots.kappa_colour(-1.0) == "#b2182b"
    assert plots.kappa_colour(5) == plots.kappa_colour(1)


def test_it_draws_roc_curves_per_reader_with_the_chance_diagonal():
    data = study()
    root = parse(plots.roc_plot(data["roc"]))
    polylines = list(root.iter(f"{SVG}polyline"))
    assert len(polylines) == 2
    first = polylines[0].get("points").split()
    assert first[0] == "48,314" and first[-1] == "348,14"  # (0, 0) to (1, 1)
    assert any((el.find(f"{SVG}title") is not None and el.find(f"{SVG}title").text.startswith(
        "chance")) for el in root.iter(f"{SVG}line"))


def test_it_says_roc_is_not_defined_without_confidence():
    data = study(confidence=False)
    root = parse(plots.roc_plot(data["roc"]))
    assert texts(root) == ["ROC not defined: no confidence ratings were collected."]


def test_it_draws_the_fooling_rate_per_generator_with_escaped_names():
    data = study()
    svg = plots.fooling_plot(data["groups"], "generator")
    root = parse(svg)
    assert {"m-a", "m&b"} <= set(texts(root))
    assert "m&amp;b" in str(svg)
    rates = [g for g in data["groups"] if g["grouping"] == "generator"
             and g["measure"] == "fooling_rate"]
    assert len(list(root.iter(f"{SVG}rect"))) == len(rates)


def test_it_says_the_fooling_rate_is_not_defined_without_synthetic_readings():
    data = payload([{"reader": "r", "case": "a", "is_fake": False, "answer": "real"}])
    root = parse(plots.fooling_plot(data["groups"], "generator"))
    assert texts(root)[0].startswith("Fooling rate not defined")


def test_it_describes_estimate_slots_in_words():
    assert plots.describe({"estimate": 0.5, "ci_low": 0.25, "ci_high": 0.75, "n": 8,
                           "not_defined": None}) == "0.500 [0.250, 0.750] (n = 8)"
    assert plots.describe({"not_defined": "no readings"}) == "not defined: no readings"
