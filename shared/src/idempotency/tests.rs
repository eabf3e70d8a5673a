//! The key's rules one by one, then the whole protocol under random interleavings: requests
//! with the same or another body arriving while runs are in flight, runs that crash or are
//! killed by the host, answers stored or released, time passing, the purge, and claims that
//! lose a race. A small model shell claims and completes with the same compare-and-set the SQL
//! shell uses, so a wrong decision shows up as two live runs, a second creation, or a replay
//! of the wrong answer.

use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

fn at(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_780_000_000_000 + millis).expect("in range")
}

const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;

fn print(body: &str) -> Fingerprint {
    Fingerprint::of("POST", "/api/v1/customers", body.as_bytes())
}

fn row(body: &str, first_used: i64, state: KeyState) -> StoredKey {
    StoredKey {
        fingerprint: print(body),
        first_used_at: at(first_used),
        state,
    }
}

fn running_since(millis: i64) -> KeyState {
    KeyState::InProgress {
        started_at: at(millis),
    }
}

#[test]
fn keys_are_one_to_255_printable_ascii_characters() {
    for good in [
        "a",
        "order-42",
        "key with spaces",
        &"k".repeat(255),
        "~!@#$%^&*()",
    ] {
        assert_eq!(
            IdempotencyKey::parse(good).map(|k| k.as_str().to_owned()),
            Ok(good.to_owned())
        );
    }
    for bad in [
        "",
        &"k".repeat(256),
        "tab\there",
        "line\nfeed",
        "é",
        "nul\0",
        "del\x7f",
    ] {
        assert_eq!(
            IdempotencyKey::parse(bad),
            Err(KeyError::Invalid),
            "{bad:?}"
        );
    }
}

#[test]
fn no_header_is_no_key_and_two_headers_are_refused() {
    assert_eq!(IdempotencyKey::from_headers(&[]), Ok(None));
    assert_eq!(
        IdempotencyKey::from_headers(&["k1".into()]),
        Ok(Some(IdempotencyKey::parse("k1").expect("valid")))
    );
    assert_eq!(
        IdempotencyKey::from_headers(&["k1".into(), "k1".into()]),
        Err(KeyError::Repeated)
    );
    assert_eq!(
        IdempotencyKey::from_headers(&[String::new()]),
        Err(KeyError::Invalid)
    );
}

