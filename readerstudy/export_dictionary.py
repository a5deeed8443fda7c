"""The data dictionary of the exports: every column of every table, its definition and unit.

The CSV headers are short snake_case names (R's `read.csv` and pandas keep them as they are);
what they mean lives here, exported as the `dictionary` table and listed in
`docs/results.md`. A test checks that every column of every table has an entry.
"""

from __future__ import annotations

from collections.abc import Iterator

DICTIONARY_HEADER = ["column", "table", "definition", "unit"]

ITD = "ITD: unsure counts as wrong"
SECONDARY = "SECONDARY: committed (real/fake) answers only, flatters readers who say unsure"
SCORE = "fake-score: +confidence for fake, 0 for unsure, -confidence for real"
ESTIMATE_NOTE = (
    "how the estimate was obtained (resamples, clipping, readers left out), or 'not defined: "
    "<reason>' when the data cannot give it (the estimate is then empty)"
)

#: Columns with the same meaning in every table that has them: (definition, unit).
SHARED: dict[str, tuple[str, str]] = {
    "study": ("the study's public id", "id"),
    "reader": ("the reader's username", "text"),
    "image_public_id": ("the case image's public id (never shown to readers)", "id"),
    "truth": ("the case's truth: real or synthetic (synthetic is the positive class)", "text"),
    "modality": ("imaging modality of the case image", "text"),
    "finding": ("finding recorded for the case image", "text"),
    "source": ("where the image came from (dataset or generator)", "text"),
    "generator_kind": (("generation engine (ddpm, stable-diffusion, image-api); empty for real "
                       "images"), "text"),
    "generator_model": ("generator model name; empty for real images", "text"),
    "generator_checkpoint": (("checkpoint path relative to the model folder, with the short "
                             "SHA-256 of its weights (and of a LoRA); empty for real images"),
                             "text"),
    "generator_job": ("generation job id; empty for real images", "id"),
    "generator_seed": ("random seed of the generation; empty for real images", "integer"),
    "generator_prompt_or_class": ("prompt or class the image was generated from", "text"),
    "generator_sampler": ("sampler (scheduler) used for generation", "text"),
    "generator_steps": ("sampling steps", "count"),
    "generator_guidance": ("classifier-free guidance scale", "scale"),
    "is_practice": ("1 for a practice case (left out of every statistic), else 0", "0/1"),
    "n_cases": ("number of cases behind the row", "count"),
    "n_readings": ("number of first-showing readings of non-practice cases", "count"),
    "n_fake": ("synthetic cases read (first showings)", "count"),
    "n_real": ("real cases read (first showings)", "count"),
    "answered_real": ("first-showing readings answered real", "count"),
    "answered_unsure": ("first-showing readings answered unsure", "count"),
    "answered_fake": ("first-showing readings answered fake", "count"),
    "statistic": ("name of the statistic of the row", "text"),
    "estimate": ("the point estimate; empty when not defined", "as the statistic"),
    "ci_low": ("lower end of the 95% interval; empty when there is none", "as the estimate"),
    "ci_high": ("upper end of the 95% interval; empty when there is none", "as the estimate"),
    "se": ("standard error, where the method gives one", "as the estimate"),
    "note": (ESTIMATE_NOTE, "text"),
    "method": ("the interval method", "text"),
    "definition": ("what the statistic of the row is", "text"),
    "subset": (("all: real/unsure/fake, unsure a third category; committed: SECONDARY, "
               "unsure treated as missing"), "text"),
}

