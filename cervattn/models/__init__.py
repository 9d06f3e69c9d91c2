"""cervattn's model families; importing this package registers them with timm."""

from timm.models import is_model_in_modules, split_model_name_tag

from . import attention_densenets, attention_resnets, residual_attention_nets
from .attention_densenets import AttentionDenseNet, AttentiveDenseLayer
from .attention_resnets import AttentionResNet
from .residual_attention_nets import ResidualAttentionNet

#: Full names of the modules that hold cervattn's architectures.
MODEL_MODULES = (attention_resnets.__name__, attention_densenets.__name__, residual_attention_nets.__name__)
#: The same as timm files them (the last part of the module name).
TIMM_MODULES = [name.rsplit(".", 1)[-1] for name in MODEL_MODULES]


def is_cervattn_arch(name: str) -> bool:
    """Whether ``name`` (with or without a tag) is one of cervattn's architectures."""
    return is_model_in_modules(split_model_name_tag(name)[0], TIMM_MODULES)


__all__ = ["AttentionDenseNet", "AttentiveDenseLayer", "AttentionResNet", "ResidualAttentionNet", "MODEL_MODULES",
           "TIMM_MODULES", "is_cervattn_arch"]
