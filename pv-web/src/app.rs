//! [`build`]: every route and middleware of the server in one endpoint.
//!
//! | path | what |
//! |---|---|
//! | `/` | admin UI overview |
//! | `/audit`, `/ip-rules` | audit log; Block / Allow (IP rules) |
//! | `/services` | the allow-listed system services; restart |
//! | `/users` | users: add, suspend, make or remove administrators |
//! | `/faces` | face recognition: enrolled people, unknown faces, try a photo |
//! | `/login`, `/enrol`, `/account/security` | sign-in; the enrolment wizard; the caller's passkeys, sessions, authenticator app and API tokens |
//! | `/static/:file` | embedded assets |
//! | `/api/v1/…` | REST (poem-openapi) |
//! | `/api/v1/openapi.json` | the OpenAPI 3 document |
//! | `/api/docs` | Swagger UI (vendored assets, no internet needed) |
//! | `/graphql` | GraphQL (POST), GraphiQL (GET) |
//! | `/healthz`, `/readyz`, `/metrics` | operations |
//! | anything else | 404: an HTML page with the navigation for browsers, problem JSON otherwise |
//!
//! Layers, outermost first: request tracing, IP rules and country policy ([`crate::access`]),
//! compression, metrics, security headers, the body limit, browsers on a loopback IP address
//! sent to `localhost` ([`crate::ui::loopback_to_localhost`]), same-origin writes (CSRF), then
//! [`crate::auth::identify`] resolves the signed-in user, then [`crate::csrf::require_token`]
//! checks the per-page CSRF token of sensitive writes from browser sessions, and
//! [`crate::ui::html_errors`] answers a browser's 404 or 403 for a page with an HTML page.
//! Every API operation and UI page checks permissions itself through [`crate::auth`];
//! `/healthz`, `/readyz`, `/metrics`, the sign-in endpoints and static assets are public.

use poem::http::{HeaderValue, StatusCode, header};
use poem::middleware::{Compression, Tracing};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get};

use crate::problem::Problem;
use crate::state::AppState;
use crate::{graphql, ops, problem, rest, ui};

/// Compose the whole application for `state`.
pub fn build(state: AppState) -> poem::endpoint::BoxEndpoint<'static> {
    let api = rest::service();
    let spec = api.spec_endpoint();
    let body_limit = usize::try_from(state.config().server.body_limit_bytes).unwrap_or(usize::MAX);

    Route::new()
        .at("/", get(ui::overview))
        .at("/live", get(ui::live))
        .at("/cameras", get(ui::cameras))
        .at("/cameras/:id/live", get(ui::camera_live))
        .at("/recordings", get(ui::recordings))
        .at("/storage", get(ui::storage))
        .at("/storage/oauth/callback", get(ui::oauth::callback))
        .at("/faces", get(ui::faces))
        .at("/audit", get(ui::audit))
        .at("/ip-rules", get(ui::ip_rules))
        .at("/services", get(ui::services))
        .at("/users", get(ui::users))
        .at("/login", get(ui::login))
        .at("/enrol", get(ui::enrol))
        .at("/account/security", get(ui::security))
        .at("/static/:file", get(ui::static_file))
        .at("/healthz", get(ops::healthz))
        .at("/readyz", get(ops::readyz))
        .at("/metrics", get(ops::metrics_endpoint))
        .at("/graphql", get(graphql::graphiql).post(graphql::graphql_post))
        .at("/api/v1/openapi.json", spec)
        .at("/api/v1/cameras/:id/live.mp4", get(crate::live_mse::live_mp4))
        .nest("/api/v1", api)
        .at("/api/docs", get(ui::api_docs))
        .at("/api/docs/", get(ui::api_docs))
        .catch_all_error(problem::from_poem_error)
        .around(ui::html_errors)
        .around(crate::csrf::require_token)
        .around(crate::auth::identify)
        .around(same_origin_writes)
        .around(ui::loopback_to_localhost)
        // Erase the middleware types here and below: deeply nested endpoint types overflow the
        // compiler's query depth in crates that embed the app.
        .boxed()
        .around(move |next, req| body_limit_check(next, req, body_limit))
        .around(security_headers)
        .around(ops::record_request)
        .with(Compression::new())
        .around(crate::access::enforce)
        .with(Tracing)
        .data(state)
        .map_to_response()
        .boxed()
}

