from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from kombu.exceptions import OperationalError as BrokerUnreachable

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from alignment.permissions import Action, can
from leads.scoring.tuning import (
    DEFAULT_HOLDOUT,
    DEFAULT_MAX_RULES,
    DEFAULT_SEED,
    OUTCOME_WON,
    scoring_tune_queue,
)
from leads.scoring.tuning.selectors import tuning_versions
from leads.scoring.tuning.status import tuning_runs, tuning_status_record
from leads.scoring.tuning_tasks import scoring_tune


class TuningForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=[
            ("won", "Won vs lost"),
            ("accepted", "Accepted vs rejected or recycled by sales"),
        ],
        initial=OUTCOME_WON,
        label="Learn from",
    )
    holdout = forms.FloatField(
        min_value=0.05,
        max_value=0.5,
        initial=DEFAULT_HOLDOUT,
        label="Holdout share",
        help_text="Leads kept out of learning to measure the result (0.05 to 0.5).",
    )
    seed = forms.IntegerField(min_value=0, initial=DEFAULT_SEED, label="Seed")
    exclude_attributes = forms.CharField(
        required=False,
        label="Attributes to leave out",
        help_text="Comma-separated names of attributes known only after the outcome. "
        "Attributes named post_… are always left out.",
    )

    include_attributes = forms.CharField(
        required=False,
        label="Columns to learn from anyway",
        help_text="Comma-separated names of columns the run found to be identifiers, counters, "
        "constant or leaks, that you know to be genuine signals.",
    )
    max_rules = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=200,
        initial=DEFAULT_MAX_RULES,
        label="At most this many fit rules",
        help_text="What two managers can read and sign; engagement rules come on top.",
    )
    mqls_per_month = forms.IntegerField(
        required=False,
        min_value=1,
        label="Goal: about this many MQLs a month",
        help_text="Leave both goals empty to make as many MQLs as were made lately.",
    )
    min_precision = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=99,
        label="Or: at least this % of MQLs reach the outcome",
    )

    def clean_exclude_attributes(self) -> list[str]:
        text = self.cleaned_data.get("exclude_attributes") or ""
        return [name.strip() for name in text.split(",") if name.strip()]

    def clean_include_attributes(self) -> list[str]:
        text = self.cleaned_data.get("include_attributes") or ""
        return [name.strip() for name in text.split(",") if name.strip()]

    def clean_max_rules(self) -> int:
        value = self.cleaned_data.get("max_rules")
        return DEFAULT_MAX_RULES if value is None else value

    def clean(self):
        data = super().clean()
        if data.get("mqls_per_month") and data.get("min_precision"):
            self.add_error(
                "min_precision", "State one goal: MQLs a month or a precision, not both."
            )
        return data


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def _num(x: float | None, places: int = 3) -> str:
    return "—" if x is None else f"{x:.{places}f}"


def _view(report: dict) -> dict:
    """The report, with the figures written out for the page."""
    proposal, active = report.get("proposal") or {}, report.get("active")
    models = [("Proposal", proposal)] + ([(f"Active {active['label']}", active)] if active else [])
    summary = [
        {
            "name": name,
            "auc": _num(r.get("auc")),
            "auc_fit": _num(r.get("auc_fit_only")),
            "mql": f"total ≥ {r['mql']['total']} and fit ≥ {r['mql']['fit']}",
            "qualified": r["mql"]["qualified"],
            "precision": _pct(r["mql"]["precision"]),
            "recall": _pct(r["mql"]["recall"]),
        }
        for name, r in models
    ]
    bands = [
        {
            "band": band["band"],
            "cells": [
                {
                    "leads": r["bands"][i]["leads"],
                    "rate": _pct(r["bands"][i]["rate"]),
                    "lift": _num(r["bands"][i]["lift"], 2),
                    "captured": _pct(r["bands"][i]["captured"]),
                }
                for _, r in models
            ],
        }
        for i, band in enumerate(proposal.get("bands", []))
    ]
    grades = [
        {
            "grade": row["grade"],
            "cells": [
                {
                    "leads": r["grades"][i]["leads"],
                    "rate": _pct(r["grades"][i]["rate"]),
                    "lift": _num(r["grades"][i]["lift"], 2),
                }
                for _, r in models
            ],
        }
        for i, row in enumerate(proposal.get("grades", []))
    ]
    return {
        "models": [name for name, _ in models],
        "summary": summary,
        "bands": bands,
        "grades": grades,
        "verdict": report.get("verdict"),
        "qualifying": _pct((report.get("thresholds") or {}).get("qualifying_share")),
        "shapes": "; ".join(
            f"{b['field']}: {b['shape']}"
            for b in (report.get("candidates") or {}).get("blocks", [])
            if b.get("shape")
        ),
        "out_of_time": report.get("out_of_time") or {},
    }


@team_member_required
@require_http_methods(["GET", "POST"])
def tuning(request):
    may_run = can(request.user, Action.SCORING_PROPOSE)
    form = TuningForm(request.POST or None)
    if request.method == "POST":
        if not may_run:
            raise PermissionDenied(
                "Starting a tuning run is for marketing: marketers, marketing managers and admins."
            )
        if form.is_valid():
            data = form.cleaned_data
            try:
                task_kwargs = scoring_tune_queue(
                    by=request.user,
                    outcome=data["outcome"],
                    holdout=data["holdout"],
                    seed=data["seed"],
                    exclude_attributes=data["exclude_attributes"],
                    include_attributes=data["include_attributes"],
                    max_rules=data["max_rules"],
                    mqls_per_month=data["mqls_per_month"],
                    min_precision=(data["min_precision"] / 100 if data["min_precision"] else None),
                )
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                # nothing was written but the queued run, so there is no commit to wait for
                try:
                    scoring_tune.delay(**task_kwargs)
                except BrokerUnreachable:  # the queued run would wait for a task never sent
                    tuning_status_record(
                        state="failed",
                        message="The task queue was not reachable; nothing was started.",
                        by=str(request.user),
                    )
                    messages.error(
                        request, "The task queue is not reachable right now; try again later."
                    )
                else:
                    messages.success(
                        request,
                        "Tuning queued. The result is a proposed version for both managers to "
                        "approve; its report appears here when the run ends.",
                    )
                return redirect("leads:tuning")
    versions = tuning_versions()
    latest = versions[0] if versions else None
    report = latest.report if latest and latest.report.get("kind") == "tuning" else None
    # the latest run and the few before it, read from the database: a worker wrote them
    runs = tuning_runs(limit=6)
    return render(
        request,
        "leads/scoring/tuning.html",
        {
            "form": form,
            "may_run": may_run,
            "status": runs[0] if runs else None,
            "runs": runs[1:],
            "latest": latest,
            "report": report,
            "view": _view(report) if report else None,
            "earlier": versions[1:],
        },
        status=400 if form.errors else 200,
    )
