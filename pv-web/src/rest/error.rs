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
use poem_openapi::payload::Json;

use crate::problem::{Problem, status_for};

/// Declares a problem-response enum: the statuses every operation can answer (declared once,
/// here) plus the extra ones listed, each a variant holding the problem document, with `new`
/// mapping a status to its variant (an undeclared 422 becomes 400, anything else undeclared
/// 500). `extends ApiError` also converts from [`ApiError`].
macro_rules! problem_responses {
    (@enum $(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $status:tt),* }) => {
        $(#[$m])*
        #[derive(::poem_openapi::ApiResponse, Debug)]
        pub enum $name {
            /// Malformed or invalid input.
            #[oai(status = 400, content_type = "application/problem+json")]
            BadRequest(::poem_openapi::payload::Json<$crate::problem::Problem>),
            /// Not signed in, or wrong credentials.
            #[oai(status = 401, content_type = "application/problem+json")]
            Unauthorized(::poem_openapi::payload::Json<$crate::problem::Problem>),
            /// Signed in but not allowed.
            #[oai(status = 403, content_type = "application/problem+json")]
            Forbidden(::poem_openapi::payload::Json<$crate::problem::Problem>),
            /// No such thing.
            #[oai(status = 404, content_type = "application/problem+json")]
            NotFound(::poem_openapi::payload::Json<$crate::problem::Problem>),
            /// Conflicts with the current state.
            #[oai(status = 409, content_type = "application/problem+json")]
            Conflict(::poem_openapi::payload::Json<$crate::problem::Problem>),
            /// A request body was sent without a `Content-Length` (chunked).
            #[oai(status = 411, content_type = "application/problem+json")]
            LengthRequired(::poem_openapi::payload::Json<$crate::problem::Problem>),
            /// The request body is larger than the server's limit.
            #[oai(status = 413, content_type = "application/problem+json")]
            TooLarge(::poem_openapi::payload::Json<$crate::problem::Problem>),
            /// The request body is not of a media type the operation accepts (JSON unless it says
            /// otherwise).
            #[oai(status = 415, content_type = "application/problem+json")]
            UnsupportedMediaType(::poem_openapi::payload::Json<$crate::problem::Problem>),
            $(
                $(#[$vm])*
                #[oai(status = $status, content_type = "application/problem+json")]
                $variant(::poem_openapi::payload::Json<$crate::problem::Problem>),
            )*
            /// Too many requests or attempts; retry after the given seconds.
            #[oai(status = 429, content_type = "application/problem+json")]
            TooMany(::poem_openapi::payload::Json<$crate::problem::Problem>, #[oai(header = "Retry-After")] u64),
            /// An unexpected server error.
            #[oai(status = 500, content_type = "application/problem+json")]
            Internal(::poem_openapi::payload::Json<$crate::problem::Problem>),
            /// A database or dependency is unavailable, or the feature is off (the detail says why).
            #[oai(status = 503, content_type = "application/problem+json")]
            Unavailable(::poem_openapi::payload::Json<$crate::problem::Problem>),
        }

        impl $name {
            /// A problem with `status` and `detail`. Only declared statuses go out: an
            /// undeclared 422 becomes 400, anything else undeclared 500.
            pub fn new(status: ::poem::http::StatusCode, detail: impl Into<String>) -> Self {
                $(
                    if status.as_u16() == $status {
                        return $name::$variant(::poem_openapi::payload::Json($crate::problem::Problem::new(status, detail)));
                    }
                )*
                let status = match status.as_u16() {
                    400 | 401 | 403 | 404 | 409 | 411 | 413 | 415 | 429 | 500 | 503 => status,
                    422 => ::poem::http::StatusCode::BAD_REQUEST,
                    _ => ::poem::http::StatusCode::INTERNAL_SERVER_ERROR,
                };
                let p = ::poem_openapi::payload::Json($crate::problem::Problem::new(status, detail));
                match status.as_u16() {
                    400 => $name::BadRequest(p),
                    401 => $name::Unauthorized(p),
                    403 => $name::Forbidden(p),
                    404 => $name::NotFound(p),
                    409 => $name::Conflict(p),
                    411 => $name::LengthRequired(p),
                    413 => $name::TooLarge(p),
                    415 => $name::UnsupportedMediaType(p),
                    429 => $name::TooMany(p, 60),
                    503 => $name::Unavailable(p),
                    _ => $name::Internal(p),
                }
            }
        }
    };
    ($(#[$m:meta])* pub enum $name:ident extends ApiError { $($body:tt)* }) => {
        $crate::rest::error::problem_responses!(@enum $(#[$m])* $name { $($body)* });

        impl From<$crate::rest::error::ApiError> for $name {
            fn from(e: $crate::rest::error::ApiError) -> Self {
                match e {
                    $crate::rest::error::ApiError::BadRequest(p) => $name::BadRequest(p),
                    $crate::rest::error::ApiError::Unauthorized(p) => $name::Unauthorized(p),
                    $crate::rest::error::ApiError::Forbidden(p) => $name::Forbidden(p),
                    $crate::rest::error::ApiError::NotFound(p) => $name::NotFound(p),
                    $crate::rest::error::ApiError::Conflict(p) => $name::Conflict(p),
                    $crate::rest::error::ApiError::LengthRequired(p) => $name::LengthRequired(p),
                    $crate::rest::error::ApiError::TooLarge(p) => $name::TooLarge(p),
                    $crate::rest::error::ApiError::UnsupportedMediaType(p) => $name::UnsupportedMediaType(p),
                    $crate::rest::error::ApiError::TooMany(p, s) => $name::TooMany(p, s),
                    $crate::rest::error::ApiError::Internal(p) => $name::Internal(p),
                    $crate::rest::error::ApiError::Unavailable(p) => $name::Unavailable(p),
                }
            }
        }
    };
    ($(#[$m:meta])* pub enum $name:ident { $($body:tt)* }) => {
        $crate::rest::error::problem_responses!(@enum $(#[$m])* $name { $($body)* });
    };
}
pub(crate) use problem_responses;

problem_responses! {
    /// A problem response.
    pub enum ApiError {}
}

impl ApiError {
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
