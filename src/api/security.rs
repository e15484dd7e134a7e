//! Who may talk to the agent.
//!
//! The API listens on loopback, but a web page in the cashier's browser can still reach
//! 127.0.0.1. Three checks stop it:
//!
//! * **Host** must be a loopback name (`localhost`, `127.0.0.1`, `[::1]`, any port):
//!   a DNS-rebinding page arrives with its own host name.
//! * **Origin**, when present, must be a loopback origin: a cross-site `fetch` carries
//!   the attacking site's origin.
//! * **Authorization: Bearer <token>** on `/api/v1/*` (except the OpenAPI document):
//!   the token is generated on first run into the data dir, readable only by the owner.
//!
//! Comparison of the token is constant-time.
//!
//! **Web apps.** Salon software often runs in a browser on another origin. Origins
//! listed in `allowed_origins` (exact `scheme://host[:port]`) may call the API: their
//! CORS preflight is answered (with Chrome's Private Network Access header, since a
//! public site calls a loopback address), and their answers carry
//! `Access-Control-Allow-Origin`. They still need the token. Every other origin stays
//! 403; there is no wildcard.

use super::problem::Problem;
use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::path::Path;

fn loopback_host(host: &str) -> bool {
    let h = host.trim();
    let name = if let Some(rest) = h.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inner, _)) => return inner == "::1",
            None => return false,
        }
    } else {
        h.split(':').next().unwrap_or("")
    };
    matches!(name.to_ascii_lowercase().as_str(), "localhost" | "127.0.0.1")
}

fn loopback_origin(origin: &str) -> bool {
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| !rest.contains('/') && loopback_host(rest))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if !loopback_host(host) {
        return Problem::new(StatusCode::FORBIDDEN, "security.foreign_host", "Запрос с чужим адресом (Host) отклонён", "Foreign Host header rejected")
            .into_response();
    }
    let origin = headers.get(header::ORIGIN).map(|o| o.to_str().unwrap_or("\u{0}").to_string());
    let web_app = origin.as_deref().filter(|o| state.allowed_origins.iter().any(|a| a == o)).map(str::to_string);
    if let Some(o) = &origin {
        if web_app.is_none() && !loopback_origin(o) {
            return Problem::new(StatusCode::FORBIDDEN, "security.foreign_origin", "Запрос со стороннего сайта (Origin) отклонён", "Foreign Origin rejected")
                .detail("Add the web app's origin to allowed_origins in the agent's config")
                .into_response();
        }
    }
    if req.method() == Method::OPTIONS {
        return preflight(headers, web_app.as_deref());
    }
    let path = req.uri().path();
    if path.starts_with("/api/") && path != "/api/v1/openapi.json" {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(presented.trim().as_bytes(), state.token.as_bytes()) {
            return Problem::new(StatusCode::UNAUTHORIZED, "security.token_invalid", "Нет или неверный токен доступа", "Missing or wrong bearer token")
                .detail("kkm-agent token prints the token")
                .into_response();
        }
    }
    let mut resp = next.run(req).await;
    if let Some(o) = web_app {
        allow_origin(resp.headers_mut(), &o);
    }
    resp
}

fn allow_origin(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// A CORS preflight from an allowed web app (or the page itself): no token needed to
/// ask, the token is needed for the request that follows.
fn preflight(headers: &HeaderMap, web_app: Option<&str>) -> Response {
    let Some(origin) = web_app else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    allow_origin(h, origin);
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, DELETE"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization, content-type, idempotency-key"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    // Chrome's Private Network Access: a public site asks before calling 127.0.0.1.
    if headers.get("access-control-request-private-network").is_some_and(|v| v == "true") {
        h.insert("access-control-allow-private-network", HeaderValue::from_static("true"));
    }
    resp
}

/// Reads the daemon's token; never creates one (`kkm-agent token`).
pub fn read_token(data_dir: &Path) -> std::io::Result<String> {
    let t = std::fs::read_to_string(data_dir.join("token"))?.trim().to_string();
    if t.len() < 32 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the token file is damaged"));
    }
    Ok(t)
}

/// Reads the API token from `data_dir/token`, creating it on first run.
pub fn load_or_create_token(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join("token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if t.len() >= 32 {
            return Ok(t);
        }
    }
    std::fs::create_dir_all(data_dir)?;
    let bytes: [u8; 32] = rand::random();
    let token = hex::encode(bytes);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts.open(&path)?;
    f.write_all(token.as_bytes())?;
    f.sync_all()?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_origins() {
        assert!(loopback_host("127.0.0.1:8765"));
        assert!(loopback_host("localhost"));
        assert!(loopback_host("[::1]:80"));
        assert!(!loopback_host("evil.example:8765"));
        assert!(!loopback_host("127.0.0.1.evil.example"));
        assert!(!loopback_host(""));
        assert!(loopback_origin("http://localhost:3000"));
        assert!(!loopback_origin("http://evil.example"));
        assert!(!loopback_origin("null"));
    }
}
