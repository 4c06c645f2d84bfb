//! The homeserver floor for `scripts/bench-build`: the same `createRoom` calls a Stagehand build makes (same rooms,
//! same initial state, power levels and parents, same concurrency), in a bare loop of plain HTTP requests with no
//! lookups, no comparison and no space children. Prints `floor_seconds=S rooms=N`.
//!
//! Usage: create_floor HOMESERVER_URL ACCESS_TOKEN CONFIG SCHEDULE

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use stagehand::config::Config;
use stagehand::load::{LoadRequest, load};
use stagehand::plan::{self, state};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, token, config, schedule] = args.as_slice() else {
        anyhow::bail!("usage: create_floor HOMESERVER_URL ACCESS_TOKEN CONFIG SCHEDULE");
    };
    let (config, _) = Config::from_file(std::path::Path::new(config))?;
    let req = LoadRequest { source: schedule.clone(), ..LoadRequest::default() };
    let parsed = load(&req, Some(&config)).await?;
    let plan = plan::plan(&parsed.conference, &config);
    let http = reqwest::Client::new();
    let who: serde_json::Value = http
        .get(format!("{url}/_matrix/client/v3/account/whoami"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    let bot = who["user_id"].as_str().unwrap_or_default().to_string();
    let version = config.homeserver.room_version.clone();
    let sem = Arc::new(tokio::sync::Semaphore::new(config.homeserver.concurrency));
    let started = Instant::now();
    let mut ids: HashMap<String, String> = HashMap::new();
    let depth = |r: &plan::PlannedRoom| match r.kind {
        plan::ObjectKind::RootSpace => 0,
        plan::ObjectKind::Subspace => 1,
        _ => 2,
    };
    for level in 0..3 {
        let mut set = tokio::task::JoinSet::new();
        for room in plan.rooms.iter().filter(|r| depth(r) == level) {
            let mut initial: Vec<serde_json::Value> = state::room_state(&plan.conference, room)
                .into_iter()
                .map(|s| json!({"type": s.event_type, "state_key": s.state_key, "content": s.content}))
                .collect();
            if let Some(parent) = room.parent.as_ref().and_then(|p| ids.get(p)) {
                let p = state::parent_event(parent, &config.homeserver.server_name);
                initial.push(json!({"type": p.event_type, "state_key": p.state_key, "content": p.content}));
            }
            let mut body = json!({
                "room_alias_name": room.alias.trim_start_matches('#').split(':').next().unwrap_or_default(),
                "room_version": version,
                "visibility": if room.public { "public" } else { "private" },
                "preset": if room.public { "public_chat" } else { "private_chat" },
                "initial_state": initial,
                "power_level_content_override": state::power_levels(room, &version, &bot),
            });
            if room.kind.is_space() {
                body["creation_content"] = json!({"type": "m.space"});
            }
            let (http, url, token, key, sem) = (http.clone(), url.clone(), token.clone(), room.key.clone(), sem.clone());
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let resp = http.post(format!("{url}/_matrix/client/v3/createRoom")).bearer_auth(&token).json(&body).send().await;
                let id = match resp {
                    Ok(r) => r.json::<serde_json::Value>().await.ok().and_then(|v| v["room_id"].as_str().map(str::to_string)),
                    Err(_) => None,
                };
                (key, id)
            });
        }
        while let Some(Ok((key, id))) = set.join_next().await {
            match id {
                Some(id) => {
                    ids.insert(key, id);
                }
                None => eprintln!("createRoom failed for {key}"),
            }
        }
    }
    println!("floor_seconds={:.1} rooms={}", started.elapsed().as_secs_f64(), ids.len());
    Ok(())
}
