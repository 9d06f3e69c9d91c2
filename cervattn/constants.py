"""Facts shared by the whole package: SIPaKMeD class names and the research-use notice."""

#: The five SIPaKMeD classes in the one canonical order used everywhere in cervattn
#: (model outputs, label names in pretrained cfgs, datasets, metrics, reports).
SIPAKMED_CLASSES: tuple[str, ...] = (
    "Dyskeratotic",
    "Koilocytotic",
    "Metaplastic",
    "Parabasal",
    "Superficial-Intermediate",
)

#: Shown on every user-facing surface (README, docs, model cards, CLI help).
RESEARCH_USE_NOTICE = "Research use only, not for clinical diagnosis."

#: Hugging Face Hub organisation that hosts cervattn's released weights.
HUB_ORG = "cervattn"
