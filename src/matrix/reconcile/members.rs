//! Members: the membership work each room needs (decided in `plan::desired::members`) sent: Matrix invites and
//! removals spread across people (Synapse limits invites per receiver), e-mail invites withdrawn, e-mail invites
//! sent through the identity server; then each room's managed record, last, so a removal that failed stays on
//! record for the next run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use futures_util::StreamExt;
use tracing::instrument;

use super::super::client::{Counters, Homeserver};
use super::super::identity;
use super::super::fanout::{all, fan_out};
use super::report::MemberReport;
use super::{Options, Run, email};
use crate::plan::Plan;
use crate::plan::desired::members::{self, MemberAction, MemberWork};
use crate::plan::desired::{Change, Observed};
use crate::plan::managed::{EmailRecord, Links, THIRD_PARTY_INVITE};
use crate::plan::state;

/// What the membership phase did, for the managed records.
#[derive(Default)]
pub struct Outcome {
    pub actions: Vec<MemberReport>,
    /// New e-mail invites (or the Matrix user an address turned out to be bound to): room key -> (e-mail key, record).
    pub new_emails: HashMap<String, Vec<(String, EmailRecord)>>,
    /// Removals not done (failed, or invites off), by room key: Matrix IDs and e-mail keys that stay on record.
    pub pending: HashMap<String, HashSet<String>>,
}

impl Outcome {
    fn keep(&mut self, room: &str, work: &MemberWork) {
        self.pending.entry(room.to_string()).or_default().extend(work.pending());
    }
}

/// One room's share of the work: plan key and room id.
type Target<'a> = (&'a str, &'a str);

