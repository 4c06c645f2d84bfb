//! Q&A's durable part: every room event it took in, raw, in the day's SQLite file (beside the timeline's rows), keyed
//! by event id so an event delivered twice is kept once. Boards are rebuilt from these rows after a restart.

use serde_json::Value;

use crate::timeline::{Store, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS qa_events (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    event TEXT NOT NULL
);
";

/// Creates Q&A's table if it is not there.
pub async fn prepare(store: &Store) -> Result<(), StoreError> {
    store.call(|c| c.execute_batch(SCHEMA)).await
}

/// Keeps events (room id, event); those already kept are left as they are.
pub async fn keep(store: &Store, events: Vec<(String, Value)>) -> Result<(), StoreError> {
    store
        .call(move |c| {
            let tx = c.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare_cached("INSERT OR IGNORE INTO qa_events (event_id, room_id, event) VALUES (?1, ?2, ?3)")?;
                for (room, event) in &events {
                    let Some(id) = event.get("event_id").and_then(Value::as_str) else { continue };
                    stmt.execute(rusqlite::params![id, room, event.to_string()])?;
                }
            }
            tx.commit()
        })
        .await
}

/// Every kept event, in the order it was kept.
pub async fn load(store: &Store) -> Result<Vec<(String, Value)>, StoreError> {
    store
        .call(|c| {
            let mut stmt = c.prepare("SELECT room_id, event FROM qa_events ORDER BY rowid")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (room, text) = row?;
                // A row that does not parse was not written by this code; it is skipped rather than stopping the day.
                if let Ok(v) = serde_json::from_str(&text) {
                    out.push((room, v));
                }
            }
            Ok(out)
        })
        .await
}