#: Columns of the per-reader figures in `readers`: stem -> (definition, unit).
READER_FIGURES: dict[str, tuple[str, str]] = {
    "accuracy": (f"correct / all read ({ITD}); 95% Wilson", "proportion"),
    "sensitivity": (f"synthetic answered fake / synthetic read ({ITD}); 95% Wilson",
                    "proportion"),
    "specificity": (f"real answered real / real read ({ITD}); 95% Wilson", "proportion"),
    "committed_accuracy": (f"correct / answered real or fake ({SECONDARY}); 95% Wilson",
                           "proportion"),
    "committed_sensitivity": ((f"synthetic answered fake / synthetic answered real or fake "
                              f"({SECONDARY}); 95% Wilson"), "proportion"),
    "committed_specificity": ((f"real answered real / real answered real or fake "
                              f"({SECONDARY}); 95% Wilson"), "proportion"),
    "unsure_rate": ("unsure / all read; 95% Wilson", "proportion"),
    "auc": ((f"AUC of the {SCORE} (Mann-Whitney, ties count 1/2); 95% DeLong interval; not "
            "defined when a committed answer lacks its confidence"), "AUC"),
    "intra_reader_kappa": (("Cohen's kappa of first vs repeat showing (real/unsure/fake); 95% "
                           "asymptotic"), "kappa"),
    "intra_reader_agreement": ("repeats answered as the first time / repeats; 95% Wilson",
                               "proportion"),
}

SUFFIXES = {
    "ci_low": ("lower end of the 95% interval of {stem}", "as {stem}"),
    "ci_high": ("upper end of the 95% interval of {stem}", "as {stem}"),
    "n": ("denominator of {stem} (readings, pairs or cases)", "count"),
    "note": ("note on {stem}, or 'not defined: <reason>' when {stem} is empty", "text"),
}

TABLE_CELLS = {
    f"{truth}_answered_{answer}": (
        (f"first readings of {'synthetic' if truth == 'fake' else 'real'} cases answered "
        f"{answer}"), "count")
    for truth in ("fake", "real") for answer in ("real", "unsure", "fake")
}

