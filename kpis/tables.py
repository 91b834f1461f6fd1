"""A KPI table as the KPI page shows it: the counts behind each ratio, a chart drawn from the same
rows, and `?export=<key>` as CSV. kpis.views builds the page's tables; each feedback loop builds
its own (kpis.content_tables, kpis.voice_tables, kpis.story_tables) from its selectors."""

from dataclasses import dataclass, field

# a column's kind says how a cell is shown: text, count, percent, money, hours or days
TEXT, COUNT, PERCENT, MONEY, HOURS, DAYS = "text", "count", "percent", "money", "hours", "days"


@dataclass
class Table:
    key: str  # the ?export= name
    title: str
    columns: list[tuple[str, str]]  # (heading, kind)
    rows: list[list] = field(default_factory=list)
    chart: int | None = None  # the column the chart draws, by the first column's labels
    chart_type: str = "bar"
    empty: str = ""  # what to do when there is nothing to show
    note: str = ""
    labels: int | None = None  # the leading columns a chart label is made of (default: all text)

    @property
    def wide(self) -> bool:
        """Many columns: the chart goes above the table, not beside it."""
        return len(self.columns) > 4

    @property
    def is_empty(self) -> bool:
        return not self.rows or (
            self.chart is not None and not any(r[self.chart] for r in self.rows)
        )

    def cells(self):
        """Rows of (value, kind) for the template."""
        kinds = [kind for _, kind in self.columns]
        return [list(zip(row, kinds, strict=True)) for row in self.rows]

    def chart_data(self) -> dict | None:
        if self.chart is None or self.is_empty:
            return None
        return {
            "type": self.chart_type,
            "label": self.columns[self.chart][0],
            # a row's label: its text cells (a reason and its source)
            "labels": [
                " · ".join(
                    str(v)
                    for v, (_, kind) in list(zip(r, self.columns, strict=True))[: self.labels]
                    if kind == TEXT
                )
                for r in self.rows
            ],
            "values": [float(r[self.chart] or 0) for r in self.rows],
        }


def pct(value) -> str:
    return "—" if value is None else f"{value:g}%"
