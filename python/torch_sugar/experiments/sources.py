"""Table sources: CSV files, Parquet files or folders, and the built-in tables (breast_cancer, wine,
synthetic-ctr). Each yields its rows in batches (:class:`RowBatch`), in the same order on every
pass, and reads batch ``k`` on its own (the training stream visits them in a shuffled order).

A batch holds, per column, a float64 array (a typed numeric column: Parquet integers, floats and
decimals, NaN where null) or an object array of stripped text ("" where empty or null; Parquet
booleans are false/true, dates and other types castable to text are their text). What a column
*is* (numeric, categorical) is not decided here but by :class:`~.columns.ColumnPlan`, from the
values, the same way for every source.
"""

import csv
import os
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .errors import UsageError

#: Rows per batch of a CSV file (and of the built-in tables).
CSV_BATCH_ROWS = 65536
NUMBER, TEXT = "number", "text"


@dataclass
class RowBatch:
    """Some rows of a table: ``columns`` name -> values, ``index`` each row's number in the source
    (from 0: the hash split's input), ``ids`` what messages and predictions call the row (a CSV
    line number, else the row number)."""

    columns: Dict[str, np.ndarray]
    index: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    @staticmethod
    def concat(batches: Sequence["RowBatch"]) -> "RowBatch":
        if len(batches) == 1:
            return batches[0]
        names = list(batches[0].columns)
        return RowBatch(
            {n: np.concatenate([b.columns[n] for b in batches]) for n in names},
            np.concatenate([b.index for b in batches]),
            np.concatenate([b.ids for b in batches]),
        )


@dataclass
class TableSource:
    """A table: its name, how messages name it (``flag`` and ``path``, ``unit``: line or row), its
    columns and their storage kind (:data:`NUMBER` or :data:`TEXT`), and, where the source
    knows them, its classes in order (the built-in sets)."""

    name: str
    flag: str
    path: str
    unit: str
    header: List[str]
    kinds: Dict[str, str]
    classes: Optional[List[str]] = None
    notes: List[str] = field(default_factory=list)
    is_file: bool = True

    def batch_count(self) -> int:
        raise NotImplementedError

    def batch(self, k: int, columns: Sequence[str]) -> RowBatch:
        """Batch ``k`` with ``columns`` only."""
        raise NotImplementedError

    def batches(self, columns: Sequence[str]) -> Iterator[RowBatch]:
        for k in range(self.batch_count()):
            yield self.batch(k, columns)

    def describe_batches(self) -> str:
        return f"{self.batch_count()} batch(es)"


# ----------------------------------------------------------------------------------------- CSV
@dataclass
class _Block:
    """Where a block of CSV rows starts: the text file position, the line before it, its first row."""

    position: int
    line: int
    first_row: int


@dataclass
class CsvSource(TableSource):
    """A CSV file with a header row (dialect sniffed: comma, semicolon or tab), UTF-8 (see
    :func:`open_csv`). Rows whose cells are all blank are skipped; the others must have as many
    fields as the header. Batches are blocks of :data:`CSV_BATCH_ROWS` rows; the first full pass
    records where each starts, so that a block can then be read on its own."""

    dialect: Dict[str, object] = field(default_factory=dict)  # csv.reader's format parameters
    start: _Block = field(default_factory=lambda: _Block(0, 0, 0))
    blocks: Optional[List[_Block]] = None

    def _guarded(self, read):
        return _guarded(self.path, read)

    def _data_rows(self, reader, line_before: int) -> Iterator[Tuple[int, List[str]]]:
        """(line number, cells) of the non-blank rows; a row of the wrong width is an error."""
        width = len(self.header)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = line_before + reader.line_num
            if len(row) != width:
                raise UsageError(
                    f"--csv: {self.path} line {line} has {len(row)} fields, the header has {width}"
                )
            yield line, row

    def _read_blocks(self, start: _Block, columns: Sequence[str], one: bool) -> Iterator[RowBatch]:
        """Blocks of rows from ``start``: every one to the end of the file, or ``one``."""
        columns = list(columns)
        wanted = [self.header.index(c) for c in columns]
        blocks = [start] if self.blocks is None else None
        with _open_text(self.path) as f:
            f.seek(start.position)
            reader = csv.reader(iter(f.readline, ""), **self.dialect)
            rows, first = self._data_rows(reader, start.line), start.first_row
            while True:
                chunk = self._guarded(lambda: [r for _, r in zip(range(CSV_BATCH_ROWS), rows)])
                if not chunk:
                    break
                cells = {
                    c: np.array([r[j].strip() for _, r in chunk], dtype=object)
                    for c, j in zip(columns, wanted)
                }
                lines = np.array([line for line, _ in chunk], np.int64)
                yield RowBatch(cells, np.arange(first, first + len(chunk)), lines)
                first += len(chunk)
                if one:
                    return
                if blocks is not None:
                    blocks.append(_Block(f.tell(), start.line + reader.line_num, first))
        if blocks is not None:
            self.blocks = blocks[:-1]

    def batches(self, columns: Sequence[str]) -> Iterator[RowBatch]:
        yield from self._read_blocks(self.start, columns, one=False)

    def batch_count(self) -> int:
        if self.blocks is None:
            for _ in self._read_blocks(self.start, [], one=False):
                pass
        return len(self.blocks)

    def batch(self, k: int, columns: Sequence[str]) -> RowBatch:
        self.batch_count()
        return next(self._read_blocks(self.blocks[k], columns, one=True))

    def describe_batches(self) -> str:
        return f"{self.batch_count()} block(s) of up to {CSV_BATCH_ROWS} rows"


