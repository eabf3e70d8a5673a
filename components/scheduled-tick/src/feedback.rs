//! One run of a feedback job: the core re-checks (booking, decision now, staleness), picks the
//! channels the customer can be reached on, and each channel's message is planned once and
//! driven one step by the core's send machine. The run ends as the core's report says.

use anyhow::{Context, anyhow};
use mio_platform::claims::ClaimedJob;
use mio_platform::db::{Record, Sql, instant, text};
use mio_platform::messages::{self, Begun, ProviderConfig, SendContext, StoredMessage};
use mio_platform::outbound::Pending;
use mio_platform::overrides::load_overrides;
use mio_platform::payments::{self, Entry};
use mio_platform::settings::load_settings;
use mio_platform::system;
use mio_shared::feedback::{self, LINK_VALID_DAYS};
use mio_shared::feedback_run::{self, Report, RunCheck};
use mio_shared::message::{self, Purpose, Recipient};
use mio_shared::notify::{Contact, destinations};
use mio_shared::rules::{Automation, ServiceType, resolve};
use mio_shared::{BookingStatus, JobStatus, Notifications, TimeZone, Timestamp};

/// What a rating request needs to know of the booking, customer and account.
struct Facts {
    booking_status: BookingStatus,
    service_type: String,
    start_at: Timestamp,
    completed_at: Option<Timestamp>,
    business: String,
    timezone: String,
    recipient: Recipient,
    notifications: Notifications,
}

const SELECT_FACTS: &str = "SELECT b.status, b.service_type, b.start_at, b.completed_at, \
     c.id IS NULL AS customer_gone, c.name, c.email, c.phone, c.notify_email, c.notify_sms, \
     a.name AS business, a.timezone \
     FROM bookings b JOIN accounts a ON a.id = b.account_id \
     LEFT JOIN customers c ON c.id = b.customer_id AND c.account_id = b.account_id \
     WHERE b.account_id = ?1 AND b.id = ?2";

const INSERT_LINK: &str = "INSERT INTO feedback_requests (token_hash, account_id, customer_id, \
     booking_id, job_id, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT DO NOTHING";

fn load_facts(db: &impl Sql, job: &ClaimedJob) -> anyhow::Result<Option<Facts>> {
    let result = db
        .execute(
            SELECT_FACTS,
            &[text(&job.account_id), text(&job.booking_id)],
        )
        .context("reading the booking to ask about")?;
    let Some(row) = Record::all(&result).next() else {
        return Ok(None);
    };
    if row.boolean("customer_gone")? {
        return Ok(None);
    }
    let status = row.text("status")?;
    Ok(Some(Facts {
        booking_status: BookingStatus::parse(&status)
            .ok_or_else(|| anyhow!("stored booking status {status:?}"))?,
        service_type: row.text("service_type")?,
        start_at: row.instant("start_at")?,
        completed_at: row.optional_instant("completed_at")?,
        business: row.text("business")?,
        timezone: row.text("timezone")?,
        recipient: Recipient {
            customer_id: job.customer_id.clone(),
            name: row.text("name")?,
            email: row.optional_text("email")?,
            phone: row.optional_text("phone")?,
        },
        notifications: Notifications {
            email: row.boolean("notify_email")?,
            sms: row.boolean("notify_sms")?,
        },
    }))
}

/// Where a feedback job's run stands after [`begin`].
pub(crate) enum FeedbackProgress {
    /// The run is over, with the job's status.
    Done(JobStatus),
    /// Some of its messages are on their way to their providers.
    Sending(Box<FeedbackRun>),
}

/// A feedback job whose messages are in flight, each to its own provider at once: the tick
/// polls them with its Stripe requests, so a slow provider never holds the others up.
pub(crate) struct FeedbackRun {
    job: ClaimedJob,
    link: String,
    config: ProviderConfig,
    webhook_secret: Option<String>,
    settled: Vec<StoredMessage>,
    /// The messages in flight.
    pub(crate) pending: Vec<(StoredMessage, Pending)>,
}

impl FeedbackRun {
    /// The answer of in-flight message `index` came in: store it.
    pub(crate) fn answer(&mut self, db: &impl Sql, index: usize) -> anyhow::Result<()> {
        let (stored, pending) = self.pending.swap_remove(index);
        let stored = messages::finish(db, stored, &self.job.account_id, pending.finish())?;
        self.settled.push(stored);
        Ok(())
    }

    /// Every message is settled: the run ends as the core reports it.
    pub(crate) fn complete(self, db: &impl Sql, owner: &str) -> anyhow::Result<JobStatus> {
        let mut settled = self.settled;
        settled.sort_by_key(|s| s.message.channel);
        let view: Vec<_> = settled
            .iter()
            .map(|s| (s.message.channel, s.message.to.as_str(), &s.send))
            .collect();
        let report = feedback_run::report(&self.job.id, &view, system::now()?);
        end(db, owner, &self.job, &report)
    }

    /// The job this run is for.
    pub(crate) fn job(&self) -> &ClaimedJob {
        &self.job
    }
}

/// Starts feedback job `job` for tick `owner`: the core's re-check, then every message that is
/// due starts on its way (its try stored in flight first).
pub(crate) fn begin(
    db: &impl Sql,
    owner: &str,
    job: &ClaimedJob,
) -> anyhow::Result<FeedbackProgress> {
    let now = system::now()?;
    let mut run = match prepare(db, job, now)? {
        Prepared::Over(report) => return end(db, owner, job, &report).map(FeedbackProgress::Done),
        Prepared::Send(run) => run,
    };
    let due = std::mem::take(&mut run.settled);
    for stored in due {
        let context = SendContext {
            account_id: &run.job.account_id,
            link: &run.link,
            config: &run.config,
            webhook_secret: run.webhook_secret.as_deref(),
        };
        match messages::begin(db, stored, &context)? {
            Begun::Settled(stored) => run.settled.push(stored),
            Begun::Sending(stored, pending) => run.pending.push((stored, pending)),
        }
    }
    if run.pending.is_empty() {
        return run.complete(db, owner).map(FeedbackProgress::Done);
    }
    Ok(FeedbackProgress::Sending(run))
}

