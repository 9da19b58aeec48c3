"""The seed protocol: splits are disjoint, --episodes never leaves its split, the training
stream lies above every named split."""

import pytest

from scriptrl.errors import UserError
from scriptrl.seeds import SeedSplits


def test_episodes_beyond_a_split_are_an_error_not_the_next_split():
    s = SeedSplits()
    assert s.seeds("dev", 20) == list(range(20))
    with pytest.raises(UserError, match="more than the dev split holds"):
        s.seeds("dev", 1001)  # used to run seeds 0-1000, holdout seed 1000 included


def test_overlapping_or_empty_splits_are_refused():
    with pytest.raises(UserError, match="overlap"):
        SeedSplits(dev=(0, 1001))
    with pytest.raises(UserError, match="empty"):
        SeedSplits(audit=(5, 5))


def test_training_stream_is_disjoint_from_holdout_and_audit():
    s = SeedSplits()
    stream = set(s.train(0, 5000))
    for split in ("dev", "holdout", "audit"):
        assert not stream & set(s.seeds(split))
    assert s.train(10, 2) == [s.train_start + 10, s.train_start + 11]
    with pytest.raises(UserError, match="training stream"):
        SeedSplits(train_start=1500)


def test_from_config_reads_stored_ranges():
    s = SeedSplits.from_config({"dev": [5, 10], "holdout": [1000, 1050]})
    assert s.seeds("dev") == [5, 6, 7, 8, 9] and s.audit == (2000, 2050)