/// CSRF defence for every state-changing request (anything but GET/HEAD/OPTIONS): a request a
/// browser sends from another site carries an `Origin` that differs from our `Host`, and is
/// refused; bodies must be JSON (a cross-site form or `text/plain` post cannot be), or a
/// JPEG/PNG picture sent to `/api/v1/faces/…`, which forces browsers into a CORS preflight we
/// never grant.
async fn same_origin_writes<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    use poem::http::Method;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(next.get_response(req).await);
    }
    if let Some(origin) = req.header(header::ORIGIN) {
        let origin_host = origin.split("://").nth(1).unwrap_or(origin);
        let host = req.header(header::HOST).unwrap_or_default();
        if origin == "null" || !origin_host.eq_ignore_ascii_case(host) {
            tracing::warn!(origin, host, path = req.uri().path(), "cross-origin write refused");
            return Ok(Problem::new(
                StatusCode::FORBIDDEN,
                "cross-origin requests may not change anything on this server",
            )
            .into_response());
        }
    }
    let json = req
        .content_type()
        .map(|ct| ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .is_some_and(|ct| ct == "application/json" || ct.ends_with("+json"));
    let has_body = req.header(header::CONTENT_LENGTH).is_some_and(|l| l.trim() != "0")
        || req.header(header::TRANSFER_ENCODING).is_some();
    let whep = req.uri().path().contains("/whep")
        && req.content_type().is_some_and(|ct| {
            let ct = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            ct == "application/sdp" || ct == "application/trickle-ice-sdpfrag"
        });
    // Face pictures are sent as they are; like JSON, `image/*` is no type a cross-site form can
    // send, so browsers still need the preflight we never grant.
    let face_image = req.uri().path().starts_with("/api/v1/faces/")
        && req.content_type().is_some_and(|ct| {
            let ct = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            ct == "image/jpeg" || ct == "image/png"
        });
    if has_body && !json && !whep && !face_image {
        return Ok(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request bodies must be JSON (Content-Type: application/json)",
        )
        .into_response());
    }
    Ok(next.get_response(req).await)
}

/// Refuse bodies larger than `server.body_limit_bytes` (413), and bodies of unknown length
/// (411), before a handler reads them.
async fn body_limit_check<E: Endpoint>(
    next: E,
    req: Request,
    limit: usize,
) -> poem::Result<Response> {
    let length = req.header(header::CONTENT_LENGTH).map(|v| v.trim().parse::<usize>());
    match length {
        Some(Ok(n)) if n > limit => {
            return Ok(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body of {n} bytes is larger than the limit of {limit} bytes"),
            )
            .into_response());
        }
        Some(Err(_)) => {
            return Ok(Problem::new(StatusCode::BAD_REQUEST, "malformed Content-Length header")
                .into_response());
        }
        None if req.header(header::TRANSFER_ENCODING).is_some() => {
            return Ok(Problem::new(
                StatusCode::LENGTH_REQUIRED,
                "send request bodies with a Content-Length header",
            )
            .into_response());
        }
        _ => {}
    }
    Ok(next.get_response(req).await)
}

/// Add the security headers every response carries; a strict CSP on UI pages.
async fn security_headers<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let path = req.uri().path().to_string();
    let mut resp = next.get_response(req).await;
    let headers = resp.headers_mut();
    let set = |h: &mut poem::http::HeaderMap, name, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
    set(
        headers,
        header::HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    // Swagger UI and GraphiQL are third-party apps served from our own paths: scripts and styles
    // only from here (no inline ones), fonts and images also as data: URIs.
    // `media-src blob:`: the live player's MSE fallback plays a MediaSource object URL.
    if path.starts_with("/api/docs") || path == "/graphql" {
        set(
            headers,
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; font-src 'self' data:; \
             style-src 'self'; script-src 'self'; connect-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        );
    } else {
        set(
            headers,
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'self'",
        );
    }
    Ok(resp)
}
