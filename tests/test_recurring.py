"""The keys that recur within a delivery, as the reading processes find them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from familycard.sources import recurring
from familycard.sources.recurring import RecurringKeys


def _found(batches: list[list[str]], deleted: list[list[bool]] | None = None) -> set[str]:
    keys = RecurringKeys()
    for i, batch in enumerate(batches):
        gone = deleted[i] if deleted else [False] * len(batch)
        keys.add(pa.array(batch, pa.string()), pa.array(gone, pa.bool_()))
    return set(keys.result().to_pylist())


def test_keys_recurring_within_and_across_batches_and_deleted_keys() -> None:
    batches = [["a", "b", "c", "a"], ["d", "b"], ["e", "f"], []]
    deleted = [[False] * 4, [False, False], [True, False], []]
    assert _found(batches, deleted) == {"a", "b", "e"}


def test_no_recurring_key_gives_an_empty_result() -> None:
    assert _found([["x", "y"], ["z"]]) == set()
    assert _found([]) == set()


def test_keys_that_share_a_hash_are_not_taken_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every key hashes alike: only the count by key text may decide.
    monkeypatch.setattr(recurring, "key_hashes", lambda keys, _con: np.zeros(len(keys), np.uint64))
    assert _found([["a", "b"], ["c", "b"]]) == {"b"}
    assert _found([["a", "b", "c"]]) == set()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.text(alphabet="abcdé|0", max_size=3), max_size=12), max_size=5))
def test_result_matches_a_plain_count(batches: list[list[str]]) -> None:
    flat = [k for b in batches for k in b]
    assert _found(batches) == {k for k in set(flat) if flat.count(k) > 1}
