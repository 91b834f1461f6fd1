from django import forms

from alignment.lib.errors import DomainError, PermissionDenied
from alignment.lib.money import format_money
from alignment.lib.timezones import DATETIME_LOCAL_FORMAT, DATETIME_LOCAL_INPUT_FORMATS
from alignment.models import SALES_ROLES, Role, User
from alignment.permissions import POLICY
from leads.lifecycle import (
    ALLOWED_MOVES,
    DEAL_VALUE_REQUIRED,
    MOVE_ACTION,
    REASON_REQUIRED,
    move_actor_check,
    move_reasons,
)
from leads.models import (
    LOGGED_TOUCHPOINT_KINDS,
    SALES_TOUCHPOINT_KINDS,
    Lead,
    Reason,
    Stage,
    TouchpointKind,
)
from leads.routing import rep_open_leads
from leads.services import touchpoint_actor_check


class MoveForm(forms.Form):
    """The moves the viewer may make from the lead's stage (the lifecycle's own check decides),
    each with only the reasons that move accepts."""

    to = forms.ChoiceField(label="Move to", choices=Stage.choices)
    reason = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    deal_value = forms.DecimalField(required=False, max_digits=14, decimal_places=2)

    def __init__(self, *args, lead: Lead, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.lead = lead
        self.moves = [to for to in ALLOWED_MOVES[lead.stage] if _may_move(lead, to, user)]
        # why nothing is offered, in the lifecycle's words (e.g. "... is not assigned to you")
        self.refusal = "" if self.moves else _move_refusal(lead, user)
        active = list(Reason.objects.filter(active=True))
        self.reasons = {to: move_reasons(to=to, reasons=active) for to in self.moves}
        self.reasons = {to: reasons for to, reasons in self.reasons.items() if reasons}
        self.fields["to"].choices = [(to, Stage(to).label) for to in self.moves]
        self.fields["to"].error_messages["invalid_choice"] = (
            f"That is not a move you can make from {lead.get_stage_display()}; "
            "choose one of the moves listed."
        )
        reason = self.fields["reason"]
        reason.choices = [("", "(choose a reason)")] + [
            (Stage(to).label, [(r.pk, r.label) for r in reasons])
            for to, reasons in self.reasons.items()
        ]
        reason.error_messages["invalid_choice"] = "Choose one of the reasons listed for this move."
        self.deal_value_moves = [to for to in self.moves if to in DEAL_VALUE_REQUIRED]
        if lead.deal_value is not None:
            self.fields[
                "deal_value"
            ].help_text = f"Leave empty to keep {format_money(lead.deal_value)}."

    def clean(self):
        data = super().clean()
        to, reason_id = data.get("to"), data.get("reason")
        if to is None:
            return data
        fitting = {r.pk: r for r in self.reasons.get(to, [])}
        if reason_id is not None and to in REASON_REQUIRED and reason_id not in fitting:
            self.add_error(
                "reason",
                f"That reason is not one for {Stage(to).label}; choose one listed under it.",
            )
        # a move that takes no reason ignores one left selected for another move
        data["reason"] = fitting.get(reason_id)
        return data

    def reason_groups(self) -> list[tuple[str, str, list[Reason]]]:
        """(stage, label, reasons) per move that needs a reason: the page shows the chosen one."""
        return [(to, Stage(to).label, reasons) for to, reasons in self.reasons.items()]


def _may_move(lead: Lead, to: str, user: User) -> bool:
    try:
        move_actor_check(lead=lead, to=to, by=user, system="")
    except DomainError:
        return False
    return True


def _move_refusal(lead: Lead, user: User) -> str:
    moves = ALLOWED_MOVES[lead.stage]
    if not moves:
        return f"{lead.get_stage_display()} is a final stage: there is no move from it."
    for to in moves:
        try:
            move_actor_check(lead=lead, to=to, by=user, system="")
        except PermissionDenied:
            continue
        except DomainError as exc:
            return exc.message
    names = ", ".join(Stage(to).label for to in moves)
    roles = {role for to in moves for role in POLICY[MOVE_ACTION[to]] if role != Role.ADMIN}
    who = " and ".join(f"{label.lower()}s" for value, label in Role.choices if value in roles)
    return (
        f"From {lead.get_stage_display()} the lead moves to {names}; your role does not make "
        f"these moves ({who} do)."
    )


class TouchpointForm(forms.Form):
    """The touchpoint kinds the viewer may log on this lead (touchpoint_record's own check)."""

    kind = forms.ChoiceField(choices=TouchpointKind.choices)
    # naive input is read in the zone active for the request: the person's working_timezone
    occurred_at = forms.DateTimeField(
        required=False,
        help_text="Leave empty for now.",
        input_formats=DATETIME_LOCAL_INPUT_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL_FORMAT),
    )
    note = forms.CharField(required=False, max_length=500)

    def __init__(self, *args, lead: Lead, user: User, **kwargs):
        # the lead page holds several forms with a note: each gets ids of its own
        kwargs.setdefault("auto_id", "id_touchpoint_%s")
        super().__init__(*args, **kwargs)
        kinds, self.refusal = [], ""
        for kind, label in ((k.value, k.label) for k in LOGGED_TOUCHPOINT_KINDS):
            try:
                touchpoint_actor_check(lead=lead, kind=kind, by=user)
            except DomainError as exc:
                # the sales kinds' refusal names the owner rule: the one worth showing
                if kind in SALES_TOUCHPOINT_KINDS and not isinstance(exc, PermissionDenied):
                    self.refusal = exc.message
                continue
            kinds.append((kind, label))
        self.fields["kind"].choices = kinds
        self.fields["kind"].error_messages["invalid_choice"] = (
            "That is not a kind of touchpoint you can log on this lead; choose one listed."
        )
        if not kinds and not self.refusal:
            self.refusal = "Your role logs no touchpoints."


class RepChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, rep: User) -> str:
        state = "available" if rep.available else "away"
        return f"{rep} — {state}, {rep.open_leads} of {rep.capacity} open"


class AssignForm(forms.Form):
    """A rep with his availability and open load; an away or full rep needs `confirm`."""

    rep = RepChoiceField(queryset=User.objects.none(), empty_label="(choose a rep)")
    note = forms.CharField(required=False, max_length=500)
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "id_assign_%s")
        super().__init__(*args, **kwargs)
        reps = list(User.objects.filter(is_active=True, role__in=SALES_ROLES).order_by("username"))
        loads = rep_open_leads(rep_ids=[r.pk for r in reps])
        for rep in reps:
            rep.open_leads = loads[rep.pk]
        self.reps = reps
        field = self.fields["rep"]
        field.queryset = User.objects.filter(pk__in=[r.pk for r in reps])
        # the reps read once: the select and the check use these rows, not a query per option
        field.choices = [("", field.empty_label)] + [
            (rep.pk, field.label_from_instance(rep)) for rep in reps
        ]
        self._by_pk = {rep.pk: rep for rep in reps}

    def clean_rep(self) -> User:
        rep = self.cleaned_data["rep"]
        return self._by_pk.get(rep.pk, rep)

    def warning(self) -> str:
        """Why giving the lead to this rep deserves a second look, or "" (asked only when valid)."""
        rep = self.cleaned_data["rep"]
        problems = []
        if not rep.available:
            problems.append(f"{rep} is away (not taking new leads)")
        if rep.open_leads >= rep.capacity:
            problems.append(
                f"{rep} is full: {rep.open_leads} open leads for a capacity of {rep.capacity}"
            )
        if not problems or self.cleaned_data["confirm"]:
            return ""
        return "; ".join(problems) + "."


class MergeForm(forms.Form):
    duplicate = forms.CharField(
        label="Duplicate lead (id, email or external id)",
        help_text="Its history and touchpoints move to this lead; the duplicate is removed.",
    )

    def clean_duplicate(self) -> Lead:
        value = self.cleaned_data["duplicate"].strip()
        lead = None
        if value.isdigit():
            lead = Lead.objects.filter(pk=int(value)).first()
        lead = lead or Lead.objects.filter(email=value.lower()).first()
        lead = lead or Lead.objects.filter(external_id=value).first()
        if lead is None:
            raise forms.ValidationError(f"No lead with id, email or external id “{value}”.")
        return lead
