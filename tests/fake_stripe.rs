//! A fake Stripe API for the integration tests: the only Stripe our tests ever talk to.
//!
//! It is a real HTTP/1.1 server (hyper + tokio) on `127.0.0.1:<port 0>`, started per test and
//! stopped when the [`FakeStripe`] is dropped. Components reach it through the `stripe_api_base`
//! variable ([`FakeStripe::url`]) with the key [`FakeStripe::secret_key`].
//!
//! # What it speaks (Stripe API v1 wire format)
//!
//! * Authentication: `Authorization: Bearer <secret key>`, or HTTP Basic with the key as the user
//!   name and an empty password (what `curl -u sk_...:` sends). Anything else: `401` with an
//!   `invalid_request_error`; a wrong key gets Stripe's "Invalid API Key provided:
//!   sk_test_****…" with the key redacted (<https://docs.stripe.com/api/errors>: 401 "No valid API
//!   key provided"). [`FakeStripe::revoke_secret_key`] makes the fake's own key answer that `401`
//!   too (a rolled or deleted key) until [`FakeStripe::restore_secret_key`]: checked before
//!   anything else, so no scripted outcome is used and nothing is saved under a key.
//! * API versions: `Stripe-Version: 2024-06-20` (a date, optionally followed by a release name,
//!   `2025-03-31.basil`) picks the version; without it, [`DEFAULT_API_VERSION`]. Every answer
//!   echoes it in `Stripe-Version`. A malformed version is refused (`400`). The version decides
//!   the default payment methods of a PaymentIntent (below) and is the `api_version` of the events
//!   the request causes.
//! * Bodies are `application/x-www-form-urlencoded` with Stripe's bracket notation for nested
//!   values (`metadata[booking_id]=…`, `payment_method_types[]=card`, `items[0][price]=…`); GET
//!   parameters come in the query string with the same notation. See [`decode_form`].
//! * Every response is pretty-printed JSON and carries a `Request-Id: req_…` header. Errors use
//!   Stripe's envelope `{"error": {"type", "code", "message", "param", "doc_url", …}}` with the
//!   `type` values Stripe documents (`api_error`, `card_error`, `idempotency_error`,
//!   `invalid_request_error`); see <https://docs.stripe.com/api/errors>.
//! * Connected accounts: `Stripe-Account: acct_…` makes the request act on that account. Objects
//!   live in the account they were created on or seeded for (no header = the platform itself);
//!   asking for them from any other account answers `404 resource_missing`, exactly like asking
//!   for an id that does not exist. Any `acct_…` id is taken to be a connected account; a header
//!   without that prefix is refused (`403`, code `account_invalid`, "The provided key
//!   'sk_test_****…' does not have access to account '…' (or that account does not exist).").
//!   [`FakeStripe::revoke_account`] models a connected account that disconnected the platform
//!   (<https://docs.stripe.com/connect/authentication>): until [`FakeStripe::restore_account`],
//!   every request for it gets that `403`, with "Application access may have been revoked."
//!   appended, and nothing is executed or saved (<https://docs.stripe.com/api/errors>: 403 "The
//!   API key doesn't have permissions to perform the request").
//!
//! Endpoints:
//!
//! * `POST /v1/payment_intents`: create (and, with `confirm=true`, confirm) a PaymentIntent;
//!   besides the amount, customer, card, metadata and the like, it takes
//!   `payment_method_types[]` (only `card`), `automatic_payment_methods[enabled]`,
//!   `automatic_payment_methods[allow_redirects]` and `return_url` (see "Payment methods and
//!   `return_url`" below);
//! * `GET /v1/payment_intents/{id}`;
//! * `GET /v1/payment_intents` (list; `customer`, `limit`, `starting_after`): unlike search, this
//!   is read-after-write consistent at Stripe;
//! * `GET /v1/payment_intents/search` (Stripe Search: clauses on `metadata['key']`, `status`,
//!   `currency`, `customer`, `amount`, `created`, joined by `AND` or `OR`, `-` to negate);
//! * `GET /v1/payment_methods/{id}` (card payment methods seeded with
//!   [`FakeStripe::add_payment_method`] or saved through a Checkout Session);
//! * `POST /v1/payment_methods/{id}/detach`, `POST /v1/customers`, `GET` and
//!   `DELETE /v1/customers/{id}`, `POST /v1/checkout/sessions` (setup mode),
//!   `GET /v1/checkout/sessions/{id}`, `GET /v1/setup_intents/{id}`, `POST /v1/refunds` and
//!   `GET /v1/charges/{id}`: see "Card on file" and "Refunds, disputes and connected accounts"
//!   below;
//! * anything else: `404` with Stripe's "unrecognized request URL" error.
//!
//! Parameters are validated the way Stripe does it for these endpoints: unknown ones are refused
//! (`400`, code `parameter_unknown`, `param` naming it), required ones must be present
//! (`parameter_missing`), integers and booleans must parse, metadata must respect Stripe's limits
//! (50 keys, keys up to 40 characters, values up to 500). Parameters Stripe has but this fake
//! does not implement (`expand`, for instance) are refused with a message that says so rather than
//! being silently ignored.
//!
//! # Payment methods and `return_url`
//!
//! Sources: <https://docs.stripe.com/upgrades#2023-08-16>,
//! <https://docs.stripe.com/api/payment_intents/create>,
//! <https://docs.stripe.com/payments/payment-methods/integration-options>.
//!
//! * From API version `2023-08-16` on, a PaymentIntent created *without* `payment_method_types`
//!   has `automatic_payment_methods: {"enabled": true, "allow_redirects": "always"}`: it accepts
//!   the payment methods enabled in the Dashboard (just `card` here, so `payment_method_types`
//!   reads `["card"]`), and its `payment_method_configuration_details` names the account's
//!   `pmc_…`. On older versions no `payment_method_types` means `["card"]` and
//!   `automatic_payment_methods: null`, as it always did.
//! * `automatic_payment_methods[enabled]` (`true`/`false`, required in the hash) and
//!   `automatic_payment_methods[allow_redirects]` (`always` or `never`, only with `enabled=true`)
//!   set it explicitly; `enabled=false` gives `["card"]`. `payment_method_types` together with
//!   `automatic_payment_methods` is refused: "You may only specify one of these parameters:
//!   automatic_payment_methods, payment_method_types."
//! * `return_url` is only accepted with `confirm=true`. Confirming with automatic payment methods
//!   whose `allow_redirects` is not `never` and no `return_url` is refused: `400`
//!   `invalid_request_error`, `param: "return_url"`, with Stripe's "This PaymentIntent is
//!   configured to accept payment methods enabled in your Dashboard. Because some of these
//!   payment methods might redirect your customer off of your page, you must provide a
//!   `return_url`. …". Like every parameter refusal, nothing is created and nothing is saved under
//!   the idempotency key. So a client on `2023-08-16` or later that confirms server-side must send
//!   `payment_method_types[]=card`, or `automatic_payment_methods[enabled]=true` with
//!   `automatic_payment_methods[allow_redirects]=never`, or a `return_url`.
//! * With a `return_url`, an on-session confirmation that needs 3-D Secure answers
//!   `next_action: {"type": "redirect_to_url", "redirect_to_url": {"url", "return_url"}}` instead
//!   of `use_stripe_sdk`
//!   (<https://docs.stripe.com/payments/3d-secure/authentication-flow#manual-redirect>).
//!
//! # Outcomes of a charge
//!
//! `POST /v1/payment_intents` with `confirm=true` takes its outcome from a script queue
//! ([`FakeStripe::push_outcome`]); an empty queue means [`Outcome::Succeed`]. The shapes mirror
//! Stripe's documentation:
//!
//! * success: `200`, the PaymentIntent with `status: "succeeded"`, `amount_received`, and the
//!   `latest_charge` id (`requires_capture` instead with `capture_method=manual`);
//! * card declined: `402` with `type: "card_error"`, `code: "card_declined"` (or the specific code
//!   Stripe uses for `expired_card`, `incorrect_cvc`, `processing_error`, …), the issuer's
//!   `decline_code`, the failed `charge` id, the `payment_method`, and the PaymentIntent embedded
//!   in `error.payment_intent` in status `requires_payment_method` with `last_payment_error` set
//!   and `payment_method: null` (<https://docs.stripe.com/declines/codes>);
//! * authentication needed: an off-session confirmation (`off_session=true`, or
//!   `error_on_requires_action=true`) cannot ask the customer to authenticate, so Stripe fails it:
//!   `402`, `type: "card_error"`, `code` and `decline_code` both `authentication_required`, and
//!   the embedded PaymentIntent is in `requires_payment_method`, *not* `requires_action`
//!   (<https://support.stripe.com/questions/manual-confirmation-for-off-session-payments-requiring-strong-customer-authentication-%28sca%29>,
//!   <https://docs.stripe.com/declines/codes>). An on-session confirmation instead answers `200`
//!   with `status: "requires_action"` and a `next_action` of type `use_stripe_sdk`;
//! * slow and broken answers after the charge went through: [`Outcome::ChargeThenDropConnection`]
//!   (the connection closes unanswered), [`Outcome::ChargeThenHang`] (no answer ever),
//!   [`Outcome::ChargeThenTrickle`] (`200` and its headers at once, then the body one byte per
//!   interval, the JSON and then spaces, for as long as the client stays: a host with no request
//!   timeout never gets to the end), and [`Outcome::ChargeThenServerError`] (the PaymentIntent
//!   succeeded and its events are recorded, but the answer is `500 api_error`, saved under the
//!   key and replayed: <https://docs.stripe.com/error-low-level#server-errors>). All of them save
//!   the result under the idempotency key first, so a same-key retry never charges twice.
//!
//! # Card on file
//!
//! Sources: <https://docs.stripe.com/payments/save-and-reuse?platform=web&ui=stripe-hosted>,
//! <https://docs.stripe.com/api/customers>, <https://docs.stripe.com/api/checkout/sessions/create>,
//! <https://docs.stripe.com/api/setup_intents/object>,
//! <https://docs.stripe.com/api/payment_methods/detach>.
//!
//! * `POST /v1/customers` (`email`, `name`, `phone`, `description`, `metadata[…]`, all optional)
//!   creates a `cus_…` Customer (`invoice_settings.default_payment_method: null`, `livemode:
//!   false`, …) and records `customer.created`. `GET /v1/customers/{id}` retrieves it; customers
//!   seeded by [`FakeStripe::add_payment_method`] exist too (without an event). `DELETE
//!   /v1/customers/{id}` answers `{"id", "object": "customer", "deleted": true}`, records
//!   `customer.deleted` (the customer as it was) and detaches the customer's payment methods
//!   (`customer: null`, unusable from then on; no `payment_method.detached` events, which Stripe
//!   does not document for this case). A deleted customer then retrieves as that `deleted: true`
//!   stub, as Stripe documents; deleting it again, or naming it in a new PaymentIntent or Checkout
//!   Session, is refused as for an unknown customer. [`FakeStripe::customers`] lists them all.
//! * `POST /v1/checkout/sessions` takes `mode` (required; only `setup` is implemented, `payment`
//!   and `subscription` are refused with a `400` saying so), `success_url` (required for the
//!   Stripe-hosted page, an `http(s)` URL), `cancel_url`, `customer` (must exist in the account:
//!   else `400 resource_missing`, `param: "customer"`), `payment_method_types[]` (only `card`),
//!   `currency` (required when `payment_method_types` is not given, as Stripe requires it in
//!   setup mode), `metadata[…]`, `setup_intent_data[metadata][…]`,
//!   `setup_intent_data[description]`, `expires_at` (30 minutes to 24 hours from now; default
//!   24 hours) and `client_reference_id`. It answers an open session: `{"id": "cs_test_…",
//!   "object": "checkout.session", "mode": "setup", "status": "open", "url":
//!   "https://checkout.stripe.com/c/pay/cs_test_…", "setup_intent": null, …}`. No event: Stripe
//!   has none for a created session. `GET /v1/checkout/sessions/{id}` retrieves it;
//!   [`FakeStripe::checkout_sessions`] lists them all.
//! * What the customer does on the hosted page is up to the test:
//!   [`FakeStripe::complete_checkout_session`] (a card PaymentMethod attached to the session's
//!   customer, a succeeded `seti_…` SetupIntent with `usage: "off_session"` and the
//!   `setup_intent_data` metadata, the session `complete` with `setup_intent` set and `url:
//!   null`; events `setup_intent.created`, `payment_method.attached`, `setup_intent.succeeded`,
//!   `checkout.session.completed`, in that order) or [`FakeStripe::expire_checkout_session`]
//!   (`expired`, `checkout.session.expired`). `GET /v1/setup_intents/{id}` retrieves the
//!   SetupIntent.
//! * `POST /v1/payment_methods/{id}/detach` answers the PaymentMethod with `customer: null` and
//!   records `payment_method.detached` with that object. Stripe documents
//!   `data.previous_attributes` "only [for] events of type `*.updated`"
//!   (<https://docs.stripe.com/api/events/object>), so the event has none: the customer it was
//!   attached to is not in the event. A detached PaymentMethod cannot be used again (a
//!   PaymentIntent naming it is refused, `param: "payment_method"`), and detaching one that is
//!   not attached is a `400`. [`FakeStripe::detach_payment_method`] does the same as a test
//!   helper. [`FakeStripe::update_card`] changes a card's expiry (and last 4 digits) as the card
//!   network's updater does (`payment_method.automatically_updated`,
//!   <https://docs.stripe.com/saved-cards#automatic-card-updates>) or as an edit does
//!   (`payment_method.updated`), with `data.previous_attributes: {"card": {…}}`.
//!
//! # Refunds, disputes and connected accounts
//!
//! Sources: <https://docs.stripe.com/api/refunds/create>, <https://docs.stripe.com/api/charges/object>,
//! <https://docs.stripe.com/api/disputes/object>, <https://docs.stripe.com/api/accounts/object>,
//! <https://docs.stripe.com/connect/webhooks>.
//!
//! * Every payment attempt that reached the card (a PaymentIntent's `latest_charge`) has a
//!   Charge, retrievable with `GET /v1/charges/{id}`: `amount`, `amount_captured`,
//!   `amount_refunded`, `refunded`, `disputed`, `captured`, `paid`, `status`, `currency`,
//!   `payment_intent`, and the PaymentIntent's `metadata` copied onto it, as Stripe does for the
//!   charges of a PaymentIntent. It is the object of the `charge.*` events.
//! * `POST /v1/refunds` takes `payment_intent` or `charge` (one is required), `amount` (default:
//!   what is left), `reason` (`duplicate`, `fraudulent`, `requested_by_customer`) and
//!   `metadata[…]`, and answers a `re_…` Refund with `status: "succeeded"`. The charge's
//!   `amount_refunded` grows and `refunded` becomes true once it is fully refunded; events
//!   `refund.created` then `charge.refunded` (the charge after the refund). More than what is
//!   left is a `400` with `param: "amount"` and Stripe's "Refund amount ($150.00) is greater than
//!   charge amount ($125.00)" ("… than unrefunded amount on charge (…)" after a partial refund);
//!   a fully refunded charge is `charge_already_refunded`; an intent without a succeeded charge
//!   is a `400` too. [`FakeStripe::refund`] goes through the same code.
//! * [`FakeStripe::dispute`] opens a dispute on a succeeded charge: `charge.dispute.created`
//!   with a `dp_…` Dispute in `needs_response`, the charge then `disputed: true`.
//! * [`FakeStripe::set_charges_enabled`] records `account.updated` (the Account with
//!   `charges_enabled` and `requirements.disabled_reason`, plus `data.previous_attributes`);
//!   while charges are disabled, a PaymentIntent with `confirm=true` on that account is refused
//!   with `400` and Stripe's "This Connect account cannot currently make live charges. …".
//!   [`FakeStripe::deauthorize`] records `account.application.deauthorized` (the platform's
//!   `ca_…` application as object) and then behaves as [`FakeStripe::revoke_account`].
//!
//! # Idempotency, as Stripe documents it
//!
//! Sources: <https://docs.stripe.com/api/idempotent_requests>, <https://docs.stripe.com/idempotency>,
//! <https://docs.stripe.com/error-low-level> (content errors, server errors, idempotency).
//!
//! * This applies to every `POST` endpoint (PaymentIntents, customers, Checkout Sessions,
//!   detach, refunds); `DELETE` and `GET` requests are not saved under a key (Stripe: sending
//!   keys with them "has no effect").
//! * A `POST` with an `Idempotency-Key` (at most 255 characters) has its resulting status and
//!   body saved per (account, key), *once execution of the endpoint has begun*, whatever the
//!   result: success, card decline (`402`) and, as Stripe states explicitly, `500` errors too. A
//!   later request with the same key and the same parameters gets the saved status and body
//!   back byte for byte, with `Idempotent-Replayed: true`; nothing runs again, so no second charge.
//! * The same key with other parameters (or another endpoint) is refused: `400`,
//!   `type: "idempotency_error"`.
//! * Nothing is saved when execution never began: Stripe's rate limiters run *in front of* the
//!   idempotency layer (so a `429` is not saved and a retry with the same key runs for real), and
//!   neither are `401`s, `403`s (a revoked or unknown account) nor requests whose parameters fail
//!   validation (`400`, the missing `return_url` included).
//! * A request arriving while another one with the same key is still executing gets
//!   `409`, `type: "idempotency_error"`, `code: "idempotency_key_in_use"`, and is not saved.
//! * Stripe keeps keys for at least 24 hours and then prunes them; after that the same key runs
//!   anew. [`FakeStripe::expire_idempotency_keys`] simulates the pruning.
//! * Responses to idempotent POSTs echo `Idempotency-Key` and carry `Original-Request`: the
//!   `Request-Id` of the request whose result is being returned (its own on a first execution,
//!   the original one on a replay).
//!
//! So, unlike a common assumption, **a `500` from Stripe is replayed for the same key**: the docs
//! say the outcome of a `500` is indeterminate and that Stripe reconciles such requests itself,
//! firing webhooks for whatever got created, while the saved `500` stays. Code that gets a `500`
//! must therefore not expect a same-key retry to "go through"; it has to wait for the webhook or
//! look the PaymentIntent up. [`Outcome::ServerError`] behaves that way. A `5xx` produced in front
//! of the idempotency layer (a load balancer, an overloaded front end) is not saved, since
//! execution never began; [`Outcome::ServerErrorBeforeExecution`] models that case, and
//! [`Outcome::RateLimit`] the `429`.
//!
//! Search is not read-after-write at Stripe ("data is searchable in under 1 minute", see
//! <https://docs.stripe.com/search>); [`FakeStripe::set_search_delay`] reproduces that lag (zero by
//! default).
//!
//! # Under load: latency, random faults, rate limiting
//!
//! Sources: <https://docs.stripe.com/rate-limits>, <https://docs.stripe.com/error-low-level>
//! (idempotency, server errors), <https://docs.stripe.com/api/idempotent_requests>.
//!
//! Every connection is served by its own task and the state lock is only held for short,
//! non-blocking steps, so many requests (64 and more at once, thousands per test) are served
//! concurrently; lookups by id (PaymentIntents, events) go through indexes, not scans.
//!
//! * [`FakeStripe::hold`] / [`FakeStripe::release`]: API requests arrive and are recorded but
//!   wait, unexecuted and unanswered, until the test releases them (not a Stripe behaviour: a
//!   request stuck on the way, for tests that need one in flight for as long as they choose).
//! * [`FakeStripe::set_latency`]: every API request (not the webhook deliveries the fake sends)
//!   is answered only after that delay, counted from its arrival. Requests wait side by side:
//!   64 requests at once take about one latency, not 64. The request is on its way to Stripe
//!   while it waits: once it has arrived it runs to the end, after the latency, even if the
//!   client gives up before the answer (a request that reached Stripe executes whether or not
//!   the client is still waiting).
//! * [`FakeStripe::set_random_faults`]: `POST /v1/payment_intents` requests that are about to
//!   execute fail, with probability `rate` drawn from a deterministic PRNG seeded with `seed`,
//!   in one of two ways chosen at random: [`Outcome::ChargeThenDropConnection`] (charged, saved
//!   under the key, no answer) or [`Outcome::ServerErrorBeforeExecution`] (`500 api_error`,
//!   nothing executed or saved). Only a request that would execute is drawn for: not an
//!   idempotent replay (a replay executes nothing, so it cannot "charge then drop"; charging it
//!   again would break the very guarantee a same-key retry relies on, and Stripe never does),
//!   nor a `409` for a key in use, nor a request refused for its parameters. So a same-key retry
//!   after a dropped connection always gets the saved charge back, never a second one, and the
//!   sequence of faults depends only on the order in which requests begin executing, not on how
//!   often a client retries. A scripted outcome ([`FakeStripe::push_outcome`]) takes precedence:
//!   while the script is not empty, no draw is made. [`FakeStripe::injected_faults`] lists what
//!   was injected.
//! * [`FakeStripe::rate_limit_for`]: every API request arriving in the window gets `429`, type
//!   `invalid_request_error`, code `rate_limit` ("If you send many requests in quick succession,
//!   you might receive 429 error responses", <https://docs.stripe.com/rate-limits>). Stripe's
//!   rate limiters run in front of the idempotency layer, so nothing is executed or saved under
//!   the key and a retry with the same key after the window executes for real
//!   (<https://docs.stripe.com/error-low-level#content-errors>); no scripted outcome and no random
//!   fault is used. No `Stripe-Should-Retry` header is sent: the API adds it only when it knows
//!   more than the status code says, and Stripe's SDKs fall back on the status when it is absent
//!   (<https://github.com/stripe/stripe-node/pull/692>,
//!   <https://github.com/stripe/stripe-ruby/pull/853>); nothing we found in Stripe's docs says a
//!   `429` carries it, and the rate-limits page describes handling a `429` from its status alone
//!   (back off, then retry). So a client must cope without it; like the scripted
//!   [`Outcome::RateLimit`], the `429` is the whole signal.
//! * [`FakeStripe::api_request_times`]: the arrival time of every API request, in order, to
//!   measure the request rate before, during and after a rate-limit window.
//! * [`FakeStripe::charges_per_metadata`]: how many succeeded PaymentIntents carry each value of a
//!   metadata key, to check "exactly one charge per job" (two attempts of a job use two
//!   idempotency keys, so nothing but the client keeps them from both charging).
//!
//! # Events and webhooks
//!
//! Sources: <https://docs.stripe.com/webhooks>, <https://docs.stripe.com/webhooks/signature>,
//! <https://docs.stripe.com/api/events/object>, <https://docs.stripe.com/connect/webhooks>.
//!
//! * Every create request that executes (not a replay, not a refusal, not
//!   [`Outcome::ServerError`], which creates nothing) records events, oldest first in
//!   [`FakeStripe::events`]: `payment_intent.created` (the object as created, before any
//!   confirmation), then what the confirmation did: `payment_intent.succeeded` and
//!   `charge.succeeded`; `payment_intent.amount_capturable_updated` and `charge.succeeded` (an
//!   uncaptured charge) with `capture_method=manual`; `payment_intent.payment_failed` (the
//!   PaymentIntent exactly as embedded in the `402`) and `charge.failed` for a decline or an
//!   off-session authentication failure; `payment_intent.requires_action` on-session.
//!   [`FakeStripe::cancel_intent`] adds `payment_intent.canceled`.
//! * The other events, each described above: `customer.created`, `customer.deleted`,
//!   `setup_intent.created`, `setup_intent.succeeded`, `payment_method.attached`,
//!   `payment_method.detached`, `payment_method.updated`, `payment_method.automatically_updated`,
//!   `checkout.session.completed`, `checkout.session.expired`, `refund.created`,
//!   `charge.refunded`, `charge.dispute.created`, `account.updated`,
//!   `account.application.deauthorized`. Like the PaymentIntent events they are signed and
//!   delivered the same way, carry `account` for objects of a connected account, and have
//!   `request.id`/`request.idempotency_key` of the API request that caused them, or null for the
//!   test helpers (what the customer, the card network or Stripe itself did).
//! * An event is `{"id": "evt_…", "object": "event", "account": "acct_…", "api_version",
//!   "created", "data": {"object": …}, "livemode": false, "pending_webhooks": 1, "request": {"id":
//!   "req_…", "idempotency_key": …}, "type": …}`. `account` is only there when the object lives
//!   on a connected account (Connect events); `data.object` is the PaymentIntent as the API
//!   returns it, or a Charge (or the object the event is about); `data.previous_attributes` is
//!   there for updates; `api_version` is the causing request's `Stripe-Version` (or the
//!   version the object was created with, or the default); `request.id` is null for what no API
//!   request caused (a cancellation here).
//! * Each event is serialized once, when it is recorded; every delivery sends those same bytes
//!   ([`FakeStripe::event_payload`]), as Stripe resends the same event.
//! * Delivery is up to the test: [`FakeStripe::set_webhook_url`], then [`FakeStripe::deliver`]
//!   (one event, any number of times, in any order: duplicates and reordering are how Stripe
//!   behaves) or [`FakeStripe::deliver_pending`] (every event not yet answered with a 2xx, oldest
//!   first). A delivery is a `POST` with `Content-Type: application/json; charset=utf-8`,
//!   `User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)` and `Stripe-Signature:
//!   t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed with the endpoint's secret
//!   ([`FakeStripe::webhook_secret`], `whsec_…`; [`FakeStripe::signature_header`] computes it).
//!   Only a 2xx counts as received; redirects are not followed. [`FakeStripe::deliveries`] lists
//!   every attempt and its status.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The `Stripe-Version` reported when the client does not send one.
pub const DEFAULT_API_VERSION: &str = "2024-06-20";

