"""Language metrics: pure functions of ``meanings`` ``(N, n_attributes)`` and ``messages``
``(N, max_len)`` (token 0 = EOS; padding after it is ignored). Inputs may be numpy arrays,
torch tensors or lists; results are Python floats (or numpy arrays / dicts of floats).

=================================  =========================================================
``topographic_similarity``         Brighton & Kirby 2006; Lazaridou et al. 2018
``positional_disentanglement``     Chaabouni et al. 2020 (posdis)
``bag_of_symbols_disentanglement`` Chaabouni et al. 2020 (bosdis)
``message_entropy``                H(message) in bits
``mutual_information``             I(meaning; message) in bits
``message_length_stats``           mean / std / min / max length (EOS counted)
``symbol_usage``                   relative frequency of each symbol
``heldout_accuracy``               accuracy on held-out rows (``unseen_mask``)
``language_report``                all of the above as ``{name: float}``
=================================  =========================================================
"""

from commchannels.metrics.compositionality import (
    bag_of_symbols_disentanglement,
    positional_disentanglement,
    topographic_similarity,
)
from commchannels.metrics.generalization import heldout_accuracy, unseen_mask
from commchannels.metrics.information import meaning_entropy, message_entropy, mutual_information
from commchannels.metrics.messages import (
    EOS,
    mask_padding,
    message_length_stats,
    message_lengths,
    symbol_usage,
)
from commchannels.metrics.report import REPORT_KEYS, language_report

__all__ = [
    "EOS",
    "REPORT_KEYS",
    "bag_of_symbols_disentanglement",
    "heldout_accuracy",
    "language_report",
    "mask_padding",
    "meaning_entropy",
    "message_entropy",
    "message_length_stats",
    "message_lengths",
    "mutual_information",
    "positional_disentanglement",
    "symbol_usage",
    "topographic_similarity",
    "unseen_mask",
]