#[test]
fn the_fingerprint_is_sha256_of_method_path_and_body_in_hex() {
    // printf 'POST\n/api/v1/customers\n{}' | sha256sum
    assert_eq!(
        print("{}").as_str(),
        "1c27f6d7bec6255897d99c6631e83eac992284e668d7077adc5aa160fa5e8e91"
    );
    let hex = print("{}");
    assert_eq!(hex.as_str().len(), 64);
    assert!(
        hex.as_str()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_ne!(print("{}"), print("{ }"));
    assert_ne!(
        Fingerprint::of("POST", "/api/v1/customers", b"{}"),
        Fingerprint::of("POST", "/api/v1/bookings", b"{}")
    );
    assert_ne!(
        Fingerprint::of("POST", "/api/v1/customers", b"{}"),
        Fingerprint::of("PUT", "/api/v1/customers", b"{}")
    );
}

#[test]
fn a_key_never_seen_runs() {
    assert_eq!(decide(None, &print("{}"), at(0)), Decision::Run);
}

#[test]
fn the_same_request_after_an_answer_replays_it_for_24_hours() {
    let done = row("{}", 0, KeyState::Done);
    assert_eq!(decide(Some(&done), &print("{}"), at(1)), Decision::Replay);
    assert_eq!(
        decide(Some(&done), &print("{}"), at(DAY - 1)),
        Decision::Replay
    );
    assert_eq!(decide(Some(&done), &print("{}"), at(DAY)), Decision::Run);
}

#[test]
fn another_request_with_the_key_is_a_mismatch_until_it_expires() {
    for state in [KeyState::Done, KeyState::Released, running_since(0)] {
        let stored = row("{}", 0, state);
        assert_eq!(
            decide(Some(&stored), &print("{\"x\":1}"), at(1)),
            Decision::Mismatch,
            "{state:?}"
        );
    }
    let done = row("{}", 0, KeyState::Done);
    assert_eq!(
        decide(Some(&done), &print("{\"x\":1}"), at(DAY)),
        Decision::Run
    );
}

#[test]
fn a_live_run_holds_the_key_and_a_dead_one_is_taken_over() {
    let running = row("{}", 0, running_since(10));
    assert_eq!(
        decide(Some(&running), &print("{}"), at(11)),
        Decision::InUse
    );
    assert_eq!(
        decide(
            Some(&running),
            &print("{}"),
            at(10 + TAKEOVER_AFTER_MILLIS - 1)
        ),
        Decision::InUse
    );
    assert_eq!(
        decide(Some(&running), &print("{}"), at(10 + TAKEOVER_AFTER_MILLIS)),
        Decision::TakeOver
    );
}

#[test]
fn a_released_key_runs_its_request_again_at_once() {
    let released = row("{}", 0, KeyState::Released);
    assert_eq!(
        decide(Some(&released), &print("{}"), at(1)),
        Decision::TakeOver
    );
}

#[test]
fn an_expired_key_with_a_live_run_is_still_in_use() {
    let running = row("{}", 0, running_since(DAY - 1));
    assert_eq!(
        decide(Some(&running), &print("{}"), at(DAY)),
        Decision::InUse
    );
    assert_eq!(
        decide(Some(&running), &print("other"), at(DAY)),
        Decision::InUse
    );
}

#[test]
fn a_take_over_keeps_the_first_use_and_a_new_use_starts_now() {
    let key = IdempotencyKey::parse("k").expect("valid");
    let released = row("{}", 5, KeyState::Released);
    let taken = key_use(Decision::TakeOver, &key, Some(&released), at(99)).expect("runs");
    assert_eq!(taken.first_used_at, at(5));
    let fresh = key_use(Decision::Run, &key, Some(&released), at(99)).expect("runs");
    assert_eq!(fresh.first_used_at, at(99));
    assert_ne!(taken.seed(), fresh.seed());
    for nothing in [Decision::Replay, Decision::Mismatch, Decision::InUse] {
        assert_eq!(key_use(nothing, &key, Some(&released), at(99)), None);
    }
}

#[test]
fn results_of_running_are_stored_and_the_rest_released() {
    for status in [200, 201, 204, 400, 404, 409, 413, 422] {
        assert_eq!(disposition(status, true), Disposition::Store, "{status}");
    }
    for status in [401, 408, 429, 500, 502, 503] {
        assert_eq!(disposition(status, true), Disposition::Release, "{status}");
    }
    assert_eq!(disposition(201, false), Disposition::Release);
}

#[test]
fn rows_expire_exactly_24_hours_after_their_first_use() {
    let done = row("{}", 0, KeyState::Done);
    assert!(!done.expired(at(DAY - 1)));
    assert!(done.expired(at(DAY)));
    assert_eq!(expired_before(at(DAY)), at(0));
    let running = row("{}", 0, running_since(0));
    assert!(running.running(at(TAKEOVER_AFTER_MILLIS - 1)));
    assert!(!running.running(at(TAKEOVER_AFTER_MILLIS)));
    assert_eq!(stalled_before(at(TAKEOVER_AFTER_MILLIS)), at(0));
}

fn state() -> impl Strategy<Value = KeyState> {
    prop_oneof![
        Just(KeyState::Done),
        Just(KeyState::Released),
        (0i64..3 * DAY).prop_map(|t| KeyState::InProgress { started_at: at(t) }),
    ]
}

proptest! {
    #[test]
    fn printable_keys_up_to_255_are_accepted_and_nothing_else(key in "\\PC{0,300}") {
        let valid = !key.is_empty()
            && key.len() <= MAX_KEY_LEN
            && key.bytes().all(|b| (0x20..=0x7e).contains(&b));
        prop_assert_eq!(IdempotencyKey::parse(&key).is_ok(), valid);
    }

    #[test]
    fn the_same_request_has_the_same_fingerprint_and_another_one_another(
        a in ("[A-Z]{3,6}", "/[a-z/]{0,20}", proptest::collection::vec(any::<u8>(), 0..64)),
        b in ("[A-Z]{3,6}", "/[a-z/]{0,20}", proptest::collection::vec(any::<u8>(), 0..64)),
    ) {
        let print = |(m, p, body): &(String, String, Vec<u8>)| Fingerprint::of(m, p, body);
        prop_assert_eq!(print(&a), print(&a.clone()));
        prop_assert_eq!(print(&a) == print(&b), a == b);
    }

    #[test]
    fn each_decision_holds_only_in_its_own_situation(
        same in any::<bool>(),
        first in 0i64..2 * DAY,
        state in state(),
        later in 0i64..3 * DAY,
    ) {
        let stored = StoredKey { fingerprint: print("{}"), first_used_at: at(first), state };
        let now = at(first + later);
        let request = if same { print("{}") } else { print("other") };
        let expired = stored.expired(now);
        let running = stored.running(now);
        match decide(Some(&stored), &request, now) {
            Decision::Replay => prop_assert!(same && !expired && state == KeyState::Done),
            Decision::Mismatch => prop_assert!(!same && !expired),
            Decision::InUse => prop_assert!(running && (same || expired)),
            Decision::TakeOver => prop_assert!(same && !expired && !running
                && state != KeyState::Done),
            Decision::Run => prop_assert!(expired && !running),
        }
    }

    #[test]
    fn a_stored_answer_is_replayed_until_the_very_end_of_its_24_hours(
        later in 0i64..DAY,
    ) {
        let done = row("{}", 0, KeyState::Done);
        prop_assert_eq!(decide(Some(&done), &print("{}"), at(later)), Decision::Replay);
        prop_assert_eq!(decide(Some(&done), &print("x"), at(later)), Decision::Mismatch);
    }
}

// The protocol model.

/// How long the host lets a run go on before killing it (`mio-host`'s default).
const HOST_TIMEOUT: i64 = 30_000;

#[derive(Debug, Clone)]
enum Action {
    /// A request with body 0 or 1 arrives: it loads the row and decides; a run claims later.
    Arrive(u8),
    /// The oldest request that decided to run claims the key (compare-and-set on the row it
    /// decided on; a lost race decides again).
    Claim(usize),
    /// A live run answers with this status; a 2xx creates something, committed with the
    /// stored answer in one transaction.
    Finish(usize, u16),
    /// A live run dies (nothing of it is committed).
    Crash(usize),
    Advance(i64),
    Purge,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (0u8..2).prop_map(Action::Arrive),
        3 => any::<usize>().prop_map(Action::Claim),
        3 => (any::<usize>(), prop_oneof![Just(201u16), Just(400), Just(409), Just(500), Just(502)])
            .prop_map(|(i, s)| Action::Finish(i, s)),
        1 => any::<usize>().prop_map(Action::Crash),
        3 => (1i64..20_000).prop_map(Action::Advance),
        1 => (DAY / 2..DAY).prop_map(Action::Advance),
        1 => Just(Action::Purge),
    ]
}

