from django import forms

from alignment.lib.errors import DomainError
from leads.importing.mapping import mapping_loads

DELIMITER_CHOICES = [
    ("", "Detect"),
    (",", "Comma ,"),
    (";", "Semicolon ;"),
    ("tab", "Tab"),
    ("|", "Pipe |"),
]
ENCODING_CHOICES = [
    ("", "Detect (UTF-8, else Windows-1252 / Latin-1)"),
    ("utf-8", "UTF-8"),
    ("cp1252", "Windows-1252"),
    ("latin-1", "Latin-1 (ISO-8859-1)"),
    ("utf-16", "UTF-16"),
]


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV file")
    mapping = forms.FileField(
        label="Mapping file (.toml or .json, optional)",
        required=False,
        help_text="Without one, columns named like a lead field fill it and the rest become "
        "attributes.",
    )
    delimiter = forms.ChoiceField(choices=DELIMITER_CHOICES, required=False)
    encoding = forms.ChoiceField(choices=ENCODING_CHOICES, required=False)
    dry_run = forms.BooleanField(
        label="Dry run: check and count every row, write nothing", required=False
    )
    atomic = forms.BooleanField(
        label="All or nothing: write nothing if any row is bad", required=False
    )

    def job_options(self) -> dict:
        """What a valid form asks of `import_job_create` (the page and the API alike)."""
        data = self.cleaned_data
        return {
            name: data[name]
            for name in ("file", "mapping", "delimiter", "encoding", "dry_run", "atomic")
        }

    def clean_mapping(self) -> dict | None:
        upload = self.cleaned_data.get("mapping")
        if not upload:
            return None
        try:
            return mapping_loads(upload.read(), filename=upload.name)
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None
