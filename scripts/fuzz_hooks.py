"""Schemathesis hooks for scripts/fuzz-api (loaded through scripts/schemathesis.toml).

A few rules of the API relate two values, or a value and the app's state, in ways a JSON Schema
cannot state: a time window's `to` after its `from`, a visit's end after its start, a booking's
customer existing in the account, a cursor the API issued, a Stripe signature over the body, an
`Idempotency-Key` not used before. Schema-valid data generated at random breaks them most of the
time, and the API rightly refuses it, so `positive_data_acceptance` would fail on the fuzzer's
data, not on the API.

`before_call` repairs exactly those relations just before a request is sent, and only where
every value involved is valid on its own, so a request made invalid on purpose stays invalid;
each repair names the rule it satisfies and where it is enforced. One more step is for coverage
only (the card routes get a customer that exists). Nothing here changes what a check accepts.

MIO_FUZZ_BASE, MIO_FUZZ_ACCOUNT_TOKEN, MIO_FUZZ_CURSOR and MIO_FUZZ_WEBHOOK_SECRET are set by
scripts/fuzz-api.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import re
import time
from collections.abc import MutableMapping

import requests
import schemathesis
from schemathesis.core import NOT_SET
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import TestPhase

CUSTOMER_ID = re.compile(r"^cus_[0-9a-hjkmnp-tv-z]{25}[048cgmrw]$")
CURSOR = re.compile(r"^[0-9a-hjkmnp-tv-z]{19}[0g]$")
IDEMPOTENCY_KEY = re.compile(r"^[!-~](?:[ -~]{0,253}[!-~])?$")
SENT = itertools.count()
TRIGGERS = ("before_start", "after_end", "after_complete")
DEFAULT_STALE_MINUTES = 10080
# A key the core accepts (`whsec_` + base64 of 32 bytes), for a webhook set without one.
WEBHOOK_SECRET = "whsec_" + "A" * 43 + "="

# Lists whose `to` must be later than `from` (shared/src/list.rs `window_error`), and the
# bookings list, whose `to` must not be before `from`
# (components/customer-api/src/handlers/bookings.rs `parse_filter`).
STRICT_WINDOWS = ("/api/v1/activity", "/api/v1/customers/{id}/activity", "/api/v1/feedback")
WINDOWS = (*STRICT_WINDOWS, "/api/v1/bookings")
CARD_ROUTES = (
    "/api/v1/customers/{id}/payment-method",
    "/api/v1/customers/{id}/payment-method-requests",
)


RFC3339 = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))$"
)
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# Years 0000-9999, as RFC 3339 writes them.
MIN_MS, MAX_MS = -62_167_219_200_000, 253_402_300_799_999


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day


def _instant(value: object) -> int | None:
    """`value` as milliseconds since the epoch, truncated to the millisecond as the API keeps
    instants (shared/src/time.rs `Timestamp`), when it is an RFC 3339 timestamp; else None."""
    if not isinstance(value, str):
        return None
    match = RFC3339.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction, sign, offset_h, offset_m = match.group(7), match.group(8), match.group(9), match.group(10)
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60):
        return None
    if _civil_from_days(_days_from_civil(year, month, day)) != (year, month, day):
        return None  # 31 April, 29 February of a common year, ...
    millis = (fraction or "0")[:3].ljust(3, "0")
    offset = 0
    if sign:
        if int(offset_h) > 23 or int(offset_m) > 59:
            return None
        offset = (int(offset_h) * 60 + int(offset_m)) * 60_000 * (1 if sign == "+" else -1)
    return (
        _days_from_civil(year, month, day) * DAY_MS
        + ((hour * 60 + minute) * 60 + second) * 1000
        + int(millis)
        - offset
    )


def _text(instant: int) -> str | None:
    """`instant` (epoch milliseconds) in RFC 3339, UTC; None outside years 0000-9999."""
    if not MIN_MS <= instant <= MAX_MS:
        return None
    days, rest = divmod(instant, DAY_MS)
    year, month, day = _civil_from_days(days)
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z"


def _repair_window(case: schemathesis.Case) -> None:
    """`from` < `to` (`from` <= `to` for bookings): swap an inverted window, widen an empty one."""
    query = case.query
    if not isinstance(query, MutableMapping):
        return
    start, end = _instant(query.get("from")), _instant(query.get("to"))
    if start is None or end is None:
        return
    if end < start:
        query["from"], query["to"] = query["to"], query["from"]
    elif end == start and case.operation.path in STRICT_WINDOWS:
        later, earlier = _text(start + HOUR_MS), _text(start - HOUR_MS)
        if later is not None:
            query["to"] = later
        elif earlier is not None:
            query["from"] = earlier


def _repair_visit(body: MutableMapping) -> None:
    """`start_at` < `end_at` <= `start_at` + 7 days (shared/src/booking.rs `visit`)."""
    start, end = _instant(body.get("start_at")), _instant(body.get("end_at"))
    if start is None or end is None:
        return
    if start < end <= start + 7 * DAY_MS:
        return
    later = _text(start + 2 * HOUR_MS)
    if later is not None:
        body["end_at"] = later
    else:
        # The start is at the end of time: the visit ends there instead.
        body["start_at"], body["end_at"] = _text(MAX_MS - 2 * HOUR_MS), _text(MAX_MS)


def _fresh_customer() -> str | None:
    """A customer of the fuzzed account, made for this one request (the fuzzer may delete any
    customer it finds)."""
    response = requests.post(
        os.environ["MIO_FUZZ_BASE"] + "/api/v1/customers",
        json={"name": "Fuzz customer"},
        headers={"Authorization": "Bearer " + os.environ["MIO_FUZZ_ACCOUNT_TOKEN"]},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["id"]


def _repair_booking(body: MutableMapping) -> None:
    # A booking for a customer not in the account is a 400 on `customer_id`
    # (components/customer-api/src/handlers/bookings.rs `create`).
    if isinstance(body.get("customer_id"), str) and CUSTOMER_ID.match(body["customer_id"]):
        body["customer_id"] = _fresh_customer()
    _repair_visit(body)
    # `recurrence.until` must not be before `start_at` (shared/src/booking.rs `parse_recurrence`).
    recurrence = body.get("recurrence")
    start = _instant(body.get("start_at"))
    if isinstance(recurrence, MutableMapping) and start is not None:
        until = _instant(recurrence.get("until"))
        if until is not None and until < start:
            recurrence["until"] = body["start_at"]


def _stateful(case: schemathesis.Case) -> bool:
    return case.meta is not None and case.meta.phase.name == TestPhase.STATEFUL


def _negative_at(case: schemathesis.Case, location: ParameterLocation) -> bool:
    meta = case.meta
    return meta is not None and meta.is_negative_at(location)


def _whole(value: object) -> int | None:
    """`value` as the whole number it is (`30` or `30.0`), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _repair_rules(body: MutableMapping) -> None:
    feedback = body.get("feedback")
    if isinstance(feedback, MutableMapping):
        # `stale_after_minutes` (absent or null: 10080) >= `delay_minutes`
        # (shared/src/rules_body.rs `parse_feedback`).
        delay, stale = _whole(feedback.get("delay_minutes")), feedback.get("stale_after_minutes")
        stale = DEFAULT_STALE_MINUTES if stale is None else _whole(stale)
        if delay is not None and stale is not None and stale < delay:
            feedback["stale_after_minutes"] = delay
    payment = body.get("payment")
    if isinstance(payment, MutableMapping) and isinstance(payment.get("service_types"), MutableMapping):
        # Service type names must differ once trimmed (shared/src/rules_body.rs `parse_payment`).
        seen: set[str] = set()
        for name in list(payment["service_types"]):
            if name.strip() in seen:
                del payment["service_types"][name]
            seen.add(name.strip())