#[derive(Debug, Clone)]
struct Row {
    stored: StoredKey,
    owner: u32,
    answer: Option<(u16, u32)>,
}

#[derive(Debug, Clone)]
struct Pending {
    body: u8,
    /// The owner and state of the row the decision was made on (`None`: no row).
    seen: Option<(u32, KeyState)>,
    decision: Decision,
    seen_row: Option<StoredKey>,
}

#[derive(Debug, Clone)]
struct Live {
    owner: u32,
    started: Timestamp,
    first_used_at: Timestamp,
}

struct Model {
    now: Timestamp,
    row: Option<Row>,
    next_owner: u32,
    pending: Vec<Pending>,
    live: Vec<Live>,
    /// Committed creations per use of the key (its first use).
    created: HashMap<Timestamp, u32>,
}

fn body_print(body: u8) -> Fingerprint {
    print(&body.to_string())
}

impl Model {
    fn arrive(&mut self, body: u8) -> Result<(), TestCaseError> {
        let stored = self.row.as_ref().map(|r| r.stored.clone());
        let decision = decide(stored.as_ref(), &body_print(body), self.now);
        match decision {
            Decision::Replay => {
                let row = self.row.as_ref().expect("a replay has a row");
                prop_assert_eq!(&row.stored.fingerprint, &body_print(body));
                prop_assert!(row.answer.is_some(), "a replay has an answer to give");
            }
            Decision::Mismatch => {
                let row = self.row.as_ref().expect("a mismatch has a row");
                prop_assert_ne!(&row.stored.fingerprint, &body_print(body));
            }
            Decision::InUse => {}
            Decision::Run | Decision::TakeOver => self.pending.push(Pending {
                body,
                seen: self.row.as_ref().map(|r| (r.owner, r.stored.state)),
                decision,
                seen_row: stored,
            }),
        }
        Ok(())
    }

