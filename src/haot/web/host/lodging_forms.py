"""The lodging page's forms and the API's bodies: a lodging's values as the form shows them
(new, as it is, or as it was sent), its refund tiers as rows, and the form as the API's body."""

from __future__ import annotations

from typing import Any

from haot.web.forms import given

TIER_ROWS = 4
LODGING_FIELDS = (
    "name",
    "description",
    "address",
    "city",
    "district",
    "latitude",
    "longitude",
    "amenities",
    "image_urls",
    "max_guests",
    "check_in_time",
    "check_out_time",
    "max_nights",
    "cancellation_policy",
)
OPTIONAL_LODGING_FIELDS = ("max_guests", "check_in_time", "check_out_time", "max_nights")
ROOM_TYPE_FIELDS = ("name", "capacity", "total_rooms")
# A new lodging's form starts from these (the host changes them; the API judges them).
NEW_LODGING = {
    "max_guests": "2",
    "check_in_time": "15:00",
    "check_out_time": "11:00",
    "max_nights": "30",
    "tiers": [("7", "100"), ("3", "50"), ("0", "0")],
}


def lodging_form(lodging: dict[str, Any] | None) -> dict[str, Any]:
    """The lodging form's values: a new lodging's starting values, or the lodging as it is."""
    if lodging is None:
        return dict.fromkeys(LODGING_FIELDS, "") | NEW_LODGING | _tier_rows(NEW_LODGING)
    form: dict[str, Any] = {
        name: str(lodging.get(name, ""))
        for name in ("name", "description", "address", "latitude", "longitude", "max_guests")
    }
    form |= {
        "city": lodging["region"]["city"],
        "district": lodging["region"]["district"],
        "amenities": ", ".join(lodging["amenities"]),
        "image_urls": "\n".join(lodging["image_urls"]),
        "check_in_time": str(lodging["check_in_time"])[:5],
        "check_out_time": str(lodging["check_out_time"])[:5],
        "max_nights": str(lodging["max_nights"]),
    }
    tiers = [
        (str(tier["days_before"]), str(tier["refund_percent"]))
        for tier in lodging["cancellation_policy"]
    ]
    return form | _tier_rows({"tiers": tiers})


def posted_lodging_form(posted: dict[str, str]) -> dict[str, Any]:
    """The lodging form as it was sent (kept when the API refuses it)."""
    form: dict[str, Any] = {name: posted.get(name, "") for name in LODGING_FIELDS}
    tiers = [(days, percent) for days, percent in _posted_tiers(posted)]
    return form | _tier_rows({"tiers": tiers})


def _tier_rows(values: dict[str, Any]) -> dict[str, Any]:
    """The refund tiers as rows of the form, with empty rows to add more (up to the API's 10)."""
    tiers = list(values["tiers"])
    rows = max(TIER_ROWS, min(len(tiers) + 1, 10))
    return {"tiers": tiers + [("", "")] * (rows - len(tiers))}


def _posted_tiers(posted: dict[str, str]) -> list[tuple[str, str]]:
    """The refund tiers the form sent: each row with anything in it, in order."""
    rows = []
    for index in range(10):
        days = posted.get(f"days_before_{index}", "").strip()
        percent = posted.get(f"refund_percent_{index}", "").strip()
        if days or percent:
            rows.append((days, percent))
    return rows


def lodging_body(posted: dict[str, str]) -> dict[str, Any]:
    """The API's lodging body from the form (values as typed: the API judges them)."""
    body: dict[str, Any] = {
        "name": posted.get("name", ""),
        "description": posted.get("description", ""),
        "address": posted.get("address", ""),
        "region": {"city": posted.get("city", ""), "district": posted.get("district", "")},
        "latitude": posted.get("latitude", "").strip(),
        "longitude": posted.get("longitude", "").strip(),
        "amenities": [a.strip() for a in posted.get("amenities", "").split(",") if a.strip()],
        "image_urls": [u.strip() for u in posted.get("image_urls", "").splitlines() if u.strip()],
        "cancellation_policy": [
            {"days_before": days, "refund_percent": percent}
            for days, percent in _posted_tiers(posted)
        ],
    }
    return body | given(posted, *OPTIONAL_LODGING_FIELDS)