def _payload(case: schemathesis.Case) -> bytes | None:
    """The body bytes that are sent: what `requests` sends for `json=` (json.dumps with its
    default separators), or the text or bytes as they are."""
    body = case.body
    if body is NOT_SET:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str) and case.media_type and not case.media_type.endswith("json"):
        return body.encode("utf-8")
    try:
        return json.dumps(body, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):
        return None


def _unique_idempotency_key(case: schemathesis.Case) -> None:
    """An `Idempotency-Key` is bound to the first request it came with: the same key with another
    request answers 422, and with the same request it replays the first answer for 24 hours
    (see `components.parameters.IdempotencyKey`), which may name a customer or booking deleted
    since. The fuzzer draws keys from a small space and sends them again and again, so a
    well-formed key gets a suffix of its own for every request sent: each request runs."""
    headers = case.headers
    if not isinstance(headers, MutableMapping) or _negative_at(case, ParameterLocation.HEADER):
        return
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and IDEMPOTENCY_KEY.match(key):
        headers["Idempotency-Key"] = f"{key[:200].rstrip()}.{next(SENT):08}"


def _sign_stripe_event(case: schemathesis.Case) -> None:
    """A valid `Stripe-Signature` over the body that is sent (shared/src/webhook.rs `verify`),
    unless the header is absent or is itself what this request gets wrong."""
    headers = case.headers
    if not isinstance(headers, MutableMapping) or "Stripe-Signature" not in headers:
        return
    if _negative_at(case, ParameterLocation.HEADER):
        return
    payload = _payload(case)
    if payload is None:
        return
    timestamp = str(int(time.time()))
    secret = os.environ["MIO_FUZZ_WEBHOOK_SECRET"].encode()
    digest = hmac.new(secret, timestamp.encode() + b"." + payload, hashlib.sha256).hexdigest()
    headers["Stripe-Signature"] = f"t={timestamp},v1={digest}"


