"""cervattn's model families; importing this package registers them with timm."""

from . import attention_densenets, attention_resnets, residual_attention_nets
from .attention_densenets import AttentionDenseNet, AttentiveDenseLayer
from .attention_resnets import AttentionResNet
from .residual_attention_nets import ResidualAttentionNet

#: timm module names that hold cervattn's architectures.
MODEL_MODULES = (attention_resnets.__name__, attention_densenets.__name__, residual_attention_nets.__name__)

__all__ = ["AttentionDenseNet", "AttentiveDenseLayer", "AttentionResNet", "ResidualAttentionNet", "MODEL_MODULES"]
