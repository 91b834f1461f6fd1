"""Example bodies for the leads API's documentation (drf-spectacular)."""

from sla.api.clocks import CLOCK_EXAMPLE

LEAD_INPUT_EXAMPLE = {
    "email": "jane.doe@acme.example",
    "external_id": "sf-0035g00000XyZ",
    "first_name": "Jane",
    "last_name": "Doe",
    "title": "Head of Operations",
    "company": "Acme GmbH",
    "company_size": 240,
    "industry": "Software",
    "country": "DE",
    "utm_source": "google",
    "utm_medium": "cpc",
    "utm_campaign": "spring-launch",
    "attributes": {"crm_segment": "mid_market", "employees_reported": 240},
}
# `source` (a source key) and `campaign` (an id) name rows set up in the app: {"source":
# "google_ads", "campaign": 12} where those exist

LEAD_PATCH_EXAMPLE = {"title": "VP Operations", "company_size": 300}

LEAD_EXAMPLE = {
    "id": 4411,
    "external_id": "sf-0035g00000XyZ",
    "email": "jane.doe@acme.example",
    "first_name": "Jane",
    "last_name": "Doe",
    "title": "Head of Operations",
    "phone": "",
    "company": "Acme GmbH",
    "industry": "Software",
    "country": "DE",
    "website": "",
    "utm_source": "google",
    "utm_medium": "cpc",
    "utm_campaign": "spring-launch",
    "utm_term": "",
    "utm_content": "",
    "company_size": 240,
    "source": "google_ads",
    "campaign": {"id": 12, "name": "Spring launch"},
    "attributes": {"crm_segment": "mid_market", "employees_reported": 240},
    "owner": {"id": 12, "username": "rita", "email": "rita@example.com"},
    "assigned_at": "2026-11-18T09:12:00Z",
    "stage": "mql",
    "stage_changed_at": "2026-11-18T09:12:00Z",
    "mql_at": "2026-11-18T09:12:00Z",
    "sal_at": None,
    "sql_at": None,
    "opportunity_at": None,
    "won_at": None,
    "lost_at": None,
    "rejected_at": None,
    "recycled_at": None,
    "mql_count": 1,
    "first_sales_touch_at": None,
    "deal_value": None,
    "last_reason": None,
    "fit_score": 45,
    "engagement_score": 27.5,
    "score": 72.5,
    "grade": "A",
    "created_at": "2026-11-18T09:12:00Z",
    "updated_at": "2026-11-18T09:12:00Z",
}

LEAD_DETAIL_EXAMPLE = {
    **LEAD_EXAMPLE,
    "score_explanation": {
        "model": {"id": 3, "label": "v3", "name": "Default model"},
        "at": "2026-11-20T10:00:00+00:00",
        "fit": {
            "score": 45,
            "rules": [
                {
                    "key": "size_200",
                    "label": "200+ employees",
                    "field": "company_size",
                    "value": 240,
                    "points": 20,
                    "group": "",
                }
            ],
            "groups": [],
        },
        "engagement": {"score": 27.5, "half_life_days": 30, "rules": [], "groups": []},
        "total": 72.5,
        "grade": "A",
        "mql": {
            "total_threshold": 60,
            "fit_threshold": 30,
            "qualifies": True,
            "total_short": 0.0,
            "fit_short": 0,
        },
    },
    "sla_clocks": [
        {**CLOCK_EXAMPLE, "status": "pending", "warned_at": None},
    ],
}