@schemathesis.hook
def before_call(context, case, kwargs):
    operation = case.operation
    path, method = operation.path, operation.method.upper()
    # Cursors carry a check the fuzzer cannot compute (shared/src/list.rs `Cursor::decode`):
    # a well-formed one becomes a cursor this API issued.
    if isinstance(case.query, MutableMapping) and isinstance(case.query.get("cursor"), str):
        if CURSOR.match(case.query["cursor"]):
            case.query["cursor"] = os.environ["MIO_FUZZ_CURSOR"]
    if method == "GET" and path in WINDOWS:
        _repair_window(case)
    # Coverage, not a repair: the card routes answer 404 for a customer not in the account before
    # they read anything else, and a drawn id never is one. Outside the stateful phase (whose
    # links pass the id of a customer it created, and check that it is found), they get one.
    if path in CARD_ROUTES and not _stateful(case):
        own = (case.path_parameters or {}).get("id")
        if isinstance(own, str) and CUSTOMER_ID.match(own):
            case.path_parameters["id"] = _fresh_customer()
    # `customer_id` in the query, when given, is the path's customer
    # (components/customer-api/src/handlers/activity.rs `of_customer`).
    if method == "GET" and path == "/api/v1/customers/{id}/activity" and isinstance(case.query, MutableMapping):
        given, own = case.query.get("customer_id"), (case.path_parameters or {}).get("id")
        if isinstance(given, str) and CUSTOMER_ID.match(given) and isinstance(own, str):
            case.query["customer_id"] = own
    body = case.body
    if isinstance(body, MutableMapping):
        _repair_body(method, path, case, body)
    _unique_idempotency_key(case)
    # Last: the signature covers the body as it is sent.
    if method == "POST" and path == "/webhooks/stripe":
        _sign_stripe_event(case)


def _repair_body(method: str, path: str, case: schemathesis.Case, body: MutableMapping) -> None:
    if method == "POST" and path == "/api/v1/bookings":
        _repair_booking(body)
    elif method == "PATCH" and path == "/api/v1/bookings/{id}":
        _repair_visit(body)
    elif method == "PUT" and path == "/api/v1/settings/automations":
        _repair_rules(body)
    elif method == "PUT" and path == "/api/v1/customers/{id}/automations/{automation}":
        # A feedback override's timing counts from completion
        # (components/override-toggle/src/body.rs `follows_completion`).
        timing = body.get("timing")
        automation = (case.path_parameters or {}).get("automation")
        if automation == "feedback" and isinstance(timing, MutableMapping) and timing.get("trigger") in TRIGGERS:
            timing["trigger"] = "after_complete"
    elif method == "PUT" and path == "/api/v1/settings/notifications":
        # The first webhook needs its secret; later ones keep the stored one when it is left
        # out (shared/src/notify.rs `parse_put`), and the fuzzer may have cleared it meanwhile.
        webhook = body.get("webhook")
        if isinstance(webhook, MutableMapping) and webhook.get("secret") is None:
            webhook["secret"] = WEBHOOK_SECRET