_DIALECT = (
    "delimiter",
    "doublequote",
    "escapechar",
    "lineterminator",
    "quotechar",
    "quoting",
    "skipinitialspace",
)


def _open_text(path: str):
    try:
        return open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"--csv: cannot read {path}: {exc.strerror}") from None


def _guarded(path: str, read):
    """``read()``, with the csv module's and the file's errors as one-line UsageErrors."""
    try:
        return read()
    except UnicodeDecodeError as exc:
        raise UsageError(f"--csv: {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise UsageError(f"--csv: cannot parse {path}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"--csv: cannot read {path}: {exc.strerror}") from None


def open_csv(path: str) -> CsvSource:
    """Checks the file and reads its header (and that a data row follows)."""
    if not os.path.exists(path):
        raise UsageError(f"--csv: no such file: {path}")
    if os.path.isdir(path):
        raise UsageError(f"--csv: {path} is a directory, not a CSV file")
    with _open_text(path) as f:
        sample = _guarded(path, lambda: f.read(65536))
        f.seek(0)
        try:
            sniffed = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            sniffed = csv.excel
        # the format as plain values: the sniffed class is local, and the source travels to workers
        dialect = {k: getattr(sniffed, k) for k in _DIALECT}
        reader = csv.reader(iter(f.readline, ""), **dialect)
        header = _guarded(path, lambda: next(reader, None))
        if not header:
            raise UsageError(f"--csv: {path} is empty (a header row is needed)")
        start = _Block(f.tell(), reader.line_num, 0)
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise UsageError(f"--csv: {path} has duplicate column names: {', '.join(dup)}")
    name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    source = CsvSource(
        name, "--csv", path, "line", header, {h: TEXT for h in header}, dialect=dialect, start=start
    )
    if next(source._read_blocks(start, [], one=True), None) is None:
        raise UsageError(f"--csv: {path} has a header but no data rows")
    return source


# ------------------------------------------------------------------------------------- Parquet
def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(
            "--parquet needs pyarrow: pip install pyarrow (or pip install 'torch-sugar[experiments]')"
        ) from None
    return pa, pq


def parquet_files(path: str) -> List[str]:
    """``path`` itself, or the ``*.parquet`` files of a directory in sorted order."""
    if not os.path.exists(path):
        raise UsageError(f"--parquet: no such file or directory: {path}")
    if not os.path.isdir(path):
        return [path]
    files = sorted(
        os.path.join(path, f)
        for f in os.listdir(path)
        if f.endswith(".parquet") and os.path.isfile(os.path.join(path, f))
    )
    if not files:
        raise UsageError(f"--parquet: directory {path} has no .parquet files")
    return files


