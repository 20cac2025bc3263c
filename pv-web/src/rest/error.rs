//! [`ApiError`]: the error side of every REST operation — a problem document with the status
//! its [`ErrorKind`](pv_core::ErrorKind) maps to, declared once so every operation documents
//! the same problem responses.
//!
//! Besides the handlers' own errors, it declares what the middleware in front of every
//! operation can answer (see [`crate::app`]): 400 for a malformed `Content-Length` or a request
//! poem-openapi cannot parse, 403 for a blocked address or a cross-origin write, 411 for a
//! chunked body, 413 for a body over `server.body_limit_bytes`, 415 for a body that is not
//! JSON, 429 when rate-limited. So the OpenAPI document lists every status the server sends.

use poem::http::StatusCode;
use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;

use crate::problem::{Problem, status_for};

/// A problem response.
#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// Malformed or invalid input.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Not signed in, or wrong credentials.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// Signed in but not allowed.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such thing.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// Conflicts with the current state.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// A request body was sent without a `Content-Length` (chunked).
    #[oai(status = 411, content_type = "application/problem+json")]
    LengthRequired(Json<Problem>),
    /// The request body is larger than the server's limit.
    #[oai(status = 413, content_type = "application/problem+json")]
    TooLarge(Json<Problem>),
    /// The request body is not JSON (or not the declared media type).
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// Too many requests or attempts; retry after the given seconds.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooMany(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// An unexpected server error.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// A database or dependency is unavailable.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl ApiError {
    /// A problem with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        // Only declared statuses go out: 422 becomes 400, anything else undeclared 500.
        let status = match status.as_u16() {
            400 | 401 | 403 | 404 | 409 | 411 | 413 | 415 | 429 | 500 | 503 => status,
            422 => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let p = Json(Problem::new(status, detail));
        match status.as_u16() {
            400 | 422 => ApiError::BadRequest(p),
            401 => ApiError::Unauthorized(p),
            403 => ApiError::Forbidden(p),
            404 => ApiError::NotFound(p),
            409 => ApiError::Conflict(p),
            411 => ApiError::LengthRequired(p),
            413 => ApiError::TooLarge(p),
            415 => ApiError::UnsupportedMediaType(p),
            429 => ApiError::TooMany(p, 60),
            503 => ApiError::Unavailable(p),
            _ => ApiError::Internal(p),
        }
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    /// 429 with `Retry-After: seconds`.
    pub fn too_many(detail: impl Into<String>, seconds: u64) -> Self {
        ApiError::TooMany(Json(Problem::new(StatusCode::TOO_MANY_REQUESTS, detail)), seconds)
    }
}

impl From<pv_security::Error> for ApiError {
    fn from(e: pv_security::Error) -> Self {
        let p = Problem::from_kind(e.kind(), &e);
        Self::new(status_for(e.kind()), p.detail)
    }
}

impl From<poem::Error> for ApiError {
    fn from(e: poem::Error) -> Self {
        Self::new(e.status(), e.to_string())
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        tracing::error!(error = %e, "database error");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "a database is unavailable; try again")
    }
}

/// The result of an operation.
pub type ApiResult<T> = Result<T, ApiError>;
