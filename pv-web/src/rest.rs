//! The REST API under `/api/v1`, described by poem-openapi; the OpenAPI 3 document is generated
//! from these signatures and served at `/api/v1/openapi.json`, Swagger UI at `/api/docs`.
//!
//! The document says exactly what the server sends (`bins/api-fuzz.sh` checks it with
//! schemathesis): every object carries `#[oai(skip_serializing_if_is_none)]`, so an absent
//! optional field is left out rather than sent as `null` (its schema is "not required", not
//! "nullable"); every operation's error type is [`error::ApiError`], which declares every status
//! the handlers and the middleware in front of them can answer.

use poem_openapi::{OpenApiService, Tags};

pub mod admin;
pub mod auth;
pub mod cameras;
pub mod error;
pub mod faces;
pub mod live;
pub mod pin;
pub mod recordings;
pub mod services;
pub mod storage;
pub mod system;

/// Tags that group operations in the OpenAPI document.
#[derive(Tags)]
pub enum ApiTags {
    /// The server itself: version, databases, uptime.
    System,
    /// Signing in and out, passkeys, TOTP, sessions, API and CSRF tokens, the disarm PIN.
    Auth,
    /// Users and roles, IP rules, the country policy and the audit log.
    Admin,
    /// Cameras, their live status, snapshots, exports, RTMP outputs and events.
    Cameras,
    /// Recorded segments: listing and playback.
    Recordings,
    /// Storage modules: where copies of footage go, their health, logs and the upload queue.
    Storage,
    /// Face recognition: enrolled people and their face images, recognising uploaded
    /// pictures, face events seen on cameras.
    Faces,
}

/// The OpenAPI service with every operation of `/api/v1`.
pub type ApiService = OpenApiService<
    (
        system::SystemApi,
        auth::AuthApi,
        pin::PinApi,
        admin::AdminApi,
        cameras::CamerasApi,
        live::LiveApi,
        recordings::RecordingsApi,
        services::ServicesApi,
        storage::StorageApi,
        faces::FacesApi,
    ),
    (),
>;

/// Build the `/api/v1` service.
pub fn service() -> ApiService {
    OpenApiService::new(
        (
            system::SystemApi,
            auth::AuthApi,
            pin::PinApi,
            admin::AdminApi,
            cameras::CamerasApi,
            live::LiveApi,
            recordings::RecordingsApi,
            services::ServicesApi,
            storage::StorageApi,
            faces::FacesApi,
        ),
        "PentaVision API",
        pv_core::VERSION,
    )
    .description(
        "REST API of PentaVision, the self-hosted security-camera platform. Errors are \
             `application/problem+json` documents with a human `detail`.",
    )
    .server("/api/v1")
}

/// The OpenAPI document as pretty JSON (what `/api/v1/openapi.json` serves).
pub fn openapi_json() -> String {
    service().spec()
}
