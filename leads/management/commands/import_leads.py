"""python manage.py import_leads PATH [--mapping FILE] [--delimiter D] [--encoding E] [--dry-run] [--atomic]"""

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from alignment.lib.errors import DomainError
from leads.importing.mapping import mapping_read
from leads.importing.services import ImportResult, leads_import

PHASES = {"check": "checking", "write": "importing", "write_all": "importing (all or nothing)"}


class Command(BaseCommand):
    help = (
        "Import leads from a CSV file (see docs/import.md). Runs as the system. Exits with status 1 "
        "when the file, the mapping or any row is bad; the good rows are imported unless --atomic."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="the CSV file")
        parser.add_argument("--mapping", help="a mapping file, .toml or .json")
        parser.add_argument("--delimiter", default="", help="`,`, `;`, `tab`...; default: detected")
        parser.add_argument(
            "--encoding",
            default="",
            help="e.g. utf-8, latin-1; default: UTF-8, else cp1252/latin-1",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="check and count every row, write nothing"
        )
        parser.add_argument(
            "--atomic", action="store_true", help="write nothing unless every row is good"
        )

    def handle(self, *args, **options):
        stream = getattr(self.stderr, "_out", sys.stderr)
        bars: dict[str, tqdm] = {}

        def progress(result: ImportResult) -> None:
            bar = bars.get(result.phase)
            if bar is None:
                for other in bars.values():
                    other.close()
                bar = bars[result.phase] = tqdm(
                    total=max(result.total_rows, 0),
                    desc=PHASES[result.phase],
                    unit=" rows",
                    file=stream,
                    dynamic_ncols=True,
                    mininterval=0.5,
                )
            bar.update(result.processed_rows - bar.n)

        try:
            mapping = mapping_read(options["mapping"]) if options["mapping"] else None
            result = leads_import(
                file=options["path"],
                by=None,
                mapping=mapping,
                delimiter=options["delimiter"],
                encoding=options["encoding"],
                dry_run=options["dry_run"],
                atomic=options["atomic"],
                progress=progress,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        finally:
            for bar in bars.values():
                bar.close()

        delimiter = "tab" if result.delimiter == "\t" else result.delimiter
        self.stdout.write(
            f"{result.filename}: {result.encoding}, delimiter {delimiter!r}, "
            f"{result.total_rows:,} rows."
        )
        self.stdout.write(result.summary())
        if result.errors:
            self.stdout.write("Bad rows:")
            for error in result.errors:
                self.stdout.write(f"  {error}")
            if result.errors_truncated:
                self.stdout.write(
                    f"  ... and {result.error_total - len(result.errors):,} more problems."
                )
        if result.bad_rows:
            written = (
                "nothing was written" if not result.written else "the other rows were imported"
            )
            raise CommandError(
                f"{result.bad_rows:,} bad rows were not imported ({written}); see the list above."
            )
