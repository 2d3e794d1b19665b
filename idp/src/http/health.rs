//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use super::AppState;

/// The process is up and serving.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The process can do useful work: the database answers and signing keys are loaded.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let backend = state.store.backend();
    match state.store.ping().await {
        Ok(()) if !state.keys.current().is_empty() => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "database": backend })),
        ),
        Ok(()) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "no signing keys" })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "database unreachable", "database": backend })),
            )
        }
    }
}