@dataclass
class ParquetSource(TableSource):
    """Parquet files with the same columns, read with pyarrow row group by row group (a batch is
    a row group; row numbers count from 0 over the files in order). See :func:`open_parquet`."""

    files: List[str] = field(default_factory=list)
    row_groups: List[Tuple[int, int, int, int]] = field(default_factory=list)  # file, group, first row, rows

    def batch_count(self) -> int:
        return len(self.row_groups)

    def batch(self, k: int, columns: Sequence[str]) -> RowBatch:
        _, pq = _pyarrow()
        f, i, first, n = self.row_groups[k]
        try:
            table = pq.ParquetFile(self.files[f]).read_row_group(i, columns=list(columns))
        except Exception as exc:  # pyarrow's errors: one line
            raise UsageError(f"--parquet: cannot read row group {i} of {self.files[f]}: {exc}") from None
        cells = {c: self._column(c, table.column(c)) for c in columns}
        index = np.arange(first, first + n)
        return RowBatch(cells, index, index)

    def _column(self, name: str, column) -> np.ndarray:
        """Numbers as float64 (NaN where null), everything else as stripped text ("" where null)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if self.kinds[name] == NUMBER:
            return np.asarray(pc.fill_null(column.cast(pa.float64()), np.nan).to_numpy(), np.float64)
        try:
            text = pc.utf8_trim_whitespace(pc.fill_null(column.cast(pa.string()), ""))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise UsageError(
                f"--parquet: column {name!r} of {self.path} has type {column.type}, which cannot be read "
                "as numbers or text; leave it out with --ignore"
            ) from None
        # one Python string per distinct value, shared by the rows that hold it
        codes = text.dictionary_encode()
        distinct = np.asarray(codes.dictionary.to_numpy(zero_copy_only=False), dtype=object)
        return distinct[codes.indices.to_numpy(zero_copy_only=False)] if len(text) else np.zeros(0, object)

    def describe_batches(self) -> str:
        return f"{len(self.row_groups)} row group(s) of {len(self.files)} file(s)"


def _is_number(kind) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def open_parquet(path: str) -> ParquetSource:
    """A Parquet file or a directory of ``*.parquet`` files with the same columns (in sorted
    order): their schema and row groups."""
    _, pq = _pyarrow()
    files, header, row_groups, first = parquet_files(path), None, [], 0
    for f, file in enumerate(files):
        try:
            meta = pq.ParquetFile(file)
            schema = meta.schema_arrow
        except Exception as exc:  # pyarrow's errors: one line
            raise UsageError(f"--parquet: cannot read {file}: {exc}") from None
        if header is None:
            header = schema
            names = list(schema.names)
            if len(set(names)) != len(names):
                dup = sorted({h for h in names if names.count(h) > 1})
                raise UsageError(f"--parquet: {file} has duplicate column names: {', '.join(dup)}")
        elif schema.names != header.names:
            raise UsageError(
                f"--parquet: {file} has the columns {', '.join(schema.names)}; the first file has "
                f"{', '.join(header.names)}"
            )
        for i in range(meta.num_row_groups):
            n = meta.metadata.row_group(i).num_rows
            row_groups.append((f, i, first, n))
            first += n
    if first == 0:
        raise UsageError(f"--parquet: {path} has no rows")
    kinds = {fld.name: NUMBER if _is_number(fld.type) else TEXT for fld in header}
    name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    return ParquetSource(
        name, "--parquet", path, "row", list(header.names), kinds, files=files, row_groups=row_groups
    )


# ------------------------------------------------------------------------------ built-in tables
@dataclass
class ArraySource(TableSource):
    """A table held in arrays (the built-in data sets), in batches of :data:`CSV_BATCH_ROWS` rows."""

    arrays: Dict[str, np.ndarray] = field(default_factory=dict)

    def batch_count(self) -> int:
        n = len(next(iter(self.arrays.values())))
        return -(-n // CSV_BATCH_ROWS)

    def batch(self, k: int, columns: Sequence[str]) -> RowBatch:
        lo = k * CSV_BATCH_ROWS
        cells = {c: self.arrays[c][lo : lo + CSV_BATCH_ROWS] for c in columns}
        n = len(next(iter(self.arrays.values()))[lo : lo + CSV_BATCH_ROWS])
        index = np.arange(lo, lo + n)
        return RowBatch(cells, index, index)


def builtin_table(name: str, ctr_rows: int, ctr_users: int, seed: int) -> Tuple[ArraySource, dict]:
    """breast_cancer, wine (scikit-learn's bundled files) or synthetic-ctr, and the column settings
    that go with it (target, group, categorical columns)."""
    if name == "synthetic-ctr":
        from . import synthetic

        table = synthetic.make_synthetic_ctr(ctr_rows, ctr_users, seed)
        arrays = {c: table.cat[:, j] for j, c in enumerate(synthetic.CTR_CATEGORICAL)}
        arrays.update({c: table.x[:, j].astype(np.float64) for j, c in enumerate(synthetic.CTR_FEATURES)})
        arrays[synthetic.CTR_TARGET] = table.clicked.astype(str).astype(object)
        kinds = {c: TEXT for c in synthetic.CTR_CATEGORICAL} | {c: NUMBER for c in synthetic.CTR_FEATURES}
        kinds[synthetic.CTR_TARGET] = TEXT
        columns = {
            "target": synthetic.CTR_TARGET,
            "group": "user",
            "categorical": tuple(synthetic.CTR_CATEGORICAL),
        }
        source = ArraySource(
            name,
            "--dataset",
            name,
            "row",
            list(synthetic.CTR_COLUMNS),
            kinds,
            ["0", "1"],
            [table.note],
            False,
            arrays,
        )
        return source, columns
    import sklearn.datasets as skd

    bunch = skd.load_breast_cancer() if name == "breast_cancer" else skd.load_wine()
    features = [str(f) for f in bunch.feature_names]
    x = bunch.data.astype(np.float32).astype(np.float64)
    classes = [str(c) for c in bunch.target_names]
    arrays = {f: x[:, j] for j, f in enumerate(features)}
    arrays["target"] = np.array(classes, dtype=object)[bunch.target]
    kinds = {f: NUMBER for f in features} | {"target": TEXT}
    source = ArraySource(
        name, "--dataset", name, "row", features + ["target"], kinds, classes, [], False, arrays
    )
    return source, {"target": "target"}
