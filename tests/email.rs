//! E-mail invites against a real identity server: sydent 2.6.1 (from PyPI) behind a TLS proxy, mails caught by an
//! SMTP sink, and a Synapse that serves federation over TLS so sydent can verify the bot and deliver the invite
//! when the person binds their address. Covers: one e-mail invite per person and room, a bot killed between an
//! e-mail invite and its record, the person registering and binding their address, their Matrix ID remembered
//! (power, attendance, direct invites to new rooms), and an e-mail invite withdrawn when the schedule drops them.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{Api, Synapse, Sydent, User, enc};
use serde_json::{Value, json};

fn servers() -> &'static (Synapse, Sydent) {
    static S: OnceLock<(Synapse, Sydent)> = OnceLock::new();
    S.get_or_init(|| {
        let synapse = Synapse::start_with("relaxed", &[], &[("SYNAPSE_FEDERATION_TLS", "1")]);
        let sydent = Sydent::start(&synapse);
        (synapse, sydent)
    })
}

struct Setup {
    bot: User,
    alice: User,
    dir: tempfile::TempDir,
}

impl Setup {
    fn files(&self, t2_speakers: &str) -> std::path::PathBuf {
        self.files_terms(t2_speakers, true)
    }

    fn files_terms(&self, t2_speakers: &str, accept_terms: bool) -> std::path::PathBuf {
        let (_, sydent) = servers();
        let schedule = format!(
            "conference: {{id: mail1, title: E-mail test, timezone: Europe/Brussels}}\n\
             tracks:\n  - {{key: go, name: Go, kind: devroom}}\n\
             people:\n\
             \x20 - {{key: alice, name: Alice, matrix: \"{a}\"}}\n\
             \x20 - {{key: erin, name: Erin, email: erin@example.org}}\n\
             \x20 - {{key: gina, name: Gina, email: gina@example.net}}\n\
             \x20 - {{key: hank, name: Hank, email: hank@example.com}}\n\
             talks:\n\
             \x20 - {{key: t1, title: One, track: go, room: H1, start: \"2026-03-14 10:00\", duration: 30, speakers: [alice, erin]}}\n\
             \x20 - {{key: t2, title: Two, track: go, room: H1, start: \"2026-03-14 11:00\", duration: 30, speakers: [{t2_speakers}]}}\n",
            a = self.alice.user_id,
        );
        common::write(self.dir.path(), "schedule.yaml", &schedule);
        common::write(
            self.dir.path(),
            "config.yaml",
            &format!(
                "conference: {{id: mail1}}\nhomeserver: {{server_name: {server}}}\nschedule: {{source: {s:?}}}\n\
                 people:\n  identity_server: {{server: \"{is}\", url: \"{url}\", accept_terms: {accept_terms}}}\n",
                server = servers().0.server_name,
                s = self.dir.path().join("schedule.yaml"),
                is = sydent.server,
                url = sydent.url,
            ),
        )
    }

    fn run(&self, args: &[&str], config: &std::path::Path) -> Value {
        let (ok, report) = self.try_run(args, config);
        assert!(ok, "{report}");
        report
    }

    /// Whether the run succeeded, and its JSON report.
    fn try_run(&self, args: &[&str], config: &std::path::Path) -> (bool, Value) {
        self.try_run_through(args, config, &servers().0.url)
    }

    /// A rerun through a counting proxy: no invite and no write reached Synapse (counted there, not by Stagehand).
    fn rerun_sends_nothing(&self, config: &std::path::Path) {
        let proxy = common::proxy::Proxy::start(&servers().0.url);
        let (ok, again) = self.try_run_through(&["apply", "--json"], config, &proxy.url);
        assert!(ok, "{again}");
        proxy.assert_no_writes("a rerun");
    }