/// The API version from which a PaymentIntent created without `payment_method_types` has
/// `automatic_payment_methods` enabled by default (<https://docs.stripe.com/upgrades#2023-08-16>).
pub const AUTOMATIC_PAYMENT_METHODS_DEFAULT_SINCE: &str = "2023-08-16";

/// How long [`FakeStripe::deliver`] waits for the webhook endpoint to answer: the fake's own
/// limit (not Stripe's), so that a stuck endpoint fails the test instead of hanging it.
pub const WEBHOOK_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest idempotency key Stripe accepts (<https://docs.stripe.com/api/idempotent_requests>:
/// "Idempotency keys are up to 255 characters long").
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Largest request body the fake reads.
const MAX_BODY_BYTES: usize = 1 << 20;

/// What the next `POST /v1/payment_intents` does. Queue them with [`FakeStripe::push_outcome`].
///
/// Outcomes that model a failure *in front of* Stripe's idempotency layer ([`Outcome::RateLimit`],
/// [`Outcome::ServerErrorBeforeExecution`], [`Outcome::Hang`]) are taken by the next create
/// request that reaches the fake, replays included, and save nothing. All the others are taken
/// only by a request that actually executes (not by a replay, nor by a request refused for its
/// parameters); their result is saved under the request's idempotency key, if any. The card
/// outcomes ([`Outcome::Decline`], [`Outcome::RequireAuthentication`]) only matter with
/// `confirm=true`; without it the PaymentIntent is just created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The charge succeeds (the default when the queue is empty).
    Succeed,
    /// The issuer declines: `402 card_error` with this `decline_code` (for example
    /// `insufficient_funds`, `generic_decline`, `do_not_honor`, `lost_card`, `stolen_card`,
    /// `pickup_card`, `fraudulent`, `expired_card`, `incorrect_cvc`, `processing_error`).
    Decline {
        /// Stripe's decline code.
        decline_code: String,
    },
    /// The card needs 3-D Secure: off-session, `402 authentication_required` with the
    /// PaymentIntent in `requires_payment_method`; on-session, `200` in `requires_action`.
    RequireAuthentication,
    /// `429` with code `rate_limit`, before the idempotency layer (not saved).
    RateLimit,
    /// `500 api_error` once execution began: no PaymentIntent is created, and the `500` is saved
    /// and replayed for the same key, as Stripe documents.
    ServerError,
    /// `500 api_error` from in front of the idempotency layer: not saved, so a retry with the
    /// same key executes.
    ServerErrorBeforeExecution,
    /// Never answers, before anything is executed or saved, until the client gives up. Other
    /// requests are served meanwhile.
    Hang,
    /// Succeeds after this delay. While it runs, the key is in use: a second request with the same
    /// key gets `409 idempotency_key_in_use`. The charge completes even if the client gives up.
    SucceedAfter(Duration),
    /// Charges and saves the result under the idempotency key, then closes the TCP connection
    /// without answering (the "crash between charged and recorded" case).
    ChargeThenDropConnection,
    /// Charges and saves the result under the idempotency key, then never answers (the client
    /// times out although the charge went through).
    ChargeThenHang,
    /// Charges and saves the result under the idempotency key like [`Outcome::ChargeThenHang`],
    /// then answers `200` with its headers at once and trickles the body out one byte every
    /// `interval` (the saved JSON, then spaces), forever, until the client goes away: a Stripe
    /// answer that never ends, for a client with no overall request timeout.
    ChargeThenTrickle(Duration),
    /// Charges (the PaymentIntent succeeds and its events are recorded) but answers
    /// `500 api_error`, and saves that `500` under the idempotency key, so a same-key retry gets
    /// the `500` again: "the result of a 500 is indeterminate"
    /// (<https://docs.stripe.com/error-low-level#server-errors>).
    ChargeThenServerError,
}

impl Outcome {
    /// [`Outcome::Decline`] with `decline_code`.
    pub fn decline(decline_code: impl Into<String>) -> Outcome {
        Outcome::Decline {
            decline_code: decline_code.into(),
        }
    }

    fn before_execution(&self) -> bool {
        matches!(
            self,
            Outcome::RateLimit | Outcome::ServerErrorBeforeExecution | Outcome::Hang
        )
    }
}

/// A PaymentIntent the fake created (one per executed create request that got as far as creating
/// it: successes, declines and authentication failures alike; see `status`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChargeRecord {
    /// `pi_…`.
    pub id: String,
    /// The connected account it belongs to; `None` for the platform account.
    pub account: Option<String>,
    /// Minor units.
    pub amount: i64,
    /// Lowercase ISO 4217.
    pub currency: String,
    /// `cus_…`.
    pub customer: Option<String>,
    /// The payment method the request named (`pm_…`).
    pub payment_method: Option<String>,
    /// The metadata it was created with.
    pub metadata: BTreeMap<String, String>,
    /// The description it was created with.
    pub description: Option<String>,
    /// The `Idempotency-Key` of the request that created it.
    pub idempotency_key: Option<String>,
    /// `succeeded`, `requires_payment_method` (declined, or authentication needed off-session),
    /// `requires_action`, `requires_capture`, `requires_confirmation`, `canceled` (after
    /// [`FakeStripe::cancel_intent`]).
    pub status: String,
    /// `ch_…` for a payment attempt (successful or failed).
    pub latest_charge: Option<String>,
    /// The full PaymentIntent object as the API returns it.
    pub object: Value,
}

/// A request the fake received, in arrival order (including refused ones).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ….
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Every header, names in lowercase (a repeated header keeps its last value).
    pub headers: BTreeMap<String, String>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The `Stripe-Account` header.
    pub stripe_account: Option<String>,
    /// The parameters (body for POST, query otherwise) decoded into a nested structure; `Null`
    /// when they could not be decoded.
    pub form: Value,
    /// The body as received.
    pub raw_body: String,
    /// The status answered; `None` when no answer was sent (hung, dropped, or still running).
    pub status: Option<u16>,
    /// Whether the answer was an idempotent replay.
    pub replayed: bool,
    /// The `Request-Id` the fake gave it.
    pub request_id: String,
}

impl RecordedRequest {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// A running fake Stripe; stops when dropped.
pub struct FakeStripe {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl fmt::Debug for FakeStripe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeStripe")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.accept.abort();
    }
}

