//! One run of a feedback job: the re-check right before a rating request goes out, and how the
//! run reads in the activity view once its messages were driven.

use crate::charge::ActivityStatus;
use crate::message::{Channel, Send, Status};
use crate::{BookingStatus, Decision, JobStatus, Offset, Timestamp};
use serde_json::{Value, json};

/// What the tick re-checks right before a rating request goes out.
#[derive(Debug, Clone)]
pub struct RunCheck<'a> {
    /// The booking's status now; `None` when it no longer exists.
    pub booking_status: Option<BookingStatus>,
    /// The effective feedback decision for this customer now.
    pub decision: &'a Decision,
    /// When the booking was completed: staleness counts from it.
    pub completed_at: Timestamp,
    /// The account's staleness limit (`None`: no rules, so the default 7 days).
    pub stale_after: Option<Offset>,
    /// Now.
    pub now: Timestamp,
}

/// `Err(reason)` when the request must not go out (the job is Skipped with it).
pub fn precheck(check: &RunCheck<'_>) -> Result<(), String> {
    match check.booking_status {
        None => return Err("the booking no longer exists".into()),
        Some(BookingStatus::Cancelled) => return Err("booking cancelled".into()),
        Some(BookingStatus::Completed) => {}
        Some(_) => return Err("the booking is not completed".into()),
    }
    if !check.decision.enabled {
        return Err(format!(
            "feedback automation {}",
            check.decision.explanation
        ));
    }
    let limit = i64::from(check.stale_after.map_or(
        crate::rules::DEFAULT_FEEDBACK_STALE_MINUTES,
        Offset::minutes,
    ));
    if check.now > check.completed_at.plus_minutes(limit) {
        return Err(format!(
            "stale: the booking was completed {}, more than {} ago (the account's limit)",
            check.completed_at,
            minutes_in_words(limit)
        ));
    }
    Ok(())
}

fn minutes_in_words(minutes: i64) -> String {
    match minutes {
        m if m % (24 * 60) == 0 => plural(m / (24 * 60), "day"),
        m if m % 60 == 0 => plural(m / 60, "hour"),
        m => plural(m, "minute"),
    }
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// What one run of a feedback job leaves: the job's state and the activity entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The job's next state.
    pub job_status: JobStatus,
    /// When a retrying job runs again.
    pub next_attempt_at: Option<Timestamp>,
    /// How the entry reads.
    pub activity: ActivityStatus,
    /// One sentence.
    pub summary: String,
    /// `details` of the entry.
    pub details: Value,
    /// Unique per job and run outcome.
    pub dedupe_key: String,
}

/// The report of a run that sent nothing because of `reason`: Skipped (the request is no
/// longer wanted) or, when `failed`, Failed (it cannot be sent).
pub fn not_sent(job_id: &str, reason: &str, failed: bool) -> Report {
    let (job_status, activity, verb) = if failed {
        (
            JobStatus::Failed,
            ActivityStatus::Failed,
            "could not be sent",
        )
    } else {
        (JobStatus::Skipped, ActivityStatus::Skipped, "not sent")
    };
    Report {
        job_status,
        next_attempt_at: None,
        activity,
        summary: format!("Rating request {verb}: {reason}"),
        details: json!({ "reason": reason, "channels": [] }),
        dedupe_key: format!("feedback:{job_id}:{}", activity.as_str()),
    }
}

/// How soon a waiting job runs again when none of its messages says when (one is in flight
/// elsewhere): soon, so the job is never left waiting with no time to run.
pub const RECHECK_MINUTES: i64 = 1;

