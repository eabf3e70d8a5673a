//! The pure core of Mio Automations: domain types and rules, with no I/O and no clock.
//!
//! Components parse requests into these types at the edge ([`NewCustomer`], [`CustomerPatch`],
//! [`ListQuery`], ...) and get decisions back as values. Nothing here reads the time, draws
//! random numbers, or touches storage or the network: the caller passes `now` as a
//! [`Timestamp`] and random bytes as arrays (e.g. [`CustomerId::from_random`]).

pub mod account;
pub mod activity;
pub mod attempt;
pub mod booking;
pub mod card;
pub mod card_request;
pub mod charge;
pub mod console;
pub mod customer;
mod encoding;
pub mod feedback;
pub mod feedback_answer;
pub mod feedback_page;
pub mod feedback_run;
pub mod field;
pub mod idempotency;
pub mod ids;
pub mod json;
pub mod list;
pub mod message;
pub mod multipart;
pub mod notify;
pub mod pace;
pub mod plan;
pub mod problem;
pub mod rules;
pub mod rules_body;
pub mod stripe;
#[cfg(test)]
mod test_support;
mod text;
pub mod time;
pub mod timing;
pub mod token;
pub mod webhook;
pub mod zone;

pub use account::{Account, AccountBody, AccountName, CreatedAccount, NewAccount, TimeZone};
pub use activity::ActivityQuery;
pub use booking::{
    BookingBody, BookingPatch, BookingPatchBody, BookingStatus, Currency, Frequency,
    MAX_AMOUNT_CENTS, MAX_OCCURRENCES, NewBooking, Recurrence, RecurrenceBody, SeriesEnd,
    occurrences,
};
pub use customer::{
    Address, Customer, CustomerBody, CustomerName, CustomerPatch, CustomerPatchBody, Email,
    NewCustomer, Notes, Notifications, NotificationsPatch, Phone, StripeCustomerId,
};
pub use field::{FieldError, Patch};
pub use ids::{AccountId, ActivityId, BookingId, CustomerId, IdError, JobId, MessageId, SeriesId};
pub use json::BodyError;
pub use list::{Cursor, Limit, ListQuery, Page, SearchText, fold};
pub use plan::{BookingState, ExistingJob, JobChange, JobStatus, Phase, PlanInput, plan};
pub use problem::{Problem, ProblemType};
pub use rules::{
    AccountRules, Automation, CustomerOverride, Decision, FeedbackRule, LocalTime, Offset,
    OverrideState, PaymentRule, ServiceType, Source, Timing, Trigger, resolve,
};
pub use text::TextError;
pub use time::Timestamp;
pub use timing::{BookingTimes, due_at};
pub use token::{ApiToken, TokenHash};
pub use zone::Zone;