impl FakeStripe {
    /// Starts a fake on `127.0.0.1` with an ephemeral port and a fresh secret key.
    pub async fn start() -> FakeStripe {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("fake Stripe binds 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let ids = RandomState::new();
        let secret_key = format!("sk_test_fake_{}", random_chars(&ids, 0, 24));
        // Counter values far from the ones `next_counter` hands out, so no id can repeat these.
        let webhook_secret = format!("whsec_{}", random_chars(&ids, u64::MAX, 32));
        let payment_method_configuration = format!("pmc_{}", random_chars(&ids, u64::MAX - 1, 24));
        let application_id = format!("ca_{}", random_chars(&ids, u64::MAX - 2, 32));
        let shared = Arc::new(Shared {
            secret_key,
            webhook_secret,
            payment_method_configuration,
            application_id,
            ids,
            counter: AtomicU64::new(1),
            held: watch::Sender::new(false),
            state: Mutex::new(State::default()),
        });
        let (shutdown, watcher) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared), watcher));
        FakeStripe {
            addr,
            shared,
            shutdown,
            accept,
        }
    }

    /// `http://127.0.0.1:PORT` — the value for the `stripe_api_base` variable.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The only secret key it accepts (`sk_test_fake_…`).
    pub fn secret_key(&self) -> &str {
        &self.shared.secret_key
    }

    /// Makes the secret key unusable, as when it is rolled or deleted in the Dashboard: until
    /// [`FakeStripe::restore_secret_key`], every request presenting it gets `401`
    /// `invalid_request_error` "Invalid API Key provided: sk_test_****…", before anything else
    /// happens (no scripted outcome is used, nothing is executed or saved under a key).
    pub fn revoke_secret_key(&self) {
        self.shared.lock().secret_key_revoked = true;
    }

    /// Undoes [`FakeStripe::revoke_secret_key`].
    pub fn restore_secret_key(&self) {
        self.shared.lock().secret_key_revoked = false;
    }

    /// Revokes the platform's access to connected account `account`, as when the account
    /// disconnects the platform (<https://docs.stripe.com/connect/authentication>): until
    /// [`FakeStripe::restore_account`], every request with `Stripe-Account: <account>` gets `403`,
    /// code `account_invalid`, and nothing is executed or saved.
    pub fn revoke_account(&self, account: &str) {
        self.shared
            .lock()
            .revoked_accounts
            .insert(account.to_owned());
    }

    /// Undoes [`FakeStripe::revoke_account`].
    pub fn restore_account(&self, account: &str) {
        self.shared.lock().revoked_accounts.remove(account);
    }

    /// The webhook endpoint's signing secret (`whsec_…`), the key of every `Stripe-Signature`
    /// this fake sends (<https://docs.stripe.com/webhooks/signature>).
    pub fn webhook_secret(&self) -> &str {
        &self.shared.webhook_secret
    }

    /// Where [`FakeStripe::deliver`] POSTs events (a plain `http://` URL).
    pub fn set_webhook_url(&self, url: impl Into<String>) {
        self.shared.lock().webhook_url = Some(url.into());
    }

    /// Every event recorded so far, oldest first, as the JSON delivered.
    pub fn events(&self) -> Vec<Value> {
        self.shared
            .lock()
            .events
            .iter()
            .map(|e| e.object.clone())
            .collect()
    }

    /// The exact body every delivery of event `event_id` sends, or `None` for an unknown id.
    pub fn event_payload(&self, event_id: &str) -> Option<String> {
        self.shared
            .lock()
            .event(event_id)
            .map(|e| e.payload.clone())
    }

    /// Stripe's `Stripe-Signature` header for `payload` sent at `timestamp` (unix seconds),
    /// signed with `secret` (the whole `whsec_…` string, as Stripe's libraries use it):
    /// `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<payload>">`
    /// (<https://docs.stripe.com/webhooks/signature>, "Verify manually").
    pub fn signature_header(secret: &str, timestamp: i64, payload: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
            .expect("HMAC-SHA256 takes a key of any length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(digest.len() * 2);
        for byte in digest {
            hex.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            hex.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
        }
        format!("t={timestamp},v1={hex}")
    }

    /// POSTs event `event_id` to the webhook URL, signed now with [`FakeStripe::webhook_secret`],
    /// and returns the HTTP status the endpoint answered. The body is the event's fixed payload
    /// ([`FakeStripe::event_payload`]), byte for byte the same on every delivery. Redirects are
    /// not followed: Stripe counts any status outside 2xx, 3xx included, as not received
    /// (<https://docs.stripe.com/webhooks>). Every call is recorded ([`FakeStripe::deliveries`]).
    ///
    /// # Panics
    ///
    /// If no URL was set, `event_id` is unknown, or the endpoint cannot be reached or does not
    /// answer within [`WEBHOOK_DELIVERY_TIMEOUT`].
    pub async fn deliver(&self, event_id: &str) -> u16 {
        let (url, payload) = {
            let state = self.shared.lock();
            (
                state.webhook_url.clone(),
                state.event(event_id).map(|e| e.payload.clone()),
            )
        };
        let Some(url) = url else {
            panic!("FakeStripe::deliver({event_id}): no webhook URL; call set_webhook_url first");
        };
        let Some(payload) = payload else {
            panic!("FakeStripe::deliver({event_id}): no such event");
        };
        let signature =
            FakeStripe::signature_header(&self.shared.webhook_secret, unix_now(), &payload);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(WEBHOOK_DELIVERY_TIMEOUT)
            .build()
            .expect("the webhook client builds");
        // Headers as Stripe sends them (<https://docs.stripe.com/webhooks>).
        let response = client
            .post(&url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header(
                "User-Agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .header("Stripe-Signature", signature)
            .body(payload)
            .send()
            .await;
        let status = match response {
            Ok(response) => response.status().as_u16(),
            Err(e) => panic!("FakeStripe::deliver({event_id}) to {url} failed: {e}"),
        };
        let mut state = self.shared.lock();
        state.deliveries.push((event_id.to_owned(), status));
        // Stripe counts any 2xx as received (<https://docs.stripe.com/webhooks>).
        if (200..300).contains(&status)
            && let Some(event) = state.event_mut(event_id)
        {
            event.delivered = true;
        }
        status
    }

    /// Delivers, oldest first, every event that has not yet been answered with a 2xx, and
    /// returns each `(event id, status)`.
    pub async fn deliver_pending(&self) -> Vec<(String, u16)> {
        let pending: Vec<String> = self
            .shared
            .lock()
            .events
            .iter()
            .filter(|e| !e.delivered)
            .map(|e| e.id.clone())
            .collect();
        let mut results = Vec::with_capacity(pending.len());
        for id in pending {
            let status = self.deliver(&id).await;
            results.push((id, status));
        }
        results
    }

    /// Every delivery attempt so far, oldest first: `(event id, HTTP status)`.
    pub fn deliveries(&self) -> Vec<(String, u16)> {
        self.shared.lock().deliveries.clone()
    }

    /// Cancels PaymentIntent `id` (on whatever account it lives) as if the business had done it
    /// in the Dashboard: status `canceled`, `canceled_at` now, `cancellation_reason: "abandoned"`,
    /// and a `payment_intent.canceled` event whose `request.id` is null (no API request caused
    /// it). Only the statuses Stripe lets you cancel qualify
    /// (<https://docs.stripe.com/api/payment_intents/cancel>).
    ///
    /// # Panics
    ///
    /// On an unknown id, or an intent in a status Stripe refuses to cancel (`succeeded`,
    /// `canceled`).
    pub fn cancel_intent(&self, id: &str) {
        let result = {
            let mut state = self.shared.lock();
            cancel_stored_intent(&self.shared, &mut state, id)
        };
        if let Err(message) = result {
            panic!("FakeStripe::cancel_intent({id}): {message}");
        }
    }

    /// Seeds a card PaymentMethod `pm_id` attached to `customer`, in connected account `account`
    /// (`None` = the platform account). The customer exists from then on in that account (a
    /// deleted one is created anew), without a `customer.created` event: this is setup, not API use.
    /// Seeding an existing id in the same account replaces it.
    #[allow(clippy::too_many_arguments)]
    pub fn add_payment_method(
        &self,
        account: Option<&str>,
        customer: &str,
        pm_id: &str,
        brand: &str,
        last4: &str,
        exp_month: u32,
        exp_year: u32,
    ) {
        let object = card_payment_method_object(
            &self.shared,
            pm_id,
            CardDetails {
                brand,
                last4,
                exp_month,
                exp_year,
            },
            Some(customer),
        );
        let account = account.map(str::to_owned);
        let mut state = self.shared.lock();
        let live = live_customer(&state, account.as_deref(), customer).is_some();
        if !live {
            state
                .customers
                .retain(|c| !c.is(account.as_deref(), customer));
            let object = customer_object(customer, &CustomerFields::default());
            state.customers.push(StoredObject::new(
                account.clone(),
                DEFAULT_API_VERSION,
                object,
            ));
        }
        state
            .payment_methods
            .retain(|pm| !(pm.account == account && pm.id == pm_id));
        state.payment_methods.push(StoredPaymentMethod {
            account,
            id: pm_id.to_owned(),
            customer: Some(customer.to_owned()),
            detached: false,
            object,
        });
    }

    /// Appends one outcome to the script of `POST /v1/payment_intents`.
    pub fn push_outcome(&self, outcome: Outcome) {
        self.shared.lock().script.push_back(outcome);
    }

    /// Appends several outcomes, in order.
    pub fn push_outcomes(&self, outcomes: impl IntoIterator<Item = Outcome>) {
        self.shared.lock().script.extend(outcomes);
    }

    /// How many scripted outcomes have not been used yet.
    pub fn pending_outcomes(&self) -> usize {
        self.shared.lock().script.len()
    }

    /// PaymentIntents younger than `delay` do not show up in search results (Stripe's search
    /// index lags behind writes). Zero by default. Retrieve and list are not affected.
    pub fn set_search_delay(&self, delay: Duration) {
        self.shared.lock().search_delay = delay;
    }

    /// Keeps every API request that arrives from now on waiting, recorded but not executed,
    /// until [`FakeStripe::release`]: a request held somewhere between us and Stripe, for tests
    /// that need one in flight for as long as they choose rather than for a fixed time.
    pub fn hold(&self) {
        self.shared.held.send_replace(true);
    }

    /// Answers the API requests [`FakeStripe::hold`] kept waiting, and every later one at once.
    pub fn release(&self) {
        self.shared.held.send_replace(false);
    }

    /// Every API request is answered only `latency` after it arrived (zero by default). The wait
    /// is asynchronous and per request: concurrent requests wait side by side, so 64 of them at
    /// once take about one `latency`. The request executes after the wait whether or not the
    /// client is still there (it had already reached Stripe). Webhook deliveries are not delayed.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// From now on, each `POST /v1/payment_intents` that is about to execute (not a replay, not a
    /// `409`, not a request refused for its parameters, and only while no scripted outcome is
    /// queued) fails with probability `rate`: half of the faults (at random) are
    /// [`Outcome::ChargeThenDropConnection`], the other half
    /// [`Outcome::ServerErrorBeforeExecution`]. The draws come from a SplitMix64 generator
    /// seeded with `seed`, so the same seed gives the same sequence of faults for the same order
    /// of executions. `rate` 0 turns the faults off. See "Under load" in the module docs for why
    /// replays are never faulted.
    ///
    /// # Panics
    ///
    /// If `rate` is not within `0.0..=1.0`.
    pub fn set_random_faults(&self, rate: f64, seed: u64) {
        assert!(
            (0.0..=1.0).contains(&rate),
            "FakeStripe::set_random_faults: rate {rate} is not a probability"
        );
        self.shared.lock().random_faults = (rate > 0.0).then_some(RandomFaults {
            rate,
            rng: SplitMix64(seed),
        });
    }

    /// The faults [`FakeStripe::set_random_faults`] injected so far, in order: the `Request-Id`
    /// of the faulted request and what it got.
    pub fn injected_faults(&self) -> Vec<(String, Outcome)> {
        self.shared.lock().injected_faults.clone()
    }

    /// Every API request arriving from now until `window` from now gets `429` with code
    /// `rate_limit`, before anything else (authentication included) is looked at: nothing is
    /// executed, nothing is saved under an idempotency key, no scripted outcome or random fault
    /// is used. A later call replaces the window; a zero `window` ends it.
    pub fn rate_limit_for(&self, window: Duration) {
        self.shared.lock().rate_limited_until = Some(Instant::now() + window);
    }

    /// When each API request arrived (its headers were read), in arrival order, refused and
    /// rate-limited ones included (as many as [`FakeStripe::requests`] once all have been read).
    pub fn api_request_times(&self) -> Vec<Instant> {
        self.shared.lock().arrivals.clone()
    }

    /// Forgets every saved idempotency key, as Stripe does once keys are more than 24 hours old:
    /// the same key then executes a new request.
    pub fn expire_idempotency_keys(&self) {
        self.shared
            .lock()
            .idempotency
            .retain(|_, entry| matches!(entry, IdempotencyEntry::InFlight));
    }

    /// Every PaymentIntent created so far, oldest first.
    pub fn charges(&self) -> Vec<ChargeRecord> {
        self.shared
            .lock()
            .intents
            .iter()
            .map(StoredIntent::record)
            .collect()
    }

    /// The PaymentIntents that actually collected money (`status: "succeeded"`), oldest first.
    /// Nothing in the fake keeps two of them from being for the same job or booking: requests
    /// with different idempotency keys (two attempts of a job), without a key, or after
    /// [`FakeStripe::expire_idempotency_keys`] each charge, as at Stripe. See
    /// [`FakeStripe::charges_per_metadata`] to count them per job.
    pub fn succeeded_charges(&self) -> Vec<ChargeRecord> {
        self.shared
            .lock()
            .intents
            .iter()
            .filter(|i| i.object["status"] == "succeeded")
            .map(StoredIntent::record)
            .collect()
    }

    /// How many succeeded PaymentIntents (as in [`FakeStripe::succeeded_charges`], on any
    /// account) carry each value of metadata key `key` (`"mio_job_id"`, `"mio_booking_id"`, …);
    /// intents without that key are not counted. "Exactly N charges, no duplicates" is
    /// `map.len() == N && map.values().all(|&n| n == 1)`.
    pub fn charges_per_metadata(&self, key: &str) -> HashMap<String, usize> {
        let state = self.shared.lock();
        let mut counts = HashMap::new();
        for intent in &state.intents {
            if intent.object["status"] != "succeeded" {
                continue;
            }
            if let Some(value) = intent.object["metadata"][key].as_str() {
                *counts.entry(value.to_owned()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The requests for `method path` (path without query), oldest first.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
            .cloned()
            .collect()
    }

    /// Every Customer so far (created with `POST /v1/customers` or seeded by
    /// [`FakeStripe::add_payment_method`]), oldest first, as the API shows it, plus two fields
    /// that are not Stripe's: `"_account"` (the connected account it lives on, `null` for the
    /// platform) and, for a deleted one, `"deleted": true` (the object is the customer as it was
    /// when deleted).
    pub fn customers(&self) -> Vec<Value> {
        self.shared
            .lock()
            .customers
            .iter()
            .map(|c| {
                let mut object = c.object.clone();
                object["_account"] = json!(c.account);
                if c.deleted {
                    object["deleted"] = json!(true);
                }
                object
            })
            .collect()
    }

    /// Every Checkout Session so far, oldest first, as the API shows it, plus `"_account"` (the
    /// connected account it lives on, `null` for the platform).
    pub fn checkout_sessions(&self) -> Vec<Value> {
        self.shared
            .lock()
            .checkout_sessions
            .iter()
            .map(|s| {
                let mut object = s.stored.object.clone();
                object["_account"] = json!(s.stored.account);
                object
            })
            .collect()
    }

    /// The customer enters a card on the hosted page of open setup-mode Checkout Session
    /// `session_id` (<https://docs.stripe.com/payments/save-and-reuse?platform=web&ui=stripe-hosted>):
    /// a card PaymentMethod `pm_id` (shaped as [`FakeStripe::add_payment_method`] makes it) is
    /// attached to the session's customer, a SetupIntent `seti_…` succeeds with it
    /// (`usage: "off_session"`, `metadata` and `description` from `setup_intent_data`), and the
    /// session becomes `complete` with `setup_intent` set and `url: null`. Records, in this
    /// order, `setup_intent.created`, `payment_method.attached` (only when the session has a
    /// customer), `setup_intent.succeeded` and `checkout.session.completed`, in the session's
    /// account, with `request.id` null (no API request of the platform caused them). Returns the
    /// SetupIntent id.
    ///
    /// # Panics
    ///
    /// On an unknown session, or one that is not `open` (completed or expired).
    pub fn complete_checkout_session(
        &self,
        session_id: &str,
        pm_id: &str,
        brand: &str,
        last4: &str,
        exp_month: u32,
        exp_year: u32,
    ) -> String {
        let card = CardDetails {
            brand,
            last4,
            exp_month,
            exp_year,
        };
        let result = {
            let mut state = self.shared.lock();
            complete_stored_session(&self.shared, &mut state, session_id, pm_id, card)
        };
        match result {
            Ok(setup_intent) => setup_intent,
            Err(message) => {
                panic!("FakeStripe::complete_checkout_session({session_id}): {message}")
            }
        }
    }

    /// Expires open Checkout Session `session_id` (as its `expires_at` passing, or
    /// <https://docs.stripe.com/api/checkout/sessions/expire>): `status: "expired"`, `url: null`,
    /// and a `checkout.session.expired` event.
    ///
    /// # Panics
    ///
    /// On an unknown session, or one that is not `open`.
    pub fn expire_checkout_session(&self, session_id: &str) {
        let result = {
            let mut state = self.shared.lock();
            expire_stored_session(&self.shared, &mut state, session_id)
        };
        if let Err(message) = result {
            panic!("FakeStripe::expire_checkout_session({session_id}): {message}");
        }
    }

    /// Detaches PaymentMethod `pm_id` of `account` from its customer, as
    /// `POST /v1/payment_methods/{id}/detach` does (same code, same `payment_method.detached`
    /// event), but with `request.id` null (the customer removed it, say, in a Stripe-hosted page).
    ///
    /// # Panics
    ///
    /// On an unknown PaymentMethod, or one that is not attached to a customer.
    pub fn detach_payment_method(&self, account: Option<&str>, pm_id: &str) {
        let result = {
            let mut state = self.shared.lock();
            let context = EventContext {
                account: account.map(str::to_owned),
                api_version: DEFAULT_API_VERSION.to_owned(),
                request_id: None,
                idempotency_key: None,
            };
            detach_stored_payment_method(&self.shared, &mut state, &context, pm_id)
        };
        if let Err(failure) = result {
            panic!(
                "FakeStripe::detach_payment_method({pm_id}): {}",
                failure.message()
            );
        }
    }

    /// Changes the card of PaymentMethod `pm_id` of `account` (expiry, and the last 4 digits when
    /// `last4` is given). With `automatic`, it is the card network's updater at work
    /// (<https://docs.stripe.com/saved-cards#automatic-card-updates>) and the event is
    /// `payment_method.automatically_updated`; otherwise `payment_method.updated`. Either way the
    /// event carries `data.previous_attributes: {"card": {…old values of what changed…}}` and
    /// `request.id` null.
    ///
    /// # Panics
    ///
    /// On an unknown PaymentMethod.
    pub fn update_card(
        &self,
        account: Option<&str>,
        pm_id: &str,
        exp_month: u32,
        exp_year: u32,
        last4: Option<&str>,
        automatic: bool,
    ) {
        let change = CardChange {
            exp_month,
            exp_year,
            last4,
        };
        let result = {
            let mut state = self.shared.lock();
            update_stored_card(&self.shared, &mut state, account, pm_id, &change, automatic)
        };
        if let Err(message) = result {
            panic!("FakeStripe::update_card({pm_id}): {message}");
        }
    }

    /// Refunds `amount` (default: all that is left) of the charge of PaymentIntent
    /// `payment_intent` (on whatever account it lives), through the same code as
    /// `POST /v1/refunds` (as if done in the Dashboard: `request.id` null), and returns the
    /// refund id (`re_…`).
    ///
    /// # Panics
    ///
    /// When Stripe would refuse the refund (unknown intent, no succeeded charge, more than what
    /// is left, already fully refunded).
    pub fn refund(&self, payment_intent: &str, amount: Option<i64>) -> String {
        let result = {
            let mut state = self.shared.lock();
            let found = state
                .intent(payment_intent)
                .map(|i| (i.account.clone(), i.api_version.clone()));
            match found {
                None => Err(format!("No such payment_intent: '{payment_intent}'")),
                Some((account, api_version)) => {
                    let mut params = Map::new();
                    params.insert("payment_intent".into(), json!(payment_intent));
                    if let Some(amount) = amount {
                        params.insert("amount".into(), json!(amount.to_string()));
                    }
                    let context = EventContext {
                        account,
                        api_version,
                        request_id: None,
                        idempotency_key: None,
                    };
                    create_refund(&self.shared, &mut state, &params, &context)
                        .map_err(|failure| failure.message())
                }
            }
        };
        match result {
            Ok(refund) => refund["id"].as_str().unwrap_or_default().to_owned(),
            Err(message) => panic!("FakeStripe::refund({payment_intent}): {message}"),
        }
    }

    /// The cardholder disputes the succeeded charge of PaymentIntent `payment_intent` with
    /// `reason` (`fraudulent`, `product_not_received`, …;
    /// <https://docs.stripe.com/api/disputes/object>): the charge gets `disputed: true` and a
    /// `charge.dispute.created` event carries the Dispute (`dp_…`, `status: "needs_response"`,
    /// the charge's amount and currency). Returns the dispute id.
    ///
    /// # Panics
    ///
    /// On an unknown intent, one without a succeeded charge, a charge already disputed, or a
    /// reason Stripe does not have.
    pub fn dispute(&self, payment_intent: &str, reason: &str) -> String {
        let result = {
            let mut state = self.shared.lock();
            dispute_stored_charge(&self.shared, &mut state, payment_intent, reason)
        };
        match result {
            Ok(id) => id,
            Err(message) => panic!("FakeStripe::dispute({payment_intent}): {message}"),
        }
    }

    /// Enables or disables charges on connected account `account`
    /// (<https://docs.stripe.com/api/accounts/object>): an `account.updated` event (with
    /// `account` set, <https://docs.stripe.com/connect/webhooks>) whose `data.object` is the
    /// Account (`charges_enabled`, `payouts_enabled`, `details_submitted`, `capabilities`,
    /// `requirements.disabled_reason`: `"requirements.past_due"` when disabled, null when
    /// enabled) and whose `data.previous_attributes` holds the old values of what changed
    /// (`charges_enabled`, `capabilities.card_payments`, `requirements`). While disabled,
    /// confirming a PaymentIntent on the account is refused (`400`, "This Connect account cannot
    /// currently make live charges. …"), nothing created or saved. Setting the value it already
    /// has changes nothing and records nothing. Accounts start enabled.
    pub fn set_charges_enabled(&self, account: &str, enabled: bool) {
        let mut state = self.shared.lock();
        let before = state.accounts.get(account).copied().unwrap_or_default();
        if before.charges_enabled == enabled {
            return;
        }
        let after = AccountFlags {
            charges_enabled: enabled,
        };
        state.accounts.insert(account.to_owned(), after);
        let old = account_object(account, before);
        let previous = json!({
            "charges_enabled": old["charges_enabled"],
            "capabilities": {"card_payments": old["capabilities"]["card_payments"]},
            "requirements": {
                "currently_due": old["requirements"]["currently_due"],
                "disabled_reason": old["requirements"]["disabled_reason"],
                "eventually_due": old["requirements"]["eventually_due"],
                "past_due": old["requirements"]["past_due"]
            }
        });
        let context = EventContext {
            account: Some(account.to_owned()),
            api_version: DEFAULT_API_VERSION.to_owned(),
            request_id: None,
            idempotency_key: None,
        };
        record_event_with_previous(
            &self.shared,
            &mut state,
            &context,
            "account.updated",
            account_object(account, after),
            Some(previous),
        );
    }

    /// Connected account `account` disconnects the platform
    /// (<https://docs.stripe.com/connect/webhooks>): an `account.application.deauthorized` event
    /// with `account` set and the platform's Connect application as `data.object`
    /// (`{"id": "ca_…", "object": "application", "name": APPLICATION_NAME}`); from then on the
    /// account behaves as after [`FakeStripe::revoke_account`] (`403 account_invalid`, until
    /// [`FakeStripe::restore_account`]).
    pub fn deauthorize(&self, account: &str) {
        let mut state = self.shared.lock();
        let application = json!({
            "id": self.shared.application_id,
            "object": "application",
            "name": APPLICATION_NAME
        });
        let context = EventContext {
            account: Some(account.to_owned()),
            api_version: DEFAULT_API_VERSION.to_owned(),
            request_id: None,
            idempotency_key: None,
        };
        record_event(
            &self.shared,
            &mut state,
            &context,
            "account.application.deauthorized",
            application,
        );
        state.revoked_accounts.insert(account.to_owned());
    }
}

// ---------------------------------------------------------------------------------------------
// Server plumbing

struct Shared {
    secret_key: String,
    webhook_secret: String,
    /// The `pmc_…` id reported in `payment_method_configuration_details` (one per fake, as an
    /// account has one default configuration).
    payment_method_configuration: String,
    /// The platform's Connect application (`ca_…`), in `account.application.deauthorized`.
    application_id: String,
    ids: RandomState,
    counter: AtomicU64,
    state: Mutex<State>,
    /// True while [`FakeStripe::hold`] keeps API requests from being answered.
    held: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not hide the data from the others.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn next_counter(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// `prefix` followed by `len` random alphanumerics.
    fn new_id(&self, prefix: &str, len: usize) -> String {
        format!(
            "{prefix}{}",
            random_chars(&self.ids, self.next_counter(), len)
        )
    }
}

#[derive(Default)]
struct State {
    payment_methods: Vec<StoredPaymentMethod>,
    intents: Vec<StoredIntent>,
    customers: Vec<StoredObject>,
    checkout_sessions: Vec<StoredSession>,
    setup_intents: Vec<StoredObject>,
    /// One Charge per payment attempt that reached the card (`latest_charge` of an intent).
    charge_objects: Vec<StoredObject>,
    /// Connected accounts whose flags were changed from the default (everything enabled).
    accounts: HashMap<String, AccountFlags>,
    idempotency: HashMap<(Option<String>, String), IdempotencyEntry>,
    script: VecDeque<Outcome>,
    requests: Vec<RecordedRequest>,
    search_delay: Duration,
    secret_key_revoked: bool,
    revoked_accounts: HashSet<String>,
    webhook_url: Option<String>,
    events: Vec<StoredEvent>,
    deliveries: Vec<(String, u16)>,
    /// Position in `intents` of each PaymentIntent id (ids are unique across accounts).
    intent_index: HashMap<String, usize>,
    /// Position in `events` of each event id.
    event_index: HashMap<String, usize>,
    /// See [`FakeStripe::set_latency`].
    latency: Duration,
    /// See [`FakeStripe::set_random_faults`]; `None`: off.
    random_faults: Option<RandomFaults>,
    /// `(Request-Id, fault)` of every injected fault, in order.
    injected_faults: Vec<(String, Outcome)>,
    /// See [`FakeStripe::rate_limit_for`].
    rate_limited_until: Option<Instant>,
    /// Arrival time of every API request, in order.
    arrivals: Vec<Instant>,
}

impl State {
    /// The PaymentIntent `id`, on whatever account it lives.
    fn intent(&self, id: &str) -> Option<&StoredIntent> {
        self.intent_index.get(id).and_then(|&i| self.intents.get(i))
    }

    fn intent_mut(&mut self, id: &str) -> Option<&mut StoredIntent> {
        let index = *self.intent_index.get(id)?;
        self.intents.get_mut(index)
    }

    fn push_intent(&mut self, intent: StoredIntent) {
        self.intent_index
            .insert(intent.id().to_owned(), self.intents.len());
        self.intents.push(intent);
    }

    fn event(&self, id: &str) -> Option<&StoredEvent> {
        self.event_index.get(id).and_then(|&i| self.events.get(i))
    }

    fn event_mut(&mut self, id: &str) -> Option<&mut StoredEvent> {
        let index = *self.event_index.get(id)?;
        self.events.get_mut(index)
    }

    /// The outcome of a `POST /v1/payment_intents` that is about to execute: the next scripted
    /// one, or else (random faults on) a draw, or else [`Outcome::Succeed`]. Called exactly once
    /// per request that gets this far, so replays and refusals never use up a draw.
    fn next_outcome(&mut self, request_id: &str) -> Outcome {
        if let Some(outcome) = self.script.pop_front() {
            return outcome;
        }
        let Some(faults) = &mut self.random_faults else {
            return Outcome::Succeed;
        };
        if faults.rng.next_f64() >= faults.rate {
            return Outcome::Succeed;
        }
        let fault = if faults.rng.next_u64() & 1 == 0 {
            Outcome::ChargeThenDropConnection
        } else {
            Outcome::ServerErrorBeforeExecution
        };
        self.injected_faults
            .push((request_id.to_owned(), fault.clone()));
        fault
    }
}

/// What [`FakeStripe::set_random_faults`] set.
struct RandomFaults {
    rate: f64,
    rng: SplitMix64,
}

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014):
/// a tiny deterministic generator, good enough to pick faults reproducibly.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`: the top 53 bits as the mantissa.
    fn next_f64(&mut self) -> f64 {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        (self.next_u64() >> 11) as f64 * SCALE
    }
}

/// An event, serialized once: every delivery sends `payload` unchanged.
struct StoredEvent {
    id: String,
    object: Value,
    payload: String,
    /// Whether some delivery got a 2xx.
    delivered: bool,
}

struct StoredPaymentMethod {
    account: Option<String>,
    id: String,
    /// The customer it is attached to; `None` once detached (or never attached).
    customer: Option<String>,
    /// Detached from a customer: Stripe refuses to use it again.
    detached: bool,
    object: Value,
}

/// A Customer, SetupIntent or Charge, in the account it lives on.
struct StoredObject {
    account: Option<String>,
    /// The API version its later events are rendered in (the creating request's, or the default).
    api_version: String,
    /// `object["id"]`, kept apart because lookups compare it for every stored object (an id
    /// never changes).
    id: String,
    object: Value,
    /// Customers only: deleted (retrieve then answers the `deleted: true` stub).
    deleted: bool,
}

impl StoredObject {
    fn new(account: Option<String>, api_version: &str, object: Value) -> StoredObject {
        StoredObject {
            account,
            api_version: api_version.to_owned(),
            id: object["id"].as_str().unwrap_or_default().to_owned(),
            object,
            deleted: false,
        }
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn is(&self, account: Option<&str>, id: &str) -> bool {
        self.account.as_deref() == account && self.id() == id
    }
}

/// A Checkout Session and what it will put on the SetupIntent it creates.
struct StoredSession {
    stored: StoredObject,
    /// `setup_intent_data[metadata]`.
    setup_intent_metadata: Map<String, Value>,
    /// `setup_intent_data[description]`.
    setup_intent_description: Option<String>,
}

/// What [`FakeStripe::set_charges_enabled`] changed on a connected account.
#[derive(Clone, Copy)]
struct AccountFlags {
    charges_enabled: bool,
}

impl Default for AccountFlags {
    fn default() -> AccountFlags {
        AccountFlags {
            charges_enabled: true,
        }
    }
}

struct StoredIntent {
    account: Option<String>,
    /// The API version of the request that created it (used to render its later events).
    api_version: String,
    idempotency_key: Option<String>,
    requested_payment_method: Option<String>,
    inserted: Instant,
    object: Value,
}

impl StoredIntent {
    fn id(&self) -> &str {
        self.object["id"].as_str().unwrap_or_default()
    }

    fn record(&self) -> ChargeRecord {
        let o = &self.object;
        let text = |field: &str| o[field].as_str().map(str::to_owned);
        ChargeRecord {
            id: self.id().to_owned(),
            account: self.account.clone(),
            amount: o["amount"].as_i64().unwrap_or_default(),
            currency: text("currency").unwrap_or_default(),
            customer: text("customer"),
            payment_method: self.requested_payment_method.clone(),
            metadata: o["metadata"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
            description: text("description"),
            idempotency_key: self.idempotency_key.clone(),
            status: text("status").unwrap_or_default(),
            latest_charge: text("latest_charge"),
            object: o.clone(),
        }
    }
}

/// What the idempotency layer knows about a key.
enum IdempotencyEntry {
    /// A request with this key is executing.
    InFlight,
    /// The saved result.
    Done {
        fingerprint: Fingerprint,
        saved: SavedResponse,
    },
}

/// What must match for a replay: the endpoint and the parameters.
#[derive(Clone, PartialEq)]
struct Fingerprint {
    method: String,
    path: String,
    params: Value,
}

#[derive(Clone)]
struct SavedResponse {
    status: u16,
    body: Bytes,
    request_id: String,
}

/// The error a service returns to make hyper close the connection without answering.
#[derive(Debug)]
struct ConnectionDropped;

impl fmt::Display for ConnectionDropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fake Stripe dropped the connection on purpose")
    }
}

impl std::error::Error for ConnectionDropped {}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let shared = Arc::clone(&shared);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| serve(Arc::clone(&shared), req));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}

/// The parts of a request the handlers look at.
struct ReceivedRequest {
    method: String,
    path: String,
    query: Option<String>,
    headers: BTreeMap<String, String>,
    body: Bytes,
}

impl ReceivedRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn idempotency_key(&self) -> Option<&str> {
        self.header("idempotency-key")
    }

    /// The request's parameters: the form body for POST, the query string otherwise.
    fn params(&self) -> Result<Map<String, Value>, Failure> {
        let text = if self.method == "POST" {
            if !self.body.is_empty() {
                let content_type = self.header("content-type").unwrap_or_default();
                let essence = content_type
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                if essence != "application/x-www-form-urlencoded" {
                    return Err(Failure::invalid(format!(
                        "Invalid request: unsupported Content-Type {content_type}. The API \
                         takes application/x-www-form-urlencoded bodies."
                    )));
                }
            }
            std::str::from_utf8(&self.body)
                .map_err(|_| Failure::invalid("Invalid request: the body is not valid UTF-8."))?
        } else {
            self.query.as_deref().unwrap_or_default()
        };
        match decode_form(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Ok(Map::new()),
            Err(e) => {
                Err(Failure::invalid(format!("Invalid request: {}", e.message)).param(&e.key))
            }
        }
    }
}

/// What a handler decided.
enum Handled {
    Reply(Reply),
    Hang,
    Drop,
    /// Send the status and headers of this reply, then its body one byte per interval, forever.
    Trickle(Reply, Duration),
}

/// The body type of every response: a whole body, or a never-ending trickle.
type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// A body that yields `bytes` one byte per `interval` tick, then spaces, and never ends.
struct TrickleBody {
    bytes: Bytes,
    sent: usize,
    interval: tokio::time::Interval,
}

impl TrickleBody {
    fn new(bytes: Bytes, interval: Duration) -> TrickleBody {
        // `tokio::time::interval` refuses a zero period.
        let mut interval = tokio::time::interval(interval.max(Duration::from_millis(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        TrickleBody {
            bytes,
            sent: 0,
            interval,
        }
    }
}

impl Body for TrickleBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        match this.interval.poll_tick(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => {
                let byte = if this.sent < this.bytes.len() {
                    this.bytes.slice(this.sent..=this.sent)
                } else {
                    Bytes::from_static(b" ")
                };
                this.sent = this.sent.saturating_add(1);
                Poll::Ready(Some(Ok(Frame::data(byte))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }
}

struct Reply {
    status: u16,
    body: Bytes,
    /// `Original-Request` header (idempotent POSTs).
    original_request: Option<String>,
    replayed: bool,
    should_retry: Option<bool>,
}

impl Reply {
    fn json(status: u16, value: &Value) -> Reply {
        Reply {
            status,
            body: pretty(value),
            original_request: None,
            replayed: false,
            should_retry: None,
        }
    }
}

fn pretty(value: &Value) -> Bytes {
    let mut text = serde_json::to_vec_pretty(value).unwrap_or_default();
    text.push(b'\n');
    Bytes::from(text)
}

async fn serve(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, ConnectionDropped> {
    let request_id = shared.new_id("req_", 14);
    // Arrival: the request line and headers are in. A rate-limit window and the latency count
    // from here; the time is taken under the lock so `arrivals` is in order.
    let (arrived, latency, rate_limited) = {
        let mut state = shared.lock();
        let arrived = Instant::now();
        state.arrivals.push(arrived);
        let limited = state
            .rate_limited_until
            .is_some_and(|until| arrived < until);
        (arrived, state.latency, limited)
    };
    let (parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let mut headers = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers.insert(
            name.as_str().to_ascii_lowercase(),
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        );
    }
    let incoming = ReceivedRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers,
        body,
    };

    let index = {
        let form = incoming.params().map(Value::Object).unwrap_or(Value::Null);
        let mut state = shared.lock();
        state.requests.push(RecordedRequest {
            method: incoming.method.clone(),
            path: incoming.path.clone(),
            query: incoming.query.clone(),
            headers: incoming.headers.clone(),
            idempotency_key: incoming.idempotency_key().map(str::to_owned),
            stripe_account: incoming.header("stripe-account").map(str::to_owned),
            form,
            raw_body: String::from_utf8_lossy(&incoming.body).into_owned(),
            status: None,
            replayed: false,
            request_id: request_id.clone(),
        });
        state.requests.len() - 1
    };

    let record = |reply: &Reply| {
        if let Some(recorded) = shared.lock().requests.get_mut(index) {
            recorded.status = Some(reply.status);
            recorded.replayed = reply.replayed;
        }
    };
    // A held request waits, recorded, until the test releases it.
    let mut held = shared.held.subscribe();
    if held.wait_for(|held| !*held).await.is_err() {
        return Err(ConnectionDropped);
    }
    let answer_at = tokio::time::Instant::from_std(arrived + latency);
    let (incoming, handled) = if rate_limited {
        // Stripe's rate limiters run in front of everything else, the idempotency layer
        // included: nothing is executed or saved, no outcome is used
        // (<https://docs.stripe.com/rate-limits>,
        // <https://docs.stripe.com/error-low-level#content-errors>).
        tokio::time::sleep_until(answer_at).await;
        (incoming, Handled::Reply(rate_limited_reply(&request_id)))
    } else if latency.is_zero() {
        let handled = dispatch(&shared, &incoming, &request_id).await;
        (incoming, handled)
    } else {
        // The request is on its way to Stripe: it runs in its own task, so it executes after the
        // latency even if the client stops waiting, as a request that reached Stripe does. Every
        // request sleeps on its own; nothing holds the lock meanwhile.
        let shared = Arc::clone(&shared);
        let request_id = request_id.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep_until(answer_at).await;
            let handled = dispatch(&shared, &incoming, &request_id).await;
            (incoming, handled)
        });
        match task.await {
            Ok(done) => done,
            Err(_) => return Err(ConnectionDropped),
        }
    };
    match handled {
        Handled::Reply(reply) => {
            record(&reply);
            Ok(respond(&incoming, &request_id, &reply, || {
                Full::new(reply.body.clone()).boxed_unsync()
            }))
        }
        Handled::Trickle(reply, interval) => {
            record(&reply);
            Ok(respond(&incoming, &request_id, &reply, || {
                TrickleBody::new(reply.body.clone(), interval).boxed_unsync()
            }))
        }
        Handled::Hang => std::future::pending().await,
        Handled::Drop => Err(ConnectionDropped),
    }
}

fn respond(
    incoming: &ReceivedRequest,
    request_id: &str,
    reply: &Reply,
    body: impl Fn() -> ResponseBody,
) -> Response<ResponseBody> {
    let mut builder = Response::builder()
        .status(reply.status)
        .header("content-type", "application/json")
        .header("cache-control", "no-cache, no-store")
        .header("request-id", request_id)
        .header(
            "stripe-version",
            incoming
                .header("stripe-version")
                .unwrap_or(DEFAULT_API_VERSION),
        );
    if let Some(account) = incoming.header("stripe-account") {
        builder = builder.header("stripe-account", account);
    }
    if incoming.method == "POST"
        && let Some(key) = incoming.idempotency_key()
    {
        builder = builder.header("idempotency-key", key).header(
            "original-request",
            reply.original_request.as_deref().unwrap_or(request_id),
        );
    }
    if reply.replayed {
        builder = builder.header("idempotent-replayed", "true");
    }
    if let Some(retry) = reply.should_retry {
        builder = builder.header("stripe-should-retry", if retry { "true" } else { "false" });
    }
    if reply.status == 401 {
        builder = builder.header("www-authenticate", "Basic realm=\"Stripe\"");
    }
    builder.body(body()).unwrap_or_else(|_| {
        // Only reachable with a header value hyper refuses; answer without the extras.
        let mut res = Response::new(body());
        *res.status_mut() =
            hyper::StatusCode::from_u16(reply.status).unwrap_or(hyper::StatusCode::OK);
        res
    })
}

async fn dispatch(shared: &Arc<Shared>, incoming: &ReceivedRequest, request_id: &str) -> Handled {
    let revoked = shared.lock().secret_key_revoked;
    if let Err(failure) = authenticate(&shared.secret_key, revoked, incoming) {
        return failure.handled(request_id);
    }
    let account = match incoming.header("stripe-account") {
        None => None,
        Some(value) => {
            let value = value.trim();
            let valid = value.len() > "acct_".len()
                && value.starts_with("acct_")
                && value[5..].bytes().all(|b| b.is_ascii_alphanumeric());
            // A platform whose access was revoked gets the same 403 as for an account that does
            // not exist (<https://docs.stripe.com/connect/authentication>,
            // <https://docs.stripe.com/api/errors>: 403 "The API key doesn't have permissions to
            // perform the request").
            let revoked = valid && shared.lock().revoked_accounts.contains(value);
            if !valid || revoked {
                let mut message = format!(
                    "The provided key '{}' does not have access to account '{value}' (or that \
                     account does not exist).",
                    redact_key(&shared.secret_key)
                );
                if revoked {
                    message.push_str(" Application access may have been revoked.");
                }
                return Failure::invalid(message)
                    .status(403)
                    .code("account_invalid")
                    .handled(request_id);
            }
            Some(value.to_owned())
        }
    };
    let version = match api_version(incoming) {
        Ok(version) => version,
        Err(failure) => return failure.handled(request_id),
    };

    let segments: Vec<&str> = incoming.path.split('/').collect();
    match (incoming.method.as_str(), segments.as_slice()) {
        ("POST", ["", "v1", "payment_intents"]) => {
            create_payment_intent(shared, incoming, account, request_id).await
        }
        ("GET", ["", "v1", "payment_intents"]) => sync_handler(incoming, request_id, |params| {
            list_payment_intents(&shared.lock(), account.as_deref(), params)
        }),
        ("GET", ["", "v1", "payment_intents", "search"]) => {
            sync_handler(incoming, request_id, |params| {
                search_payment_intents(&shared.lock(), account.as_deref(), params)
            })
        }
        ("GET", ["", "v1", "payment_intents", id]) if !id.is_empty() => {
            sync_handler(incoming, request_id, |params| {
                retrieve_payment_intent(&shared.lock(), account.as_deref(), id, params)
            })
        }
        ("GET", ["", "v1", "payment_methods", id]) if !id.is_empty() => {
            sync_handler(incoming, request_id, |params| {
                retrieve_payment_method(&shared.lock(), account.as_deref(), id, params)
            })
        }
        ("POST", ["", "v1", "payment_methods", id, "detach"]) if !id.is_empty() => idempotent_post(
            shared,
            incoming,
            account,
            request_id,
            |state, params, context| {
                check_names(params, &[], &["expand"])?;
                detach_stored_payment_method(shared, state, context, id)
            },
        ),
        ("POST", ["", "v1", "customers"]) => idempotent_post(
            shared,
            incoming,
            account,
            request_id,
            |state, params, context| create_customer(shared, state, params, context),
        ),
        ("GET", ["", "v1", "customers", id]) if !id.is_empty() => {
            sync_handler(incoming, request_id, |params| {
                retrieve_customer(&shared.lock(), account.as_deref(), id, params)
            })
        }
        ("DELETE", ["", "v1", "customers", id]) if !id.is_empty() => {
            sync_handler(incoming, request_id, |params| {
                check_names(params, &[], &[])?;
                let context = EventContext {
                    account: account.clone(),
                    api_version: version.clone(),
                    request_id: Some(request_id.to_owned()),
                    idempotency_key: None,
                };
                delete_customer(shared, &mut shared.lock(), &context, id)
            })
        }
        ("POST", ["", "v1", "checkout", "sessions"]) => idempotent_post(
            shared,
            incoming,
            account,
            request_id,
            |state, params, context| create_checkout_session(shared, state, params, context),
        ),
        ("GET", ["", "v1", "checkout", "sessions", id]) if !id.is_empty() => {
            sync_handler(incoming, request_id, |params| {
                retrieve_checkout_session(&shared.lock(), account.as_deref(), id, params)
            })
        }
        ("GET", ["", "v1", "setup_intents", id]) if !id.is_empty() => {
            sync_handler(incoming, request_id, |params| {
                retrieve_setup_intent(&shared.lock(), account.as_deref(), id, params)
            })
        }
        ("POST", ["", "v1", "refunds"]) => idempotent_post(
            shared,
            incoming,
            account,
            request_id,
            |state, params, context| create_refund(shared, state, params, context),
        ),
        ("GET", ["", "v1", "charges", id]) if !id.is_empty() => {
            sync_handler(incoming, request_id, |params| {
                retrieve_charge(&shared.lock(), account.as_deref(), id, params)
            })
        }
        (method, _) => Failure::invalid(format!(
            "Unrecognized request URL ({method}: {}). This fake Stripe implements only \
             POST /v1/payment_intents, GET /v1/payment_intents[/search|/{{id}}], \
             GET /v1/payment_methods/{{id}}, POST /v1/payment_methods/{{id}}/detach, \
             POST /v1/customers, GET and DELETE /v1/customers/{{id}}, \
             POST /v1/checkout/sessions, GET /v1/checkout/sessions/{{id}}, \
             GET /v1/setup_intents/{{id}}, POST /v1/refunds and GET /v1/charges/{{id}}.",
            incoming.path
        ))
        .status(404)
        .handled(request_id),
    }
}

fn sync_handler(
    incoming: &ReceivedRequest,
    request_id: &str,
    handler: impl FnOnce(&Map<String, Value>) -> Result<Value, Failure>,
) -> Handled {
    let result = incoming.params().and_then(|params| handler(&params));
    match result {
        Ok(value) => Handled::Reply(Reply::json(200, &value)),
        Err(failure) => failure.handled(request_id),
    }
}

/// The request's `Stripe-Version`, or [`DEFAULT_API_VERSION`]. A version is a date, optionally
/// followed by a release name (`2024-06-20`, `2025-03-31.basil`;
/// <https://docs.stripe.com/api/versioning>); anything else is refused.
fn api_version(incoming: &ReceivedRequest) -> Result<String, Failure> {
    let Some(version) = incoming.header("stripe-version") else {
        return Ok(DEFAULT_API_VERSION.to_owned());
    };
    let version = version.trim();
    let (date, name) = version.split_once('.').unwrap_or((version, "x"));
    let date_ok = date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !date_ok || name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(Failure::invalid(format!(
            "Invalid Stripe API version: {version}"
        )));
    }
    Ok(version.to_owned())
}

/// Whether API version `version` (already validated) is `since` or later: versions compare by
/// their date.
fn version_at_least(version: &str, since: &str) -> bool {
    version.get(..10).unwrap_or(version) >= since
}

fn authenticate(
    secret_key: &str,
    revoked: bool,
    incoming: &ReceivedRequest,
) -> Result<(), Failure> {
    let Some(header) = incoming.header("authorization") else {
        return Err(Failure::invalid(
            "No API key was provided. Send your secret key in the Authorization header, as \
             Bearer auth (Authorization: Bearer sk_...) or as the Basic auth user name.",
        )
        .status(401));
    };
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let presented = if scheme.eq_ignore_ascii_case("bearer") {
        Some(rest.trim().to_owned())
    } else if scheme.eq_ignore_ascii_case("basic") {
        decode_base64(rest.trim())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(|pair| {
                pair.split_once(':')
                    .map_or(pair.clone(), |(u, _)| u.to_owned())
            })
    } else {
        None
    };
    // A wrong key and a revoked (rolled or deleted) one are both answered `401` with Stripe's
    // "Invalid API Key provided" and the key redacted (<https://docs.stripe.com/api/errors>:
    // 401 "No valid API key provided").
    match presented {
        Some(key) if key == secret_key && !revoked => Ok(()),
        Some(key) if !key.is_empty() => Err(Failure::invalid(format!(
            "Invalid API Key provided: {}",
            redact_key(&key)
        ))
        .status(401)),
        _ => Err(Failure::invalid(
            "The Authorization header is malformed: send 'Bearer <secret key>', or Basic auth \
             with the secret key as the user name.",
        )
        .status(401)),
    }
}

fn redact_key(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let head: String = key.chars().take(8).collect();
    format!("{head}****{tail}")
}

// ---------------------------------------------------------------------------------------------
// Errors

/// A Stripe error response under construction.
struct Failure {
    status: u16,
    error: Map<String, Value>,
    should_retry: Option<bool>,
}

impl Failure {
    /// `400 invalid_request_error`.
    fn invalid(message: impl Into<String>) -> Failure {
        Failure::typed("invalid_request_error", message).status(400)
    }

    fn typed(kind: &str, message: impl Into<String>) -> Failure {
        let mut error = Map::new();
        error.insert("message".into(), Value::String(message.into()));
        error.insert("type".into(), Value::String(kind.into()));
        Failure {
            status: 400,
            error,
            should_retry: None,
        }
    }

    fn status(mut self, status: u16) -> Failure {
        self.status = status;
        self
    }

    fn param(mut self, param: &str) -> Failure {
        self.error
            .insert("param".into(), Value::String(param.to_owned()));
        self
    }

    fn code(mut self, code: &str) -> Failure {
        self.error
            .insert("code".into(), Value::String(code.to_owned()));
        self.error
            .insert("doc_url".into(), Value::String(doc_url(code)));
        self
    }

    fn field(mut self, name: &str, value: Value) -> Failure {
        self.error.insert(name.to_owned(), value);
        self
    }

    fn reply(mut self, request_id: &str) -> Reply {
        self.error.insert(
            "request_log_url".into(),
            Value::String(format!(
                "https://dashboard.stripe.com/test/logs/{request_id}?t={}",
                unix_now()
            )),
        );
        let mut reply = Reply::json(self.status, &json!({ "error": self.error }));
        reply.should_retry = self.should_retry;
        reply
    }

    fn handled(self, request_id: &str) -> Handled {
        Handled::Reply(self.reply(request_id))
    }

    /// The error's message (for the panics of test helpers).
    fn message(&self) -> String {
        self.error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }
}

/// The `doc_url` Stripe puts beside an error `code`: the code's entry in
/// <https://docs.stripe.com/error-codes>.
fn doc_url(code: &str) -> String {
    format!(
        "https://stripe.com/docs/error-codes/{}",
        code.replace('_', "-")
    )
}

/// Stripe refuses parameters it does not know instead of ignoring them
/// (<https://docs.stripe.com/changelog/2011-06-21/exceptions-unrecognized-api-parameters>), with
/// code `parameter_unknown` (<https://docs.stripe.com/error-codes>: "The request contains one or
/// more unexpected parameters").
fn unknown_parameter(name: &str) -> Failure {
    Failure::invalid(format!("Received unknown parameter: {name}"))
        .param(name)
        .code("parameter_unknown")
}

fn unsupported_parameter(name: &str) -> Failure {
    Failure::invalid(format!(
        "The parameter {name} exists in Stripe's API but this fake Stripe does not implement it."
    ))
    .param(name)
}

/// A required parameter is absent: code `parameter_missing` (<https://docs.stripe.com/error-codes>).
fn missing_parameter(name: &str) -> Failure {
    Failure::invalid(format!("Missing required param: {name}."))
        .param(name)
        .code("parameter_missing")
}

/// `429` with code `rate_limit` (<https://docs.stripe.com/rate-limits>), from in front of the
/// idempotency layer.
fn rate_limited_reply(request_id: &str) -> Reply {
    Failure::invalid(
        "Too many requests reached the API in too short a time. Back off exponentially and \
         retry.",
    )
    .status(429)
    .code("rate_limit")
    .reply(request_id)
}

fn server_error(request_id: &str) -> Failure {
    Failure::typed(
        "api_error",
        format!(
            "An unexpected error happened while processing this request. If it persists, \
             contact support and quote the request id {request_id}."
        ),
    )
    .status(500)
}

// ---------------------------------------------------------------------------------------------
// Parameter helpers

/// Refuses any parameter outside `allowed` ([`unknown_parameter`]: Stripe refuses what it does not
/// know) and any in `unsupported` (Stripe has it, the fake does not implement it: refused rather
/// than ignored, the fake's own strictness).
fn check_names(
    params: &Map<String, Value>,
    allowed: &[&str],
    unsupported: &[&str],
) -> Result<(), Failure> {
    for name in params.keys() {
        if unsupported.contains(&name.as_str()) {
            return Err(unsupported_parameter(name));
        }
        if !allowed.contains(&name.as_str()) {
            return Err(unknown_parameter(name));
        }
    }
    Ok(())
}

fn string_param(params: &Map<String, Value>, name: &str) -> Result<Option<String>, Failure> {
    match params.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Failure::invalid(format!(
            "Invalid string: {name} must be a single string, not a hash or an array."
        ))
        .param(name)),
    }
}

/// An integer parameter; anything else is code `parameter_invalid_integer`
/// (<https://docs.stripe.com/error-codes>).
fn integer_param(params: &Map<String, Value>, name: &str) -> Result<Option<i64>, Failure> {
    match string_param(params, name)? {
        None => Ok(None),
        Some(text) => text.trim().parse::<i64>().map(Some).map_err(|_| {
            Failure::invalid(format!("Invalid integer: {text}"))
                .param(name)
                .code("parameter_invalid_integer")
        }),
    }
}

/// A boolean parameter: `true` or `false`, as the API reference's examples send them
/// (`-d confirm=true`, <https://docs.stripe.com/api/payment_intents/create>). What Stripe answers
/// for another spelling is not documented; modelled on its `Invalid boolean` refusal.
fn boolean_param(params: &Map<String, Value>, name: &str) -> Result<Option<bool>, Failure> {
    match string_param(params, name)? {
        None => Ok(None),
        Some(text) => match text.as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(Failure::invalid(format!("Invalid boolean: {text}")).param(name)),
        },
    }
}

