"""`{% scoring_calibration model as calibration %}` (the version page) and
`{% lead_calibration lead as calibrated %}` (the lead page): the calibrated shares of
leads.scoring.calibration, so that the templates need nothing from their views."""

from django import template

from leads.models import Lead
from leads.scoring.calibration import (
    Calibration,
    LeadCalibration,
    scoring_model_calibration,
)
from leads.scoring.calibration import (
    lead_calibration as lead_calibration_of,
)
from leads.scoring.models import ScoringModel

register = template.Library()


@register.simple_tag
def scoring_calibration(model: ScoringModel | None) -> Calibration | None:
    return scoring_model_calibration(model) if model is not None else None


@register.simple_tag
def lead_calibration(lead: Lead | None) -> LeadCalibration | None:
    return lead_calibration_of(lead) if lead is not None else None