/// A run that stopped with an internal error: Failed, saying so (the cause is in the log). A
/// message it may have sent is never sent blind again: its try was stored in flight.
pub(crate) fn stopped(db: &impl Sql, owner: &str, job: &ClaimedJob) -> anyhow::Result<JobStatus> {
    let report = feedback_run::not_sent(
        &job.id,
        "the run stopped with an internal error (logged); the messages it may have sent are \
         not sent again",
        true,
    );
    end(db, owner, job, &report)
}

/// Records the run's activity entry and settles the job while the tick still holds it.
fn end(db: &impl Sql, owner: &str, job: &ClaimedJob, report: &Report) -> anyhow::Result<JobStatus> {
    let job_ref = crate::tick::job_ref(job);
    payments::store_entry(
        db,
        &job_ref,
        &Entry {
            automation: Automation::Feedback,
            status: report.activity,
            summary: &report.summary,
            details_json: &report.details.to_string(),
            dedupe_key: &report.dedupe_key,
        },
        system::now()?,
    )?;
    let last_error = (report.job_status != JobStatus::Succeeded).then_some(&report.summary);
    payments::settle_leased(
        db,
        &job_ref,
        owner,
        report.job_status,
        report.next_attempt_at,
        last_error.map(String::as_str),
        system::now()?,
    )?;
    Ok(report.job_status)
}

/// What the re-check leaves: a run that is over before it sends, or the messages to send (in
/// `settled` until they are started).
enum Prepared {
    Over(Report),
    Send(Box<FeedbackRun>),
}

fn prepare(db: &impl Sql, job: &ClaimedJob, now: Timestamp) -> anyhow::Result<Prepared> {
    let over = |report| Ok(Prepared::Over(report));
    let facts = load_facts(db, job)?;
    let settings = load_settings(db, &job.account_id)?;
    let rules = settings.as_ref().and_then(|s| s.rules.as_ref());
    let overrides = load_overrides(db, &job.account_id, &job.customer_id)?;
    let service_type = facts
        .as_ref()
        .and_then(|f| ServiceType::parse(&f.service_type));
    let decision = resolve(
        Automation::Feedback,
        rules,
        overrides.feedback.as_ref(),
        service_type.as_ref(),
    );
    let check = RunCheck {
        booking_status: facts.as_ref().map(|f| f.booking_status),
        decision: &decision,
        // A completed booking has its time; the job's due time stands in should it not.
        completed_at: facts
            .as_ref()
            .and_then(|f| f.completed_at)
            .unwrap_or(job.due_at),
        stale_after: rules.map(|r| r.feedback.stale_after),
        now,
    };
    if let Err(reason) = feedback_run::precheck(&check) {
        return over(feedback_run::not_sent(&job.id, &reason, false));
    }
    let Some(facts) = facts else {
        return over(feedback_run::not_sent(
            &job.id,
            "the booking no longer exists",
            false,
        ));
    };
    let channels = messages::load_settings(db, &job.account_id)?;
    let contact = Contact {
        email: facts.recipient.email.as_deref(),
        phone: facts.recipient.phone.as_deref(),
        notifications: facts.notifications,
    };
    let wanted = match destinations(&channels, &contact) {
        Ok(wanted) => wanted,
        Err(reason) => return over(feedback_run::not_sent(&job.id, &reason, false)),
    };
    let base = spin_sdk::variables::get("public_base_url").unwrap_or_default();
    let secret = system::secret_variable("feedback_link_secret").unwrap_or_default();
    let (token, link) = match feedback::link(&base, &secret, &job.id) {
        Ok(found) => found,
        Err(reason) => return over(feedback_run::not_sent(&job.id, &reason, true)),
    };
    db.execute(
        INSERT_LINK,
        &[
            text(&feedback::token_hash(&token)),
            text(&job.account_id),
            text(&job.customer_id),
            text(&job.booking_id),
            text(&job.id),
            instant(now.plus_minutes(LINK_VALID_DAYS * 24 * 60)),
            instant(now),
        ],
    )
    .context("storing the rating link")?;
    let purpose = Purpose::Feedback {
        booking_id: job.booking_id.clone(),
        service_type: facts.service_type.clone(),
        start_at: facts.start_at,
        local_date: TimeZone::parse(&facts.timezone)
            .map(|tz| tz.local_start(facts.start_at))
            .unwrap_or_else(|_| facts.start_at.to_string()),
    };
    let reply_to = channels.email.as_ref().and_then(|e| e.reply_to.as_deref());
    for (channel, to) in &wanted {
        let built = message::build(
            *channel,
            to,
            &purpose,
            &facts.business,
            &facts.recipient,
            reply_to,
            now,
        );
        messages::plan(db, &job.account_id, &job.customer_id, &job.id, &built, now)?;
    }
    // A channel the customer can no longer be reached on is left as it is.
    let due = messages::load(db, &job.account_id, &job.id)?
        .into_iter()
        .filter(|stored| wanted.iter().any(|(c, _)| *c == stored.message.channel))
        .collect();
    Ok(Prepared::Send(Box::new(FeedbackRun {
        job: job.clone(),
        link,
        config: ProviderConfig::from_variables(),
        webhook_secret: channels.webhook.map(|w| w.secret),
        settled: due,
        pending: Vec::new(),
    })))
}