/// `limit` of list and search endpoints (<https://docs.stripe.com/api/pagination>: "optional,
/// default is 10 ... ranging between 1 and 100").
fn limit_param(params: &Map<String, Value>) -> Result<usize, Failure> {
    match integer_param(params, "limit")? {
        None => Ok(10),
        Some(n) if (1..=100).contains(&n) => Ok(usize::try_from(n).unwrap_or(10)),
        Some(n) => Err(Failure::invalid(format!(
            "Invalid limit: must be between 1 and 100, got {n}"
        ))
        .param("limit")),
    }
}

// ---------------------------------------------------------------------------------------------
// POST /v1/payment_intents

/// The create parameters, validated.
#[derive(Clone)]
struct CreateParams {
    amount: i64,
    currency: String,
    customer: Option<String>,
    payment_method: Option<String>,
    confirm: bool,
    off_session: bool,
    error_on_requires_action: bool,
    metadata: Map<String, Value>,
    description: Option<String>,
    payment_method_types: Vec<String>,
    /// `Some(allow_redirects)` when automatic payment methods are enabled.
    automatic_payment_methods: Option<String>,
    return_url: Option<String>,
    capture_method: String,
    receipt_email: Option<String>,
    statement_descriptor_suffix: Option<String>,
}

const CREATE_PARAMS: &[&str] = &[
    "amount",
    "currency",
    "customer",
    "payment_method",
    "confirm",
    "off_session",
    "error_on_requires_action",
    "metadata",
    "description",
    "payment_method_types",
    "automatic_payment_methods",
    "return_url",
    "capture_method",
    "receipt_email",
    "statement_descriptor_suffix",
];

const CREATE_UNSUPPORTED: &[&str] = &[
    "expand",
    "application_fee_amount",
    "confirmation_method",
    "confirmation_token",
    "mandate",
    "mandate_data",
    "on_behalf_of",
    "payment_method_configuration",
    "payment_method_data",
    "payment_method_options",
    "radar_options",
    "setup_future_usage",
    "shipping",
    "statement_descriptor",
    "transfer_data",
    "transfer_group",
    "use_stripe_sdk",
];

/// Stripe's minimum charge amounts for a few common currencies (minor units)
/// (<https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts>; the PaymentIntent's
/// `amount`: "The minimum amount is $0.50 US or equivalent in charge currency",
/// <https://docs.stripe.com/api/payment_intents/create#create_payment_intent-amount>).
fn minimum_amount(currency: &str) -> Option<i64> {
    match currency {
        "usd" | "eur" | "cad" | "aud" | "nzd" | "chf" | "sgd" => Some(50),
        "gbp" => Some(30),
        _ => None,
    }
}

