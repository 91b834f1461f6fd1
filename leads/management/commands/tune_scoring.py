import json

from django.core.management.base import BaseCommand, CommandError

from alignment.lib.errors import DomainError
from leads.scoring.tuning import (
    DEFAULT_BINS,
    DEFAULT_HOLDOUT,
    DEFAULT_MAX_RULES,
    DEFAULT_SEED,
    OUTCOME_WON,
    OUTCOMES,
    scoring_tune_recorded,
)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def _num(x: float | None, places: int = 3) -> str:
    return "—" if x is None else f"{x:.{places}f}"


class Command(BaseCommand):
    help = (
        "Learn a scoring model version from leads with known outcomes and propose it for both "
        "managers' sign-off (never activates it). Prints the holdout report of the active version "
        "and the proposal, and a 90-day backtest."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--outcome",
            choices=OUTCOMES,
            default=OUTCOME_WON,
            help="won: won vs lost leads; accepted: MQLs sales accepted vs rejected or recycled",
        )
        parser.add_argument(
            "--holdout",
            type=float,
            default=DEFAULT_HOLDOUT,
            help=f"share of the leads kept out of learning to measure it (default {DEFAULT_HOLDOUT})",
        )
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED, help="fixes the split and the folds"
        )
        parser.add_argument(
            "--exclude-attribute",
            action="append",
            default=[],
            dest="exclude_attributes",
            metavar="NAME",
            help="an attribute never to learn from (repeatable); attributes named post_... are "
            "always left out",
        )
        parser.add_argument(
            "--include-attribute",
            action="append",
            default=[],
            dest="include_attributes",
            metavar="NAME",
            help="an attribute or field to learn from although it was found to be an identifier, "
            "a counter, constant or a leak (repeatable); does not override post_... nor "
            "--exclude-attribute",
        )
        parser.add_argument(
            "--bins",
            type=int,
            default=DEFAULT_BINS,
            help=f"quantile bins per number (default {DEFAULT_BINS})",
        )
        parser.add_argument(
            "--max-rules",
            type=int,
            default=DEFAULT_MAX_RULES,
            help=f"at most this many fit rules, engagement rules aside (default {DEFAULT_MAX_RULES})",
        )
        goal = parser.add_mutually_exclusive_group()
        goal.add_argument(
            "--mqls-per-month",
            type=int,
            metavar="N",
            help="set the MQL threshold to make about N MQLs a month",
        )
        goal.add_argument(
            "--min-precision",
            type=float,
            metavar="P",
            help="set the MQL threshold so that at least P%% of MQLs reach the outcome (e.g. 30)",
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **options):
        try:
            result = scoring_tune_recorded(
                outcome=options["outcome"],
                holdout=options["holdout"],
                seed=options["seed"],
                exclude_attributes=options["exclude_attributes"],
                include_attributes=options["include_attributes"],
                bins=options["bins"],
                max_rules=options["max_rules"],
                mqls_per_month=options["mqls_per_month"],
                min_precision=(
                    None if options["min_precision"] is None else options["min_precision"] / 100
                ),
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        if options["json"]:
            self.stdout.write(json.dumps(result.as_json(), indent=2, ensure_ascii=False))
            return
        self._print(result.report)
        style = self.style.SUCCESS if result.status == "proposed" else self.style.WARNING
        self.stdout.write(style(result.message))

    def _print(self, report: dict) -> None:
        out = self.stdout.write
        leads, model = report["leads"], report["model"]
        words = report["outcome_words"]
        out(
            f"Outcome: {report['outcome']} ({leads['positives']:,} {words['positive']}, "
            f"{leads['negatives']:,} {words['negative']}); training {leads['train']:,}, holdout "
            f"{leads['holdout']:,} (seed {report['seed']})."
        )
        excluded = report.get("excluded_columns")
        if excluded:
            out("Left out of learning:")
            for column in excluded:
                out(f"  {column['field']} ({column['reason']}): {column['detail']}")
        elif report["excluded_attributes"]:
            out(f"Excluded attributes: {', '.join(report['excluded_attributes'])}.")
        for column in report.get("included_columns", ()):
            out(
                f"  {column['field']} learned from on request (--include-attribute), although: "
                f"{column['detail']}"
            )
        out(
            f"Rules: {model['fit_rules']} fit, {model['engagement_rules']} engagement "
            f"(at most {model['max_rules']} fit rules, chosen from "
            f"{report['candidates']['columns']} candidate columns by {model['method']}); "
            f"{model['points_per_logit']} points per unit of log-odds."
        )
        t = report["thresholds"]
        out(
            f"MQL: total ≥ {t['mql_total']} and fit ≥ {t['mql_fit']}; grades A ≥ {t['grade_a']}, "
            f"B ≥ {t['grade_b']}, C ≥ {t['grade_c']}."
        )
        models = [("proposal", report["proposal"])]
        if report["active"]:
            models.insert(0, (f"active {report['active']['label']}", report["active"]))
        out("")
        out("Holdout          AUC    MQLs  precision  recall")
        for name, r in models:
            m = r["mql"]
            out(
                f"{name:<15} {_num(r['auc'])}  {m['qualified']:>6,}  {_pct(m['precision']):>9}"
                f"  {_pct(m['recall']):>6}"
            )
        out("")
        out("Lift by decile (best first): " + " | ".join(name for name, _ in models))
        for i in range(len(models[0][1]["bands"])):
            cells = []
            for _, r in models:
                band = r["bands"][i]
                cells.append(
                    f"{band['leads']:>6,} leads {_pct(band['rate']):>6} lift "
                    f"{_num(band['lift'], 2):>5}"
                )
            out(f"  {i + 1:>2}  " + "  |  ".join(cells))
        t = report["thresholds"]
        if t.get("expected_mqls_per_month") is not None:
            out(
                f"Expected: about {t['expected_mqls_per_month']:,.0f} MQLs a month "
                f"({t['qualifying_share']:.1%} of about {t['leads_per_month']:,.0f} leads a month)."
            )
        else:
            out(
                f"Expected: {t['qualifying_share']:.1%} of the leads qualify (no lead arrived in "
                "the last 90 days to count a month by)."
            )
        verdict = report.get("verdict")
        if verdict:
            out("")
            out(("" if verdict["safe"] else "WARNING: ") + verdict["message"])
        oot = report.get("out_of_time") or {}
        out("")
        if oot.get("possible"):
            active = f", active {_num(oot['active_auc'])}" if oot.get("active_auc") else ""
            out(
                f"Out of time: learned from the {oot['older']:,} older outcomes, measured on the "
                f"{oot['newer']:,} since {oot['since'][:10]}: AUC {_num(oot['auc'])}{active}."
            )
        elif oot:
            out(f"Out of time: {oot['reason']}")
