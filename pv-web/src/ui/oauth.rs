//! `GET /storage/oauth/callback`: where an OAuth vendor sends the browser back after the user
//! allowed PentaVision. The code is exchanged for a refresh token
//! ([`crate::nvr::StorageService::oauth_finish`]) and the page hands it to the Storage page
//! that opened this window (same origin only, by `postMessage` from `oauth-callback.js`), so
//! it lands in the form's refresh-token field and goes through Test → Save like a pasted one.

use poem::http::StatusCode;
use poem::web::{Data, Html, Query};
use poem::{IntoResponse, Request, Response, handler};
use pv_security::rbac::Permission;
use serde::Deserialize;

use crate::state::AppState;

/// The vendor's redirect.
#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, message: &str, data: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · PentaVision</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
         <body class=\"oauth-callback\"><main class=\"card\" id=\"oauth-result\" {data}>\
         <h1>{title}</h1><p>{message}</p><p class=\"muted\">You can close this window.</p></main>\
         <script src=\"/static/oauth-callback.js\"></script></body></html>",
        title = escape(title),
        message = escape(message),
    );
    (status, Html(body)).into_response()
}

/// See the module documentation.
#[handler]
pub async fn callback(
    state: Data<&AppState>,
    req: &Request,
    Query(q): Query<Callback>,
) -> Response {
    let principal = match super::global_page_guard(&state, req, Permission::StorageManage) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let st = q.state.unwrap_or_default();
    if let Some(err) = q.error {
        let why = q.error_description.unwrap_or(err);
        let why: String = why.chars().take(200).collect();
        return page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            &format!("The provider did not allow access: {why}"),
            &format!("data-state=\"{}\" data-error=\"{}\"", escape(&st), escape(&why)),
        );
    }
    let Some(code) = q.code.filter(|c| !c.is_empty() && c.len() <= 4096) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            "The provider sent no authorisation code back.",
            &format!("data-state=\"{}\" data-error=\"no code\"", escape(&st)),
        );
    };
    match state.nvr().storage().oauth_finish(&st, &code, principal.user.id).await {
        Ok(grant) => {
            principal
                .audit(
                    &state,
                    "storage.oauth.connect",
                    "storage_provider",
                    &grant.provider,
                    serde_json::json!({}),
                )
                .await;
            page(
                StatusCode::OK,
                &format!("Connected to {}", grant.provider_name),
                "PentaVision received a refresh token; it is now in the form. Test the connection, then save.",
                &format!(
                    "data-state=\"{}\" data-refresh-token=\"{}\"",
                    escape(&st),
                    escape(&grant.refresh_token)
                ),
            )
        }
        Err(e) => page(
            e.status(),
            "Not connected",
            &e.to_string(),
            &format!("data-state=\"{}\" data-error=\"{}\"", escape(&st), escape(&e.to_string())),
        ),
    }
}
