"""What an import did: counts, and the rows it could not use."""

from dataclasses import dataclass, field

MAX_STORED_ERRORS = 500


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    reason: str

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "reason": self.reason}

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column!r}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass
class ImportResult:
    """Counts of one import; `errors` keeps the first few hundred problems, `bad_rows` all."""

    filename: str = ""
    encoding: str = ""
    delimiter: str = ""
    dry_run: bool = False
    atomic: bool = False
    # "check": rows are read and matched but nothing is written (dry run, or the first pass of an
    # all-or-nothing import); "write": batch by batch; "write_all": one transaction for the file
    phase: str = "write"
    total_rows: int = 0
    processed_rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    bad_rows: int = 0
    error_total: int = 0
    errors: list[RowError] = field(default_factory=list)
    won: int = 0
    lost: int = 0
    # rows whose outcome was not applied because the lead is already further along the pipeline
    outcome_kept: int = 0
    sources_created: int = 0
    # imported leads that met the MQL definition and became MQLs (routed to sales)
    qualified: int = 0
    written: bool = False

    def add_errors(self, errors: list[RowError]) -> None:
        if not errors:
            return
        self.bad_rows += len({e.row for e in errors})
        self.error_total += len(errors)
        room = MAX_STORED_ERRORS - len(self.errors)
        if room > 0:
            self.errors.extend(errors[:room])

    @property
    def errors_truncated(self) -> bool:
        return self.error_total > len(self.errors)

    def summary(self) -> str:
        verb = "would be " if not self.written else ""
        counts = (
            f"{self.processed_rows:,} rows: {self.created:,} {verb}created, "
            f"{self.updated:,} {verb}updated, {self.unchanged:,} unchanged, "
            f"{self.bad_rows:,} bad."
        )
        if self.dry_run:
            lead = "Dry run, nothing was written."
        elif self.atomic and not self.written:
            lead = "Nothing was written: the import is all-or-nothing and some rows are bad."
        elif self.bad_rows:
            lead = "Imported; the bad rows were skipped."
        else:
            lead = "Imported."
        lines = [f"{lead} {counts}"]
        if self.won or self.lost or self.outcome_kept:
            line = f"Outcomes: {self.won:,} won, {self.lost:,} lost"
            if self.outcome_kept:
                line += f"; {self.outcome_kept:,} leads already further along kept their stage"
            lines.append(line + ".")
        if self.sources_created:
            lines.append(f"New sources: {self.sources_created:,}.")
        if self.qualified:
            lines.append(
                f"{self.qualified:,} leads meet the MQL definition and became MQLs for sales."
            )
        return "\n".join(lines)