fn validate_create(
    params: &Map<String, Value>,
    state: &State,
    account: Option<&str>,
    api_version: &str,
) -> Result<CreateParams, Failure> {
    check_names(params, CREATE_PARAMS, CREATE_UNSUPPORTED)?;

    let amount = integer_param(params, "amount")?.ok_or_else(|| missing_parameter("amount"))?;
    let currency =
        currency_param(params, "currency")?.ok_or_else(|| missing_parameter("currency"))?;
    // `amount`: "A positive integer representing how much to charge in the smallest currency
    // unit" and "The amount value supports up to eight digits (e.g., a value of 99999999 for a
    // USD charge of $999,999.99)"
    // (<https://docs.stripe.com/api/payment_intents/create#create_payment_intent-amount>); codes
    // `amount_too_small` and `amount_too_large` (<https://docs.stripe.com/error-codes>).
    if amount < 1 {
        return Err(Failure::invalid(
            "Invalid integer: amount must be greater than or equal to 1.",
        )
        .param("amount")
        .code("parameter_invalid_integer"));
    }
    if amount > 99_999_999 {
        return Err(Failure::invalid("Amount must be no more than 99999999.")
            .param("amount")
            .code("amount_too_large"));
    }
    if let Some(minimum) = minimum_amount(&currency)
        && amount < minimum
    {
        return Err(Failure::invalid(format!(
            "Amount must be at least {minimum} in {currency} minor units."
        ))
        .param("amount")
        .code("amount_too_small"));
    }

    let confirm = boolean_param(params, "confirm")?.unwrap_or(false);
    // `off_session`: `true`, or `one_off` / `recurring`; `off_session` and
    // `error_on_requires_action`: "This parameter can only be used with confirm=true"
    // (<https://docs.stripe.com/api/payment_intents/create#create_payment_intent-off_session>,
    // <https://docs.stripe.com/api/payment_intents/create#create_payment_intent-error_on_requires_action>).
    let off_session = match string_param(params, "off_session")? {
        None => None,
        Some(text) => Some(match text.as_str() {
            "true" | "one_off" | "recurring" => true,
            "false" => false,
            _ => {
                return Err(
                    Failure::invalid(format!("Invalid value for off_session: {text}"))
                        .param("off_session"),
                );
            }
        }),
    };
    if off_session.is_some() && !confirm {
        return Err(
            Failure::invalid("off_session can only be used together with confirm=true.")
                .param("off_session"),
        );
    }
    let error_on_requires_action = boolean_param(params, "error_on_requires_action")?;
    if error_on_requires_action.is_some() && !confirm {
        return Err(Failure::invalid(
            "error_on_requires_action can only be used together with confirm=true.",
        )
        .param("error_on_requires_action"));
    }

    let customer = string_param(params, "customer")?;
    if let Some(customer) = &customer {
        // An id that does not exist in the account is code `resource_missing`
        // (<https://docs.stripe.com/error-codes>); a deleted customer is no customer
        // (<https://docs.stripe.com/api/customers/delete>).
        if live_customer(state, account, customer).is_none() {
            return Err(Failure::invalid(format!("No such customer: '{customer}'"))
                .param("customer")
                .code("resource_missing"));
        }
    }
    let payment_method = string_param(params, "payment_method")?;
    if let Some(pm_id) = &payment_method {
        let Some(pm) = state
            .payment_methods
            .iter()
            .find(|pm| pm.account.as_deref() == account && &pm.id == pm_id)
        else {
            return Err(
                Failure::invalid(format!("No such PaymentMethod: '{pm_id}'"))
                    .param("payment_method")
                    .code("resource_missing"),
            );
        };
        // Whose card it is: the messages are modelled on Stripe's answers; only the detached case
        // below is documented as such.
        match (&customer, &pm.customer) {
            (Some(customer), Some(owner)) if owner != customer => {
                return Err(Failure::invalid(format!(
                    "The PaymentMethod {pm_id} is attached to another Customer than \
                     {customer}; a PaymentIntent can only use the Customer's own payment \
                     methods."
                ))
                .param("payment_method"));
            }
            (None, Some(_)) => {
                return Err(Failure::invalid(format!(
                    "The PaymentMethod {pm_id} is attached to a Customer: pass that Customer's \
                     id in `customer` to use it."
                ))
                .param("customer"));
            }
            // Detached (or never attached): "Once a PaymentMethod is detached, it can no longer
            // be used for a payment or re-attached to a Customer"
            // (<https://docs.stripe.com/api/payment_methods/detach>).
            (Some(_), None) => {
                return Err(Failure::invalid(format!(
                    "The customer does not have a payment method with the ID {pm_id}. The \
                     payment method must be attached to the customer."
                ))
                .param("payment_method"));
            }
            (None, None) if pm.detached => {
                return Err(Failure::invalid(PAYMENT_METHOD_DETACHED).param("payment_method"));
            }
            _ => {}
        }
    }
    // A connected account whose charges are disabled cannot be charged
    // (<https://docs.stripe.com/api/accounts/object#account_object-charges_enabled>,
    // <https://docs.stripe.com/connect/handling-api-verification>); Stripe's refusal names the
    // account's `requirements.disabled_reason`.
    if confirm
        && let Some(account) = account
        && state
            .accounts
            .get(account)
            .is_some_and(|flags| !flags.charges_enabled)
    {
        return Err(Failure::invalid(CHARGES_DISABLED));
    }
    // Not documented as a refusal of create: modelled on confirming a PaymentIntent in
    // `requires_payment_method` (code `payment_intent_unexpected_state`,
    // <https://docs.stripe.com/error-codes>).
    if confirm && payment_method.is_none() {
        return Err(Failure::invalid(
            "You cannot confirm this PaymentIntent because it has no payment method: pass \
             payment_method.",
        )
        .param("payment_method")
        .code("payment_intent_unexpected_state"));
    }

    let metadata = metadata_param(params.get("metadata"), "metadata")?;
    // Not on the API reference page: Stripe's OpenAPI spec (github.com/stripe/openapi) gives
    // `description` maxLength 1000, as read from a client generated from it.
    let description = bounded_string_param(params, "description", 1000)?;

    // `automatic_payment_methods` and `payment_method_types` exclude each other
    // (<https://docs.stripe.com/api/payment_intents/create>).
    if params.contains_key("payment_method_types")
        && params.contains_key("automatic_payment_methods")
    {
        return Err(Failure::invalid(
            "You may only specify one of these parameters: automatic_payment_methods, \
             payment_method_types.",
        ));
    }
    let explicit_automatic = automatic_payment_methods_param(params)?;
    let payment_method_types =
        payment_method_types_param(params)?.unwrap_or_else(|| vec!["card".to_owned()]);
    // From API version 2023-08-16 on, a PaymentIntent created without `payment_method_types`
    // has automatic payment methods enabled, with `allow_redirects: "always"`
    // (<https://docs.stripe.com/upgrades#2023-08-16>); before, it defaulted to `["card"]`. The
    // payment methods "enabled in the Dashboard" are just `card` here.
    let automatic_payment_methods = match explicit_automatic {
        Some(explicit) => explicit,
        None if !params.contains_key("payment_method_types")
            && version_at_least(api_version, AUTOMATIC_PAYMENT_METHODS_DEFAULT_SINCE) =>
        {
            Some("always".to_owned())
        }
        None => None,
    };

    // `return_url`: "This parameter can only be used with confirm=true."
    // (<https://docs.stripe.com/api/payment_intents/create#create_payment_intent-return_url>).
    let return_url = string_param(params, "return_url")?;
    if let Some(url) = &return_url {
        if !confirm {
            return Err(
                Failure::invalid("return_url can only be passed when confirm=true.")
                    .param("return_url"),
            );
        }
        // A web URL or an application URI scheme (`myapp://done`).
        let scheme_ok = url.split_once(':').is_some_and(|(scheme, rest)| {
            !rest.is_empty()
                && scheme
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        });
        if !scheme_ok {
            return Err(Failure::invalid("Not a valid URL").param("return_url"));
        }
    }
    // Confirming with automatic payment methods that may redirect needs somewhere to send the
    // customer back to (<https://docs.stripe.com/payments/payment-methods/integration-options>,
    // <https://docs.stripe.com/upgrades#2023-08-16>). A validation error: nothing is created.
    if confirm
        && automatic_payment_methods
            .as_deref()
            .is_some_and(|redirects| redirects != "never")
        && return_url.is_none()
    {
        return Err(Failure::invalid(RETURN_URL_REQUIRED).param("return_url"));
    }

    // `capture_method`: `automatic` (the default), `automatic_async` or `manual`
    // (<https://docs.stripe.com/api/payment_intents/create#create_payment_intent-capture_method>).
    let capture_method =
        string_param(params, "capture_method")?.unwrap_or_else(|| "automatic".to_owned());
    if !["automatic", "automatic_async", "manual"].contains(&capture_method.as_str()) {
        return Err(Failure::invalid(format!(
            "Invalid capture_method: must be one of automatic, automatic_async or manual, got \
             {capture_method}"
        ))
        .param("capture_method"));
    }

    // `statement_descriptor_suffix`: "The concatenated descriptor must contain 1-22 characters"
    // (<https://docs.stripe.com/api/payment_intents/create#create_payment_intent-statement_descriptor_suffix>):
    // a suffix longer than 22 can never fit, whatever the account's prefix.
    let statement_descriptor_suffix =
        bounded_string_param(params, "statement_descriptor_suffix", 22)?;

    Ok(CreateParams {
        amount,
        currency,
        customer,
        payment_method,
        confirm,
        off_session: off_session.unwrap_or(false),
        error_on_requires_action: error_on_requires_action.unwrap_or(false),
        metadata,
        description,
        payment_method_types,
        automatic_payment_methods,
        return_url,
        capture_method,
        receipt_email: string_param(params, "receipt_email")?,
        statement_descriptor_suffix,
    })
}

/// `payment_method_types[]`: only `card` is implemented. `None` when absent.
fn payment_method_types_param(params: &Map<String, Value>) -> Result<Option<Vec<String>>, Failure> {
    let types = match params.get("payment_method_types") {
        None => return Ok(None),
        Some(Value::Array(items)) => {
            let mut types = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some("card") => types.push("card".to_owned()),
                    Some(other) => {
                        return Err(Failure::invalid(format!(
                            "The payment method type '{other}' is not supported by this fake \
                             Stripe (only 'card')."
                        ))
                        .param(&format!("payment_method_types[{i}]")));
                    }
                    None => {
                        return Err(Failure::invalid("Invalid array of strings.")
                            .param("payment_method_types"));
                    }
                }
            }
            types
        }
        Some(_) => {
            return Err(Failure::invalid(
                "Invalid array: payment_method_types must be an array of strings.",
            )
            .param("payment_method_types"));
        }
    };
    Ok(Some(types))
}

/// Stripe's refusal to confirm, without a `return_url`, a PaymentIntent whose automatic payment
/// methods allow redirects.
const RETURN_URL_REQUIRED: &str = "This PaymentIntent is configured to accept payment methods \
    enabled in your Dashboard. Because some of these payment methods might redirect your \
    customer off of your page, you must provide a `return_url`. If you don't want to accept \
    redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and \
    `automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and \
    Payment Intents.";

/// `automatic_payment_methods[enabled]` (required in the hash) and
/// `automatic_payment_methods[allow_redirects]` (`always` or `never`, only with `enabled=true`);
/// see <https://docs.stripe.com/api/payment_intents/create>.
/// `None` when absent; `Some(None)` when disabled; `Some(Some(allow_redirects))` when enabled.
fn automatic_payment_methods_param(
    params: &Map<String, Value>,
) -> Result<Option<Option<String>>, Failure> {
    const NAME: &str = "automatic_payment_methods";
    let map = match params.get(NAME) {
        None => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(Failure::invalid(format!(
                "Invalid object: {NAME} must be a hash with `enabled` and optionally \
                 `allow_redirects`."
            ))
            .param(NAME));
        }
    };
    for key in map.keys() {
        if key != "enabled" && key != "allow_redirects" {
            return Err(unknown_parameter(&format!("{NAME}[{key}]")));
        }
    }
    let enabled_param = format!("{NAME}[enabled]");
    let enabled = match map.get("enabled") {
        None => return Err(missing_parameter(&enabled_param)),
        Some(Value::String(text)) if text == "true" => true,
        Some(Value::String(text)) if text == "false" => false,
        Some(other) => {
            let text = other.as_str().unwrap_or("(a hash or an array)");
            return Err(Failure::invalid(format!("Invalid boolean: {text}")).param(&enabled_param));
        }
    };
    let redirects_param = format!("{NAME}[allow_redirects]");
    let allow_redirects = match map.get("allow_redirects") {
        None => None,
        Some(Value::String(text)) if text == "always" || text == "never" => Some(text.clone()),
        Some(other) => {
            let text = other.as_str().unwrap_or("(a hash or an array)");
            return Err(Failure::invalid(format!(
                "Invalid {redirects_param}: must be one of always or never, got {text}"
            ))
            .param(&redirects_param));
        }
    };
    if !enabled {
        if allow_redirects.is_some() {
            return Err(Failure::invalid(format!(
                "{redirects_param} can only be set when {enabled_param} is true."
            ))
            .param(&redirects_param));
        }
        return Ok(Some(None));
    }
    Ok(Some(Some(
        allow_redirects.unwrap_or_else(|| "always".to_owned()),
    )))
}

/// Stripe's refusal of a PaymentMethod that was detached from its customer.
const PAYMENT_METHOD_DETACHED: &str = "The provided PaymentMethod was previously used with a \
    PaymentIntent without Customer attachment, shared with a connected account without Customer \
    attachment, or was detached from a Customer. It may not be used again. To use a \
    PaymentMethod multiple times, you must attach it to a Customer first.";

/// Stripe's refusal to charge on a connected account whose charges are disabled.
const CHARGES_DISABLED: &str = "This Connect account cannot currently make live charges. The \
    `requirements.disabled_reason` property on the account will provide information about why \
    this account is currently disabled. If you are a customer trying to make a purchase, please \
    contact the owner of this site. Your transaction has not been processed.";

/// `currency`: "Three-letter ISO currency code, in lowercase"
/// (<https://docs.stripe.com/api/payment_intents/create#create_payment_intent-currency>); "You must
/// use all lowercase letters when passing the three-letter ISO code in any payment request"
/// (<https://docs.stripe.com/currencies>). So `USD` is refused, not lowercased.
fn currency_param(params: &Map<String, Value>, name: &str) -> Result<Option<String>, Failure> {
    let Some(currency) = string_param(params, name)? else {
        return Ok(None);
    };
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(Failure::invalid(format!(
            "Invalid currency: {currency}. Currencies are three-letter ISO codes, in lowercase."
        ))
        .param(name));
    }
    Ok(Some(currency))
}

/// A `metadata`-like hash parameter named `param` (absent or `""`: empty).
fn metadata_param(value: Option<&Value>, param: &str) -> Result<Map<String, Value>, Failure> {
    match value {
        None => Ok(Map::new()),
        Some(Value::Object(map)) => validate_metadata(map, param),
        Some(Value::String(s)) if s.is_empty() => Ok(Map::new()),
        Some(_) => Err(Failure::invalid(format!(
            "Invalid object: {param} must be a hash of keys to string values."
        ))
        .param(param)),
    }
}

/// Stripe's metadata rules (<https://docs.stripe.com/api/metadata>): "You can specify up to 50
/// keys, with key names up to 40 characters long and values up to 500 characters long", "you
/// can't use square brackets ([ and ]) in keys" (a key with one never gets here: the form decoder
/// refuses it). On create, a key posted with an empty value is no key ("Individual keys can be
/// unset by posting an empty value to them",
/// <https://docs.stripe.com/api/payment_intents/create#create_payment_intent-metadata>).
fn validate_metadata(map: &Map<String, Value>, name: &str) -> Result<Map<String, Value>, Failure> {
    let mut clean = Map::new();
    for (key, value) in map {
        let param = format!("{name}[{key}]");
        let Value::String(value) = value else {
            return Err(Failure::invalid(format!(
                "Invalid value for {param}: metadata values must be strings."
            ))
            .param(&param));
        };
        if key.chars().count() > 40 {
            return Err(Failure::invalid(format!(
                "Metadata keys can be at most 40 characters long; '{key}' is longer."
            ))
            .param(&param));
        }
        if value.chars().count() > 500 {
            return Err(Failure::invalid(format!(
                "Metadata values can be at most 500 characters long; the value of '{key}' is \
                 longer."
            ))
            .param(&param));
        }
        // On creation, an empty value means "no such key".
        if !value.is_empty() {
            clean.insert(key.clone(), Value::String(value.clone()));
        }
    }
    if clean.len() > 50 {
        return Err(Failure::invalid("Metadata can have at most 50 keys.").param(name));
    }
    Ok(clean)
}

/// Everything an execution needs.
struct Execution {
    account: Option<String>,
    key: Option<String>,
    fingerprint: Fingerprint,
    params: CreateParams,
    request_id: String,
    api_version: String,
}

async fn create_payment_intent(
    shared: &Arc<Shared>,
    incoming: &ReceivedRequest,
    account: Option<String>,
    request_id: &str,
) -> Handled {
    // In front of the idempotency layer: rate limiters, load balancers.
    {
        let mut state = shared.lock();
        if state.script.front().is_some_and(Outcome::before_execution) {
            let outcome = state.script.pop_front().unwrap_or(Outcome::Succeed);
            drop(state);
            return before_execution(outcome, request_id);
        }
    }

    let params = match incoming.params() {
        Ok(params) => params,
        Err(failure) => return failure.handled(request_id),
    };
    let key = match idempotency_key(incoming, request_id) {
        Ok(key) => key,
        Err(handled) => return handled,
    };
    let fingerprint = Fingerprint {
        method: incoming.method.clone(),
        path: incoming.path.clone(),
        params: Value::Object(params.clone()),
    };

    // The idempotency layer, validation and the start of execution happen under one lock so two
    // requests with the same key cannot both start.
    let (outcome, execution) = {
        let mut state = shared.lock();
        if let Some(key) = &key
            && let Some(answer) = idempotency_check(&state, &account, key, &fingerprint, request_id)
        {
            return answer;
        }
        let version = api_version(incoming).unwrap_or_else(|_| DEFAULT_API_VERSION.to_owned());
        let create = match validate_create(&params, &state, account.as_deref(), &version) {
            Ok(create) => create,
            Err(failure) => return failure.handled(request_id),
        };
        // The scripted outcome, or a random fault (drawn only here, for a request that is about
        // to execute: never for a replay, a 409 or a refusal; see "Under load").
        let outcome = state.next_outcome(request_id);
        if outcome.before_execution() {
            // Pushed between our two looks at the queue, or a random front-door 500: still a
            // failure in front of the idempotency layer, so nothing is marked in flight or saved.
            drop(state);
            return before_execution(outcome, request_id);
        }
        if let Some(key) = &key {
            state
                .idempotency
                .insert((account.clone(), key.clone()), IdempotencyEntry::InFlight);
        }
        (
            outcome,
            Execution {
                account,
                key,
                fingerprint,
                params: create,
                request_id: request_id.to_owned(),
                api_version: version,
            },
        )
    };

    match outcome {
        Outcome::SucceedAfter(delay) => {
            // Runs in its own task: at Stripe an execution that began completes even if the
            // client goes away.
            let shared = Arc::clone(shared);
            let task = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                execute(&shared, execution, &Outcome::Succeed)
            });
            match task.await {
                Ok(reply) => Handled::Reply(reply),
                Err(_) => Handled::Drop,
            }
        }
        Outcome::ChargeThenDropConnection => {
            execute(shared, execution, &Outcome::Succeed);
            Handled::Drop
        }
        Outcome::ChargeThenHang => {
            execute(shared, execution, &Outcome::Succeed);
            Handled::Hang
        }
        Outcome::ChargeThenTrickle(interval) => {
            let reply = execute(shared, execution, &Outcome::Succeed);
            Handled::Trickle(reply, interval)
        }
        other => Handled::Reply(execute(shared, execution, &other)),
    }
}

fn before_execution(outcome: Outcome, request_id: &str) -> Handled {
    match outcome {
        Outcome::RateLimit => Handled::Reply(rate_limited_reply(request_id)),
        Outcome::Hang => Handled::Hang,
        _ => server_error(request_id).handled(request_id),
    }
}

/// Runs the endpoint with `outcome`, saves the result under the key, records the PaymentIntent.
fn execute(shared: &Shared, execution: Execution, outcome: &Outcome) -> Reply {
    let Execution {
        account,
        key,
        fingerprint,
        params,
        request_id,
        api_version,
    } = execution;
    let intent_id = shared.new_id("pi_3Fk", 21);
    let charge_id = shared.new_id("ch_3Fk", 21);
    let secret = shared.new_id("", 24);
    let created = unix_now();

    let mut state = shared.lock();
    let payment_method_object = params.payment_method.as_ref().and_then(|id| {
        state
            .payment_methods
            .iter()
            .find(|pm| pm.account == account && &pm.id == id)
            .map(|pm| pm.object.clone())
    });

    let mut intent = json!({
        "id": intent_id,
        "object": "payment_intent",
        "amount": params.amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": null,
        "application_fee_amount": null,
        "automatic_payment_methods": params.automatic_payment_methods.as_ref().map(|redirects| {
            json!({"allow_redirects": redirects, "enabled": true})
        }),
        "canceled_at": null,
        "cancellation_reason": null,
        "capture_method": params.capture_method,
        "client_secret": format!("{intent_id}_secret_{secret}"),
        "confirmation_method": "automatic",
        "created": created,
        "currency": params.currency,
        "customer": params.customer,
        "description": params.description,
        "invoice": null,
        "last_payment_error": null,
        "latest_charge": null,
        "livemode": false,
        "metadata": params.metadata,
        "next_action": null,
        "on_behalf_of": null,
        "payment_method": params.payment_method,
        "payment_method_configuration_details": params.automatic_payment_methods.as_ref().map(|_| {
            json!({"id": shared.payment_method_configuration, "parent": null})
        }),
        "payment_method_options": {
            "card": {
                "installments": null,
                "mandate_options": null,
                "network": null,
                "request_three_d_secure": "automatic"
            }
        },
        "payment_method_types": params.payment_method_types,
        "processing": null,
        "receipt_email": params.receipt_email,
        "review": null,
        "setup_future_usage": null,
        "shipping": null,
        "source": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": params.statement_descriptor_suffix,
        "status": if params.payment_method.is_some() {
            "requires_confirmation"
        } else {
            "requires_payment_method"
        },
        "transfer_data": null,
        "transfer_group": null
    });

    // What `payment_intent.created` shows: the object as created, before any confirmation.
    let as_created = intent.clone();
    let (status, body) = match outcome {
        Outcome::ServerError => {
            let reply = server_error(&request_id).reply(&request_id);
            (reply.status, reply.body)
        }
        _ if !params.confirm => (200, pretty(&intent)),
        Outcome::Decline { decline_code } => {
            let failure =
                card_failure(&mut intent, decline_code, &charge_id, payment_method_object);
            let reply = failure.reply(&request_id);
            (reply.status, reply.body)
        }
        Outcome::RequireAuthentication if params.off_session || params.error_on_requires_action => {
            let failure = card_failure(
                &mut intent,
                "authentication_required",
                &charge_id,
                payment_method_object,
            );
            let reply = failure.reply(&request_id);
            (reply.status, reply.body)
        }
        Outcome::RequireAuthentication => {
            intent["status"] = json!("requires_action");
            let hosted =
                format!("https://hooks.stripe.com/3d_secure_2/hosted?payment_intent={intent_id}");
            intent["next_action"] = match &params.return_url {
                // Confirmed with a `return_url`: the customer is sent to a page and comes back
                // there. See
                // <https://docs.stripe.com/payments/3d-secure/authentication-flow#manual-redirect>.
                Some(return_url) => json!({
                    "type": "redirect_to_url",
                    "redirect_to_url": {"return_url": return_url, "url": hosted}
                }),
                None => json!({
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {
                        "type": "three_d_secure_redirect",
                        "stripe_js": hosted,
                        "source": format!("src_{}", &secret[..12.min(secret.len())])
                    }
                }),
            };
            (200, pretty(&intent))
        }
        _ => {
            if params.capture_method == "manual" {
                intent["status"] = json!("requires_capture");
                intent["amount_capturable"] = json!(params.amount);
            } else {
                intent["status"] = json!("succeeded");
                intent["amount_received"] = json!(params.amount);
            }
            intent["latest_charge"] = json!(charge_id);
            (200, pretty(&intent))
        }
    };

    // Charged, but answered (and saved) as a 500: Stripe says the result of a 500 is
    // indeterminate (<https://docs.stripe.com/error-low-level#server-errors>).
    let (status, body) = if matches!(outcome, Outcome::ChargeThenServerError) {
        let reply = server_error(&request_id).reply(&request_id);
        (reply.status, reply.body)
    } else {
        (status, body)
    };

    let created_intent = !matches!(outcome, Outcome::ServerError);
    if created_intent {
        let context = EventContext {
            account: account.clone(),
            api_version: api_version.clone(),
            request_id: Some(request_id.clone()),
            idempotency_key: key.clone(),
        };
        intent_events(
            shared,
            &mut state,
            &context,
            as_created,
            &intent,
            params.payment_method.as_deref(),
        );
        // The attempt's Charge, retrievable and refundable from now on
        // (<https://docs.stripe.com/api/charges/object>).
        if intent["latest_charge"].is_string() {
            let status = match intent["status"].as_str() {
                Some("succeeded" | "requires_capture") => "succeeded",
                _ => "failed",
            };
            let charge = charge_object(&intent, status, params.payment_method.as_deref());
            state
                .charge_objects
                .push(StoredObject::new(account.clone(), &api_version, charge));
        }
        state.push_intent(StoredIntent {
            account: account.clone(),
            api_version,
            idempotency_key: key.clone(),
            requested_payment_method: params.payment_method.clone(),
            inserted: Instant::now(),
            object: intent,
        });
    }
    if let Some(key) = key {
        save_idempotent(
            &mut state,
            account,
            key,
            fingerprint,
            SavedResponse {
                status,
                body: body.clone(),
                request_id: request_id.clone(),
            },
        );
    }
    Reply {
        status,
        body,
        original_request: Some(request_id),
        replayed: false,
        should_retry: None,
    }
}