    fn claim(&mut self, index: usize) -> Result<(), TestCaseError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = self.pending.remove(index % self.pending.len());
        if self.row.as_ref().map(|r| (r.owner, r.stored.state)) != pending.seen {
            // Lost the race: the shell loads and decides again.
            return self.arrive(pending.body);
        }
        // Time may have passed since the decision; the row did not change, so the decision made
        // on it stands.
        for other in &self.live {
            prop_assert!(
                self.now.unix_millis() - other.started.unix_millis() >= HOST_TIMEOUT,
                "two live runs hold the key"
            );
        }
        if let Some(row) = &self.row {
            prop_assert!(
                row.stored.state != KeyState::Done || row.stored.expired(self.now),
                "a request whose answer is stored ran again"
            );
        }
        let key = IdempotencyKey::parse("k").expect("valid");
        let key_use = key_use(pending.decision, &key, pending.seen_row.as_ref(), self.now)
            .expect("a running decision has a key use");
        let owner = self.next_owner;
        self.next_owner += 1;
        self.row = Some(Row {
            stored: StoredKey {
                fingerprint: body_print(pending.body),
                first_used_at: key_use.first_used_at,
                state: KeyState::InProgress {
                    started_at: self.now,
                },
            },
            owner,
            answer: None,
        });
        self.live.push(Live {
            owner,
            started: self.now,
            first_used_at: key_use.first_used_at,
        });
        Ok(())
    }

    fn finish(&mut self, index: usize, status: u16) {
        if self.live.is_empty() {
            return;
        }
        let run = self.live.remove(index % self.live.len());
        let Some(row) = self.row.as_mut().filter(|r| r.owner == run.owner) else {
            // Lost the key (taken over): the transaction rolls back, nothing is committed.
            return;
        };
        match disposition(status, true) {
            Disposition::Store => {
                row.stored.state = KeyState::Done;
                row.answer = Some((status, run.owner));
                if status == 201 {
                    *self.created.entry(run.first_used_at).or_default() += 1;
                }
            }
            Disposition::Release => row.stored.state = KeyState::Released,
        }
    }

    fn advance(&mut self, millis: i64) {
        self.now = at(self.now.unix_millis() - at(0).unix_millis() + millis);
        let now = self.now;
        // The host kills runs that take too long; they commit nothing.
        self.live
            .retain(|run| now.unix_millis() - run.started.unix_millis() < HOST_TIMEOUT);
    }

    /// As the SQL shell purges: expired, and not claimed by a run that may be alive.
    fn purge(&mut self) {
        let now = self.now;
        let purgeable = |stored: &StoredKey| {
            stored.first_used_at <= expired_before(now)
                && match stored.state {
                    KeyState::InProgress { started_at } => started_at <= stalled_before(now),
                    KeyState::Done | KeyState::Released => true,
                }
        };
        if self.row.as_ref().is_some_and(|r| purgeable(&r.stored)) {
            self.row = None;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn under_any_interleaving_one_run_at_a_time_and_one_creation_per_use(
        actions in proptest::collection::vec(action(), 1..80),
    ) {
        let mut model = Model {
            now: at(0),
            row: None,
            next_owner: 1,
            pending: Vec::new(),
            live: Vec::new(),
            created: HashMap::new(),
        };
        for action in actions {
            match action {
                Action::Arrive(body) => model.arrive(body)?,
                Action::Claim(i) => model.claim(i)?,
                Action::Finish(i, status) => model.finish(i, status),
                Action::Crash(i) if !model.live.is_empty() => {
                    let n = model.live.len();
                    model.live.remove(i % n);
                }
                Action::Crash(_) => {}
                Action::Advance(ms) => model.advance(ms),
                Action::Purge => model.purge(),
            }
            for (first_use, count) in &model.created {
                prop_assert!(*count <= 1, "{count} creations for the use at {first_use}");
            }
        }
        // Liveness: once every run is over and the take-over time has passed, the key's own
        // request is never refused as in use.
        model.advance(TAKEOVER_AFTER_MILLIS);
        model.live.clear();
        if let Some(row) = model.row.clone() {
            let again = decide(Some(&row.stored), &row.stored.fingerprint, model.now);
            prop_assert_ne!(again, Decision::InUse);
        }
    }
}
