"""File formats of agency data feeds: write an extract in an agency's own format and read it back.

Every agency that feeds the Digital Family Card exports in its own way: semicolon CSV in ``cp1251`` from
one registry, pipe-delimited UTF-8 from another, JSON lines from a web service, Parquet from a modern
warehouse, fixed-width ``cp866`` text with ``\\r\\n`` line endings from a DOS-era mainframe. A
:class:`FileFormat` describes one such format; :func:`open_writer` streams a feed to disk in it (the
synthetic-data generator) and :func:`read_table` / :func:`iter_batches` load it back (the ingestion
pipeline).

Conventions shared by the text formats (CSV and fixed width):

* Everything is read as strings, with no type inference, so raw agency text survives exactly (an IIN
  such as ``"061211600012"`` keeps its leading zero). Non-string Arrow columns are written with
  Arrow's string cast (ISO dates, ``true``/``false``, decimal numbers).
* An empty field reads as null. The text formats cannot tell an empty string from a missing value, so
  the writer writes both as an empty field and the reader returns null for both. Fixed width also
  strips trailing spaces, so trailing spaces of a value do not survive it.
* Text is encoded in ``FileFormat.encoding``. Characters the encoding cannot hold (Kazakh letters in
  ``cp1251`` or ``cp866``) raise :class:`FormatError` naming the row and column, unless the format says
  ``unencodable="replace"``: then Kazakh letters become their Russian look-alikes (``ә→а``, ``ғ→г``,
  ``қ→к``, ``ң→н``, ``ө→о``, ``ұ→у``, ``ү→у``, ``һ→х``, ``і→i`` where ``і`` itself is not in the code
  page), other letters lose their accents where that helps, and anything else becomes ``?``. Each
  character is replaced by exactly one character, so fixed-width columns stay aligned.
* A UTF-8 byte-order mark at the start of a file is skipped by the readers.
* Only ASCII-compatible encodings are supported (not UTF-16/32): the structure characters (delimiter,
  quote, line end) must be single ASCII bytes. (``kz1048``, the Kazakh Windows code page, holds every
  Kazakh letter in one byte.)

Writers are streaming: each :meth:`FeedWriter.write` encodes its batch and appends it, so memory does not
grow with the feed. They write to ``<name>.part`` beside the target and rename it into place on
:meth:`FeedWriter.close`, so a reader never sees a half-written feed; a writer that fails (or leaves a
``with`` block by an exception) removes its partial file. Output is deterministic: the same rows give
byte-identical files however they are split into ``write`` calls. :attr:`FeedWriter.sha256` is the
digest of the finished file, computed while writing.

A file can also be assembled from parts encoded elsewhere (another process): :func:`encode_fragment`
encodes rows as they would appear in the file after its header (text kinds; the encoding must be
stateless, as UTF-8 and single-byte code pages are) or as an Arrow IPC stream (Parquet), and
:meth:`FeedWriter.splice` appends such a fragment to the file. Splicing the fragments of consecutive row
ranges gives the same bytes as writing the rows directly.

Readers detect malformed input and raise :class:`FormatError`, which names the file and, where it can
be told, the (1-based, physical) line and the field. Line numbers are found by a slower Python re-scan
that runs only once the fast Arrow reader has failed.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

__all__ = [
    "PARQUET_ROW_GROUP_ROWS",
    "FeedWriter",
    "FileFormat",
    "FormatError",
    "encode_fragment",
    "iter_batches",
    "open_writer",
    "read_table",
]

Kind = Literal["csv", "jsonl", "parquet", "fixed"]

#: Rows per Parquet row group; fixed so that output does not depend on how rows arrive.
PARQUET_ROW_GROUP_ROWS = 131_072
#: Rows encoded at a time by the text writers (bounds the memory of one ``write`` call).
_WRITE_CHUNK_ROWS = 65_536
#: Bytes read at a time by the line-oriented readers (fixed width, JSONL) and the CSV block size.
_READ_BLOCK_BYTES = 16 << 20
#: Longest CSV header (or first record of a headerless file) the reader accepts.
_MAX_HEADER_BYTES = 1 << 20

_UTF8_BOM = b"\xef\xbb\xbf"
_ASCII_PROBE = "\r\n\"';,|\t azAZ09_-."
_ERROR_HANDLER = "familycard-lookalike"
_EXTENSIONS: dict[str, str] = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet", "fixed": "txt"}

# Russian (or Latin) look-alikes for letters of the Kazakh alphabet that cp1251/cp866 lack.
_LOOKALIKES: dict[str, tuple[str, ...]] = {
    "ә": ("а",),
    "Ә": ("А",),
    "ғ": ("г",),
    "Ғ": ("Г",),
    "қ": ("к",),
    "Қ": ("К",),
    "ң": ("н",),
    "Ң": ("Н",),
    "ө": ("о",),
    "Ө": ("О",),
    "ұ": ("у",),
    "Ұ": ("У",),
    "ү": ("у",),
    "Ү": ("У",),
    "һ": ("х", "h"),
    "Һ": ("Х", "H"),
    "і": ("i",),
    "І": ("I",),
}


# --------------------------------------------------------------------------------------------- errors


class FormatError(Exception):
    """A feed file does not follow its format, or a value cannot be written in it.

    Attributes:
        path: the file.
        line: 1-based physical line of the file where the problem is, or None.
        field: the column concerned, or None.
        reason: what is wrong, in words.
        row: 1-based data row (writer errors: the row of the written table stream), or None.
    """

    def __init__(
        self,
        path: Path | str,
        reason: str,
        *,
        line: int | None = None,
        field: str | None = None,
        row: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.reason = reason
        self.line = line
        self.field = field
        self.row = row
        where = [str(self.path)]
        if line is not None:
            where.append(f"line {line}")
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(", ".join(where) + ": " + reason)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_format_error, (self.path, self.reason, self.line, self.field, self.row))


def _rebuild_format_error(
    path: Path, reason: str, line: int | None, field: str | None, row: int | None
) -> FormatError:
    return FormatError(path, reason, line=line, field=field, row=row)


# --------------------------------------------------------------------------------------------- format


@dataclass(frozen=True, slots=True)
class FileFormat:
    """How one agency writes its extract.

    Attributes:
        kind: ``"csv"``, ``"jsonl"``, ``"parquet"`` or ``"fixed"`` (fixed-width text).
        encoding: text encoding of csv/jsonl/fixed files (any ASCII-compatible Python codec, e.g.
            ``"utf-8"``, ``"cp1251"``, ``"cp866"``); ignored for Parquet.
        delimiter: CSV field delimiter (one character, not a quote or line break).
        header: whether a CSV file starts with a row of column names. Without one the reader names
            columns from ``expected_columns`` or ``f0, f1, …``.
        widths: fixed width only: ``(column name, width in characters)`` in line order.
        line_ending: ``"\\n"`` or ``"\\r\\n"`` (legacy Windows/DOS exports). CSV readers accept both.
        unencodable: what the writer does with a character the encoding cannot hold: ``"error"``
            raises :class:`FormatError`, ``"replace"`` substitutes a look-alike or ``?``.
    """

    kind: Kind
    encoding: str = "utf-8"
    delimiter: str = ","
    header: bool = True
    widths: tuple[tuple[str, int], ...] = ()
    line_ending: str = "\n"
    unencodable: Literal["error", "replace"] = "error"

    def __post_init__(self) -> None:
        if self.kind not in _EXTENSIONS:
            raise ValueError(f"unknown file kind {self.kind!r}; expected one of {sorted(_EXTENSIONS)}")
        try:
            codec = codecs.lookup(self.encoding)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {self.encoding!r}") from exc
        try:
            probe = _ASCII_PROBE.encode(codec.name)
        except UnicodeError:
            probe = b""
        if not probe.endswith(_ASCII_PROBE.encode("ascii")):
            raise ValueError(f"encoding {self.encoding!r} is not ASCII-compatible; not supported")
        if len(self.delimiter) != 1 or self.delimiter in '"\r\n' or not self.delimiter.isascii():
            raise ValueError(
                f"delimiter must be one ASCII character other than a quote or line break, "
                f"got {self.delimiter!r}"
            )
        if self.line_ending not in ("\n", "\r\n"):
            raise ValueError(f"line_ending must be '\\n' or '\\r\\n', got {self.line_ending!r}")
        if self.unencodable not in ("error", "replace"):
            raise ValueError(f"unencodable must be 'error' or 'replace', got {self.unencodable!r}")
        if self.kind == "fixed":
            if not self.widths:
                raise ValueError("a fixed-width format needs widths")
            names = [name for name, _ in self.widths]
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate column names in widths: {names}")
            for name, width in self.widths:
                if not isinstance(width, int) or isinstance(width, bool) or width <= 0:
                    raise ValueError(f"width of column {name!r} must be a positive int, got {width!r}")

    @property
    def extension(self) -> str:
        """Usual file-name extension, without the dot: ``csv``, ``jsonl``, ``parquet`` or ``txt``."""
        return _EXTENSIONS[self.kind]

    @property
    def _codec(self) -> str:
        """Canonical Python codec name of ``encoding``."""
        return codecs.lookup(self.encoding).name


def _body_codec(fmt: FileFormat) -> str:
    """Codec for decoding text after any byte-order mark has been skipped."""
    name = fmt._codec
    return "utf-8" if name == "utf-8-sig" else name


def _is_utf8(fmt: FileFormat) -> bool:
    return fmt._codec in ("utf-8", "utf-8-sig")


# ------------------------------------------------------------------------------------ encoding helpers


@lru_cache(maxsize=4096)
def _encodable(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _replacement(ch: str, codec: str) -> str:
    """One character standing in for ``ch`` in ``codec``: a look-alike, the unaccented letter or '?'."""
    for candidate in _LOOKALIKES.get(ch, ()):
        if _encodable(candidate, codec):
            return candidate
    base = unicodedata.normalize("NFKD", ch)[:1]
    if base and base != ch and not unicodedata.combining(base) and _encodable(base, codec):
        return base
    return "?"


@cache
def _lookalike_handler_name(codec: str) -> str:
    """Name of a registered codec error handler that substitutes look-alikes for ``codec``.

    One handler per target codec, because the fast single-byte encoder reports its errors as coming
    from the anonymous ``charmap`` codec.
    """

    def handler(exc: UnicodeError) -> tuple[str, int]:
        if not isinstance(exc, UnicodeEncodeError):
            raise exc
        text = exc.object[exc.start : exc.end]
        return "".join(_replacement(ch, codec) for ch in text), exc.end

    name = f"{_ERROR_HANDLER}-{codec}"
    codecs.register_error(name, handler)
    return name


@cache
def _single_byte_table(codec: str) -> str | None:
    """The 256-character decoding table of a single-byte codec (U+FFFE for undefined bytes), or None.

    Some stdlib single-byte codecs (cp866 among them) encode through a dict, ten times slower than
    ``codecs.charmap_encode`` with a table built by ``codecs.charmap_build``.
    """
    try:
        pair = b"\xd0\xc8".decode(codec)  # invalid UTF-8, two letters in a single-byte code page
    except UnicodeDecodeError:
        pair = ""
    if len(pair) != 2 or len(bytes(range(256)).decode(codec, errors="replace")) != 256:
        return None
    chars = []
    for b in range(256):
        try:
            ch = bytes([b]).decode(codec)
        except UnicodeDecodeError:
            ch = "\ufffe"
        if len(ch) != 1:
            return None
        chars.append(ch)
    if chars.count("\ufffe") > 32:
        return None
    return "".join(chars)


class _TextEncoder:
    """Encodes text to one codec, fast for single-byte code pages; ``errors`` as for ``str.encode``."""

    def __init__(self, codec: str, replace: bool) -> None:
        self.errors = _lookalike_handler_name(codec) if replace else "strict"
        table = _single_byte_table(codec)
        self._map = codecs.charmap_build(table) if table is not None else None
        self._incremental = codecs.getincrementalencoder(codec)(self.errors)

    def encode(self, text: str, final: bool = False) -> bytes:
        if self._map is not None:
            return codecs.charmap_encode(text, self.errors, self._map)[0]
        return self._incremental.encode(text, final)


@lru_cache(maxsize=1024)
def _str_scalar(text: str) -> pa.Scalar:
    """A typed string scalar (an untyped Python value makes Arrow try to import dateutil every call)."""
    return pa.scalar(text, pa.string())


@lru_cache(maxsize=64)
def _typed(value: bool | int, typ: pa.DataType) -> pa.Scalar:
    """A typed scalar for compute functions (see :func:`_str_scalar`)."""
    return pa.scalar(value, typ)


def _join(*parts: pa.Array | str) -> pa.Array:
    """``pc.binary_join_element_wise`` with Python strings as typed scalars; the last part separates."""
    return pc.binary_join_element_wise(*(_str_scalar(p) if isinstance(p, str) else p for p in parts))


def _describe_char(ch: str) -> str:
    return f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')})"


def _string_bytes(arr: pa.Array) -> memoryview:
    """The concatenated UTF-8 bytes of all values of a string array (nulls contribute nothing)."""
    if len(arr) == 0:
        return memoryview(b"")
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=len(arr) + 1, offset=arr.offset * 4)
    start, end = int(offsets[0]), int(offsets[-1])
    if end == start or buffers[2] is None:
        return memoryview(b"")
    return memoryview(buffers[2])[start:end]


def _first_unencodable(columns: dict[str, pa.Array], codec: str) -> tuple[int, str, str] | None:
    """``(row index, column, character)`` of the first value that ``codec`` cannot encode, or None."""
    best: tuple[int, str, str] | None = None
    for name, arr in columns.items():
        values = pc.fill_null(arr, "")
        text = str(_string_bytes(values), "utf-8")
        try:
            text.encode(codec)
        except UnicodeEncodeError as exc:
            ends = np.cumsum(pc.utf8_length(values).to_numpy(zero_copy_only=False))
            row = int(np.searchsorted(ends, exc.start, side="right"))
            if best is None or row < best[0]:
                best = (row, name, text[exc.start])
    return best


def _as_string(arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One contiguous ``string`` array with the values of ``arr`` (Arrow's cast for other types)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not pa.types.is_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return arr


# ---------------------------------------------------------------------------------------------- writer


class FeedWriter:
    """Streaming writer of one feed file; create it with :func:`open_writer`.

    Append batches with :meth:`write` (every batch has the writer's schema; a table whose columns
    match by name but differ in type is cast), then :meth:`close`. The file appears at ``path`` only
    on close. Use it as a context manager: leaving the ``with`` block normally closes it, leaving by
    an exception removes the partial file.
    """

    def __init__(self, path: Path, fmt: FileFormat, schema: pa.Schema, *, fragment: bool = False) -> None:
        # fragment=True: an in-memory part of a file (see encode_fragment); path only names it in errors
        self.path = Path(path)
        self.fmt = fmt
        self.schema = schema
        self.fragment = fragment
        self._data: bytes | pa.Buffer = b""
        self._rows = 0
        self._closed = False
        self._digest = ""
        names = list(schema.names)
        if not names:
            raise ValueError("a feed needs at least one column")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate column names in schema: {names}")
        if fmt.kind == "fixed" and names != [name for name, _ in fmt.widths]:
            raise ValueError(
                f"schema columns {names} differ from the fixed-width columns "
                f"{[name for name, _ in fmt.widths]}"
            )
        self._codec = fmt._codec
        self._raw_utf8 = self._codec == "utf-8"  # Arrow strings are UTF-8 already: no re-encoding
        self._encoder = _TextEncoder(self._codec, fmt.unencodable == "replace")
        if fragment and fmt.kind != "parquet" and not _stateless(self._codec):
            raise ValueError(f"fragments need a stateless encoding; {self._codec} is not one")
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._parquet: pq.ParquetWriter | None = None
        self._ipc: pa.ipc.RecordBatchStreamWriter | None = None
        self._eol = fmt.line_ending

        self._tmp = self.path.with_name(self.path.name + ".part")
        self._fh: _HashingFile | pa.BufferOutputStream
        if fragment:
            # Arrow IPC writes many small buffers: an Arrow buffer takes them without Python in between
            self._fh = pa.BufferOutputStream() if fmt.kind == "parquet" else _HashingFile(io.BytesIO(), False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = _HashingFile(open(self._tmp, "wb"))  # noqa: SIM115 - closed in close()/abort()
        try:
            self._start()
        except BaseException:
            self.abort()
            raise

    # -- public API

    @property
    def rows(self) -> int:
        """Rows written so far."""
        return self._rows

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the finished file (empty until :meth:`close`)."""
        return self._digest

    def write(self, table: pa.Table | pa.RecordBatch) -> None:
        """Append a batch of rows; raises :class:`FormatError` for a value the format cannot hold.

        After a :class:`FormatError` the writer is aborted (its partial file removed).
        """
        if self._closed:
            raise ValueError(f"writer for {self.path} is closed")
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        table = self._conform(table)
        try:
            if self._ipc is not None:
                self._ipc.write_table(table)
                self._rows += table.num_rows
            elif self.fmt.kind == "parquet":
                self._write_parquet(table)
            else:
                for start in range(0, table.num_rows, _WRITE_CHUNK_ROWS):
                    self._write_text(table.slice(start, _WRITE_CHUNK_ROWS))
        except BaseException:
            self.abort()
            raise

    def splice(self, fragment: bytes | memoryview | pa.Buffer, rows: int) -> None:
        """Append the rows of a fragment: the bytes :func:`encode_fragment` made of ``rows`` rows in this
        writer's format and schema. Nothing refers to ``fragment`` after the call."""
        if self._closed:
            raise ValueError(f"writer for {self.path} is closed")
        if self.fragment:
            raise ValueError("cannot splice into a fragment")
        try:
            if self.fmt.kind == "parquet":
                # a copy: Parquet rows wait for their row group, and the caller may reuse its memory
                table = pa.ipc.open_stream(pa.py_buffer(bytes(fragment))).read_all()
                if table.num_rows != rows:
                    raise ValueError(f"fragment holds {table.num_rows} rows, not {rows}")
                if table.num_rows:
                    self._write_parquet(self._conform(table))
                return
            if not _stateless(self._codec):
                raise ValueError(f"fragments need a stateless encoding; {self._codec} is not one")
            if not self._raw_utf8:
                self._fh.write(self._encoder.encode(""))  # a byte-order mark, if the codec starts with one
            self._fh.write(fragment)
            self._rows += rows
        except BaseException:
            self.abort()
            raise

    def close(self) -> int:
        """Finish the file, move it into place and return the number of rows written. Idempotent."""
        if self._closed:
            return self._rows
        try:
            if self._ipc is not None:
                self._ipc.close()
            elif self.fmt.kind == "parquet":
                self._flush_parquet(final=True)
                assert self._parquet is not None
                self._parquet.close()
            elif not self._raw_utf8:
                self._fh.write(self._encoder.encode("", final=True))
            if self.fragment:
                self._data = self._fh.getvalue()  # an Arrow stream closes with it
                if isinstance(self._fh, _HashingFile):
                    self._fh.close()
            else:
                assert isinstance(self._fh, _HashingFile)
                self._fh.close()
                self._digest = self._fh.hexdigest()
                os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return self._rows

    def abort(self) -> None:
        """Stop writing and remove the partial file; the target path is left untouched."""
        if self._closed:
            return
        self._closed = True
        self._rows = 0
        try:
            for inner in (self._parquet, self._ipc):
                if inner is not None:
                    with contextlib.suppress(Exception):  # the file is removed anyway
                        inner.close()
            self._fh.close()
        finally:
            if not self.fragment:
                self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- internals

    def _start(self) -> None:
        fmt = self.fmt
        if self.fragment:
            # No header: the fragment is spliced into a file that has one. Parquet rows travel as Arrow
            # IPC, since Parquet row groups are cut by the receiving file.
            if fmt.kind == "parquet":
                self._ipc = pa.ipc.new_stream(self._fh, self.schema)  # uncompressed: cheapest both ways
            elif not self._raw_utf8:
                self._encoder.encode("")  # consume a byte-order mark: the receiving file has its own
            return
        if fmt.kind == "parquet":
            self._parquet = pq.ParquetWriter(
                self._fh,
                self.schema,
                compression="zstd",
                use_dictionary=True,
                write_statistics=True,
            )
        elif fmt.kind == "csv" and fmt.header:
            names = self.schema.names
            if "" in names:
                raise ValueError("a CSV header cannot have an empty column name")
            for name in names:
                if ch := _first_bad_char(name, self._codec, fmt.unencodable):
                    raise FormatError(
                        self.path,
                        f"column name contains {_describe_char(ch)}, which {self._codec} cannot encode",
                        field=name,
                    )
            header = fmt.delimiter.join(_csv_quote_scalar(name, fmt.delimiter) for name in names)
            self._fh.write(self._encoder.encode(header + self._eol))
        elif fmt.kind == "jsonl":
            for name in self.schema.names:
                if ch := _first_bad_char(name, self._codec, fmt.unencodable):
                    raise FormatError(
                        self.path,
                        f"column name contains {_describe_char(ch)}, which {self._codec} cannot encode",
                        field=name,
                    )

    def _conform(self, table: pa.Table) -> pa.Table:
        if table.schema.equals(self.schema, check_metadata=False):
            return table
        if sorted(table.schema.names) != sorted(self.schema.names):
            raise ValueError(
                f"batch columns {table.schema.names} differ from the writer's {self.schema.names}"
            )
        return table.select(self.schema.names).cast(self.schema)

    def _write_text(self, chunk: pa.Table) -> None:
        if chunk.num_rows == 0:
            return
        kind = self.fmt.kind
        if kind == "csv":
            columns = {name: _as_string(chunk.column(name)) for name in chunk.schema.names}
            lines = _csv_lines(list(columns.values()), self.fmt.delimiter, self._eol)
        elif kind == "fixed":
            columns = {name: _as_string(chunk.column(name)) for name in chunk.schema.names}
            lines = self._fixed_lines(columns)
        else:
            columns = {
                name: _as_string(chunk.column(name))
                for name, typ in zip(chunk.schema.names, chunk.schema.types, strict=True)
                if pa.types.is_string(typ) or pa.types.is_large_string(typ)
            }
            lines = _jsonl_lines(chunk, self._eol)
        data = _string_bytes(lines)
        if self._raw_utf8:
            self._fh.write(data)
        else:
            try:
                encoded = self._encoder.encode(str(data, "utf-8"))
            except UnicodeEncodeError as exc:
                raise self._unencodable_error(columns, exc) from None
            self._fh.write(encoded)
        self._rows += chunk.num_rows

    def _unencodable_error(self, columns: dict[str, pa.Array], exc: UnicodeEncodeError) -> FormatError:
        found = _first_unencodable(columns, self._codec)
        if found is None:  # not in a string column: report what the codec said
            return FormatError(self.path, f"cannot encode text in {self._codec}: {exc}")
        row, name, ch = found
        return FormatError(
            self.path,
            f"{_describe_char(ch)} cannot be encoded in {self._codec} "
            "(use FileFormat(unencodable='replace') to substitute look-alike letters)",
            row=self._rows + row + 1,
            field=name,
        )

    def _fixed_lines(self, columns: dict[str, pa.Array]) -> pa.Array:
        parts: list[pa.Array] = []
        for name, width in self.fmt.widths:
            arr = columns[name]
            lengths = pc.fill_null(pc.utf8_length(arr), _typed(0, pa.int32())).to_numpy(zero_copy_only=False)
            too_long = np.flatnonzero(lengths > width)
            if too_long.size:
                i = int(too_long[0])
                raise FormatError(
                    self.path,
                    f"value of {int(lengths[i])} characters does not fit the width {width}",
                    row=self._rows + i + 1,
                    field=name,
                )
            raw = bytes(_string_bytes(arr))
            if raw.find(b"\n") >= 0 or raw.find(b"\r") >= 0:
                breaks = pc.fill_null(pc.match_substring_regex(arr, r"[\r\n]"), _typed(False, pa.bool_()))
                hits = np.flatnonzero(breaks.to_numpy(zero_copy_only=False))
                if hits.size:
                    raise FormatError(
                        self.path,
                        "value contains a line break, which fixed-width text cannot hold",
                        row=self._rows + int(hits[0]) + 1,
                        field=name,
                    )
            parts.append(pc.utf8_rpad(pc.fill_null(arr, _str_scalar("")), width, " "))
        parts[-1] = _join(parts[-1], "", self._eol)
        return _join(*parts, "")

    def _write_parquet(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self._rows += table.num_rows
        self._flush_parquet(final=False)

    def _flush_parquet(self, *, final: bool) -> None:
        if self._pending_rows < PARQUET_ROW_GROUP_ROWS and not (final and self._pending_rows):
            return
        assert self._parquet is not None
        # Row groups of exactly PARQUET_ROW_GROUP_ROWS contiguous rows, whatever the write() sizes.
        table = pa.concat_tables(self._pending).combine_chunks()
        start = 0
        while table.num_rows - start >= PARQUET_ROW_GROUP_ROWS or (final and start < table.num_rows):
            group = table.slice(start, PARQUET_ROW_GROUP_ROWS)
            self._parquet.write_table(group, row_group_size=PARQUET_ROW_GROUP_ROWS)
            start += group.num_rows
        rest = table.slice(start)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows


def open_writer(path: Path, fmt: FileFormat, schema: pa.Schema) -> FeedWriter:
    """Start writing a feed of ``schema`` to ``path`` in ``fmt`` (parent directories are created)."""
    return FeedWriter(Path(path), fmt, schema)


def encode_fragment(
    fmt: FileFormat, schema: pa.Schema, table: pa.Table, name: str = "<fragment>"
) -> tuple[bytes | pa.Buffer, int]:
    """``table`` encoded as a part of a file of ``fmt`` and ``schema``, and its number of rows, for
    :meth:`FeedWriter.splice`: the text lines as they follow the header (text kinds; the encoding must
    be stateless: UTF-8 or a single-byte code page), or an Arrow IPC stream (Parquet, whose row groups
    are cut by the receiving file). A Parquet fragment keeps the table's own column types, which the
    splice casts to the schema: a cheaper form (integers or dictionary-encoded values for text) makes
    a smaller fragment. Raises :class:`FormatError` (naming ``name``) as :meth:`FeedWriter.write` does."""
    if fmt.kind == "parquet":
        if sorted(table.schema.names) != sorted(schema.names):
            raise ValueError(f"batch columns {table.schema.names} differ from the writer's {schema.names}")
        table = table.select(schema.names)
        table.slice(0, 1).cast(schema)  # fail here, not when spliced, if a column cannot be cast
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as ipc:
            ipc.write_table(table)
        return sink.getvalue(), table.num_rows
    writer = FeedWriter(Path(name), fmt, schema, fragment=True)
    writer.write(table)
    rows = writer.close()
    return writer._data, rows


def _stateless(codec: str) -> bool:
    """Whether text encoded in parts and concatenated equals the text encoded at once."""
    return codec in ("utf-8", "utf-8-sig") or _single_byte_table(codec) is not None


class _HashingFile(io.RawIOBase):
    """A binary file that keeps the SHA-256 of everything written to it (no seeking), so a finished
    file's digest needs no second reading of it."""

    def __init__(self, raw: io.BufferedWriter | io.BytesIO, digest: bool = True) -> None:
        super().__init__()
        self._raw = raw
        self._hash = hashlib.sha256() if digest else None
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if self._hash is not None:
            self._hash.update(view)
        self._raw.write(view)
        self._pos += len(view)
        return len(view)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()  # flushes
        finally:
            self._raw.close()

    def hexdigest(self) -> str:
        return self._hash.hexdigest() if self._hash is not None else ""

    def getvalue(self) -> bytes:
        assert isinstance(self._raw, io.BytesIO)
        return self._raw.getvalue()


def _first_bad_char(text: str, codec: str, mode: str) -> str | None:
    if mode == "replace":
        return None
    for ch in text:
        if not _encodable(ch, codec):
            return ch
    return None


# ------------------------------------------------------------------------------------ CSV line building


def _csv_quote_scalar(value: str, delimiter: str) -> str:
    if any(ch in value for ch in (delimiter, '"', "\r", "\n")):
        return '"' + value.replace('"', '""') + '"'
    return value


def _re2_literal(ch: str) -> str:
    """``ch`` as a literal inside an RE2 character class."""
    return ch if ch.isalnum() or ch in "\r\n\t " else "\\" + ch


def _csv_lines(columns: list[pa.Array], delimiter: str, eol: str) -> pa.Array:
    """Each row as one CSV line (with ``eol``), quoting only the fields that need it (RFC 4180)."""
    specials = [delimiter, '"', "\r", "\n"]
    parts: list[pa.Array] = []
    for arr in columns:
        # Cheap scan of the column's bytes first: most columns need no quoting at all.
        raw = bytes(_string_bytes(arr))
        present = [ch for ch in specials if raw.find(ch.encode("ascii")) >= 0]
        if present:
            if len(present) == 1:
                needs = pc.match_substring(arr, present[0])
            else:
                needs = pc.match_substring_regex(arr, "[" + "".join(map(_re2_literal, present)) + "]")
            needs = pc.fill_null(needs, _typed(False, pa.bool_()))
            inner = pc.replace_substring(arr, '"', '""') if '"' in present else arr
            quoted = _join('"', inner, '"', "")
            arr = pc.if_else(needs, quoted, arr)
        parts.append(pc.fill_null(arr, _str_scalar("")))
    # The line ending rides on the last field: joining one column is cheaper than joining whole lines.
    parts[-1] = _join(parts[-1], "", eol)
    return _join(*parts, delimiter)


# ---------------------------------------------------------------------------------- JSONL line building


_JSON_ESCAPE_PATTERN = r'[\x00-\x1f"\\]'
_JSON_ESCAPE_BYTES = re.compile(rb'[\x00-\x1f"\\]')


def _json_values(arr: pa.Array) -> pa.Array:
    """JSON text of each value of ``arr`` (a string array; nulls stay null)."""
    typ = arr.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_dictionary(typ):
        arr = _as_string(arr)
        out = _join('"', arr, '"', "")
        # A byte scan first: most columns need no escaping (UTF-8 continuation bytes are never < 0x80).
        if _JSON_ESCAPE_BYTES.search(_string_bytes(arr)) is None:
            return out
        needs = pc.fill_null(pc.match_substring_regex(arr, _JSON_ESCAPE_PATTERN), _typed(False, pa.bool_()))
        if pc.any(needs).as_py():
            special = arr.filter(needs).to_pylist()
            escaped = pa.array([json.dumps(v, ensure_ascii=False) for v in special], pa.string())
            out = pc.replace_with_mask(out, needs, escaped)
        return out
    if pa.types.is_integer(typ) or pa.types.is_decimal(typ):
        return pc.cast(arr, pa.string())
    if pa.types.is_floating(typ):
        # Non-finite numbers have no JSON form: they are written as null.
        finite = pc.if_else(pc.is_finite(arr), arr, pa.scalar(None, typ))
        text = pc.cast(finite, pa.string())
        has_point = pc.match_substring_regex(text, "[.eE]")
        return pc.if_else(has_point, text, _join(text, ".0", ""))
    if pa.types.is_boolean(typ):
        return pc.cast(arr, pa.string())
    if pa.types.is_null(typ):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_temporal(typ) and not pa.types.is_duration(typ):
        return _join('"', pc.cast(arr, pa.string()), '"', "")
    # Anything else (lists, structs, binary, durations): per value through the json module.
    return pa.array(
        [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in arr.to_pylist()],
        pa.string(),
    )


def _jsonl_lines(table: pa.Table, eol: str) -> pa.Array:
    """Each row as one JSON object line; keys in schema order, nulls as ``null``."""
    pieces: list[pa.Array | str] = []

    def literal(text: str) -> None:  # adjacent literals are merged: fewer pieces to join
        if pieces and isinstance(pieces[-1], str):
            pieces[-1] += text
        else:
            pieces.append(text)

    for i, name in enumerate(table.schema.names):
        col = table.column(name)
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        literal(("{" if i == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":")
        typ = arr.type
        if (
            (pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_dictionary(typ))
            and arr.null_count == 0
            and _JSON_ESCAPE_BYTES.search(_string_bytes(arr := _as_string(arr))) is None
        ):
            # plain text without nulls: its quotes join the neighbouring literals
            literal('"')
            pieces.append(arr)
            literal('"')
        else:
            pieces.append(pc.fill_null(_json_values(arr), _str_scalar("null")))
    literal("}" + eol)
    return _join(*pieces, "")


# ---------------------------------------------------------------------------------------------- reader


def read_table(
    path: Path,
    fmt: FileFormat,
    *,
    columns: Sequence[str] | None = None,
    expected_columns: Sequence[str] | None = None,
) -> pa.Table:
    """Read a whole feed file.

    Args:
        path: the file.
        fmt: its format.
        columns: read only these columns, in this order (missing ones raise :class:`FormatError`).
        expected_columns: columns the file must have (missing ones raise :class:`FormatError`, which
            usually means a wrong delimiter); for headerless CSV, the column names.

    CSV and fixed-width columns are strings (empty → null); JSONL columns take JSON's types (strings,
    int64/double, bool, nested); Parquet columns keep their stored types.
    """
    path = Path(path)
    _check_exists(path)
    if fmt.kind == "parquet":
        return _parquet_read(path, columns, expected_columns)
    tables = list(_tables(path, fmt, columns, expected_columns))
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise FormatError(path, f"a column changes type within the file: {exc}") from None


def iter_batches(
    path: Path,
    fmt: FileFormat,
    batch_rows: int = 250_000,
    *,
    columns: Sequence[str] | None = None,
    expected_columns: Sequence[str] | None = None,
) -> Iterator[pa.Table]:
    """Read a feed file as tables of ``batch_rows`` rows (the last may be shorter), in bounded memory.

    An empty feed yields no tables. Arguments as for :func:`read_table`; errors are raised when the
    offending part of the file is reached (missing columns before the first batch).
    """
    if batch_rows <= 0:
        raise ValueError(f"batch_rows must be positive, got {batch_rows}")
    path = Path(path)
    _check_exists(path)
    if fmt.kind == "parquet":
        source: Iterator[pa.Table] = _parquet_batches(path, columns, expected_columns, batch_rows)
    else:
        source = _tables(path, fmt, columns, expected_columns)
    return _rebatch(source, batch_rows)


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"no feed file at {path}")


def _rebatch(tables: Iterable[pa.Table], batch_rows: int) -> Iterator[pa.Table]:
    pending: list[pa.Table] = []
    pending_rows = 0
    for table in tables:
        if table.num_rows == 0:
            continue
        pending.append(table)
        pending_rows += table.num_rows
        while pending_rows >= batch_rows:
            merged = (
                pa.concat_tables(pending, promote_options="permissive") if len(pending) > 1 else pending[0]
            )
            yield merged.slice(0, batch_rows)
            rest = merged.slice(batch_rows)
            pending = [rest] if rest.num_rows else []
            pending_rows = rest.num_rows
    if pending_rows:
        yield pa.concat_tables(pending, promote_options="permissive") if len(pending) > 1 else pending[0]


def _tables(
    path: Path, fmt: FileFormat, columns: Sequence[str] | None, expected: Sequence[str] | None
) -> Iterator[pa.Table]:
    """Tables of the file in order; at least one (maybe empty) so that the schema is known."""
    if fmt.kind == "csv":
        yield from _csv_tables(path, fmt, columns, expected)
    elif fmt.kind == "fixed":
        yield from _fixed_tables(path, fmt, columns, expected)
    elif fmt.kind == "jsonl":
        yield from _jsonl_tables(path, fmt, columns, expected)
    else:  # pragma: no cover - parquet is dispatched before
        raise ValueError(fmt.kind)


def _check_columns(
    path: Path,
    available: Sequence[str],
    columns: Sequence[str] | None,
    expected: Sequence[str] | None,
    *,
    line: int | None = None,
    delimiter: str | None = None,
) -> None:
    have = set(available)
    for wanted, what in ((expected, "expected"), (columns, "requested")):
        if wanted is None:
            continue
        missing = [c for c in wanted if c not in have]
        if not missing:
            continue
        shown = ", ".join(repr(c) for c in list(available)[:12]) + (", …" if len(available) > 12 else "")
        reason = f"missing {what} column(s) {missing}; the file has {len(available)} column(s): {shown}"
        if delimiter is not None and len(available) == 1:
            others = [d for d in (";", ",", "|", "\t") if d != delimiter and d in available[0]]
            if others:
                reason += f" (the header contains {others[0]!r}: wrong delimiter? format says {delimiter!r})"
        raise FormatError(path, reason, line=line)


def _select(table: pa.Table, columns: Sequence[str] | None) -> pa.Table:
    return table if columns is None else table.select(list(columns))


def _empty_strings(names: Sequence[str]) -> pa.Table:
    return pa.schema([(name, pa.string()) for name in names]).empty_table()


# ------------------------------------------------------------------------------------------- CSV reader


_HEADER_END = re.compile(rb'(?:"[^"]*"|[^"\n])*\n')


def _csv_first_record(path: Path, fmt: FileFormat, fh: io.BufferedReader) -> tuple[list[str], int, int]:
    """Fields of the first record, the byte offset where it ends and where the file's text starts."""
    head = fh.read(_MAX_HEADER_BYTES + 1)
    start = len(_UTF8_BOM) if _is_utf8(fmt) and head.startswith(_UTF8_BOM) else 0
    match = _HEADER_END.match(head, start)
    if match is not None:
        end = match.end()
    elif len(head) <= _MAX_HEADER_BYTES:
        end = len(head)  # the whole file is one record without a final line break
    else:
        raise FormatError(
            path,
            f"first record is longer than {_MAX_HEADER_BYTES} bytes (unbalanced quote or not a CSV file?)",
            line=1,
        )
    try:
        text = head[start:end].decode(_body_codec(fmt))
    except UnicodeDecodeError as exc:
        raise FormatError(
            path,
            f"bytes {head[start + exc.start : start + exc.end]!r} are not valid "
            f"{fmt.encoding} (wrong encoding?)",
            line=1 + head.count(b"\n", start, start + exc.start),
        ) from None
    if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    try:
        reader = csv.reader(
            io.StringIO(text, newline=""),
            delimiter=fmt.delimiter,
            quotechar='"',
            doublequote=True,
            strict=False,
        )
        fields = next(reader, [])
    except csv.Error as exc:
        raise FormatError(path, f"cannot parse the first record: {exc}", line=1) from None
    return fields, end, start


def _csv_tables(
    path: Path, fmt: FileFormat, columns: Sequence[str] | None, expected: Sequence[str] | None
) -> Iterator[pa.Table]:
    size = path.stat().st_size
    if size == 0:
        if fmt.header:
            raise FormatError(path, "empty file (0 bytes): no header row")
        names = list(expected) if expected is not None else []
        _check_columns(path, names, columns, None)
        yield _select(_empty_strings(names), columns)
        return
    with open(path, "rb") as fh:
        first, header_end, text_start = _csv_first_record(path, fmt, fh)
    if fmt.header:
        if first == [] or first == [""]:
            raise FormatError(path, "the header row is empty", line=1)
        names = first
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise FormatError(path, "duplicate column name in the header", line=1, field=name)
            seen.add(name)
        _check_columns(path, names, columns, expected, line=1, delimiter=fmt.delimiter)
        data_start = header_end
    else:
        names = list(expected) if expected is not None else [f"f{i}" for i in range(len(first))]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate expected column names: {names}")
        _check_columns(path, names, columns, None)
        data_start = text_start
    if data_start >= size:
        yield _select(_empty_strings(names), columns)
        return
    _csv_check_quotes(path, fmt)

    read_options = pacsv.ReadOptions(
        use_threads=True,
        block_size=_READ_BLOCK_BYTES,
        column_names=names,
        encoding="utf8" if _is_utf8(fmt) else fmt.encoding,
    )
    parse_options = pacsv.ParseOptions(
        delimiter=fmt.delimiter,
        quote_char='"',
        double_quote=True,
        escape_char=False,
        newlines_in_values=True,
        # In a one-column file an empty line is a null value; otherwise blank lines are skipped.
        ignore_empty_lines=len(names) > 1,
    )
    convert_options = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        include_columns=list(columns) if columns is not None else None,
    )
    out_names = list(columns) if columns is not None else names
    produced = False
    try:
        with pa.input_stream(str(path)) as stream:
            stream.read(data_start)
            reader = pacsv.open_csv(
                stream,
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
            for batch in reader:
                table = pa.Table.from_batches([batch])
                if table.schema.names != out_names or any(t != pa.string() for t in table.schema.types):
                    raise FormatError(path, "columns read do not match the header")
                produced = True
                yield table
    except (pa.ArrowException, UnicodeError, ValueError) as exc:
        raise _csv_diagnose(path, fmt, len(names), exc) from None
    if not produced:
        yield _select(_empty_strings(names), columns)


def _csv_diagnose(path: Path, fmt: FileFormat, n_fields: int, exc: BaseException) -> FormatError:
    """Find the physical line behind an Arrow CSV failure (slow path, run only after a failure)."""
    codec = _body_codec(fmt)

    def lines(fh: io.BufferedReader) -> Iterator[str]:
        for number, raw in enumerate(fh, 1):
            if number == 1 and _is_utf8(fmt) and raw.startswith(_UTF8_BOM):
                raw = raw[len(_UTF8_BOM) :]
            try:
                yield raw.decode(codec)
            except UnicodeDecodeError as err:
                raise _Undecodable(number, raw[err.start : err.end]) from None

    with open(path, "rb") as fh:
        reader = csv.reader(lines(fh), delimiter=fmt.delimiter, quotechar='"', doublequote=True, strict=False)
        previous_end = 0
        try:
            for record_no, record in enumerate(reader, 1):
                line = previous_end + 1
                previous_end = reader.line_num
                if record_no == 1 and fmt.header:
                    continue
                if not record:
                    if n_fields > 1:
                        continue  # a blank line, which the reader skips
                    record = [""]
                if len(record) != n_fields:
                    return FormatError(path, f"expected {n_fields} fields, found {len(record)}", line=line)
        except _Undecodable as undecodable:
            return FormatError(
                path,
                f"bytes {undecodable.data!r} are not valid {fmt.encoding} (wrong encoding?)",
                line=undecodable.line,
            )
        except csv.Error as err:
            return FormatError(path, f"malformed CSV: {err}", line=reader.line_num or None)
    return FormatError(path, f"cannot read CSV: {exc}")


def _csv_check_quotes(path: Path, fmt: FileFormat) -> None:
    """Raise for a quoted field left open at the end of the file.

    Arrow reads such a field to the end of the file, silently swallowing every later row. Quotes come
    in pairs in well-formed CSV, so only a file with an odd number of them is re-scanned (in Python).
    """
    quotes = 0
    with open(path, "rb") as fh:
        while block := fh.read(_READ_BLOCK_BYTES):
            quotes += block.count(b'"')
    if quotes % 2 == 0:
        return
    codec = _body_codec(fmt)
    with open(path, "rb") as fh:
        lines = (raw.decode(codec, errors="replace") for raw in fh)
        reader = csv.reader(lines, delimiter=fmt.delimiter, quotechar='"', doublequote=True, strict=True)
        previous_end = 0
        while True:
            try:
                if next(reader, None) is None:
                    return
            except csv.Error as err:
                if "unexpected end of data" in str(err):
                    raise FormatError(
                        path,
                        "quoted field is never closed (it would run to the end of the file)",
                        line=previous_end + 1,
                    ) from None
                # Another irregularity (a stray quote), which the reader tolerates: go on scanning.
            previous_end = reader.line_num


class _Undecodable(Exception):
    def __init__(self, line: int, data: bytes) -> None:
        super().__init__(line, data)
        self.line = line
        self.data = data


# ----------------------------------------------------------------------------- line-oriented (fixed, jsonl)


def _line_chunks(path: Path, sep: bytes, utf8: bool) -> Iterator[tuple[int, bytes]]:
    """``(number of the first line, bytes)`` pieces of the file, each ending just after ``sep``.

    The last piece may lack the final separator. A leading UTF-8 byte-order mark is dropped when
    ``utf8``.
    """
    line_no = 1
    pending = b""
    first = True
    with open(path, "rb") as fh:
        while True:
            data = fh.read(_READ_BLOCK_BYTES)
            if first:
                first = False
                if utf8 and data.startswith(_UTF8_BOM):
                    data = data[len(_UTF8_BOM) :]
            if not data:
                if pending:
                    yield line_no, pending
                return
            cut = data.rfind(sep)
            if cut < 0:
                pending += data
                continue
            cut += len(sep)
            # One copy of the block: the piece left over from the last block, then this block's lines.
            chunk = b"".join((pending, memoryview(data)[:cut])) if pending else data[:cut]
            pending = data[cut:]
            yield line_no, chunk
            line_no += chunk.count(sep)


def _decode_chunk(path: Path, fmt: FileFormat, chunk: bytes, first_line: int, sep: bytes) -> str:
    try:
        return chunk.decode(_body_codec(fmt))
    except UnicodeDecodeError as exc:
        line = first_line + chunk.count(sep, 0, exc.start)
        raise FormatError(
            path,
            f"bytes {chunk[exc.start : exc.end]!r} are not valid {fmt.encoding} (wrong encoding?)",
            line=line,
        ) from None


def _fixed_tables(
    path: Path, fmt: FileFormat, columns: Sequence[str] | None, expected: Sequence[str] | None
) -> Iterator[pa.Table]:
    names = [name for name, _ in fmt.widths]
    _check_columns(path, names, columns, expected)
    wanted = set(columns) if columns is not None else set(names)
    sep = fmt.line_ending.encode("ascii")
    order = list(columns) if columns is not None else names
    table = _single_byte_table(_body_codec(fmt))
    produced = False
    for first_line, chunk in _line_chunks(path, sep, _is_utf8(fmt)):
        arrays = None if table is None else _fixed_single_byte(chunk, fmt, table, wanted)
        if arrays is None:  # a multi-byte encoding, or a malformed chunk to diagnose
            arrays = _fixed_general(path, fmt, chunk, first_line, wanted)
        produced = True
        yield pa.table({name: arrays[name] for name in order})
    if not produced:
        yield _select(_empty_strings(names), columns)


def _fixed_general(
    path: Path, fmt: FileFormat, chunk: bytes, first_line: int, wanted: set[str]
) -> dict[str, pa.Array]:
    """Columns of a chunk of fixed-width lines: decode, split into lines, slice by characters."""
    eol = fmt.line_ending
    total = sum(width for _, width in fmt.widths)
    text = _decode_chunk(path, fmt, chunk, first_line, eol.encode("ascii"))
    lines = pc.split_pattern(pa.array([text], pa.large_string()), eol).flatten()
    if text.endswith(eol):
        lines = lines.slice(0, len(lines) - 1)
    lines = pc.cast(lines, pa.string())
    lengths = pc.utf8_length(lines).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(lengths != total)
    if bad.size:
        i = int(bad[0])
        reason = f"line has {int(lengths[i])} characters, expected {total}"
        value = lines[i].as_py()
        if eol == "\n" and value.endswith("\r"):
            reason += " (it ends with '\\r': the file has '\\r\\n' line endings?)"
        elif "\n" in value or "\r" in value:
            reason += " (it contains a stray line-break character)"
        raise FormatError(path, reason, line=first_line + i)
    arrays: dict[str, pa.Array] = {}
    start = 0
    for name, width in fmt.widths:
        if name in wanted:
            value = pc.utf8_rtrim(pc.utf8_slice_codeunits(lines, start, start + width), characters=" ")
            arrays[name] = pc.if_else(pc.equal(value, _str_scalar("")), pa.scalar(None, pa.string()), value)
        start += width
    return arrays


@cache
def _utf8_lengths(table: str) -> npt.NDArray[np.uint8]:
    """The UTF-8 length of the character each byte stands for in a single-byte code page."""
    return np.array([len(ch.encode("utf-8", errors="surrogatepass")) for ch in table], dtype=np.uint8)


def _fixed_single_byte(
    chunk: bytes, fmt: FileFormat, table: str, wanted: set[str]
) -> dict[str, pa.Array] | None:
    """Columns of a chunk of fixed-width lines in a single-byte code page, sliced as a byte matrix.

    Returns None when the chunk is not a clean matrix of records (wrong line lengths, stray line
    breaks, undefined bytes); the general path then finds and reports the offending line.
    """
    eol = fmt.line_ending.encode("ascii")
    total = sum(width for _, width in fmt.widths)
    record = total + len(eol)
    n = len(chunk) // record
    if n * record != len(chunk) or chunk.count(b"\n") != n or chunk.count(b"\r") != n * (len(eol) - 1):
        return None
    matrix = np.frombuffer(chunk, dtype=np.uint8).reshape(n, record)
    if not (matrix[:, total:] == np.frombuffer(eol, dtype=np.uint8)).all():
        return None
    if any(chunk.find(bytes([b])) >= 0 for b, ch in enumerate(table) if ch == "\ufffe"):
        return None  # a byte the code page leaves undefined
    arrays: dict[str, pa.Array] = {}
    start = 0
    for name, width in fmt.widths:
        if name in wanted:
            raw = matrix[:, start : start + width].tobytes()
            data = codecs.charmap_decode(raw, "strict", table)[0].encode("utf-8")
            if len(data) == len(raw):  # all ASCII: every cell is `width` bytes
                offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
            else:  # every cell is `width` characters: its length is the sum of theirs in UTF-8
                lengths = _utf8_lengths(table)[matrix[:, start : start + width]].sum(axis=1, dtype=np.int32)
                offsets = np.zeros(n + 1, dtype=np.int32)
                np.cumsum(lengths, out=offsets[1:])
            padded = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
            value = pc.utf8_rtrim(padded, characters=" ")
            arrays[name] = pc.if_else(pc.equal(value, _str_scalar("")), pa.scalar(None, pa.string()), value)
        start += width
    return arrays


def _jsonl_tables(
    path: Path, fmt: FileFormat, columns: Sequence[str] | None, expected: Sequence[str] | None
) -> Iterator[pa.Table]:
    order: list[str] = []
    as_string: set[str] = set()
    checked = False
    for first_line, chunk in _line_chunks(path, b"\n", _is_utf8(fmt)):
        if chunk.isspace():  # (stops at the first byte that is not white space)
            continue
        utf8 = _is_utf8(fmt)
        data = chunk if utf8 else _decode_chunk(path, fmt, chunk, first_line, b"\n").encode("utf-8")
        if not order:
            first_obj, _ = _jsonl_first_object(path, fmt, data, first_line)
            order = list(first_obj)
            as_string = {key for key, value in first_obj.items() if isinstance(value, str)}
        table = _jsonl_parse(path, fmt, data, first_line, as_string)
        for name in table.schema.names:
            if name not in order:
                order.append(name)
        if not checked:
            _check_columns(path, order, columns, expected)
            checked = True
        n = table.num_rows
        selected = list(columns) if columns is not None else order
        yield pa.table(
            {name: (table.column(name) if name in table.schema.names else pa.nulls(n)) for name in selected}
        )
    if not checked:
        names = list(expected or []) + [c for c in (columns or []) if c not in (expected or [])]
        yield _select(_empty_strings(names), columns)


def _jsonl_first_object(
    path: Path, fmt: FileFormat, data: bytes, first_line: int
) -> tuple[dict[str, Any], int]:
    start = 0
    line = first_line
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        raw = data[start:end]
        if raw.strip():
            try:
                obj = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            except (ValueError, UnicodeDecodeError) as exc:
                raise FormatError(path, f"malformed JSON: {exc}", line=line) from None
            if not isinstance(obj, dict):
                raise FormatError(path, f"expected a JSON object, found {type(obj).__name__}", line=line)
            return obj, line
        start = end + 1
        line += 1
    raise FormatError(path, "no JSON object found")  # pragma: no cover - callers skip blank chunks


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _jsonl_parse(path: Path, fmt: FileFormat, data: bytes, first_line: int, as_string: set[str]) -> pa.Table:
    """One chunk of JSON lines as a table; string-valued fields stay strings (no date inference)."""
    block = 4 << 20
    for _ in range(8):
        schema = pa.schema([(name, pa.string()) for name in sorted(as_string)])
        try:
            table = pajson.read_json(
                pa.BufferReader(data),
                read_options=pajson.ReadOptions(use_threads=True, block_size=block),
                parse_options=pajson.ParseOptions(
                    explicit_schema=schema, unexpected_field_behavior="infer", newlines_in_values=False
                ),
            )
            table.validate(full=True)  # Arrow's JSON parser does not check that strings are UTF-8
            _ = table.schema.names
        except (pa.ArrowException, ValueError) as exc:
            if "straddling" in str(exc) and block < len(data) + 1:
                block = len(data) + 1
                continue
            raise _jsonl_diagnose(path, data, first_line, exc) from None
        # Arrow infers timestamps from date-like strings: read such columns again as text.
        temporal = {
            field.name
            for field in table.schema
            if pa.types.is_temporal(field.type) and field.name not in as_string
        }
        if not temporal:
            return table
        as_string = as_string | temporal
    raise FormatError(path, "cannot settle the column types of the JSON lines")  # pragma: no cover


def _json_kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _jsonl_diagnose(path: Path, data: bytes, first_line: int, exc: BaseException) -> FormatError:
    """Find the line behind an Arrow JSON failure (slow path, run only after a failure)."""
    kinds: dict[str, tuple[str, int]] = {}
    for offset, raw in enumerate(data.split(b"\n")):
        if not raw.strip():
            continue
        line = first_line + offset
        try:
            obj = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except UnicodeDecodeError as err:
            return FormatError(path, f"bytes {raw[err.start : err.end]!r} are not valid UTF-8", line=line)
        except ValueError as err:
            return FormatError(path, f"malformed JSON: {err}", line=line)
        if not isinstance(obj, dict):
            return FormatError(path, f"expected a JSON object, found {type(obj).__name__}", line=line)
        for key, value in obj.items():
            kind = _json_kind(value)
            if kind is None:
                continue
            seen = kinds.setdefault(key, (kind, line))
            if seen[0] != kind:
                return FormatError(
                    path, f"value is a {kind} but line {seen[1]} has a {seen[0]}", line=line, field=key
                )
    return FormatError(path, f"cannot read JSON lines: {exc}")


# --------------------------------------------------------------------------------------------- parquet


def _open_parquet(path: Path, fh: io.BufferedReader) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(fh)
    except (pa.ArrowException, OSError, ValueError, IndexError, EOFError) as exc:
        raise FormatError(path, f"not a readable Parquet file (corrupt or truncated?): {exc}") from None


def _parquet_read(path: Path, columns: Sequence[str] | None, expected: Sequence[str] | None) -> pa.Table:
    with open(path, "rb") as fh:
        pf = _open_parquet(path, fh)
        _check_columns(path, pf.schema_arrow.names, columns, expected)
        try:
            return pf.read(columns=list(columns) if columns is not None else None, use_threads=True)
        except (pa.ArrowException, OSError, ValueError, IndexError, EOFError) as exc:
            raise FormatError(path, f"corrupt Parquet data: {exc}") from None


def _parquet_batches(
    path: Path, columns: Sequence[str] | None, expected: Sequence[str] | None, batch_rows: int
) -> Iterator[pa.Table]:
    with open(path, "rb") as fh:
        pf = _open_parquet(path, fh)
        _check_columns(path, pf.schema_arrow.names, columns, expected)
        try:
            for batch in pf.iter_batches(
                batch_size=batch_rows,
                columns=list(columns) if columns is not None else None,
                use_threads=True,
            ):
                yield pa.Table.from_batches([batch])
        except (pa.ArrowException, OSError, ValueError, IndexError, EOFError) as exc:
            raise FormatError(path, f"corrupt Parquet data: {exc}") from None