// ---------------------------------------------------------------------------------------------
// The idempotency layer, shared by every POST endpoint
// (<https://docs.stripe.com/api/idempotent_requests>)

/// The request's `Idempotency-Key`, refused when empty or longer than Stripe allows.
fn idempotency_key(
    incoming: &ReceivedRequest,
    request_id: &str,
) -> Result<Option<String>, Handled> {
    let key = incoming.idempotency_key().map(str::to_owned);
    if let Some(key) = &key
        && (key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN)
    {
        return Err(Failure::invalid(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters long."
        ))
        .handled(request_id));
    }
    Ok(key)
}

/// What the idempotency layer answers for `key` without executing anything: the saved result
/// (same endpoint and parameters: a replay), `400 idempotency_error` (other parameters or
/// endpoint), `409 idempotency_key_in_use` (still executing). `None`: execute.
fn idempotency_check(
    state: &State,
    account: &Option<String>,
    key: &str,
    fingerprint: &Fingerprint,
    request_id: &str,
) -> Option<Handled> {
    match state.idempotency.get(&(account.clone(), key.to_owned()))? {
        IdempotencyEntry::Done {
            fingerprint: saved_fingerprint,
            saved,
        } => {
            if saved_fingerprint == fingerprint {
                return Some(Handled::Reply(Reply {
                    status: saved.status,
                    body: saved.body.clone(),
                    original_request: Some(saved.request_id.clone()),
                    replayed: true,
                    should_retry: None,
                }));
            }
            Some(
                Failure::typed(
                    "idempotency_error",
                    format!(
                        "Keys for idempotent requests can only be reused with the same endpoint \
                         and parameters as their first request. Use another key than '{key}' \
                         for a different request."
                    ),
                )
                .status(400)
                .handled(request_id),
            )
        }
        IdempotencyEntry::InFlight => {
            let mut failure = Failure::typed(
                "idempotency_error",
                format!(
                    "There is currently another in-progress request using the Idempotency-Key \
                     '{key}'. Retry this request later."
                ),
            )
            .status(409)
            .code("idempotency_key_in_use");
            failure.should_retry = Some(true);
            Some(failure.handled(request_id))
        }
    }
}

/// Saves the result of an executed request under (account, key).
fn save_idempotent(
    state: &mut State,
    account: Option<String>,
    key: String,
    fingerprint: Fingerprint,
    saved: SavedResponse,
) {
    state.idempotency.insert(
        (account, key),
        IdempotencyEntry::Done { fingerprint, saved },
    );
}

/// Runs a POST endpoint other than `POST /v1/payment_intents` behind the idempotency layer. The
/// handler validates first and changes state only once validation passed: a refusal (`Err`) is a
/// validation failure, which Stripe does not save under the key ("no idempotent result is saved"
/// when "incoming parameters failed validation", <https://docs.stripe.com/api/idempotent_requests>);
/// a success is saved and replayed. The idempotency check, the validation and the execution all
/// happen under one lock, so two requests with the same key cannot both execute.
fn idempotent_post(
    shared: &Shared,
    incoming: &ReceivedRequest,
    account: Option<String>,
    request_id: &str,
    handler: impl FnOnce(&mut State, &Map<String, Value>, &EventContext) -> Result<Value, Failure>,
) -> Handled {
    let params = match incoming.params() {
        Ok(params) => params,
        Err(failure) => return failure.handled(request_id),
    };
    let key = match idempotency_key(incoming, request_id) {
        Ok(key) => key,
        Err(handled) => return handled,
    };
    let fingerprint = Fingerprint {
        method: incoming.method.clone(),
        path: incoming.path.clone(),
        params: Value::Object(params.clone()),
    };
    let mut state = shared.lock();
    if let Some(key) = &key
        && let Some(answer) = idempotency_check(&state, &account, key, &fingerprint, request_id)
    {
        return answer;
    }
    let context = EventContext {
        account: account.clone(),
        api_version: api_version(incoming).unwrap_or_else(|_| DEFAULT_API_VERSION.to_owned()),
        request_id: Some(request_id.to_owned()),
        idempotency_key: key.clone(),
    };
    match handler(&mut state, &params, &context) {
        Err(failure) => failure.handled(request_id),
        Ok(value) => {
            let body = pretty(&value);
            if let Some(key) = key {
                save_idempotent(
                    &mut state,
                    account,
                    key,
                    fingerprint,
                    SavedResponse {
                        status: 200,
                        body: body.clone(),
                        request_id: request_id.to_owned(),
                    },
                );
            }
            Handled::Reply(Reply {
                status: 200,
                body,
                original_request: Some(request_id.to_owned()),
                replayed: false,
                should_retry: None,
            })
        }
    }
}

/// Turns `intent` into a failed payment attempt and builds Stripe's `402 card_error`.
fn card_failure(
    intent: &mut Value,
    decline_code: &str,
    charge_id: &str,
    payment_method: Option<Value>,
) -> Failure {
    // Stripe reports some issuer declines under their own error code, the rest as
    // `card_declined`; `authentication_required` is both the code and the decline code.
    let code = match decline_code {
        "authentication_required"
        | "expired_card"
        | "incorrect_cvc"
        | "incorrect_number"
        | "incorrect_zip"
        | "processing_error"
        | "invalid_cvc"
        | "invalid_expiry_year" => decline_code,
        _ => "card_declined",
    };
    let message = match decline_code {
        "insufficient_funds" => "The card does not have enough funds for this payment.",
        "authentication_required" => {
            "The card was declined: this payment needs the cardholder to authenticate."
        }
        "expired_card" => "The card has expired.",
        "incorrect_cvc" | "invalid_cvc" => "The card's security code is not correct.",
        "processing_error" => {
            "The card could not be processed because of an error. Try again shortly."
        }
        _ => "The card was declined.",
    };
    let mut last_payment_error = json!({
        "type": "card_error",
        "code": code,
        "decline_code": decline_code,
        "message": message,
        "charge": charge_id,
        "doc_url": doc_url(code),
    });
    if let Some(pm) = &payment_method {
        last_payment_error["payment_method"] = pm.clone();
    }
    intent["status"] = json!("requires_payment_method");
    intent["last_payment_error"] = last_payment_error;
    intent["latest_charge"] = json!(charge_id);
    // A failed attempt detaches the payment method from the PaymentIntent; it stays in
    // last_payment_error.
    intent["payment_method"] = Value::Null;

    let mut failure = Failure::typed("card_error", message)
        .status(402)
        .code(code)
        .field("decline_code", json!(decline_code))
        .field("charge", json!(charge_id))
        .field("payment_intent", intent.clone());
    if let Some(pm) = payment_method {
        failure = failure.field("payment_method", pm);
    }
    failure
}

// ---------------------------------------------------------------------------------------------
// Events (<https://docs.stripe.com/api/events/object>)

/// Hex digits for the webhook signature.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Where an event comes from.
struct EventContext {
    /// The connected account the object lives on (`None`: the platform).
    account: Option<String>,
    /// The API version the event's object is rendered in.
    api_version: String,
    /// The API request that caused it; `None` for automatic or Dashboard actions.
    request_id: Option<String>,
    idempotency_key: Option<String>,
}

/// Records one event of type `kind` about `object`, serialized once into the bytes every
/// delivery will send (Stripe resends the same event, <https://docs.stripe.com/webhooks>).
fn record_event(
    shared: &Shared,
    state: &mut State,
    context: &EventContext,
    kind: &str,
    object: Value,
) {
    record_event_with_previous(shared, state, context, kind, object, None);
}

/// [`record_event`] with `data.previous_attributes`: "the names of the updated attributes and
/// their values prior to the event" (<https://docs.stripe.com/api/events/object>).
fn record_event_with_previous(
    shared: &Shared,
    state: &mut State,
    context: &EventContext,
    kind: &str,
    object: Value,
    previous_attributes: Option<Value>,
) {
    let id = shared.new_id("evt_3Fk", 21);
    let mut event = json!({
        "id": id,
        "object": "event",
        "api_version": context.api_version,
        "created": unix_now(),
        "data": {"object": object},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": context.request_id, "idempotency_key": context.idempotency_key},
        "type": kind
    });
    // `account` is only present on events about objects in a connected account
    // (<https://docs.stripe.com/connect/webhooks>).
    if let Some(account) = &context.account {
        event["account"] = json!(account);
    }
    if let Some(previous) = previous_attributes {
        event["data"]["previous_attributes"] = previous;
    }
    let mut payload = serde_json::to_string_pretty(&event).unwrap_or_default();
    payload.push('\n');
    state.event_index.insert(id.clone(), state.events.len());
    state.events.push(StoredEvent {
        id,
        object: event,
        payload,
        delivered: false,
    });
}

/// The events an executed create request causes, in order: `payment_intent.created` (the object
/// as created, before confirmation), then what the confirmation did
/// (<https://docs.stripe.com/payments/payment-intents/verifying-status#webhooks>,
/// <https://docs.stripe.com/api/events/types>).
fn intent_events(
    shared: &Shared,
    state: &mut State,
    context: &EventContext,
    as_created: Value,
    intent: &Value,
    payment_method: Option<&str>,
) {
    record_event(shared, state, context, "payment_intent.created", as_created);
    let charge = |status: &str| charge_object(intent, status, payment_method);
    match intent["status"].as_str().unwrap_or_default() {
        "succeeded" => {
            record_event(
                shared,
                state,
                context,
                "payment_intent.succeeded",
                intent.clone(),
            );
            record_event(
                shared,
                state,
                context,
                "charge.succeeded",
                charge("succeeded"),
            );
        }
        // An authorized, uncaptured charge; see
        // <https://docs.stripe.com/payments/place-a-hold-on-a-payment-method>.
        "requires_capture" => {
            record_event(
                shared,
                state,
                context,
                "payment_intent.amount_capturable_updated",
                intent.clone(),
            );
            record_event(
                shared,
                state,
                context,
                "charge.succeeded",
                charge("succeeded"),
            );
        }
        // A failed attempt (decline, or authentication needed off-session): the object exactly as
        // embedded in the 402's `error.payment_intent`, and the failed charge.
        "requires_payment_method" if !intent["last_payment_error"].is_null() => {
            record_event(
                shared,
                state,
                context,
                "payment_intent.payment_failed",
                intent.clone(),
            );
            if !intent["latest_charge"].is_null() {
                record_event(shared, state, context, "charge.failed", charge("failed"));
            }
        }
        "requires_action" => {
            record_event(
                shared,
                state,
                context,
                "payment_intent.requires_action",
                intent.clone(),
            );
        }
        _ => {}
    }
}

/// A minimal Stripe-shaped Charge for the PaymentIntent's latest attempt
/// (<https://docs.stripe.com/api/charges/object>).
fn charge_object(intent: &Value, status: &str, payment_method: Option<&str>) -> Value {
    let succeeded = status == "succeeded";
    let captured = succeeded && intent["status"] == "succeeded";
    let error = &intent["last_payment_error"];
    let amount = intent["amount"].clone();
    json!({
        "id": intent["latest_charge"],
        "object": "charge",
        "amount": amount,
        "amount_captured": if captured { amount.clone() } else { json!(0) },
        "amount_refunded": 0,
        "captured": captured,
        "created": intent["created"],
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": false,
        "failure_code": if succeeded { Value::Null } else { error["code"].clone() },
        "failure_message": if succeeded { Value::Null } else { error["message"].clone() },
        "livemode": false,
        // Stripe copies a PaymentIntent's metadata onto the charges it creates (what its
        // charges show; the PaymentIntent side is in
        // <https://docs.stripe.com/payments/payment-intents#storing-information-in-metadata>).
        "metadata": intent["metadata"],
        "outcome": if succeeded {
            json!({
                "network_status": "approved_by_network",
                "reason": null,
                "risk_level": "normal",
                "seller_message": "Payment complete.",
                "type": "authorized"
            })
        } else {
            json!({
                "network_status": "declined_by_network",
                "reason": error["decline_code"],
                "risk_level": "normal",
                "seller_message": "The bank did not return any further details with this decline.",
                "type": "issuer_declined"
            })
        },
        "paid": succeeded,
        "payment_intent": intent["id"],
        "payment_method": payment_method,
        "refunded": false,
        "status": status
    })
}

/// Cancels a stored PaymentIntent (see [`FakeStripe::cancel_intent`]); `Err` with Stripe's
/// reason when it cannot be canceled.
fn cancel_stored_intent(shared: &Shared, state: &mut State, id: &str) -> Result<(), String> {
    let Some(stored) = state.intent_mut(id) else {
        return Err(format!("No such payment_intent: '{id}'"));
    };
    // <https://docs.stripe.com/api/payment_intents/cancel>: "You can cancel a PaymentIntent
    // object when it's in one of these statuses: requires_payment_method, requires_capture,
    // requires_confirmation, requires_action or, in rare cases, processing."
    let status = stored.object["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if ![
        "requires_payment_method",
        "requires_capture",
        "requires_confirmation",
        "requires_action",
        "processing",
    ]
    .contains(&status.as_str())
    {
        return Err(format!(
            "You cannot cancel this PaymentIntent because it has a status of {status}. Only a \
             PaymentIntent with one of the following statuses may be canceled: \
             requires_payment_method, requires_capture, requires_reauthorization, \
             requires_confirmation, requires_action, processing."
        ));
    }
    let object = &mut stored.object;
    object["status"] = json!("canceled");
    object["canceled_at"] = json!(unix_now());
    object["cancellation_reason"] = json!("abandoned");
    object["next_action"] = Value::Null;
    // Canceling an authorization releases the held amount.
    object["amount_capturable"] = json!(0);
    let context = EventContext {
        account: stored.account.clone(),
        api_version: stored.api_version.clone(),
        request_id: None,
        idempotency_key: None,
    };
    let object = object.clone();
    record_event(shared, state, &context, "payment_intent.canceled", object);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// GET endpoints

fn retrieve_payment_intent(
    state: &State,
    account: Option<&str>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, Failure> {
    check_names(params, &["client_secret"], &["expand"])?;
    state
        .intent(id)
        .filter(|i| i.account.as_deref() == account)
        .map(|i| i.object.clone())
        .ok_or_else(|| {
            Failure::invalid(format!("No such payment_intent: '{id}'"))
                .status(404)
                .param("intent")
                .code("resource_missing")
        })
}

fn retrieve_payment_method(
    state: &State,
    account: Option<&str>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, Failure> {
    check_names(params, &[], &["expand"])?;
    state
        .payment_methods
        .iter()
        .find(|pm| pm.account.as_deref() == account && pm.id == id)
        .map(|pm| pm.object.clone())
        .ok_or_else(|| {
            Failure::invalid(format!("No such PaymentMethod: '{id}'"))
                .status(404)
                .param("payment_method")
                .code("resource_missing")
        })
}

/// The account's PaymentIntents, newest first.
fn intents_of<'a>(state: &'a State, account: Option<&'a str>) -> Vec<&'a StoredIntent> {
    let mut intents: Vec<&StoredIntent> = state
        .intents
        .iter()
        .filter(|i| i.account.as_deref() == account)
        .collect();
    intents.reverse();
    intents
}

fn list_payment_intents(
    state: &State,
    account: Option<&str>,
    params: &Map<String, Value>,
) -> Result<Value, Failure> {
    check_names(
        params,
        &["customer", "limit", "starting_after"],
        &["created", "ending_before", "expand"],
    )?;
    let limit = limit_param(params)?;
    let customer = string_param(params, "customer")?;
    let mut intents: Vec<&StoredIntent> = intents_of(state, account)
        .into_iter()
        .filter(|i| {
            customer
                .as_deref()
                .is_none_or(|c| i.object["customer"].as_str() == Some(c))
        })
        .collect();
    if let Some(after) = string_param(params, "starting_after")? {
        let Some(position) = intents.iter().position(|i| i.id() == after) else {
            return Err(
                Failure::invalid(format!("No such payment_intent: '{after}'"))
                    .param("starting_after")
                    .code("resource_missing"),
            );
        };
        intents.drain(..=position);
    }
    let has_more = intents.len() > limit;
    let data: Vec<Value> = intents
        .iter()
        .take(limit)
        .map(|i| i.object.clone())
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "has_more": has_more,
        "url": "/v1/payment_intents"
    }))
}

fn search_payment_intents(
    state: &State,
    account: Option<&str>,
    params: &Map<String, Value>,
) -> Result<Value, Failure> {
    check_names(params, &["query", "limit", "page"], &["expand"])?;
    let text = string_param(params, "query")?.ok_or_else(|| missing_parameter("query"))?;
    let query = parse_search(&text).map_err(|message| {
        Failure::invalid(format!("Invalid search query '{text}': {message}")).param("query")
    })?;
    let limit = limit_param(params)?;
    let offset = match string_param(params, "page")? {
        None => 0,
        Some(page) => page
            .strip_prefix("pgfake_")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| Failure::invalid(format!("Invalid page: {page}")).param("page"))?,
    };
    let matches: Vec<&StoredIntent> = intents_of(state, account)
        .into_iter()
        .filter(|i| i.inserted.elapsed() >= state.search_delay)
        .filter(|i| query.matches(&i.object))
        .collect();
    let data: Vec<Value> = matches
        .iter()
        .skip(offset)
        .take(limit)
        .map(|i| i.object.clone())
        .collect();
    let has_more = matches.len() > offset + limit;
    Ok(json!({
        "object": "search_result",
        "data": data,
        "has_more": has_more,
        "next_page": if has_more { Some(format!("pgfake_{}", offset + limit)) } else { None },
        "url": "/v1/payment_intents/search"
    }))
}

// ---------------------------------------------------------------------------------------------
// Card on file: customers, Checkout Sessions in setup mode, SetupIntents, payment methods

/// The card a PaymentMethod describes.
#[derive(Clone, Copy)]
struct CardDetails<'a> {
    brand: &'a str,
    last4: &'a str,
    exp_month: u32,
    exp_year: u32,
}

/// A card PaymentMethod (<https://docs.stripe.com/api/payment_methods/object>), attached to
/// `customer` when given.
fn card_payment_method_object(
    shared: &Shared,
    pm_id: &str,
    card: CardDetails<'_>,
    customer: Option<&str>,
) -> Value {
    let display_brand = match card.brand {
        "amex" => "american_express",
        "diners" => "diners_club",
        other => other,
    };
    let fingerprint = random_chars(&shared.ids, shared.next_counter(), 16);
    json!({
        "id": pm_id,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": {
                "city": null, "country": null, "line1": null, "line2": null,
                "postal_code": null, "state": null
            },
            "email": null,
            "name": null,
            "phone": null
        },
        "card": {
            "brand": card.brand,
            "checks": {
                "address_line1_check": null,
                "address_postal_code_check": null,
                "cvc_check": "pass"
            },
            "country": "US",
            "display_brand": display_brand,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "fingerprint": fingerprint,
            "funding": "credit",
            "generated_from": null,
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": null},
            "three_d_secure_usage": {"supported": true},
            "wallet": null
        },
        "created": unix_now(),
        "customer": customer,
        "livemode": false,
        "metadata": {},
        "type": "card"
    })
}

/// What a Customer is created with.
#[derive(Default)]
struct CustomerFields {
    email: Option<String>,
    name: Option<String>,
    phone: Option<String>,
    description: Option<String>,
    metadata: Map<String, Value>,
}

/// A Customer (<https://docs.stripe.com/api/customers/object>).
fn customer_object(id: &str, fields: &CustomerFields) -> Value {
    json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": unix_now(),
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": fields.description,
        "discount": null,
        "email": fields.email,
        "invoice_settings": {
            "custom_fields": null,
            "default_payment_method": null,
            "footer": null,
            "rendering_options": null
        },
        "livemode": false,
        "metadata": fields.metadata,
        "name": fields.name,
        "phone": fields.phone,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null
    })
}

/// The customer `id` of `account`, unless it does not exist there or was deleted.
fn live_customer<'a>(
    state: &'a State,
    account: Option<&str>,
    id: &str,
) -> Option<&'a StoredObject> {
    state
        .customers
        .iter()
        .find(|c| c.is(account, id) && !c.deleted)
}

/// `404 resource_missing` for an object that does not exist in the requesting account.
fn not_found(kind: &str, id: &str, param: &str) -> Failure {
    Failure::invalid(format!("No such {kind}: '{id}'"))
        .status(404)
        .param(param)
        .code("resource_missing")
}

/// A parameter naming an object that does not exist in the requesting account: `400
/// resource_missing` with `param` (as for `customer` on a PaymentIntent).
fn missing_reference(kind: &str, id: &str, param: &str) -> Failure {
    Failure::invalid(format!("No such {kind}: '{id}'"))
        .param(param)
        .code("resource_missing")
}

