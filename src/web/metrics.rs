//! `/metrics`: the process's metrics ([`crate::metrics::global`]) in Prometheus' text format. A route of its own, with
//! no state: rendering the metrics cannot fail or slow the pages or `/healthz`, and a failed rendering is a 500 on
//! this route only.

use axum::Router;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics;

/// The `/metrics` route, to merge into the pages' router.
pub fn router() -> Router {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape() -> Response {
    match metrics::global().render() {
        Ok(text) => ([(CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot render the metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot render the metrics").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::plan::widgets::WidgetContext;
    use crate::web::{Health, Pages, Site, serve_pages};

    #[tokio::test]
    async fn metrics_are_served_beside_the_pages_and_healthz_keeps_its_shape() {
        let (conference, plan) = crate::timeline::fixtures::small();
        let widgets = WidgetContext { conference: "camp".into(), bot: "@bot:example.org".into(), config: Default::default(), secret: b"s".to_vec() };
        let site = Arc::new(Site { conference, plan, widgets, clock: Arc::new(chrono::Utc::now) });
        let health: Health = Arc::new(|| (true, serde_json::json!({"alive": true})));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_pages(Arc::new(Pages::new(site, Some(health))), listener, async move {
            let _ = stopped.await;
        }));

        let resp = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert_eq!(resp.status(), 200);
        let kind = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
        let text = resp.text().await.unwrap();
        assert!(text.lines().any(|l| l.starts_with("stagehand_qa_questions_total ")), "{text}");
        let resp = reqwest::get(format!("{base}/healthz")).await.unwrap();
        assert_eq!(resp.status(), 200);
        let health: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(health, serde_json::json!({"ok": true, "runner": {"alive": true}}));

        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
