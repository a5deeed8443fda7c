"""Text prompts for the text-to-image generator kinds, built from an image's labels. No Django here.

The template (one sentence, lower case, no trailing full stop) is

    "a [normal ]<view> <modality phrase>[ of <subject>][ with <finding>]"

* modality: "CXR" -> view "frontal", phrase "chest x-ray"; "CT" -> view "axial", phrase
  "chest ct slice". Any other modality code is used as written (lower-cased) with no view word.
* subject (from `age_group`): None / "" -> omitted; "child", "children", "pediatric",
  "paediatric" -> "a child"; "infant" -> "an infant"; "adult" -> "an adult"; "elderly" ->
  "an elderly patient"; anything else -> "a <age_group> patient".
* finding: None, "", "normal", "no finding", "no findings", "none" -> the word "normal" goes in
  front and no "with" clause is added; anything else -> "with <finding>" (underscores become
  spaces, lower-cased, e.g. "Pleural_Effusion" -> "with pleural effusion").

Examples:

    build_prompt("CXR", "pneumonia", "child") -> "a frontal chest x-ray of a child with pneumonia"
    build_prompt("CXR", "pneumonia")          -> "a frontal chest x-ray with pneumonia"
    build_prompt("CXR", "normal", "adult")    -> "a normal frontal chest x-ray of an adult"
    build_prompt("CT", "lung nodule")         -> "an axial chest ct slice with lung nodule"

The same function must be used when building LoRA training captions and when sampling, so that
the fine-tuned model is asked for what it was taught.
"""

from __future__ import annotations

PROMPT_TEMPLATE = "a [normal ]<view> <modality phrase>[ of <subject>][ with <finding>]"

MODALITY_PHRASES: dict[str, tuple[str, str]] = {
    # code: (view word, modality phrase)
    "CXR": ("frontal", "chest x-ray"),
    "CT": ("axial", "chest ct slice"),
}

NORMAL_FINDINGS = frozenset({"", "normal", "no finding", "no findings", "none", "no_finding"})

AGE_GROUP_SUBJECTS: dict[str, str] = {
    "child": "a child",
    "children": "a child",
    "pediatric": "a child",
    "paediatric": "a child",
    "infant": "an infant",
    "adult": "an adult",
    "elderly": "an elderly patient",
}

DEFAULT_NEGATIVE_PROMPT = "text, watermark, letters, blurry"


def _clean(value: str) -> str:
    return " ".join(value.replace("_", " ").lower().split())


def _article(phrase: str) -> str:
    return "an" if phrase[:1] in "aeiou" else "a"


def build_prompt(
    modality: str = "CXR", finding: str | None = None, age_group: str | None = None
) -> str:
    """One prompt sentence from an image's labels; see the module docstring for the template."""
    code = (modality or "").strip().upper()
    if code in MODALITY_PHRASES:
        view, phrase = MODALITY_PHRASES[code]
        body = f"{view} {phrase}"
    else:
        body = _clean(modality or "image")

    cleaned_finding = _clean(finding or "")
    is_normal = cleaned_finding in NORMAL_FINDINGS
    if is_normal:
        body = f"normal {body}"
    words = [_article(body), body]

    age = _clean(age_group or "")
    if age:
        words.append("of " + AGE_GROUP_SUBJECTS.get(age, f"a {age} patient"))
    if not is_normal:
        words.append(f"with {cleaned_finding}")
    return " ".join(words)