/// A string parameter of at most `max` characters (the message is modelled on Stripe's; each
/// caller cites where `max` comes from).
fn bounded_string_param(
    params: &Map<String, Value>,
    name: &str,
    max: usize,
) -> Result<Option<String>, Failure> {
    let value = string_param(params, name)?;
    if value.as_ref().is_some_and(|v| v.chars().count() > max) {
        return Err(
            Failure::invalid(format!("Invalid {name}: must be at most {max} characters"))
                .param(name),
        );
    }
    Ok(value)
}

/// `POST /v1/customers` (<https://docs.stripe.com/api/customers/create>): every parameter is
/// optional; records `customer.created`.
fn create_customer(
    shared: &Shared,
    state: &mut State,
    params: &Map<String, Value>,
    context: &EventContext,
) -> Result<Value, Failure> {
    check_names(
        params,
        &["email", "name", "phone", "description", "metadata"],
        &[
            "address",
            "balance",
            "cash_balance",
            "expand",
            "invoice_prefix",
            "invoice_settings",
            "next_invoice_sequence",
            "payment_method",
            "preferred_locales",
            "shipping",
            "source",
            "tax",
            "tax_exempt",
            "tax_id_data",
            "test_clock",
        ],
    )?;
    let fields = CustomerFields {
        // `email`: "This may be up to 512 characters"
        // (<https://docs.stripe.com/api/customers/create#create_customer-email>).
        email: bounded_string_param(params, "email", 512)?,
        // `name` 256, `phone` 20, `description` 5000: not on the API reference page; these are
        // the maxLength of Stripe's OpenAPI spec (github.com/stripe/openapi), as read from a
        // client generated from it (`PostCustomersRequestBody`). Note `phone`: 20 characters,
        // punctuation included.
        name: bounded_string_param(params, "name", 256)?,
        phone: bounded_string_param(params, "phone", 20)?,
        description: bounded_string_param(params, "description", 5000)?,
        metadata: metadata_param(params.get("metadata"), "metadata")?,
    };
    let id = shared.new_id("cus_", 14);
    let object = customer_object(&id, &fields);
    state.customers.push(StoredObject::new(
        context.account.clone(),
        &context.api_version,
        object.clone(),
    ));
    record_event(shared, state, context, "customer.created", object.clone());
    Ok(object)
}

/// `GET /v1/customers/{id}` (<https://docs.stripe.com/api/customers/retrieve>): a deleted
/// customer answers the `{"id", "object": "customer", "deleted": true}` stub.
fn retrieve_customer(
    state: &State,
    account: Option<&str>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, Failure> {
    check_names(params, &[], &["expand"])?;
    match state.customers.iter().find(|c| c.is(account, id)) {
        Some(c) if c.deleted => Ok(json!({"id": id, "object": "customer", "deleted": true})),
        Some(c) => Ok(c.object.clone()),
        None => Err(not_found("customer", id, "id")),
    }
}

/// `DELETE /v1/customers/{id}` (<https://docs.stripe.com/api/customers/delete>): "Permanently
/// deletes a customer. It cannot be undone." Answers the deleted stub, records
/// `customer.deleted` with the customer as it was, and detaches its payment methods (their
/// `customer` becomes null and they cannot be used again). Deleting it again is a `404`.
fn delete_customer(
    shared: &Shared,
    state: &mut State,
    context: &EventContext,
    id: &str,
) -> Result<Value, Failure> {
    let account = context.account.as_deref();
    let Some(stored) = state
        .customers
        .iter_mut()
        .find(|c| c.is(account, id) && !c.deleted)
    else {
        return Err(not_found("customer", id, "id"));
    };
    stored.deleted = true;
    let object = stored.object.clone();
    for pm in state
        .payment_methods
        .iter_mut()
        .filter(|pm| pm.account.as_deref() == account && pm.customer.as_deref() == Some(id))
    {
        pm.customer = None;
        pm.detached = true;
        pm.object["customer"] = Value::Null;
    }
    record_event(shared, state, context, "customer.deleted", object);
    Ok(json!({"id": id, "object": "customer", "deleted": true}))
}

/// `POST /v1/payment_methods/{id}/detach` (<https://docs.stripe.com/api/payment_methods/detach>):
/// the PaymentMethod with `customer: null`, and `payment_method.detached` with that object.
/// "Once a PaymentMethod is detached, it can no longer be used for a payment or re-attached to a
/// Customer." The event carries no `previous_attributes`: the event object documents them "only
/// [for] events of type `*.updated`" (<https://docs.stripe.com/api/events/object>).
fn detach_stored_payment_method(
    shared: &Shared,
    state: &mut State,
    context: &EventContext,
    id: &str,
) -> Result<Value, Failure> {
    let account = context.account.as_deref();
    let Some(pm) = state
        .payment_methods
        .iter_mut()
        .find(|pm| pm.account.as_deref() == account && pm.id == id)
    else {
        return Err(not_found("PaymentMethod", id, "payment_method"));
    };
    if pm.customer.is_none() {
        return Err(Failure::invalid(
            "The payment method you provided is not attached to a customer so detachment is \
             impossible.",
        )
        .param("payment_method"));
    }
    pm.customer = None;
    pm.detached = true;
    pm.object["customer"] = Value::Null;
    let object = pm.object.clone();
    record_event(
        shared,
        state,
        context,
        "payment_method.detached",
        object.clone(),
    );
    Ok(object)
}

/// New card details for [`FakeStripe::update_card`].
struct CardChange<'a> {
    exp_month: u32,
    exp_year: u32,
    last4: Option<&'a str>,
}

/// Changes a stored card and records `payment_method.automatically_updated` (the card network's
/// updater, <https://docs.stripe.com/saved-cards#automatic-card-updates>) or
/// `payment_method.updated`, with `data.previous_attributes: {"card": {…the old values of what
/// changed…}}` (<https://docs.stripe.com/api/events/object>).
fn update_stored_card(
    shared: &Shared,
    state: &mut State,
    account: Option<&str>,
    pm_id: &str,
    change: &CardChange<'_>,
    automatic: bool,
) -> Result<(), String> {
    let Some(pm) = state
        .payment_methods
        .iter_mut()
        .find(|pm| pm.account.as_deref() == account && pm.id == pm_id)
    else {
        return Err(format!("No such PaymentMethod: '{pm_id}'"));
    };
    let card = &mut pm.object["card"];
    let mut previous = Map::new();
    let mut set = |field: &str, value: Value| {
        if card[field] != value {
            previous.insert(field.to_owned(), card[field].clone());
            card[field] = value;
        }
    };
    set("exp_month", json!(change.exp_month));
    set("exp_year", json!(change.exp_year));
    if let Some(last4) = change.last4 {
        set("last4", json!(last4));
    }
    let object = pm.object.clone();
    let context = EventContext {
        account: account.map(str::to_owned),
        api_version: DEFAULT_API_VERSION.to_owned(),
        request_id: None,
        idempotency_key: None,
    };
    let kind = if automatic {
        "payment_method.automatically_updated"
    } else {
        "payment_method.updated"
    };
    record_event_with_previous(
        shared,
        state,
        &context,
        kind,
        object,
        Some(json!({ "card": previous })),
    );
    Ok(())
}

const CHECKOUT_PARAMS: &[&str] = &[
    "mode",
    "customer",
    "success_url",
    "cancel_url",
    "payment_method_types",
    "currency",
    "metadata",
    "setup_intent_data",
    "expires_at",
    "client_reference_id",
];

const CHECKOUT_UNSUPPORTED: &[&str] = &[
    "adaptive_pricing",
    "after_expiration",
    "allow_promotion_codes",
    "automatic_tax",
    "billing_address_collection",
    "consent_collection",
    "custom_fields",
    "custom_text",
    "customer_creation",
    "customer_email",
    "customer_update",
    "discounts",
    "expand",
    "invoice_creation",
    "line_items",
    "locale",
    "payment_intent_data",
    "payment_method_collection",
    "payment_method_configuration",
    "payment_method_data",
    "payment_method_options",
    "phone_number_collection",
    "redirect_on_completion",
    "return_url",
    "saved_payment_method_options",
    "shipping_address_collection",
    "shipping_options",
    "submit_type",
    "subscription_data",
    "tax_id_collection",
    "ui_mode",
];

/// Checkout's limits on `expires_at`: "It can be anywhere from 30 minutes to 24 hours after
/// Checkout Session creation. By default, this value is 24 hours from creation."
/// (<https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-expires_at>).
const CHECKOUT_MIN_LIFETIME: i64 = 30 * 60;
const CHECKOUT_MAX_LIFETIME: i64 = 24 * 60 * 60;

/// An absolute `http(s)://host…` URL of at most 5000 characters. The length: not on the API
/// reference page; `success_url` and `cancel_url` have maxLength 5000 in Stripe's OpenAPI spec
/// (github.com/stripe/openapi), as read from a client generated from it. That it be an absolute
/// web URL is not documented either; modelled on Stripe's "Not a valid URL" refusal.
fn url_param(params: &Map<String, Value>, name: &str) -> Result<Option<String>, Failure> {
    let Some(url) = bounded_string_param(params, name, 5000)? else {
        return Ok(None);
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    if !rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/')) {
        return Err(Failure::invalid("Not a valid URL").param(name));
    }
    Ok(Some(url))
}

/// `POST /v1/checkout/sessions` in `mode=setup`
/// (<https://docs.stripe.com/api/checkout/sessions/create>,
/// <https://docs.stripe.com/payments/save-and-reuse?platform=web&ui=stripe-hosted>). No event:
/// Stripe has none for a created session. The SetupIntent only exists once the customer
/// confirms (`setup_intent: null` until then, <https://docs.stripe.com/upgrades#2022-08-01>).
fn create_checkout_session(
    shared: &Shared,
    state: &mut State,
    params: &Map<String, Value>,
    context: &EventContext,
) -> Result<Value, Failure> {
    check_names(params, CHECKOUT_PARAMS, CHECKOUT_UNSUPPORTED)?;
    // `mode`: `payment`, `setup` or `subscription`
    // (<https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-mode>).
    // Requiring it is the fake's own strictness: Stripe's OpenAPI spec (early 2024, as read from
    // a client generated from it) marks it optional.
    let mode = string_param(params, "mode")?.ok_or_else(|| missing_parameter("mode"))?;
    match mode.as_str() {
        "setup" => {}
        "payment" | "subscription" => {
            return Err(Failure::invalid(format!(
                "This fake Stripe implements Checkout Sessions in setup mode only, not \
                 mode={mode}."
            ))
            .param("mode"));
        }
        other => {
            return Err(Failure::invalid(format!(
                "Invalid mode: must be one of payment, setup, or subscription, got {other}"
            ))
            .param("mode"));
        }
    }
    // A Stripe-hosted page (the default `ui_mode`) sends the customer to `success_url` when done
    // (<https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-success_url>);
    // refusing a hosted session without one is modelled on older API versions, where it is
    // required.
    let success_url =
        url_param(params, "success_url")?.ok_or_else(|| missing_parameter("success_url"))?;
    let cancel_url = url_param(params, "cancel_url")?;
    let payment_method_types = payment_method_types_param(params)?;
    let currency = currency_param(params, "currency")?;
    // `currency`: "Required in `setup` mode when `payment_method_types` is not set."
    // (<https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-currency>).
    if currency.is_none() && payment_method_types.is_none() {
        return Err(Failure::invalid(
            "Missing required param: currency. currency is required in setup mode when \
             payment_method_types is not set.",
        )
        .param("currency")
        .code("parameter_missing"));
    }
    let customer = string_param(params, "customer")?;
    if let Some(customer) = &customer
        && live_customer(state, context.account.as_deref(), customer).is_none()
    {
        return Err(missing_reference("customer", customer, "customer"));
    }
    let metadata = metadata_param(params.get("metadata"), "metadata")?;
    let (setup_intent_metadata, setup_intent_description) = match params.get("setup_intent_data") {
        None => (Map::new(), None),
        Some(Value::Object(data)) => {
            for key in data.keys() {
                let name = format!("setup_intent_data[{key}]");
                match key.as_str() {
                    "metadata" | "description" => {}
                    "on_behalf_of" => return Err(unsupported_parameter(&name)),
                    _ => return Err(unknown_parameter(&name)),
                }
            }
            // `setup_intent_data[description]`: maxLength 1000 in Stripe's OpenAPI spec (not on
            // the API reference page), as read from a client generated from it.
            let description = bounded_string_param(data, "description", 1000)
                .map_err(|failure| failure.param("setup_intent_data[description]"))?;
            (
                metadata_param(data.get("metadata"), "setup_intent_data[metadata]")?,
                description,
            )
        }
        Some(_) => {
            return Err(
                Failure::invalid("Invalid object: setup_intent_data must be a hash.")
                    .param("setup_intent_data"),
            );
        }
    };
    let created = unix_now();
    let expires_at = match integer_param(params, "expires_at")? {
        None => created + CHECKOUT_MAX_LIFETIME,
        Some(at) if at < created + CHECKOUT_MIN_LIFETIME => {
            return Err(Failure::invalid(
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session \
                 creation.",
            )
            .param("expires_at"));
        }
        Some(at) if at > created + CHECKOUT_MAX_LIFETIME => {
            return Err(Failure::invalid(
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session \
                 creation.",
            )
            .param("expires_at"));
        }
        Some(at) => at,
    };
    // `client_reference_id`: maxLength 200 in Stripe's OpenAPI spec (not on the API reference
    // page), as read from a client generated from it.
    let client_reference_id = bounded_string_param(params, "client_reference_id", 200)?;

    let id = shared.new_id("cs_test_a1", 56);
    let object = json!({
        "id": id,
        "object": "checkout.session",
        "after_expiration": null,
        "allow_promotion_codes": null,
        "amount_subtotal": null,
        "amount_total": null,
        "billing_address_collection": null,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": null,
        "created": created,
        "currency": currency,
        "customer": customer,
        "customer_creation": null,
        "customer_details": null,
        "customer_email": null,
        "expires_at": expires_at,
        "invoice": null,
        "livemode": false,
        "locale": null,
        "metadata": metadata,
        "mode": "setup",
        "payment_intent": null,
        "payment_link": null,
        "payment_method_collection": "always",
        "payment_method_types": payment_method_types.unwrap_or_else(|| vec!["card".to_owned()]),
        "payment_status": "no_payment_required",
        "setup_intent": null,
        "status": "open",
        "submit_type": null,
        "subscription": null,
        "success_url": success_url,
        "ui_mode": "hosted",
        "url": format!("https://checkout.stripe.com/c/pay/{id}")
    });
    state.checkout_sessions.push(StoredSession {
        stored: StoredObject::new(
            context.account.clone(),
            &context.api_version,
            object.clone(),
        ),
        setup_intent_metadata,
        setup_intent_description,
    });
    Ok(object)
}

