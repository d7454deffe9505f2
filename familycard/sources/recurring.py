"""The keys that recur within one delivery file, found by the process that reads it.

A delivery's rows whose key occurs once (and that delete nothing) are their record's only version in
it; only the keys that recur, and those a row deletes, go through the window that orders versions
(:mod:`familycard.sources.history`). The reading process sees every key as it stages the rows, so it
finds these keys as it goes, at a fraction of the cost of grouping every staged key in the engine
afterwards (a national first delivery stages about 160 million keys):

1. each batch's keys are hashed to 64 bits (DuckDB's ``hash``, vectorised, in this process);
2. at the end of the file the hashes are sorted, and those that occur more than once are candidates;
3. the rows whose hash may be a candidate's (by its low bits, a table of 16 million flags) are counted
   exactly by their key text, so that two keys that share a hash are never taken for one.

The result is exact: every key that occurs more than once, and every key a row deletes.
"""

from __future__ import annotations

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

_FLAG_BITS = 24  # the candidates' low hash bits flag 2**24 slots: few rows that recur nowhere pass


def key_hashes(
    keys: pa.Array | pa.ChunkedArray, connection: duckdb.DuckDBPyConnection
) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of every key (equal keys have equal hashes; nulls hash alike)."""
    table = pa.table({"k": keys})
    return np.asarray(connection.from_arrow(table).project("hash(k) AS h").fetchnumpy()["h"], np.uint64)


class RecurringKeys:
    """Collects a delivery's staged keys batch by batch; :meth:`result` gives those that recur in it or
    that a row deletes."""

    def __init__(self) -> None:
        self._connection: duckdb.DuckDBPyConnection | None = None  # (one thread: a reader per core)
        self._keys: list[pa.Array] = []  # (the chunks of every batch's keys)
        self._hashes: list[npt.NDArray[np.uint64]] = []
        self._deleted: list[pa.Array] = []

    def add(self, keys: pa.Array | pa.ChunkedArray, deleted: pa.Array | pa.ChunkedArray) -> None:
        """One batch's keys and, for each, whether its row deletes the record."""
        if not len(keys):
            return
        if self._connection is None:
            self._connection = duckdb.connect(":memory:", config={"threads": 1})
        keys, deleted = pa.chunked_array(keys), pa.chunked_array(deleted)
        self._keys += keys.chunks
        self._hashes.append(key_hashes(keys, self._connection))
        self._deleted += keys.filter(deleted).chunks

    def result(self) -> pa.Array:
        """The keys that occur more than once, and those a row deletes, each once (unordered)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        found = list(self._deleted)
        if self._hashes:
            hashes = np.concatenate(self._hashes)
            ordered = np.sort(hashes)
            twice = ordered[1:][ordered[1:] == ordered[:-1]]
            if len(twice):
                mask = np.uint64((1 << _FLAG_BITS) - 1)
                flags = np.zeros(1 << _FLAG_BITS, dtype=bool)
                flags[twice & mask] = True
                maybe = flags[hashes & mask]
                keys = pa.chunked_array(self._keys, pa.string())
                counts = pc.value_counts(keys.filter(pa.array(maybe)))
                found.append(counts.field("values").filter(pc.greater(counts.field("counts"), 1)))
        out = pa.chunked_array(found, pa.string())
        return pc.unique(out) if len(out) else pa.array([], pa.string())