/// The report of a run that drove the sends of a job's messages, at `now`.
pub fn report(job_id: &str, sends: &[(Channel, &str, &Send)], now: Timestamp) -> Report {
    let channels: Vec<Value> = sends
        .iter()
        .map(|(channel, to, send)| {
            json!({
                "channel": channel.as_str(),
                "to": to,
                "status": send.status.as_str(),
                "provider_message_id": send.provider_id,
                "tries": send.tries,
                "error": send.error,
                "next_try_at": send.next_try_at,
            })
        })
        .collect();
    let names = |wanted: Status| {
        sends
            .iter()
            .filter(|(_, _, send)| send.status == wanted)
            .map(|(channel, _, _)| channel_words(*channel))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    let total_tries: u32 = sends.iter().map(|(_, _, s)| s.tries).sum();
    let pending_at = sends
        .iter()
        .filter(|(_, _, s)| s.status == Status::Pending)
        .filter_map(|(_, _, s)| s.next_try_at)
        .min();
    let failed: Vec<String> = sends
        .iter()
        .filter(|(_, _, s)| s.status == Status::Failed)
        .map(|(channel, _, s)| {
            format!(
                "{}: {}",
                channel_words(*channel),
                s.error.as_deref().unwrap_or("failed")
            )
        })
        .collect();
    let delivered = names(Status::Delivered);
    let (job_status, activity, summary) =
        if sends.iter().any(|(_, _, s)| s.status == Status::Pending) {
            let waiting: Vec<String> = sends
                .iter()
                .filter(|(_, _, s)| s.status == Status::Pending)
                .map(|(channel, _, s)| {
                    format!(
                        "{}: {}",
                        channel_words(*channel),
                        s.error.as_deref().unwrap_or("waiting")
                    )
                })
                .collect();
            (
                JobStatus::Retrying,
                ActivityStatus::Retrying,
                format!(
                    "Rating request will be tried again ({})",
                    waiting.join("; ")
                ),
            )
        } else if !failed.is_empty() {
            let sent = if delivered.is_empty() {
                String::new()
            } else {
                format!(" (sent by {delivered})")
            };
            (
                JobStatus::Failed,
                ActivityStatus::Failed,
                format!("Rating request failed{sent}: {}", failed.join("; ")),
            )
        } else {
            (
                JobStatus::Succeeded,
                ActivityStatus::Success,
                format!("Rating request sent by {delivered}"),
            )
        };
    Report {
        job_status,
        next_attempt_at: if job_status == JobStatus::Retrying {
            Some(pending_at.unwrap_or(now.plus_minutes(RECHECK_MINUTES)))
        } else {
            None
        },
        activity,
        summary,
        details: json!({ "channels": channels }),
        dedupe_key: format!("feedback:{job_id}:{}:{total_tries}", activity.as_str()),
    }
}

fn channel_words(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "e-mail",
        Channel::Sms => "SMS",
        Channel::Webhook => "webhook",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(enabled: bool) -> Decision {
        Decision {
            enabled,
            source: crate::Source::Account,
            timing: None,
            timing_source: crate::Source::Account,
            explanation: if enabled {
                "enabled by the account rule".into()
            } else {
                "disabled by customer override".into()
            },
        }
    }

    fn ts(text: &str) -> Timestamp {
        Timestamp::parse(text).expect("valid")
    }

    #[test]
    fn the_tick_sends_only_for_a_completed_wanted_fresh_booking() {
        let on = decision(true);
        let completed_at = ts("2026-06-01T10:00:00Z");
        let check = |status: Option<BookingStatus>, decision: &Decision, now: &str| {
            precheck(&RunCheck {
                booking_status: status,
                decision,
                completed_at,
                stale_after: Some(Offset::from_minutes(7 * 24 * 60).expect("valid")),
                now: ts(now),
            })
        };
        let completed = Some(BookingStatus::Completed);
        assert_eq!(check(completed, &on, "2026-06-01T10:01:00Z"), Ok(()));
        assert_eq!(
            check(Some(BookingStatus::Cancelled), &on, "2026-06-01T10:01:00Z"),
            Err("booking cancelled".into())
        );
        assert!(check(None, &on, "2026-06-01T10:01:00Z").is_err());
        assert_eq!(
            check(completed, &decision(false), "2026-06-01T10:01:00Z"),
            Err("feedback automation disabled by customer override".into())
        );
        assert_eq!(check(completed, &on, "2026-06-08T10:00:00Z"), Ok(()));
        let stale = check(completed, &on, "2026-06-08T10:00:01Z").expect_err("stale");
        assert!(stale.contains("more than 7 days ago"), "{stale}");
    }

    #[test]
    fn a_run_reads_as_its_channels_ended() {
        let mut delivered = Send::new(Channel::Email);
        delivered.status = Status::Delivered;
        delivered.tries = 1;
        delivered.provider_id = Some("e1".into());
        let mut waiting = Send::new(Channel::Sms);
        waiting.tries = 1;
        waiting.error = Some("Twilio answered 429".into());
        waiting.next_try_at = Some(ts("2026-06-01T10:05:00Z"));
        let mut failed = Send::new(Channel::Sms);
        failed.status = Status::Failed;
        failed.tries = 1;
        failed.error = Some("Twilio answered 400: error 21211: bad number".into());

        let ok = report(
            "job_1",
            &[(Channel::Email, "a@b.example", &delivered)],
            ts("2026-06-01T10:00:00Z"),
        );
        assert_eq!(ok.job_status, JobStatus::Succeeded);
        assert_eq!(ok.summary, "Rating request sent by e-mail");
        let retry = report(
            "job_1",
            &[
                (Channel::Email, "a@b.example", &delivered),
                (Channel::Sms, "+1", &waiting),
            ],
            ts("2026-06-01T10:00:00Z"),
        );
        assert_eq!(retry.job_status, JobStatus::Retrying);
        assert_eq!(retry.next_attempt_at, waiting.next_try_at);
        // A message with no time of its own (in flight elsewhere) still gets the job a time.
        let mut elsewhere = Send::new(Channel::Sms);
        elsewhere.in_flight = true;
        let unsure = report(
            "job_1",
            &[(Channel::Sms, "+1", &elsewhere)],
            ts("2026-06-01T10:00:00Z"),
        );
        assert_eq!(unsure.job_status, JobStatus::Retrying);
        assert_eq!(unsure.next_attempt_at, Some(ts("2026-06-01T10:01:00Z")));
        let bad = report(
            "job_1",
            &[
                (Channel::Email, "a@b.example", &delivered),
                (Channel::Sms, "+1", &failed),
            ],
            ts("2026-06-01T10:00:00Z"),
        );
        assert_eq!(bad.job_status, JobStatus::Failed);
        assert_eq!(
            bad.summary,
            "Rating request failed (sent by e-mail): SMS: Twilio answered 400: error 21211: bad number"
        );
        assert_ne!(ok.dedupe_key, retry.dedupe_key);
        let skipped = not_sent("job_1", "booking cancelled", false);
        assert_eq!(skipped.job_status, JobStatus::Skipped);
        assert_eq!(
            skipped.summary,
            "Rating request not sent: booking cancelled"
        );
    }
}
