//! Problem details (RFC 9457, `application/problem+json`): every error the server returns, from
//! any surface, has this shape and a human message. [`status_for`] is the one place an
//! [`ErrorKind`] becomes an HTTP status.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::Object;
use pv_core::ErrorKind;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The longest `detail` a problem carries, in characters.
pub const MAX_DETAIL_CHARS: usize = 300;

/// A problem document.
#[derive(Debug, Clone, PartialEq, Eq, Object, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// A URI reference naming the problem type; `about:blank` when the status says it all.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type (the status reason phrase).
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Human-readable explanation of this occurrence.
    pub detail: String,
}

impl Problem {
    /// A problem with `status` and a human `detail`. A detail longer than
    /// [`MAX_DETAIL_CHARS`] is cut there (with `…`): messages quote user input short (see
    /// [`pv_core::input::quote`]), and this is the backstop for any that does not.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        let mut detail = detail.into();
        if let Some((cut, _)) = detail.char_indices().nth(MAX_DETAIL_CHARS) {
            detail.truncate(cut);
            detail.push('…');
        }
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail,
        }
    }

    /// The problem for an error of `kind`. Internal errors get a generic message; their details
    /// belong in the log, not in the response.
    pub fn from_kind(kind: ErrorKind, message: impl std::fmt::Display) -> Self {
        let status = status_for(kind);
        if kind == ErrorKind::Internal {
            tracing::error!(error = %message, "internal error");
            Self::new(status, "internal error; the server log has the details")
        } else {
            Self::new(status, message.to_string())
        }
    }
}

/// The HTTP status of an error kind.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        Response::builder().status(status).content_type(PROBLEM_JSON).body(body)
    }
}

/// Turn any poem error (routing, extraction, a handler's error) into a problem response.
pub async fn from_poem_error(err: poem::Error) -> Response {
    // An operation's own error response (already a problem document) passes unchanged.
    if err.is_from_response() {
        let resp = err.into_response();
        let is_problem = resp
            .headers()
            .get(poem::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with(PROBLEM_JSON));
        if is_problem {
            return resp;
        }
        return Problem::new(resp.status(), resp.status().canonical_reason().unwrap_or("error"))
            .into_response();
    }
    let status = err.status();
    let detail = if status.is_server_error() {
        tracing::error!(error = %err, "request failed");
        "internal error; the server log has the details".to_string()
    } else if status == StatusCode::NOT_FOUND {
        "no such resource".to_string()
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        "method not allowed on this resource".to_string()
    } else {
        err.to_string()
    };
    Problem::new(status, detail).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_statuses() {
        assert_eq!(status_for(ErrorKind::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(status_for(ErrorKind::Unavailable), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_for(ErrorKind::Conflict), StatusCode::CONFLICT);
        assert_eq!(status_for(ErrorKind::Internal), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn long_details_are_cut() {
        let p = Problem::new(StatusCode::BAD_REQUEST, "é".repeat(1 << 20));
        assert_eq!(p.detail.chars().count(), MAX_DETAIL_CHARS + 1);
        assert!(p.detail.ends_with('…'));
        let p = Problem::new(StatusCode::BAD_REQUEST, "short");
        assert_eq!(p.detail, "short");
    }

    #[test]
    fn internal_messages_are_not_shown() {
        let p = Problem::from_kind(ErrorKind::Internal, "password=hunter2 at db.rs:10");
        assert!(!p.detail.contains("hunter2"));
        assert_eq!(p.status, 500);
        let p = Problem::from_kind(ErrorKind::InvalidInput, "name must not be empty");
        assert_eq!(p.detail, "name must not be empty");
        assert_eq!(p.title, "Bad Request");
    }
}