fn retrieve_checkout_session(
    state: &State,
    account: Option<&str>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, Failure> {
    check_names(params, &[], &["expand"])?;
    state
        .checkout_sessions
        .iter()
        .find(|s| s.stored.is(account, id))
        .map(|s| s.stored.object.clone())
        .ok_or_else(|| not_found("checkout.session", id, "session"))
}

fn retrieve_setup_intent(
    state: &State,
    account: Option<&str>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, Failure> {
    check_names(params, &["client_secret"], &["expand"])?;
    state
        .setup_intents
        .iter()
        .find(|s| s.is(account, id))
        .map(|s| s.object.clone())
        .ok_or_else(|| not_found("setupintent", id, "intent"))
}

fn retrieve_charge(
    state: &State,
    account: Option<&str>,
    id: &str,
    params: &Map<String, Value>,
) -> Result<Value, Failure> {
    check_names(params, &[], &["expand"])?;
    state
        .charge_objects
        .iter()
        .find(|c| c.is(account, id))
        .map(|c| c.object.clone())
        .ok_or_else(|| not_found("charge", id, "charge"))
}

/// The customer entering a card on the hosted page of an open setup-mode session (see
/// [`FakeStripe::complete_checkout_session`]). `Err` says why it cannot.
fn complete_stored_session(
    shared: &Shared,
    state: &mut State,
    session_id: &str,
    pm_id: &str,
    card: CardDetails<'_>,
) -> Result<String, String> {
    let Some(index) = state
        .checkout_sessions
        .iter()
        .position(|s| s.stored.id() == session_id)
    else {
        return Err(format!("No such checkout.session: '{session_id}'"));
    };
    let session = &state.checkout_sessions[index];
    let status = session.stored.object["status"].as_str().unwrap_or_default();
    if status != "open" {
        return Err(format!(
            "the Checkout Session is {status}: only an open one can be completed"
        ));
    }
    let account = session.stored.account.clone();
    let api_version = session.stored.api_version.clone();
    let customer = session.stored.object["customer"]
        .as_str()
        .map(str::to_owned);
    let metadata = session.setup_intent_metadata.clone();
    let description = session.setup_intent_description.clone();
    let context = EventContext {
        account: account.clone(),
        api_version: api_version.clone(),
        request_id: None,
        idempotency_key: None,
    };

    // The SetupIntent Checkout creates on confirmation
    // (<https://docs.stripe.com/api/setup_intents/object>); `usage: "off_session"` is Checkout's
    // default in setup mode, for charging the card later without the customer.
    let setup_intent_id = shared.new_id("seti_1Fk", 24);
    let secret = shared.new_id("", 24);
    let mut setup_intent = json!({
        "id": setup_intent_id,
        "object": "setup_intent",
        "application": null,
        "automatic_payment_methods": null,
        "cancellation_reason": null,
        "client_secret": format!("{setup_intent_id}_secret_{secret}"),
        "created": unix_now(),
        "customer": customer,
        "description": description,
        "flow_directions": null,
        "last_setup_error": null,
        "latest_attempt": null,
        "livemode": false,
        "mandate": null,
        "metadata": metadata,
        "next_action": null,
        "on_behalf_of": null,
        "payment_method": null,
        "payment_method_configuration_details": null,
        "payment_method_options": {
            "card": {
                "mandate_options": null,
                "network": null,
                "request_three_d_secure": "automatic"
            }
        },
        "payment_method_types": ["card"],
        "single_use_mandate": null,
        "status": "requires_payment_method",
        "usage": "off_session"
    });
    record_event(
        shared,
        state,
        &context,
        "setup_intent.created",
        setup_intent.clone(),
    );

    let pm = card_payment_method_object(shared, pm_id, card, customer.as_deref());
    state
        .payment_methods
        .retain(|p| !(p.account == account && p.id == pm_id));
    state.payment_methods.push(StoredPaymentMethod {
        account: account.clone(),
        id: pm_id.to_owned(),
        customer: customer.clone(),
        detached: false,
        object: pm.clone(),
    });
    if customer.is_some() {
        record_event(shared, state, &context, "payment_method.attached", pm);
    }

    setup_intent["status"] = json!("succeeded");
    setup_intent["payment_method"] = json!(pm_id);
    setup_intent["latest_attempt"] = json!(shared.new_id("setatt_1Fk", 24));
    record_event(
        shared,
        state,
        &context,
        "setup_intent.succeeded",
        setup_intent.clone(),
    );
    state.setup_intents.push(StoredObject::new(
        account.clone(),
        &api_version,
        setup_intent,
    ));

    let customer_details = customer
        .as_deref()
        .and_then(|c| live_customer(state, account.as_deref(), c))
        .map(|c| {
            json!({
                "address": null,
                "email": c.object["email"],
                "name": c.object["name"],
                "phone": c.object["phone"],
                "tax_exempt": "none",
                "tax_ids": []
            })
        });
    let session = &mut state.checkout_sessions[index].stored.object;
    session["status"] = json!("complete");
    session["setup_intent"] = json!(setup_intent_id);
    session["customer_details"] = customer_details.unwrap_or(Value::Null);
    // "url: The URL to the Checkout Session. […] only present when the session is open"
    // (<https://docs.stripe.com/api/checkout/sessions/object#checkout_session_object-url>).
    session["url"] = Value::Null;
    let session = session.clone();
    record_event(
        shared,
        state,
        &context,
        "checkout.session.completed",
        session,
    );
    Ok(setup_intent_id)
}

/// Expires an open session (<https://docs.stripe.com/api/checkout/sessions/expire>: "A Checkout
/// Session can be expired when it is in one of these statuses: open").
fn expire_stored_session(
    shared: &Shared,
    state: &mut State,
    session_id: &str,
) -> Result<(), String> {
    let Some(session) = state
        .checkout_sessions
        .iter_mut()
        .find(|s| s.stored.id() == session_id)
    else {
        return Err(format!("No such checkout.session: '{session_id}'"));
    };
    let status = session.stored.object["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if status != "open" {
        return Err(format!(
            "the Checkout Session is {status}: only an open one can expire"
        ));
    }
    session.stored.object["status"] = json!("expired");
    session.stored.object["url"] = Value::Null;
    let context = EventContext {
        account: session.stored.account.clone(),
        api_version: session.stored.api_version.clone(),
        request_id: None,
        idempotency_key: None,
    };
    let object = session.stored.object.clone();
    record_event(shared, state, &context, "checkout.session.expired", object);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Refunds and disputes

const REFUND_REASONS: &[&str] = &["duplicate", "fraudulent", "requested_by_customer"];

/// Currencies without minor units (<https://docs.stripe.com/currencies#zero-decimal>).
const ZERO_DECIMAL_CURRENCIES: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

/// `amount` minor units of `currency` as Stripe writes it in messages: `$150.00`.
fn format_money(amount: i64, currency: &str) -> String {
    let symbol = match currency {
        "usd" | "aud" | "cad" | "nzd" | "sgd" | "hkd" | "mxn" => "$".to_owned(),
        "eur" => "€".to_owned(),
        "gbp" => "£".to_owned(),
        "jpy" => "¥".to_owned(),
        other => format!("{} ", other.to_ascii_uppercase()),
    };
    if ZERO_DECIMAL_CURRENCIES.contains(&currency) {
        format!("{symbol}{amount}")
    } else {
        format!("{symbol}{}.{:02}", amount / 100, amount % 100)
    }
}

/// `POST /v1/refunds` (<https://docs.stripe.com/api/refunds/create>): refunds `amount` (by
/// default what is left) of the charge of `payment_intent` or of `charge`. Records
/// `refund.created` and `charge.refunded` (the charge after the refund: `amount_refunded`
/// grown, `refunded: true` once fully refunded).
fn create_refund(
    shared: &Shared,
    state: &mut State,
    params: &Map<String, Value>,
    context: &EventContext,
) -> Result<Value, Failure> {
    check_names(
        params,
        &["payment_intent", "charge", "amount", "reason", "metadata"],
        &[
            "customer",
            "expand",
            "instructions_email",
            "origin",
            "refund_application_fee",
            "reverse_transfer",
        ],
    )?;
    let account = context.account.as_deref();
    let payment_intent = string_param(params, "payment_intent")?;
    let charge = string_param(params, "charge")?;
    let charge_id = match (&payment_intent, &charge) {
        (None, None) => {
            return Err(Failure::invalid(
                "One of the following params should be provided for this request: \
                 payment_intent or charge.",
            )
            .code("parameter_missing"));
        }
        (Some(pi_id), _) => {
            let Some(intent) = state
                .intent(pi_id)
                .filter(|i| i.account.as_deref() == account)
            else {
                return Err(missing_reference("payment_intent", pi_id, "payment_intent"));
            };
            let latest = intent.object["latest_charge"].as_str();
            let Some(latest) = latest.filter(|_| intent.object["status"] == "succeeded") else {
                return Err(Failure::invalid(format!(
                    "This PaymentIntent ({pi_id}) does not have a successful charge to refund."
                ))
                .param("payment_intent"));
            };
            if let Some(charge) = &charge
                && charge != latest
            {
                return Err(Failure::invalid(format!(
                    "The charge {charge} does not belong to the PaymentIntent {pi_id}."
                ))
                .param("charge"));
            }
            latest.to_owned()
        }
        (None, Some(charge)) => charge.clone(),
    };
    let Some(index) = state
        .charge_objects
        .iter()
        .position(|c| c.is(account, &charge_id))
    else {
        return Err(missing_reference("charge", &charge_id, "charge"));
    };
    let before = &state.charge_objects[index].object;
    if before["status"] != "succeeded" || before["captured"] != true {
        return Err(Failure::invalid(format!(
            "Charge {charge_id} did not succeed or was not captured: there is nothing to refund."
        ))
        .param("charge"));
    }
    let captured = before["amount_captured"].as_i64().unwrap_or_default();
    let already = before["amount_refunded"].as_i64().unwrap_or_default();
    let currency = before["currency"].as_str().unwrap_or_default().to_owned();
    let intent_id = before["payment_intent"].clone();
    let remaining = captured - already;
    if remaining <= 0 {
        return Err(
            Failure::invalid(format!("Charge {charge_id} has already been refunded."))
                .code("charge_already_refunded"),
        );
    }
    let amount = match integer_param(params, "amount")? {
        None => remaining,
        Some(amount) if amount < 1 => {
            return Err(Failure::invalid(format!(
                "Invalid positive integer: amount must be at least 1, got {amount}"
            ))
            .param("amount")
            .code("parameter_invalid_integer"));
        }
        Some(amount) => amount,
    };
    if amount > remaining {
        let message = if already == 0 {
            format!(
                "Refund amount ({}) is greater than charge amount ({})",
                format_money(amount, &currency),
                format_money(captured, &currency)
            )
        } else {
            format!(
                "Refund amount ({}) is greater than unrefunded amount on charge ({})",
                format_money(amount, &currency),
                format_money(remaining, &currency)
            )
        };
        return Err(Failure::invalid(message).param("amount"));
    }
    let reason = string_param(params, "reason")?;
    if let Some(reason) = &reason
        && !REFUND_REASONS.contains(&reason.as_str())
    {
        return Err(Failure::invalid(format!(
            "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer, got \
             {reason}"
        ))
        .param("reason"));
    }
    let metadata = metadata_param(params.get("metadata"), "metadata")?;

    let refund_id = shared.new_id("re_3Fk", 21);
    let refund = json!({
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": shared.new_id("txn_3Fk", 21),
        "charge": charge_id,
        "created": unix_now(),
        "currency": currency,
        "destination_details": {
            "card": {
                "reference": null,
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund"
            },
            "type": "card"
        },
        "metadata": metadata,
        "payment_intent": intent_id,
        "reason": reason,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": "succeeded",
        "transfer_reversal": null
    });
    let charge = &mut state.charge_objects[index].object;
    charge["amount_refunded"] = json!(already + amount);
    charge["refunded"] = json!(already + amount == captured);
    let charge = charge.clone();
    record_event(shared, state, context, "refund.created", refund.clone());
    record_event(shared, state, context, "charge.refunded", charge);
    Ok(refund)
}

/// Dispute reasons (<https://docs.stripe.com/api/disputes/object#dispute_object-reason>).
const DISPUTE_REASONS: &[&str] = &[
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "noncompliant",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
];

/// Opens a dispute on the succeeded charge of PaymentIntent `payment_intent` (see
/// [`FakeStripe::dispute`]).
fn dispute_stored_charge(
    shared: &Shared,
    state: &mut State,
    payment_intent: &str,
    reason: &str,
) -> Result<String, String> {
    if !DISPUTE_REASONS.contains(&reason) {
        return Err(format!(
            "'{reason}' is not a dispute reason (one of {})",
            DISPUTE_REASONS.join(", ")
        ));
    }
    let Some(intent) = state.intent(payment_intent) else {
        return Err(format!("No such payment_intent: '{payment_intent}'"));
    };
    let account = intent.account.clone();
    let api_version = intent.api_version.clone();
    let charge_id = intent.object["latest_charge"].as_str().map(str::to_owned);
    let Some(charge_id) = charge_id.filter(|_| intent.object["status"] == "succeeded") else {
        return Err("the PaymentIntent has no succeeded charge to dispute".to_owned());
    };
    let Some(charge) = state
        .charge_objects
        .iter_mut()
        .find(|c| c.is(account.as_deref(), &charge_id))
    else {
        return Err(format!("No such charge: '{charge_id}'"));
    };
    if charge.object["disputed"] == true {
        return Err(format!("charge {charge_id} is already disputed"));
    }
    charge.object["disputed"] = json!(true);
    let amount = charge.object["amount"].clone();
    let fully_refunded = charge.object["refunded"] == true;
    let currency = charge.object["currency"].clone();
    let created = unix_now();
    let id = shared.new_id("dp_1Fk", 24);
    let dispute = json!({
        "id": id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge_id,
        "created": created,
        "currency": currency,
        "evidence_details": {
            "due_by": created + 7 * 24 * 60 * 60,
            "has_evidence": false,
            "past_due": false,
            "submission_count": 0
        },
        "is_charge_refundable": !fully_refunded,
        "livemode": false,
        "metadata": {},
        "payment_intent": payment_intent,
        "reason": reason,
        "status": "needs_response"
    });
    let context = EventContext {
        account,
        api_version,
        request_id: None,
        idempotency_key: None,
    };
    record_event(shared, state, &context, "charge.dispute.created", dispute);
    Ok(id)
}

// ---------------------------------------------------------------------------------------------
// Connected accounts (<https://docs.stripe.com/api/accounts/object>)

/// The `name` of the platform's Connect application, in `account.application.deauthorized`.
pub const APPLICATION_NAME: &str = "Mio Automations";

/// A connected account as `account.updated` shows it. Disabled charges come with overdue
/// requirements: `requirements.disabled_reason: "requirements.past_due"`
/// (<https://docs.stripe.com/connect/handling-api-verification>).
fn account_object(id: &str, flags: AccountFlags) -> Value {
    let enabled = flags.charges_enabled;
    let due: Vec<&str> = if enabled {
        Vec::new()
    } else {
        vec!["individual.verification.document"]
    };
    json!({
        "id": id,
        "object": "account",
        "business_type": "individual",
        "capabilities": {
            "card_payments": if enabled { "active" } else { "inactive" },
            "transfers": "active"
        },
        "charges_enabled": enabled,
        "country": "US",
        "default_currency": "usd",
        "details_submitted": true,
        "email": null,
        "metadata": {},
        "payouts_enabled": true,
        "requirements": {
            "alternatives": [],
            "current_deadline": null,
            "currently_due": due,
            "disabled_reason": if enabled { Value::Null } else { json!("requirements.past_due") },
            "errors": [],
            "eventually_due": due,
            "past_due": due,
            "pending_verification": []
        },
        "type": "standard"
    })
}

// ---------------------------------------------------------------------------------------------
// Stripe Search query language (the subset PaymentIntents need)

#[derive(Debug, Clone, PartialEq)]
enum SearchField {
    Metadata(String),
    Status,
    Currency,
    Customer,
    Amount,
    Created,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SearchOp {
    Equals,
    Contains,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

#[derive(Debug, Clone, PartialEq)]
enum SearchValue {
    Text(String),
    Number(i64),
}

#[derive(Debug, Clone, PartialEq)]
struct SearchClause {
    negated: bool,
    field: SearchField,
    op: SearchOp,
    value: SearchValue,
}

#[derive(Debug, Clone, PartialEq)]
struct SearchQuery {
    clauses: Vec<SearchClause>,
    any: bool,
}

impl SearchQuery {
    fn matches(&self, intent: &Value) -> bool {
        let mut results = self.clauses.iter().map(|c| c.matches(intent));
        if self.any {
            results.any(|m| m)
        } else {
            results.all(|m| m)
        }
    }
}

impl SearchClause {
    fn matches(&self, intent: &Value) -> bool {
        let hit = match (&self.field, &self.value) {
            (SearchField::Metadata(key), SearchValue::Text(want)) => {
                intent["metadata"][key.as_str()].as_str() == Some(want.as_str())
            }
            (SearchField::Status, SearchValue::Text(want)) => {
                intent["status"].as_str() == Some(want.as_str())
            }
            (SearchField::Customer, SearchValue::Text(want)) => {
                let have = intent["customer"].as_str().unwrap_or_default();
                match self.op {
                    SearchOp::Contains => have.contains(want.as_str()),
                    _ => have == want,
                }
            }
            (SearchField::Currency, SearchValue::Text(want)) => intent["currency"]
                .as_str()
                .is_some_and(|have| have.eq_ignore_ascii_case(want)),
            (SearchField::Amount | SearchField::Created, SearchValue::Number(want)) => {
                let name = if self.field == SearchField::Amount {
                    "amount"
                } else {
                    "created"
                };
                let have = intent[name].as_i64().unwrap_or_default();
                match self.op {
                    SearchOp::Equals | SearchOp::Contains => have == *want,
                    SearchOp::Greater => have > *want,
                    SearchOp::GreaterOrEqual => have >= *want,
                    SearchOp::Less => have < *want,
                    SearchOp::LessOrEqual => have <= *want,
                }
            }
            _ => false,
        };
        hit != self.negated
    }
}

/// Parses `metadata['job_id']:'job_1' AND status:'succeeded'` and friends.
fn parse_search(text: &str) -> Result<SearchQuery, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut pos = 0;
    let mut clauses = Vec::new();
    let mut joiner: Option<&str> = None;
    loop {
        skip_spaces(&chars, &mut pos);
        clauses.push(parse_clause(&chars, &mut pos)?);
        let before = pos;
        skip_spaces(&chars, &mut pos);
        if pos >= chars.len() {
            break;
        }
        if pos == before {
            return Err(format!(
                "expected a space after the clause at position {pos}"
            ));
        }
        let word: String = chars[pos..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let this = match word.as_str() {
            "AND" => "AND",
            "OR" => "OR",
            _ => return Err(format!("expected AND or OR at position {pos}")),
        };
        if joiner.is_some_and(|j| j != this) {
            return Err("AND and OR cannot be mixed in one query".into());
        }
        joiner = Some(this);
        pos += word.len();
        if !chars.get(pos).is_some_and(|c| c.is_whitespace()) {
            return Err(format!("expected a space after {this}"));
        }
    }
    if clauses.len() > 10 {
        return Err("a query can have at most 10 clauses".into());
    }
    Ok(SearchQuery {
        clauses,
        any: joiner == Some("OR"),
    })
}

fn skip_spaces(chars: &[char], pos: &mut usize) {
    while chars.get(*pos).is_some_and(|c| c.is_whitespace()) {
        *pos += 1;
    }
}

fn parse_clause(chars: &[char], pos: &mut usize) -> Result<SearchClause, String> {
    let negated = chars.get(*pos) == Some(&'-');
    if negated {
        *pos += 1;
    }
    let name: String = chars[*pos..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == '.')
        .collect();
    if name.is_empty() {
        return Err(format!("expected a field name at position {}", *pos));
    }
    *pos += name.chars().count();
    let field = match name.as_str() {
        "metadata" => {
            if chars.get(*pos) != Some(&'[') {
                return Err("metadata must be followed by ['key']".into());
            }
            *pos += 1;
            let key = parse_quoted(chars, pos)?;
            if chars.get(*pos) != Some(&']') {
                return Err("expected ] after the metadata key".into());
            }
            *pos += 1;
            SearchField::Metadata(key)
        }
        "status" => SearchField::Status,
        "currency" => SearchField::Currency,
        "customer" => SearchField::Customer,
        "amount" => SearchField::Amount,
        "created" => SearchField::Created,
        other => {
            return Err(format!(
                "'{other}' is not a search field of PaymentIntents (amount, created, currency, \
                 customer, metadata, status)"
            ));
        }
    };
    let op = match (chars.get(*pos), chars.get(*pos + 1)) {
        (Some(':'), _) => SearchOp::Equals,
        (Some('~'), _) => SearchOp::Contains,
        (Some('>'), Some('=')) => SearchOp::GreaterOrEqual,
        (Some('<'), Some('=')) => SearchOp::LessOrEqual,
        (Some('>'), _) => SearchOp::Greater,
        (Some('<'), _) => SearchOp::Less,
        _ => return Err(format!("expected an operator (: ~ > < >= <=) after {name}")),
    };
    *pos += if matches!(op, SearchOp::GreaterOrEqual | SearchOp::LessOrEqual) {
        2
    } else {
        1
    };
    let value = match chars.get(*pos) {
        Some('\'' | '"') => SearchValue::Text(parse_quoted(chars, pos)?),
        _ => {
            let digits: String = chars[*pos..]
                .iter()
                .enumerate()
                .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && **c == '-'))
                .map(|(_, c)| *c)
                .collect();
            let number = digits
                .parse::<i64>()
                .map_err(|_| format!("expected a quoted string or a number after {name}"))?;
            *pos += digits.chars().count();
            SearchValue::Number(number)
        }
    };
    let numeric = matches!(field, SearchField::Amount | SearchField::Created);
    match (&value, numeric, op) {
        (SearchValue::Number(_), true, SearchOp::Contains) => {
            return Err(format!("~ does not apply to the numeric field {name}"));
        }
        (SearchValue::Number(_), true, _) => {}
        (SearchValue::Text(_), false, SearchOp::Equals) => {}
        (SearchValue::Text(t), false, SearchOp::Contains)
            if field == SearchField::Customer && t.chars().count() >= 3 => {}
        (SearchValue::Text(_), false, SearchOp::Contains) => {
            return Err(format!(
                "~ (substring) needs at least 3 characters and is not supported on {name} here"
            ));
        }
        (SearchValue::Text(_), true, _) => {
            return Err(format!("{name} takes an unquoted number"));
        }
        (SearchValue::Number(_), false, _) => {
            return Err(format!("{name} takes a quoted string"));
        }
        (SearchValue::Text(_), false, _) => {
            return Err(format!("{name} only supports : here"));
        }
    }
    Ok(SearchClause {
        negated,
        field,
        op,
        value,
    })
}

fn parse_quoted(chars: &[char], pos: &mut usize) -> Result<String, String> {
    let quote = match chars.get(*pos) {
        Some(q @ ('\'' | '"')) => *q,
        _ => return Err(format!("expected a quoted string at position {}", *pos)),
    };
    *pos += 1;
    let mut out = String::new();
    loop {
        match chars.get(*pos) {
            None => return Err("unterminated string".into()),
            Some('\\') => {
                let Some(next) = chars.get(*pos + 1) else {
                    return Err("unterminated escape".into());
                };
                out.push(*next);
                *pos += 2;
            }
            Some(c) if *c == quote => {
                *pos += 1;
                return Ok(out);
            }
            Some(c) => {
                out.push(*c);
                *pos += 1;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Form decoding

/// Why a form could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError {
    /// The key at fault, as sent.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for FormError {}

enum Segment {
    Key(String),
    Index(usize),
    Append,
}

/// Decodes an `application/x-www-form-urlencoded` string with Stripe's bracket notation into a
/// JSON object: `a[b]=1` nests objects, `a[]=x` appends to an array, `a[0]=x` sets an index.
/// Leaves are strings. A repeated plain key keeps its last value.
pub fn decode_form(input: &str) -> Result<Value, FormError> {
    let mut root = Value::Object(Map::new());
    for (raw_key, value) in form_urlencoded::parse(input.as_bytes()) {
        let fail = |message: &str| FormError {
            key: raw_key.to_string(),
            message: message.to_owned(),
        };
        let segments = parse_key(&raw_key).map_err(|m| fail(&m))?;
        insert(&mut root, &segments, value.into_owned()).map_err(|m| fail(&m))?;
    }
    if has_holes(&root) {
        return Err(FormError {
            key: String::new(),
            message: "array indices must be contiguous from 0".into(),
        });
    }
    Ok(root)
}

fn parse_key(raw: &str) -> Result<Vec<Segment>, String> {
    let (root, mut rest) = match raw.find('[') {
        Some(i) => (&raw[..i], &raw[i..]),
        None => (raw, ""),
    };
    if root.is_empty() || root.contains(']') {
        return Err("invalid parameter name".into());
    }
    let mut segments = vec![Segment::Key(root.to_owned())];
    while !rest.is_empty() {
        let Some(inner_and_more) = rest.strip_prefix('[') else {
            return Err("unexpected characters after ]".into());
        };
        let Some(close) = inner_and_more.find(']') else {
            return Err("unclosed [".into());
        };
        let inner = &inner_and_more[..close];
        if inner.contains('[') {
            return Err("nested [ inside brackets".into());
        }
        segments.push(if inner.is_empty() {
            Segment::Append
        } else if inner.bytes().all(|b| b.is_ascii_digit()) {
            let index: usize = inner.parse().map_err(|_| "array index too large")?;
            if index > 10_000 {
                return Err("array index too large".into());
            }
            Segment::Index(index)
        } else {
            Segment::Key(inner.to_owned())
        });
        rest = &inner_and_more[close + 1..];
    }
    Ok(segments)
}

fn insert(node: &mut Value, segments: &[Segment], value: String) -> Result<(), String> {
    let Some((segment, rest)) = segments.split_first() else {
        return match node {
            Value::Null | Value::String(_) => {
                *node = Value::String(value);
                Ok(())
            }
            _ => Err("is given both as a value and as a hash or array".into()),
        };
    };
    match segment {
        Segment::Key(key) => {
            if node.is_null() {
                *node = Value::Object(Map::new());
            }
            let Value::Object(map) = node else {
                return Err("is given both as a hash and as a value or array".into());
            };
            insert(map.entry(key.clone()).or_insert(Value::Null), rest, value)
        }
        Segment::Index(index) => {
            if node.is_null() {
                *node = Value::Array(Vec::new());
            }
            let Value::Array(items) = node else {
                return Err("is given both as an array and as a value or hash".into());
            };
            if items.len() <= *index {
                items.resize(index + 1, Value::Null);
            }
            insert(&mut items[*index], rest, value)
        }
        Segment::Append => {
            if node.is_null() {
                *node = Value::Array(Vec::new());
            }
            let Value::Array(items) = node else {
                return Err("is given both as an array and as a value or hash".into());
            };
            // `items[][a]=1&items[][b]=2` builds one element; a repeated `a` starts the next.
            let merge = match (rest.first(), items.last()) {
                (Some(Segment::Key(k)), Some(Value::Object(last))) => !last.contains_key(k),
                _ => false,
            };
            if !merge {
                items.push(Value::Null);
            }
            let last = items.len() - 1;
            insert(&mut items[last], rest, value)
        }
    }
}

fn has_holes(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|v| v.is_null() || has_holes(v)),
        Value::Object(map) => map.values().any(has_holes),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Small utilities

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// `len` pseudo-random alphanumerics (unique per `counter` within one fake).
fn random_chars(ids: &RandomState, counter: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(len);
    let mut round = 0u64;
    while out.len() < len {
        let mut hasher = ids.build_hasher();
        hasher.write_u64(counter);
        hasher.write_u64(round);
        let mut bits = hasher.finish();
        for _ in 0..10 {
            if out.len() == len {
                break;
            }
            let index = usize::try_from(bits % 62).unwrap_or_default();
            out.push(char::from(ALPHABET[index]));
            bits /= 62;
        }
        round += 1;
    }
    out
}

/// Standard base64 (with or without padding); `None` if malformed.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' | b'-' => Some(62),
            b'/' | b'_' => Some(63),
            _ => None,
        }
    }
    let bytes: Vec<u8> = text.bytes().filter(|b| *b != b'=').collect();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let [_, a, b, c] = acc.to_be_bytes();
        out.push(a);
        if chunk.len() > 2 {
            out.push(b);
        }
        if chunk.len() > 3 {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys_and_arrays_decode_into_a_tree() {
        let form = decode_form(
            "amount=1000&metadata%5Bbooking_id%5D=bkg_1&metadata[job_id]=job+1\
             &payment_method_types[]=card&items[0][price]=p1&items[1][price]=p2",
        )
        .expect("decodes");
        assert_eq!(
            form,
            json!({
                "amount": "1000",
                "metadata": {"booking_id": "bkg_1", "job_id": "job 1"},
                "payment_method_types": ["card"],
                "items": [{"price": "p1"}, {"price": "p2"}]
            })
        );
    }

    #[test]
    fn a_key_given_as_value_and_hash_is_refused() {
        let err = decode_form("metadata=x&metadata[a]=b").expect_err("conflict");
        assert_eq!(err.key, "metadata[a]");
        assert!(decode_form("a[b=1").is_err());
        assert!(decode_form("a[2]=x").is_err());
    }

    #[test]
    fn base64_round_trips_the_basic_auth_pair() {
        assert_eq!(
            decode_base64("c2tfdGVzdF94eXo6").as_deref(),
            Some(&b"sk_test_xyz:"[..])
        );
        assert_eq!(decode_base64("YQ").as_deref(), Some(&b"a"[..]));
        assert!(decode_base64("!!!!").is_none());
    }

    #[test]
    fn search_queries_parse_and_match() {
        let q = parse_search("metadata['job_id']:'job_1' AND status:\"succeeded\" AND amount>=100")
            .expect("parses");
        let intent = json!({"metadata": {"job_id": "job_1"}, "status": "succeeded", "amount": 100});
        assert!(q.matches(&intent));
        let q = parse_search("-metadata['job_id']:'job_1' OR amount<50").expect("parses");
        assert!(!q.matches(&intent));
        assert!(parse_search("metadata['a']:'b' AND status:'x' OR amount>1").is_err());
        assert!(parse_search("metadata['a']:b").is_err());
        assert!(parse_search("colour:'red'").is_err());
        assert!(parse_search("metadata['it\\'s']:'ok'").is_ok());
    }
}
