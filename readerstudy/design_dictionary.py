"""What each column of the study-design tables means: (definition, unit), for the data dictionary."""

from __future__ import annotations

_STUDY = ("the study's public id", "id")
_READER = ("the reader's username, or '(reader-averaged)' for the averaged row", "text")


def _estimate(stem: str, what: str, unit: str, method: str) -> dict[str, tuple[str, str]]:
    return {
        f"{stem}_estimate": (f"{what}; empty when not defined", unit),
        f"{stem}_ci_low": (f"lower end of the 95% interval of {stem} ({method})", unit),
        f"{stem}_ci_high": (f"upper end of the 95% interval of {stem} ({method})", unit),
        f"{stem}_n": (f"how many observations {stem} rests on", "count"),
        f"{stem}_method": (f"the interval method of {stem}", "text"),
        f"{stem}_note": (f"how {stem} was obtained, or 'not defined: <reason>'", "text"),
    }


_PLAIN_ESTIMATE = {
    "estimate": ("the point estimate; empty when not defined", "proportion"),
    "ci_low": ("lower end of the 95% interval; empty when there is none", "proportion"),
    "ci_high": ("upper end of the 95% interval; empty when there is none", "proportion"),
    "n": ("readings the estimate rests on", "count"),
    "method": ("the interval method", "text"),
    "note": ("how the estimate was obtained, or 'not defined: <reason>'", "text"),
}

DESIGN_COLUMNS: dict[str, dict[str, tuple[str, str]]] = {
    "design_readings": {
        "study_public_id": _STUDY,
        "design": ("the study design: single, pair (2AFC) or exposure (HYPE-time)", "text"),
        "reader": ("the reader's username", "text"),
        "position": ("1-based position of the screen in the reader's stored order", "integer"),
        "is_practice": ("1 for a practice screen (left out of every statistic), else 0", "0/1"),
        "left_image_public_id": ("the image shown; in a pair, the left one", "id"),
        "left_truth": ("truth of that image: real or synthetic", "text"),
        "right_image_public_id": ("pairs only: the right image", "id"),
        "right_truth": ("pairs only: truth of the right image", "text"),
        "chosen_side": ("pairs only: the side the reader called synthetic (left | right)", "text"),
        "answer": (("real, fake or unsure; in a pair, the judgement the choice implies for the "
                    "left image"), "text"),
        "correct": (("1 when the synthetic image was picked, or the image was called what it "
                     "is; unsure counts as wrong"), "0/1"),
        "image_finding": (("the image's finding; for a synthetic image the generator's "
                           "conditioning finding"), "text"),
        "finding_answer": (("the reader's answer to 'what finding do you see?'; empty when not "
                            "asked"), "text"),
        "requested_exposure_ms": ("exposure decided by the server's staircase", "ms"),
        "achieved_exposure_ms": (("time on screen measured in the browser with "
                                  "requestAnimationFrame"), "ms"),
    },
    "design_pairs": {
        "study_public_id": _STUDY,
        "reader": _READER,
        "n_pairs": ("pairs read (practice excluded)", "count"),
        "n_correct": ("pairs where the synthetic image was picked", "count"),
        **_estimate("proportion_correct", "share of pairs where the synthetic image was picked",
                    "proportion", "per reader Clopper-Pearson; averaged: bootstrap over pairs"),
        "p_value_vs_chance": (("exact two-sided binomial test against 0.5; the averaged row "
                               "tests all pairs pooled"), "p-value"),
    },
    "design_exposure": {
        "study_public_id": _STUDY,
        "reader": _READER,
        "n_trials": ("exposure screens read (practice excluded)", "count"),
        "n_reversals": ("staircase reversals", "count"),
        **_estimate("threshold_ms", (
            "mean requested exposure at the staircase reversals, the first two left out when "
            "two or more remain"), "ms", "t interval; averaged: t interval over readers"),
        "final_exposure_ms": ("the staircase's exposure after the last answer", "ms"),
        **_estimate("accuracy", "share of screens answered correctly", "proportion", "Wilson"),
        "median_timing_error_ms": ("median |achieved - requested| exposure", "ms"),
        "max_timing_error_ms": ("largest |achieved - requested| exposure", "ms"),
    },
    "design_hype_infinity": {
        "study_public_id": _STUDY,
        "statistic": (("score: error rate over all images (HYPE-infinity); synthetic_error; "
                       "real_error"), "text"),
        **_PLAIN_ESTIMATE,
    },
    "design_findings": {
        "study_public_id": _STUDY,
        "finding": ("the finding of the vocabulary the row is about", "text"),
        "statistic": (("real_/synthetic_ sensitivity and specificity, and their differences "
                       "(real - synthetic, Newcombe hybrid score interval)"), "text"),
        **_PLAIN_ESTIMATE,
    },
    "design_finding_confusion": {
        "study_public_id": _STUDY,
        "truth": ("real or synthetic", "text"),
        "image_finding": ("the image's finding (generator's conditioning finding)", "text"),
        "answered_finding": ("the finding the reader answered", "text"),
        "count": ("readings", "count"),
    },
}
