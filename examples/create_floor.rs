//! The homeserver floor for `scripts/bench-build`: the same `createRoom` calls a Stagehand build makes (same rooms,
//! in the same creation order and concurrency, with the same initial state, power levels and space links, made by
//! the same pure functions: `Plan::creation_levels` and `plan::desired::creation`), in a bare loop of plain HTTP
//! requests with no lookups, no comparison and none of the writes a build makes after `createRoom`. Prints
//! `floor_seconds=S rooms=N`. Widgets must be off in the config (the build's figures are for rooms and spaces).
//!
//! Usage: create_floor HOMESERVER_URL ACCESS_TOKEN CONFIG SCHEDULE

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use stagehand::config::Config;
use stagehand::load::{LoadRequest, load};
use stagehand::matrix::live;
use stagehand::plan::desired::{self, Settings};
use stagehand::plan::managed::Links;
use stagehand::plan;
use stagehand::timeline;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, token, config, schedule] = args.as_slice() else {
        anyhow::bail!("usage: create_floor HOMESERVER_URL ACCESS_TOKEN CONFIG SCHEDULE");
    };
    let (config, _) = Config::from_file(std::path::Path::new(config))?;
    anyhow::ensure!(!config.widgets.enabled, "create_floor builds rooms without widgets: set widgets.enabled: false");
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
    // The build's settings: the same moment (a conference that is over has its talk rooms opened).
    let actions = timeline::timeline(&parsed.conference, &plan, &config.timeline.actions);
    let opened = &config.timeline.opened;
    let moment = live::moment(&timeline::state_at(&actions, chrono::Utc::now()), &opened.join_rule, &opened.history_visibility);
    let s = Settings {
        conference: plan.conference.clone(),
        server_name: config.homeserver.server_name.clone(),
        bot: who["user_id"].as_str().unwrap_or_default().to_string(),
        room_version: config.homeserver.room_version.clone(),
        widgets: None,
        kick_removed: false,
        email_invites: false,
        members_only: false,
        moment,
        parent_links: plan.parent_links,
    };
    let sem = Arc::new(tokio::sync::Semaphore::new(config.homeserver.concurrency));
    let started = Instant::now();
    let mut ids: HashMap<String, String> = HashMap::new();
    let levels = plan.creation_levels();
    for level in 0..=levels.values().copied().max().unwrap_or(0) {
        let mut set = tokio::task::JoinSet::new();
        for room in plan.rooms.iter().filter(|r| levels.get(r.key.as_str()) == Some(&level)) {
            let parent_id = room.parent.as_ref().filter(|_| plan.carries_parent_link(room)).and_then(|p| ids.get(p));
            let children = plan.listed_at_creation(room, &ids);
            let creation = desired::creation(room, &s, parent_id.map(String::as_str), &children, &Links::new());
            let initial: Vec<serde_json::Value> = creation
                .initial_state
                .iter()
                .map(|i| json!({"type": i.event_type, "state_key": i.state_key, "content": i.content}))
                .collect();
            let mut body = json!({
                "room_alias_name": room.alias.trim_start_matches('#').split(':').next().unwrap_or_default(),
                "room_version": s.room_version,
                "visibility": if room.public { "public" } else { "private" },
                "preset": if room.public { "public_chat" } else { "private_chat" },
                "initial_state": initial,
                "power_level_content_override": creation.power_levels,
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
