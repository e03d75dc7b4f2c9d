"""The layers of tinyfw.nn, one theme per file."""
from .adaptive import AdaptiveLogSoftmaxWithLoss
from .activation import GELU, LeakyReLU, LogSoftmax, ReLU, SiLU, Sigmoid, Softmax, Tanh
from .batchnorm_sync import SyncBatchNorm
from .container import ModuleDict, ModuleList, Sequential
from .container_params import ParameterDict, ParameterList
from .conv import Conv2d
from .distance import Bilinear, CosineSimilarity, PairwiseDistance
from .conv_more import Conv1d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .fold import ChannelShuffle, Fold, PixelShuffle, PixelUnshuffle, Unfold
from .lazy_conv import (LazyConv1d, LazyConv2d, LazyConv3d, LazyConvTranspose1d,
                        LazyConvTranspose2d, LazyConvTranspose3d)
from .padding import *  # noqa: F401,F403  (Constant/Zero/Reflection/Replication/CircularPad*d)
from .dropout import Dropout
from .lazy import (LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d, LazyInstanceNorm1d,
                   LazyInstanceNorm2d, LazyInstanceNorm3d, LazyLinear, LazyModuleMixin,
                   UninitializedBuffer, UninitializedParameter)
from .linear import Flatten, Identity, Linear, Unflatten
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, DistillationLoss, KLDivLoss,
                   L1Loss, MSELoss, NLLLoss, distillation_loss)
from .module import Module, Parameter, RemovableHandle
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, LayerNorm
from .normalization_more import (CrossMapLRN2d, GroupNorm, InstanceNorm1d, InstanceNorm2d,
                                 InstanceNorm3d, LocalResponseNorm, RMSNorm)
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .sparse import Embedding, EmbeddingBag
from .transformer_decoder import Transformer, TransformerDecoder, TransformerDecoderLayer
from .transformer import (MultiheadAttention, TransformerEncoder, TransformerEncoderLayer,
                          generate_square_subsequent_mask)
# issue 16: pooling and resampling layers
from .pooling_more import *  # noqa: F401,F403
from .upsampling import *  # noqa: F401,F403

# issue 16: activations, losses, dropout variants
from .activation_more import (CELU, ELU, GLU, Hardshrink, Hardsigmoid, Hardswish, Hardtanh,
                              LogSigmoid, Mish, PReLU, ReLU6, RReLU, SELU, Softmax2d, Softmin,
                              Softplus, Softshrink, Softsign, Tanhshrink, Threshold)
from .dropout_more import AlphaDropout, Dropout1d, Dropout2d, Dropout3d, FeatureAlphaDropout
from .loss_more import (CosineEmbeddingLoss, CTCLoss, GaussianNLLLoss, HingeEmbeddingLoss,
                        HuberLoss, LinearCrossEntropyLoss, MarginRankingLoss,
                        MultiLabelMarginLoss, MultiLabelSoftMarginLoss, MultiMarginLoss,
                        PoissonNLLLoss, SmoothL1Loss, SoftMarginLoss, TripletMarginLoss,
                        TripletMarginWithDistanceLoss)

__all__ = [n for n in dir() if not n.startswith("_")]
