"""Reading a CSV file as people export it: `,` or `;` (or tab), quotes, CRLF, a UTF-8 BOM, Latin-1.

Row numbers are the ones a spreadsheet shows: the header is row 1, the first data row is row 2,
and a quoted value spanning two lines still counts as one row."""

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from alignment.lib.errors import DomainError
from leads.importing.mapping import header_names, normalise_encoding

DELIMITERS = (",", ";", "\t", "|")
SAMPLE_BYTES = 64 * 1024
# tried in order when no encoding is given: UTF-8 (with or without BOM), then what Excel on
# Windows writes (cp1252: Latin-1 plus € and typographic quotes), then Latin-1, which reads any byte
FALLBACK_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")


@dataclass(frozen=True)
class CsvInfo:
    encoding: str
    delimiter: str
    header: list[str]
    total_rows: int  # data rows that are not blank; -1 when not counted


def is_blank(cells: list[str]) -> bool:
    return not cells or not "".join(cells).strip()


def _text(fileobj: BinaryIO, encoding: str) -> io.TextIOWrapper:
    fileobj.seek(0)
    # newline="" lets the csv module see CRLF and line breaks inside quoted values itself
    return io.TextIOWrapper(fileobj, encoding=encoding, errors="strict", newline="")


def _sniff(sample: str, *, cut: bool) -> str:
    """The delimiter that splits the first lines into the most consistent, widest table."""
    lines = sample.splitlines(keepends=True)
    if cut and len(lines) > 1:
        lines = lines[:-1]  # the last line of a cut sample is incomplete
    text = "".join(lines[:200])
    best, best_score = ",", (0, 0, 0)
    for delimiter in DELIMITERS:
        try:
            rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        consistent = sum(1 for r in rows[1:] if len(r) == width)
        score = (1, consistent, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _starts_with_bom(fileobj: BinaryIO) -> bool:
    fileobj.seek(0)
    return fileobj.read(3) == b"\xef\xbb\xbf"


def _utf16(fileobj: BinaryIO) -> str:
    fileobj.seek(0)
    start = fileobj.read(2)
    return "utf-16" if start in (b"\xff\xfe", b"\xfe\xff") else ""


def csv_inspect(
    fileobj: BinaryIO, *, delimiter: str = "", encoding: str = "", count_rows: bool = True
) -> CsvInfo:
    """Find the encoding and delimiter (unless given), read the header and count the rows.

    Counting reads the whole file once, which also proves that every byte decodes and that the
    CSV is well-formed before anything is written."""
    if encoding:
        encodings = [normalise_encoding(encoding)]
    else:
        bom16 = _utf16(fileobj)
        encodings = [bom16] if bom16 else list(FALLBACK_ENCODINGS)
    last_error = None
    for candidate in encodings:
        if delimiter:
            chosen = delimiter
        else:
            fileobj.seek(0)
            raw = fileobj.read(SAMPLE_BYTES)
            # a sample cut in the middle of a character only loses that character
            sample = raw.decode(candidate, errors="replace")
            chosen = _sniff(sample, cut=len(raw) == SAMPLE_BYTES)
        text = _text(fileobj, candidate)
        row = 0
        try:
            reader = csv.reader(text, delimiter=chosen)
            first = next(reader, None)
            if first is None or is_blank(first):
                raise DomainError("The file is empty or its first row (the header) is blank.")
            header = header_names(first)
            row = 1
            total = -1
            if count_rows:
                total = 0
                for row, cells in enumerate(reader, start=2):  # noqa: B007 (read on error)
                    if not is_blank(cells):
                        total += 1
            if candidate == "utf-8-sig" and not _starts_with_bom(fileobj):
                candidate = "utf-8"  # what the file is; utf-8-sig only differs in dropping a BOM
            return CsvInfo(encoding=candidate, delimiter=chosen, header=header, total_rows=total)
        except UnicodeDecodeError:
            last_error = candidate
        except csv.Error as exc:
            raise DomainError(f"Row {row + 1} cannot be read as CSV: {exc}.") from None
        finally:
            text.detach()
    byte, line = _first_bad_byte(fileobj, last_error)
    raise DomainError(
        f"The file cannot be read as {last_error}: byte 0x{byte:02x} on line {line} is not "
        f"{last_error}. Give the file's encoding (e.g. latin-1, cp1252), or leave it out to have "
        "it detected.",
        field="encoding",
    )


def _first_bad_byte(fileobj: BinaryIO, encoding: str) -> tuple[int, int]:
    """The first byte that does not decode, and its line in the file (1-based)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    fileobj.seek(0)
    lines = 1
    while chunk := fileobj.read(1 << 16):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            # the decoder may hold a few bytes of the previous chunk: they are valid so far
            pending = len(exc.object) - len(chunk)
            start = max(exc.start - pending, 0)
            return chunk[start], lines + chunk[:start].count(b"\n")
        lines += chunk.count(b"\n")
    return 0, lines


def csv_rows(fileobj: BinaryIO, info: CsvInfo) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for every data row that is not blank."""
    text = _text(fileobj, info.encoding)
    row = 1
    try:
        reader = csv.reader(text, delimiter=info.delimiter)
        next(reader, None)
        for row, cells in enumerate(reader, start=2):
            if not is_blank(cells):
                yield row, cells
    except csv.Error as exc:
        raise DomainError(f"Row {row + 1} cannot be read as CSV: {exc}.") from None
    finally:
        text.detach()
