//! Retire: a room in one of our spaces that the plan no longer holds is read, and if it is ours, marked cancelled
//! and cut from its space (what that means is decided in `plan::desired::spaces`). Never deleted.

use tracing::instrument;

use super::super::client::{Homeserver, state_map};
use super::report::{ObjectReport, Status};
use crate::plan::Plan;
use crate::plan::desired::spaces::{self, Retirement};

/// Returns the report (none for a room that is not ours) and whether the room may now be taken out of the space
/// (marked, or not ours to mark); a room that could not be read or marked stays in, and the next run tries again.
#[instrument(skip_all, fields(room_id))]
pub async fn retire(hs: &Homeserver, conference: &str, plan: &Plan, room_id: &str, dry_run: bool) -> (Option<ObjectReport>, bool) {
    let state = match hs.room_state(room_id).await {
        Ok(events) => state_map(&events),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a room the plan no longer holds; it stays in its space until it can be marked");
            return (None, false);
        }
    };
    let (key, alias, changes) = match spaces::retirement(&state, conference, plan) {
        Retirement::Unlink => return (None, true),
        Retirement::Cancel { key, alias, changes } => (key, alias, changes),
    };
    let result = super::send(hs, room_id, &changes, dry_run).await;
    let done = result.is_ok();
    let status = match result {
        Ok(()) => {
            tracing::info!(room = %key, "talk no longer in the schedule: kept, marked cancelled, taken out of its space");
            Status::Cancelled
        }
        Err(e) => Status::failed(format!("not marked cancelled (stays in its space, retried next run): {e}")),
    };
    (Some(ObjectReport { key, alias, room_id: Some(room_id.to_string()), status }), done)
}
