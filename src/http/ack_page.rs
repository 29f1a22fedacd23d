//! `/ack/{token}`: not written yet.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub(crate) async fn show() -> Response {
    (StatusCode::NOT_IMPLEMENTED, "not available yet").into_response()
}

pub(crate) async fn ack() -> Response {
    (StatusCode::NOT_IMPLEMENTED, "not available yet").into_response()
}
