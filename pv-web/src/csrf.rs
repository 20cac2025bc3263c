//! Per-page CSRF tokens for the sensitive REST operations (on top of the same-origin check in
//! [`crate::app`]).
//!
//! A state-changing request (anything but GET/HEAD/OPTIONS) to a sensitive route made with the
//! browser session cookie must carry a token in the [`HEADER`] (`X-CSRF-Token`) issued for the
//! signed-in user and that route ([`pv_security::csrf`]: HMAC under the server key, valid for
//! 30 minutes). Callers with an API token (`Authorization: Bearer`) are exempt: a browser never
//! sends a bearer token on its own, so there is no ambient credential to abuse. Anonymous
//! requests pass through to the operation's own guard (401).
//!
//! A route is the REST path under `/api/v1` with numeric segments written `{id}` (see
//! [`route_of`]): `/users/{id}/status`. Sensitive routes ([`needs_token`]): everything under
//! `/users` (users, status, roles), `/roles`, `/security/ip-rules`,
//! `/security/country-policy`, `/services` (service restarts), `/cameras` (camera management
//! and RTMP outputs), `/storage` (storage modules, their tests and OAuth sign-ins), and
//! `PUT /auth/pin`.
//!
//! Pages get their tokens in a JSON data block ([`page_tokens`], read by `static/admin.js`),
//! and any client can ask `GET /api/v1/auth/csrf?route=…` for a fresh one.

use poem::http::{Method, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::auth::Principal;
use crate::problem::Problem;
use crate::state::AppState;

/// The request header that carries the token.
pub const HEADER: &str = "x-csrf-token";

/// Route prefixes whose writes need a token (the route itself and everything below it).
const PROTECTED_PREFIXES: &[&str] = &[
    "/users",
    "/roles",
    "/security/ip-rules",
    "/security/country-policy",
    "/services",
    "/cameras",
    "/storage",
    "/faces",
];

/// Routes that need a token for exactly these methods.
const PROTECTED_EXACT: &[(&str, Method)] = &[("/auth/pin", Method::PUT)];

/// The route of a request path: the part under `/api/v1` (the whole path otherwise), empty
/// segments dropped, percent-escapes left as they are, and every all-digit segment written
/// `{id}` and live-session ids (32 hex digits) `{session}`. `/api/v1/users/42/status` →
/// `/users/{id}/status`.
pub fn route_of(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let path = match path.strip_prefix("/api/v1") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    };
    let segments: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                "{session}"
            } else {
                s
            }
        })
        .collect();
    format!("/{}", segments.join("/"))
}

/// Whether `method` on `route` (see [`route_of`]) needs a CSRF token from a browser session.
pub fn needs_token(method: &Method, route: &str) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    PROTECTED_EXACT.iter().any(|(r, m)| *r == route && m == method)
        || PROTECTED_PREFIXES
            .iter()
            .any(|p| route == *p || route.strip_prefix(p).is_some_and(|rest| rest.starts_with('/')))
}

/// Whether `route` is one whose writes need a token (for any write method).
pub fn is_protected(route: &str) -> bool {
    [Method::POST, Method::PUT, Method::PATCH, Method::DELETE].iter().any(|m| needs_token(m, route))
}

/// A token for `user_id` and `route` (any path form; it is passed through [`route_of`]).
pub fn token_for(state: &AppState, user_id: i64, route: &str) -> String {
    pv_security::csrf::issue(state.key(), user_id, &route_of(route), state.clock().now())
}

/// Tokens for a page's JSON data block: `{"<route>": "<token>", …}` for `routes` (serialise
/// it with `<` escaped, as every data block is).
pub fn page_tokens(state: &AppState, principal: &Principal, routes: &[&str]) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = routes
        .iter()
        .map(|r| {
            let route = route_of(r);
            let token = token_for(state, principal.user.id, &route);
            (route, serde_json::Value::String(token))
        })
        .collect();
    serde_json::Value::Object(map)
}

/// Middleware (inside [`crate::auth::identify`]): refuse a session-cookie write to a sensitive
/// route without a valid token for its user and route, with a 403 problem.
pub async fn require_token<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let path = req.uri().path();
    if !path.starts_with("/api/v1/") {
        return Ok(next.get_response(req).await);
    }
    let route = route_of(path);
    if !needs_token(req.method(), &route) {
        return Ok(next.get_response(req).await);
    }
    let refused = match (req.data::<AppState>(), req.extensions().get::<Principal>()) {
        (Some(state), Some(p)) if p.session_id.is_some() => {
            let sent = req.header(HEADER);
            pv_security::csrf::verify(state.key(), sent, p.user.id, &route, state.clock().now())
                .err()
                .map(|rejected| (rejected, p.user.username.clone()))
        }
        _ => None,
    };
    if let Some((rejected, user)) = refused {
        tracing::warn!(user, method = %req.method(), route, reason = rejected.as_str(),
            "write without a valid CSRF token refused");
        return Ok(Problem::new(StatusCode::FORBIDDEN, rejected.message()).into_response());
    }
    Ok(next.get_response(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_normalised() {
        assert_eq!(route_of("/api/v1/users/42/status"), "/users/{id}/status");
        assert_eq!(route_of("/api/v1/users/42/status?x=1"), "/users/{id}/status");
        assert_eq!(route_of("/api/v1//security/ip-rules/"), "/security/ip-rules");
        assert_eq!(route_of("/users/{id}/roles"), "/users/{id}/roles");
        assert_eq!(route_of("/users/7/roles"), "/users/{id}/roles");
        assert_eq!(route_of("/api/v1"), "/");
    }

    #[test]
    fn sensitive_writes_need_tokens() {
        let yes = |m: Method, r: &str| assert!(needs_token(&m, &route_of(r)), "{m} {r}");
        let no = |m: Method, r: &str| assert!(!needs_token(&m, &route_of(r)), "{m} {r}");
        yes(Method::POST, "/api/v1/users");
        yes(Method::PUT, "/api/v1/users/3/status");
        yes(Method::DELETE, "/api/v1/users/3/roles");
        yes(Method::POST, "/api/v1/security/ip-rules");
        yes(Method::POST, "/api/v1/security/ip-rules/exempt-me");
        yes(Method::DELETE, "/api/v1/security/ip-rules?network=1.2.3.4");
        yes(Method::PUT, "/api/v1/security/country-policy");
        yes(Method::POST, "/api/v1/services/recorder/restart");
        yes(Method::PUT, "/api/v1/auth/pin");
        yes(Method::POST, "/api/v1/faces/identities");
        yes(Method::POST, "/api/v1/faces/identities/3/images");
        yes(Method::DELETE, "/api/v1/faces/embeddings/3");
        yes(Method::POST, "/api/v1/faces/events/3/label");
        no(Method::GET, "/api/v1/faces/events");
        no(Method::GET, "/api/v1/users");
        no(Method::POST, "/api/v1/auth/pin/verify");
        no(Method::POST, "/api/v1/auth/login");
        no(Method::POST, "/api/v1/usersx");
        no(Method::POST, "/api/v1/auth/tokens");
        assert!(is_protected("/auth/pin") && is_protected("/users/{id}/status"));
        assert!(!is_protected("/auth/me"));
    }
}
