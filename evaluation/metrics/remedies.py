"""For a flagged audit cue, the presentation change most likely to remove it (no Django here).

The advice names profile options of the study (``readerstudy.models.presentation.PresentationProfile``);
``lowest`` is the lowest native resolution among the study's cases, the value "Matched: lowest"
would use. Cues no profile option can change (file size, format, headers) are constant by
construction in a study's derivatives: a flag there is a bug to report, not a setting to change.
"""

from __future__ import annotations

DETAIL = {"laplacian_energy", "high_frequency_share", "gradient_magnitude",
          "effective_resolution", "noise_sigma"}
INTENSITY = {"mean_intensity", "intensity_std", "histogram_entropy", "histogram_skewness",
             "black_fraction", "white_fraction"}
BORDERS = {"border_intensity", "corner_intensity", "padding_fraction"}


def remedy(name: str, direction: str, *, lowest: int | None = None, matched: int = 0) -> str:
    """One sentence for the researcher."""
    less = "lower in synthetic" in direction
    if name in DETAIL:
        amount = "less" if less else "more"
        if matched:
            return (
                f"synthetic images have {amount} fine detail even at a matched resolution of "
                f"{matched} px: match a lower resolution, or the generator differs in texture"
            )
        target = f"{lowest} px" if lowest else "the generator's output size"
        return f"synthetic images have {amount} fine detail: match source resolution to {target}"
    if name == "blockiness":
        return ("JPEG 8x8 blocks survive in one class: match source resolution (the resampling "
                "removes them), or re-export the originals losslessly")
    if name in INTENSITY:
        return ("intensities differ: turn on intensity standardisation (percentile range, e.g. "
                "1-99); for CT, check that the study window suits every case")
    if name in BORDERS:
        return ("the borders differ: crop the border (e.g. 5%) to remove markers and "
                "collimation, or choose the crop aspect if the synthetic images are square")
    if name == "lr_asymmetry":
        return ("left/right asymmetry differs (often a laterality marker): crop the border; "
                "if it remains, it is anatomy or a marker inside the field: curate the images")
    return ("not a presentation setting: every derivative of a study should be the same here; "
            "report it as a bug")
