"""Topographic similarity and disentanglement on hand-made languages and against references."""

import numpy as np
import pytest
import torch
from conftest import compositional

from commchannels.metrics import (
    bag_of_symbols_disentanglement,
    positional_disentanglement,
    topographic_similarity,
)
from commchannels.metrics.distances import edit_distance as levenshtein
from commchannels.metrics.distances import paired_edit_distance


def content(message):
    """The symbols before the first EOS."""
    message = list(message)
    return message[:message.index(0)] if 0 in message else message


def test_compositional_language_is_perfect(compositional_language):
    meanings, messages = compositional_language
    for message_distance in ("hamming", "edit", "normalized_edit"):
        assert topographic_similarity(meanings, messages, "hamming", message_distance) == (
            pytest.approx(1.0))
    assert positional_disentanglement(meanings, messages) == pytest.approx(1.0)
    assert bag_of_symbols_disentanglement(meanings, messages) == pytest.approx(1.0)


def test_positional_code_with_shared_symbols_has_perfect_posdis_only():
    meanings, messages = compositional(disjoint=False)
    assert positional_disentanglement(meanings, messages) == pytest.approx(1.0)
    assert bag_of_symbols_disentanglement(meanings, messages) < 0.5


def test_holistic_language_is_not_compositional(holistic_language):
    meanings, messages = holistic_language
    assert abs(topographic_similarity(meanings, messages, "hamming", "hamming")) < 0.2
    assert positional_disentanglement(meanings, messages) < 0.3
    assert bag_of_symbols_disentanglement(meanings, messages) < 0.3


def test_random_language_scores_near_zero(random_language):
    meanings, messages = random_language
    assert abs(topographic_similarity(meanings, messages)) < 0.05
    assert positional_disentanglement(meanings, messages) < 0.05
    assert bag_of_symbols_disentanglement(meanings, messages) < 0.05


def test_constant_language_scores_zero_not_nan(constant_language):
    meanings, messages = constant_language
    assert topographic_similarity(meanings, messages) == 0.0
    assert topographic_similarity(np.zeros_like(meanings), compositional()[1]) == 0.0
    assert positional_disentanglement(meanings, messages) == 0.0
    assert bag_of_symbols_disentanglement(meanings, messages) == 0.0
    assert topographic_similarity(meanings[:1], messages[:1]) == 0.0  # no pair at all


def test_posdis_matches_egg_doctest():
    # EGG's Disent doctest (tokens shifted by one because 0 is EOS here): 0.978656.
    torch.manual_seed(0)
    attributes = torch.cat([torch.randint(0, 10, (1000, 1)), torch.randint(0, 10, (1000, 1))], 1)
    assert round(positional_disentanglement(attributes, attributes + 1), 6) == 0.978656
    padded = torch.cat([attributes + 1, torch.zeros_like(attributes)], 1)
    assert round(positional_disentanglement(attributes, padded), 6) == 0.978656


@pytest.mark.parametrize("meaning_distance", ["hamming", "euclidean", "cosine"])
@pytest.mark.parametrize("message_distance", ["edit", "normalized_edit", "hamming"])
def test_topsim_matches_scipy_reference(meaning_distance, message_distance):
    stats = pytest.importorskip("scipy.stats")
    distance = pytest.importorskip("scipy.spatial.distance")
    rng = np.random.default_rng(3)
    meanings = rng.integers(1, 4, size=(40, 3))  # no all-zero vector: SciPy's cosine is NaN there
    messages = rng.integers(0, 4, size=(40, 5))
    messages[25:] = messages[:15]  # repeated messages take the deduplicated-table path
    texts = [content(m) for m in messages]
    masked = [t + [0] * (5 - len(t)) for t in texts]
    meaning_d, message_d = [], []
    for i in range(40):
        for j in range(i + 1, 40):
            d = getattr(distance, meaning_distance)(meanings[i], meanings[j])
            meaning_d.append(round(d, 12))  # round-off must not break ties (parallel vectors)
            if message_distance == "hamming":
                message_d.append(distance.hamming(masked[i], masked[j]))
            else:
                d = levenshtein(texts[i], texts[j])
                mean_len = (len(texts[i]) + len(texts[j])) / 2
                if message_distance == "normalized_edit":
                    d = d / mean_len if mean_len else 0.0
                message_d.append(d)
    expected = stats.spearmanr(meaning_d, message_d).correlation
    got = topographic_similarity(meanings, messages, meaning_distance, message_distance)
    assert got == pytest.approx(expected, abs=1e-9)


def test_vectorised_edit_distance_matches_python():
    rng = np.random.default_rng(0)
    a, b = rng.integers(1, 4, size=(500, 6)), rng.integers(1, 4, size=(500, 6))
    len_a, len_b = rng.integers(0, 7, 500), rng.integers(0, 7, 500)
    expected = [levenshtein(a[k, :len_a[k]].tolist(), b[k, :len_b[k]].tolist()) for k in range(500)]
    assert paired_edit_distance(a, len_a, b, len_b).tolist() == expected


def test_padding_after_eos_is_ignored(compositional_language):
    meanings, messages = compositional_language
    noisy = np.concatenate([messages, np.random.default_rng(0).integers(1, 9, (len(messages), 3))], 1)
    for metric in (topographic_similarity, positional_disentanglement,
                   bag_of_symbols_disentanglement):
        assert metric(meanings, noisy) == pytest.approx(metric(meanings, messages))


def test_pair_sampling_is_seeded_and_close_to_exact(random_language):
    meanings, messages = random_language
    meanings = meanings.copy()
    messages = messages.copy()
    messages[:, 0] = meanings[:, 0] + 1  # some structure, so the estimate is not ~0
    exact = topographic_similarity(meanings, messages, max_pairs=None)
    first = topographic_similarity(meanings, messages, max_pairs=20_000, seed=5)
    assert first == topographic_similarity(meanings, messages, max_pairs=20_000, seed=5)
    assert first != topographic_similarity(meanings, messages, max_pairs=20_000, seed=6)
    assert first == pytest.approx(exact, abs=0.03)


def test_bad_options_raise_value_error_naming_them(compositional_language):
    meanings, messages = compositional_language
    with pytest.raises(ValueError, match="meaning_distance='jaccard'"):
        topographic_similarity(meanings, messages, meaning_distance="jaccard")
    with pytest.raises(ValueError, match="message_distance='levenshtein'"):
        topographic_similarity(meanings, messages, message_distance="levenshtein")
    with pytest.raises(ValueError, match="max_pairs=0"):
        topographic_similarity(meanings, messages, max_pairs=0)
