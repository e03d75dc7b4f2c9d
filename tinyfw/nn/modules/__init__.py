"""The layers of tinyfw.nn, one theme per file."""
from .activation import GELU, LeakyReLU, LogSoftmax, ReLU, SiLU, Sigmoid, Softmax, Tanh
from .container import ModuleDict, ModuleList, Sequential
from .conv import Conv2d
from .dropout import Dropout
from .linear import Flatten, Identity, Linear, Unflatten
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, DistillationLoss, KLDivLoss,
                   L1Loss, MSELoss, NLLLoss, distillation_loss)
from .module import Module, Parameter, RemovableHandle
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .sparse import Embedding
from .transformer import (MultiheadAttention, TransformerEncoder, TransformerEncoderLayer,
                          generate_square_subsequent_mask)

# issue 16: activations, losses, dropout variants
from .activation_more import (CELU, ELU, GLU, Hardshrink, Hardsigmoid, Hardswish, Hardtanh,
                              LogSigmoid, Mish, PReLU, ReLU6, RReLU, SELU, Softmax2d, Softmin,
                              Softplus, Softshrink, Softsign, Tanhshrink, Threshold)
from .adaptive import AdaptiveLogSoftmaxWithLoss
from .distance import CosineSimilarity, PairwiseDistance
from .dropout_more import AlphaDropout, Dropout1d, Dropout2d, Dropout3d, FeatureAlphaDropout
from .loss_more import (CosineEmbeddingLoss, CTCLoss, GaussianNLLLoss, HingeEmbeddingLoss,
                        HuberLoss, LinearCrossEntropyLoss, MarginRankingLoss,
                        MultiLabelMarginLoss, MultiLabelSoftMarginLoss, MultiMarginLoss,
                        PoissonNLLLoss, SmoothL1Loss, SoftMarginLoss, TripletMarginLoss,
                        TripletMarginWithDistanceLoss)

__all__ = [n for n in dir() if not n.startswith("_")]
