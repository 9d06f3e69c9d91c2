"""cervattn: interpretable attention networks for cervical-cell classification.

Residual-attention (RAN) and residual-channel-attention (RCAN) variants of ResNet and DenseNet,
registered as timm models on import, with SIPaKMeD weights and Integrated-Gradients explanations.

Research use only, not for clinical diagnosis.
"""

__version__ = "0.1.0.dev0"

from . import hub, models  # noqa: F401  (models registers the architectures with timm)
from .constants import RESEARCH_USE_NOTICE, SIPAKMED_CLASSES
from .explanations import Explanation, explain, explain_files, load_explanation
from .factory import create_model, is_cervattn_model, list_models, list_pretrained

__all__ = [
    "__version__",
    "RESEARCH_USE_NOTICE",
    "SIPAKMED_CLASSES",
    "Explanation",
    "create_model",
    "explain",
    "explain_files",
    "load_explanation",
    "is_cervattn_model",
    "list_models",
    "list_pretrained",
]