/// Sends the membership work decided for each room (invites, withdrawals, e-mail invites). Restart-safe: an invite
/// already sent shows in the room's state or record, and is not decided again.
#[instrument(skip_all)]
pub async fn phase(hs: &Homeserver, plan: &Plan, opts: &Options, run: &Run) -> Outcome {
    let mut out = Outcome::default();
    let mut matrix: Vec<(Target<'_>, MemberWork)> = Vec::new();
    let mut by_email: BTreeMap<&str, (&str, Vec<MemberWork>)> = BTreeMap::new();
    let mut withdrawn: Vec<(Target<'_>, MemberWork)> = Vec::new();
    for room in &plan.rooms {
        let Some(r) = run.rooms.get(&room.key) else { continue };
        for note in &r.members.notes {
            out.actions.push(MemberReport { error: note.reason.clone(), ..MemberReport::new(&room.key, note.who.clone(), note.action) });
        }
        for w in r.members.work.iter().cloned() {
            match w {
                MemberWork::EmailInvite { .. } => by_email.entry(&room.key).or_insert((&r.id, Vec::new())).1.push(w),
                MemberWork::EmailWithdraw { .. } => withdrawn.push(((&room.key, &r.id), w)),
                _ => matrix.push(((&room.key, &r.id), w)),
            }
        }
    }
    let matrix = members::spread(matrix);
    if opts.dry_run || !opts.invite {
        let email_work = by_email.iter().flat_map(|(room, (id, items))| items.iter().map(move |w| ((*room, *id), w.clone())));
        for ((room, _), w) in matrix.into_iter().chain(email_work).chain(withdrawn) {
            out.keep(room, &w);
            out.actions.push(MemberReport::new(room, w.who(), w.action()));
        }
        if !opts.invite {
            out.actions.retain(|a| a.action == MemberAction::Uncontactable);
        }
        return out;
    }
    send_matrix(hs, opts, matrix, &mut out).await;
    // Withdrawing an e-mail invite is a state event in the room; the identity server is not involved.
    let sent = all(withdrawn, opts.concurrency, |((room, room_id), w)| async move {
        let MemberWork::EmailWithdraw { token, .. } = &w else { return (room, w, Ok(())) };
        let result = hs.put_state(room_id, &state::removed(THIRD_PARTY_INVITE, token)).await.map(|_| ());
        (room, w, result)
    })
    .await;
    for (room, w, result) in sent {
        if let Err(e) = &result {
            out.keep(room, &w);
            out.actions.push(MemberReport::failed(room, w.who(), e));
        } else {
            out.actions.push(MemberReport::new(room, w.who(), w.action()));
        }
    }
    send_email(hs, opts, run, by_email, &mut out).await;
    out.actions.sort_by(|a, b| (&a.room, &a.user_id).cmp(&(&b.room, &b.user_id)));
    out
}

/// Matrix invites and removals, bounded, with progress in the log.
async fn send_matrix(hs: &Homeserver, opts: &Options, work: Vec<(Target<'_>, MemberWork)>, out: &mut Outcome) {
    let total = work.len();
    if total > 0 {
        tracing::info!(total, "sending invites and withdrawals, spread across people");
    }
    let mut sent = fan_out(work, opts.concurrency, |((room, room_id), w)| async move {
        let result = match &w {
            MemberWork::Invite { user_id } => hs.invite(room_id, user_id).await,
            MemberWork::Withdraw { user_id, .. } | MemberWork::Kick { user_id, .. } => {
                hs.kick(room_id, user_id, "The schedule no longer lists you for this room").await
            }
            MemberWork::EmailInvite { .. } | MemberWork::EmailWithdraw { .. } => Ok(()),
        };
        (room, w, result)
    });
    let mut done = 0usize;
    while let Some((room, w, result)) = sent.next().await {
        done += 1;
        if done.is_multiple_of(50) || done == total {
            tracing::info!(done, total, rate_limit_waits = Counters::get(&hs.counters.rate_limited), "invites progress");
        }
        match result {
            Ok(()) => {
                tracing::info!(room, user = %w.who(), action = ?w.action(), "membership");
                out.actions.push(MemberReport::new(room, w.who(), w.action()));
            }
            Err(e) => {
                tracing::warn!(room, user = %w.who(), action = ?w.action(), error = %e, "membership failed");
                out.keep(room, &w);
                out.actions.push(MemberReport::failed(room, w.who(), e));
            }
        }
    }
}

/// E-mail invites: one room at a time each (the new invite's token is read back from the room), rooms in parallel.
async fn send_email(hs: &Homeserver, opts: &Options, run: &Run, by_email: BTreeMap<&str, (&str, Vec<MemberWork>)>, out: &mut Outcome) {
    let Some(config) = opts.identity_server.as_ref().filter(|_| !by_email.is_empty()) else { return };
    let identity = match identity::register(hs, config).await {
        Ok(identity) => Arc::new(identity),
        Err(e) => {
            tracing::error!(error = %e, "e-mail invites not sent");
            for (room, (_, items)) in by_email {
                out.actions.extend(items.iter().map(|w| MemberReport::failed(room, w.who(), &e)));
            }
            return;
        }
    };
    let rooms = by_email.into_iter().filter_map(|(room, (room_id, items))| {
        let known: HashSet<String> = run.rooms.get(room)?.previous.emails.values().filter_map(|r| r.token.clone()).collect();
        Some((room, room_id, items, known))
    });
    let done = all(rooms, opts.concurrency, |(room, room_id, items, known)| {
        let identity = identity.clone();
        async move { email::invites(hs, &identity, room, room_id, items, known).await }
    })
    .await;
    for (room, actions, records) in done {
        out.actions.extend(actions);
        out.new_emails.entry(room.to_string()).or_default().extend(records);
    }
}

/// Each room's managed record after this run, written where it differs (rooms in parallel). Returns, per room key,
/// what was sent and how it went.
#[instrument(skip_all)]
pub async fn records(hs: &Homeserver, plan: &Plan, opts: &Options, run: &Run, outcome: &Outcome, links: &Links) -> Vec<(String, Vec<Change>, Result<(), super::super::client::MatrixError>)> {
    let none = HashSet::new();
    let work = plan.rooms.iter().filter_map(|room| {
        let r = run.rooms.get(&room.key).filter(|r| r.ok || outcome.new_emails.contains_key(&room.key))?;
        let pending = outcome.pending.get(&room.key).unwrap_or(&none);
        let new = outcome.new_emails.get(&room.key).map(Vec::as_slice).unwrap_or_default();
        let change = members::record_change(room, Observed { state: &r.state, managed: &r.previous }, pending, new, links)?;
        Some((room.key.clone(), r.id.as_str(), vec![change]))
    });
    all(work, opts.concurrency, |(key, room_id, changes)| async move {
        let result = super::send(hs, room_id, &changes, opts.dry_run).await;
        (key, changes, result)
    })
    .await
}