    fn try_run_through(&self, args: &[&str], config: &std::path::Path, url: &str) -> (bool, Value) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stagehand"));
        cmd.args(args)
            .arg("--config")
            .arg(config)
            .args(["--homeserver", url])
            .env("STAGEHAND_ACCESS_TOKEN", &self.bot.token)
            .current_dir(common::root());
        let out = common::output_within(&mut cmd, common::CLI_LIMIT, &format!("stagehand {}", args.join(" ")));
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out.stderr).into_owned()));
        (out.status.success(), report)
    }

    fn api(&self, user: &User) -> Api {
        Api::new(&servers().0.url, &user.token)
    }

    async fn room(&self, alias_local: &str) -> String {
        let alias = format!("#mail1-{alias_local}:{}", servers().0.server_name);
        let (status, body) = self.api(&self.bot).get(&format!("/_matrix/client/v3/directory/room/{}", enc(&alias))).await;
        assert_eq!(status, 200, "{alias}: {body}");
        body["room_id"].as_str().unwrap().to_string()
    }

    async fn state(&self, room_id: &str) -> Vec<Value> {
        let (_, state) = self.api(&self.bot).get(&format!("/_matrix/client/v3/rooms/{}/state", enc(room_id))).await;
        state.as_array().cloned().unwrap_or_default()
    }

    /// Live third-party invites: token -> display name.
    async fn email_invites(&self, room_id: &str) -> HashMap<String, String> {
        self.state(room_id)
            .await
            .into_iter()
            .filter(|e| e["type"] == "m.room.third_party_invite" && e["content"].as_object().is_some_and(|o| !o.is_empty()))
            .map(|e| (e["state_key"].as_str().unwrap().to_string(), e["content"]["display_name"].as_str().unwrap_or_default().to_string()))
            .collect()
    }

    async fn membership(&self, room_id: &str, user: &str) -> Option<String> {
        self.state(room_id)
            .await
            .into_iter()
            .find(|e| e["type"] == "m.room.member" && e["state_key"] == user)
            .and_then(|e| e["content"]["membership"].as_str().map(str::to_string))
    }
}

/// The invite mails: (room id, token).
fn invite_mails(sydent: &Sydent) -> Vec<(String, String)> {
    sydent
        .mails()
        .iter()
        .filter_map(|m| {
            let field = |name: &str| m.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string());
            Some((field("Room: ")?, field("Invite token: ")?))
        })
        .collect()
}