#: Table-specific columns (and meanings that differ from SHARED): table -> column -> entry.
TABLES: dict[str, dict[str, tuple[str, str]]] = {
    "readings": {
        "position": ("1-based position in the reader's drawn order", "integer"),
        "answer": ("the reader's answer: real, unsure or fake", "text"),
        "confidence": ("confidence rating (1-5); empty when none was given", "rating"),
        "fake_score": ((f"{SCORE}; empty when a committed answer has no confidence (the "
                       "analysis leaves it out too)"), "score"),
        "is_repeat": (("1 for a repeat (second) showing, used for intra-reader consistency "
                      "only"), "0/1"),
        "served_at": ("when the server sent the case", "ISO 8601 time"),
        "answered_at": ("when the answer was stored", "ISO 8601 time"),
        "seconds_on_case": ("answered_at - served_at, measured by the server", "seconds"),
        "client_ms": ("time on the case measured by the reader's browser", "milliseconds"),
        "revisions": ("times the answer was changed before moving on", "count"),
        "comment": (("the reader's free-text comment (a text cell starting with = + - @ tab "
                    "or CR is prefixed with ' so a spreadsheet shows it as text)"), "text"),
    },
    "readers": {
        "n_readings": ("first-showing readings of non-practice cases", "count"),
        "n_repeat_pairs": ("repeat showings paired with a first showing", "count"),
        **TABLE_CELLS,
    },
    "agreement": {
        "statistic": (("fleiss_kappa, krippendorff_alpha, gwet_ac1, percent_agreement or "
                      "mean_pairwise_cohen_kappa"), "text"),
        "n_cases": (("cases read by all readers (Fleiss) or with at least two readings (alpha, "
                    "AC1, agreement); empty for the mean pairwise kappa"), "count"),
        "n_readers": ("readers with readings (all) or with a committed answer (committed)",
                      "count"),
    },
    "cases": {
        "readings": ("first-showing readings of the case", "count"),
        "share_fake": ("answered fake / readings (first showings)", "proportion"),
    },
    "imrmc": {
        "readerID": ("integer reader id (imrmc_ids); -1 on truth rows", "id"),
        "caseID": ("integer case id (imrmc_ids)", "id"),
        "modalityID": ("1 (the study); 'truth' on truth rows", "id"),
        "score": (f"{SCORE}; on truth rows 1 synthetic, 0 real", "score"),
    },
    "imrmc_ids": {
        "kind": ("reader, case or modality", "text"),
        "id": ("the integer id used in the .imrmc file", "id"),
        "label": ("what it stands for: username, image public id, or the study", "text"),
    },
    "mrmc_long": {
        "readerID": ("reader username; 'truth' on truth rows", "text"),
        "caseID": ("case image public id", "id"),
        "modalityID": ("study-<public id>; 'truth' on truth rows", "text"),
        "score": ((f"{SCORE}; on truth rows 1 synthetic, 0 real; readings without a fake-score "
                  "are left out"), "score"),
    },
    "reader_averaged": {
        "statistic": (("accuracy, sensitivity, specificity, unsure_rate (means of per-reader "
                      "proportions) or auc_random_readers / auc_fixed_readers "
                      "(Obuchowski-Rockette)"), "text"),
        "n_readers": ("readers behind the mean", "count"),
    },
    "pairwise_kappa": {
        "reader_a": ("first reader of the pair", "text"),
        "reader_b": ("second reader of the pair", "text"),
        "n_cases": ("cases read by both (first showings)", "count"),
        "kappa": ("Cohen's kappa of the pair; empty when not defined", "kappa"),
        "ci_low": ("lower end of the 95% asymptotic interval", "kappa"),
        "ci_high": ("upper end of the 95% asymptotic interval", "kappa"),
        "se": ("asymptotic standard error (Fleiss, Cohen & Everitt 1969)", "kappa"),
    },
    "groups": {
        "grouping": ("all, generator, generator_checkpoint, generation_job, modality or finding",
                     "text"),
        "group": ("the group's name within the grouping", "text"),
        "measure": (("fooling_rate (synthetic answered real) or answered_fake_rate (real "
                    "answered fake)"), "text"),
        "rate": (("synthetic: answered real / readings (fooling rate); real: answered fake / "
                 "readings; first showings; 95% Wilson"), "proportion"),
        "rate_ci_low": ("lower end of the 95% Wilson interval of rate", "proportion"),
        "rate_ci_high": ("upper end of the 95% Wilson interval of rate", "proportion"),
        "unsure_rate": ("unsure / readings; 95% Wilson", "proportion"),
        "unsure_rate_ci_low": ("lower end of the 95% Wilson interval of unsure_rate",
                               "proportion"),
        "unsure_rate_ci_high": ("upper end of the 95% Wilson interval of unsure_rate",
                                "proportion"),
        "note": ("notes of rate and unsure_rate", "text"),
    },
    "roc_points": {
        "point": ("index of the point along the curve, from (0, 0)", "integer"),
        "threshold": ("call fake when the fake-score >= threshold; empty: call none fake",
                      "score"),
        "fpr": ("false positive rate (1 - specificity)", "proportion"),
        "tpr": ("true positive rate (sensitivity)", "proportion"),
    },
    "dictionary": {
        "column": ("column name", "text"),
        "table": ("table the column belongs to", "text"),
        "definition": ("what the column holds", "text"),
        "unit": ("unit or type of the values", "text"),
    },
}


def register_columns(table: str, columns: dict[str, tuple[str, str]]) -> None:
    """Let another app document the columns of a table it adds (the evaluation app's
    `quality`)."""
    TABLES[table] = dict(columns)


def _reader_figure(column: str) -> tuple[str, str] | None:
    if column in READER_FIGURES:
        return READER_FIGURES[column]
    for suffix, (definition, unit) in SUFFIXES.items():
        stem = column.removesuffix(f"_{suffix}")
        if stem != column and stem in READER_FIGURES:
            return definition.format(stem=stem), unit.format(stem=stem)
    return None


def definition(table: str, column: str) -> tuple[str, str] | None:
    """(definition, unit) of a column of a table, or None when it is not documented."""
    own = TABLES.get(table, {})
    if column in own:
        return own[column]
    if table == "readers" and (figure := _reader_figure(column)):
        return figure
    return SHARED.get(column)


def dictionary_rows(study=None) -> Iterator[list]:
    """One row per column of every table, in table order, header first."""
    from readerstudy.exports import table_header

    yield DICTIONARY_HEADER
    from readerstudy.exports import TABLES as SPECS

    for name in SPECS:
        for column in table_header(name):
            entry = definition(name, column)
            yield [column, name, *(entry or ("(undocumented)", ""))]
