"""language_report: the whole table, its validation, and the module doctests."""

import doctest
import importlib
import math

import pytest

from commchannels.metrics import REPORT_KEYS, language_report

MODULES = ["messages", "information", "distances", "compositionality", "generalization", "report"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(f"commchannels.metrics.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_report_of_compositional_language(compositional_language):
    meanings, messages = compositional_language
    report = language_report(meanings, messages, vocab_size=13, attribute_sizes=(4, 5, 3))
    assert list(report) == list(REPORT_KEYS)
    assert all(type(v) is float and math.isfinite(v) for v in report.values())
    for key in ("topsim", "topsim_hamming", "posdis", "bosdis", "normalized_mi"):
        assert report[key] == pytest.approx(1.0), key
    assert report["n_objects"] == report["n_messages"] == 60
    assert report["mutual_information"] == pytest.approx(math.log2(60))
    assert report["length_mean"] == report["length_max"] == 4.0
    assert report["symbols_used"] == 12


def test_report_of_constant_language(constant_language):
    meanings, messages = constant_language
    report = language_report(meanings, messages, vocab_size=4, attribute_sizes=(4, 5, 3))
    for key in ("topsim", "posdis", "bosdis", "message_entropy", "mutual_information",
                "normalized_mi", "length_std"):
        assert report[key] == 0.0, key
    assert report["n_messages"] == 1 and report["length_mean"] == 3.0


def test_report_validates_sizes(compositional_language):
    meanings, messages = compositional_language
    with pytest.raises(ValueError, match="vocab_size=5"):
        language_report(meanings, messages, vocab_size=5, attribute_sizes=(4, 5, 3))
    with pytest.raises(ValueError, match="expected 3 positive sizes"):
        language_report(meanings, messages, vocab_size=13, attribute_sizes=(4, 5))
    with pytest.raises(ValueError, match=r"attribute_sizes\[1\]=2"):
        language_report(meanings, messages, vocab_size=13, attribute_sizes=(4, 2, 3))