/// What a person does in their client: register with the identity server, confirm the address from the mail, bind
/// it to their Matrix ID.
async fn bind_email(user: &User, address: &str) {
    let (synapse, sydent) = servers();
    let ok = |what: &str, (status, body): (u16, Value)| {
        assert_eq!(status, 200, "{what}: {body}");
        body
    };
    let openid = ok("openid", Api::new(&synapse.url, &user.token).post(&format!("/_matrix/client/v3/user/{}/openid/request_token", enc(&user.user_id)), &json!({})).await);
    let reg = ok("register", Api::new(&sydent.url, "").post("/_matrix/identity/v2/account/register", &openid).await);
    let is = Api::new(&sydent.url, reg["token"].as_str().expect("identity server token"));
    ok("terms", is.post("/_matrix/identity/v2/terms", &json!({"user_accepts": ["https://example.org/privacy-en.html"]})).await);
    let before = sydent.mails().len();
    let secret = "stagehandTestSecret1";
    let req = ok("requestToken", is.post("/_matrix/identity/v2/validate/email/requestToken", &json!({"client_secret": secret, "email": address, "send_attempt": 1})).await);
    let sid = req["sid"].as_str().unwrap_or_else(|| panic!("requestToken: {req}")).to_string();
    let mut code = None;
    for _ in 0..100 {
        code = sydent.mails().iter().skip(before).find_map(|m| m.lines().find_map(|l| l.strip_prefix("Verification code: ")).map(|c| c.trim().to_string()));
        if code.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = code.expect("the verification mail");
    ok("submitToken", is.post("/_matrix/identity/v2/validate/email/submitToken", &json!({"sid": sid, "client_secret": secret, "token": code})).await);
    ok("bind", is.post("/_matrix/identity/v2/3pid/bind", &json!({"sid": sid, "client_secret": secret, "mxid": user.user_id})).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_invites_through_a_real_identity_server_and_the_matrix_id_is_remembered() {
    let (synapse, sydent) = servers();
    let setup = Setup { bot: synapse.register("mailbot", false), alice: synapse.register("alice", false), dir: tempfile::tempdir().unwrap() };
    // The identity server has terms of service: not accepted in the config, nothing is sent by e-mail, the run says
    // which terms, and fails; the rooms are built and alice (by Matrix ID) is invited all the same.
    let cfg = setup.files_terms("gina", false);
    let (ok, refused) = setup.try_run(&["apply", "--json"], &cfg);
    assert!(!ok, "{refused}");
    let failed: Vec<&Value> = refused["memberships"].as_array().unwrap().iter().filter(|m| m["action"] == "failed").collect();
    assert_eq!(failed.len(), 4, "{refused}");
    assert!(failed.iter().all(|m| m["error"].as_str().unwrap().contains("https://example.org/privacy-en.html")), "{failed:?}");
    assert_eq!(refused["invites"], 2, "{refused}");
    assert!(sydent.mails().is_empty());
    let cfg = setup.files("gina");

    // Terms accepted. Killed right after the first e-mail invite, before its record is written.
    common::apply_killed_at("invite:1", &cfg, &setup.bot.token, &synapse.url);
    let report = setup.run(&["apply", "--json"], &cfg);
    let emailed = report["memberships"].as_array().unwrap().iter().filter(|m| m["action"] == "email_invite").count();
    assert_eq!(emailed, 4, "erin: t1 and lounge, gina: t2 and lounge, one of them found from the killed run: {report}");
    // Rooms send their e-mail invites in parallel: the one at the kill point and any others that went out before
    // the kill landed are found in their rooms, not sent again (the mail count below proves it).
    let resent = report["invites"].as_u64().unwrap();
    assert!(resent < 4, "the invites sent before the kill are not sent again: {report}");
    let (t1, t2, lounge) = (setup.room("talk-t1").await, setup.room("talk-t2").await, setup.room("speakers").await);
    let (i1, i2, il) = (setup.email_invites(&t1).await, setup.email_invites(&t2).await, setup.email_invites(&lounge).await);
    assert_eq!((i1.len(), i2.len(), il.len()), (1, 1, 2), "one e-mail invite per person and room: {i1:?} {i2:?} {il:?}");
    assert!(i1.values().all(|d| d.starts_with("eri")) && i2.values().all(|d| d.starts_with("gin")), "{i1:?} {i2:?}");
    // Every invite mail names its room and the invite's token; one mail per invite.
    let mails = invite_mails(sydent);
    assert_eq!(mails.len(), 4, "{mails:?}");
    for (room, token) in &mails {
        let invites = [(&t1, &i1), (&t2, &i2), (&lounge, &il)].into_iter().find(|(id, _)| *id == room).map(|(_, i)| i).expect("a planned room");
        assert!(invites.contains_key(token), "mail token {token} in {room}");
    }
    // The record keeps a hash of the address, never the address.
    let managed = setup.state(&t1).await.into_iter().find(|e| e["type"] == "org.stagehand.managed").unwrap();
    assert!(!managed.to_string().contains("erin@"), "{managed}");
    assert_eq!(managed["content"]["emails"].as_object().map(|o| o.len()), Some(1), "{managed}");

    // A rerun sends nothing.
    setup.rerun_sends_nothing(&cfg);
    assert_eq!(invite_mails(sydent).len(), 4);
    let mut attendance = Command::new(env!("CARGO_BIN_EXE_stagehand"));
    attendance
        .args(["attendance", "--csv", "--config"])
        .arg(&cfg)
        .args(["--homeserver", &synapse.url])
        .env("STAGEHAND_ACCESS_TOKEN", &setup.bot.token)
        .current_dir(common::root());
    let attendance = common::output_within(&mut attendance, common::CLI_LIMIT, "stagehand attendance --csv");
    let text = String::from_utf8_lossy(&attendance.stdout).to_string();
    assert!(text.lines().any(|l| l.contains("talk/t1") && l.contains("erin") && l.ends_with("email_invited")), "{text}");

    // Erin gets a Matrix account and binds her address: the identity server hands her invites to the homeserver.
    let erin = synapse.register("erin", false);
    bind_email(&erin, "erin@example.org").await;
    let mut invited = None;
    for _ in 0..100 {
        invited = setup.membership(&t1, &erin.user_id).await;
        if invited.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(invited.as_deref(), Some("invite"), "erin is invited once she binds her address");
    let (status, body) = setup.api(&erin).post(&format!("/_matrix/client/v3/rooms/{}/join", enc(&t1)), &json!({})).await;
    assert_eq!(status, 200, "{body}");

    // The next run recognises her (her join replaced the invite that carried the token): her Matrix ID is recorded,
    // she gets her speaker power, and no invite goes out.
    let linked = setup.run(&["apply", "--json"], &cfg);
    assert_eq!(linked["invites"], 0, "{linked}");
    let (_, pl) = setup.api(&setup.bot).get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.power_levels/", enc(&t1))).await;
    assert_eq!(pl["users"][&erin.user_id], 50, "{pl}");
    let managed = setup.state(&lounge).await.into_iter().find(|e| e["type"] == "org.stagehand.managed").unwrap();
    assert!(managed.to_string().contains(&erin.user_id), "remembered in every room she is in: {managed}");
    setup.rerun_sends_nothing(&cfg);

    // A later schedule: erin also speaks in t2, gina no longer does, and hank, known by an address he had already
    // bound to his Matrix account, joins t2. Erin is invited there by Matrix ID (no mail), hank's address leads the
    // homeserver to invite his account directly (t2 and lounge), gina's e-mail invite to t2 is withdrawn.
    let hank = synapse.register("hank", false);
    bind_email(&hank, "hank@example.com").await;
    // Gina binds her address too, so the homeserver turns her e-mail invites into invites of her account; the run
    // that learns this is also the one whose schedule drops her: those invites are withdrawn.
    let gina = synapse.register("gina", false);
    bind_email(&gina, "gina@example.net").await;
    for _ in 0..100 {
        if setup.membership(&lounge, &gina.user_id).await.is_some() && setup.membership(&t2, &gina.user_id).await.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(setup.membership(&t2, &gina.user_id).await.as_deref(), Some("invite"));
    let mails_before = sydent.mails().len();
    setup.files("erin, hank");
    let v2 = setup.run(&["apply", "--json"], &cfg);
    assert_eq!(v2["invites"], 3, "{v2}");
    assert_eq!(setup.membership(&t2, &erin.user_id).await.as_deref(), Some("invite"));
    assert_eq!(setup.membership(&t2, &hank.user_id).await.as_deref(), Some("invite"));
    assert_eq!(setup.membership(&lounge, &hank.user_id).await.as_deref(), Some("invite"));
    // What the run learnt (hank's Matrix ID) gives him his power on the next run, which reads it from the record.
    let settle = setup.run(&["apply", "--json"], &cfg);
    assert_eq!(settle["invites"], 0, "{settle}");
    let (_, pl) = setup.api(&setup.bot).get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.power_levels/", enc(&t2))).await;
    assert_eq!(pl["users"][&hank.user_id], 50, "{pl}");
    assert!(setup.email_invites(&t2).await.is_empty(), "gina's invite to t2 is withdrawn");
    for room in [&t2, &lounge] {
        assert_eq!(setup.membership(room, &gina.user_id).await.as_deref(), Some("leave"), "gina's account invite is withdrawn too");
    }
    // Gina speaks nowhere now: her lounge invite goes too; erin's (taken up) stays as it is.
    let lounge_invites = setup.email_invites(&lounge).await;
    assert_eq!(lounge_invites.len(), 1, "{lounge_invites:?}");
    assert!(lounge_invites.values().all(|d| d.starts_with("eri")), "{lounge_invites:?}");
    assert_eq!(setup.membership(&lounge, &erin.user_id).await.as_deref(), Some("invite"));
    assert_eq!(sydent.mails().len(), mails_before, "no mail");
    setup.rerun_sends_nothing(&cfg);
}
