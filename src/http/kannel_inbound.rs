//! Inbound SMS from kannel: not written yet.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub(crate) async fn receive() -> Response {
    (StatusCode::NOT_IMPLEMENTED, "not available yet").into_response()
}
