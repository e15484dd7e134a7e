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

use super::problem::Problem;
use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
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
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !origin.to_str().is_ok_and(loopback_origin) {
            return Problem::new(StatusCode::FORBIDDEN, "security.foreign_origin", "Запрос со стороннего сайта (Origin) отклонён", "Foreign Origin rejected")
                .into_response();
        }
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
    next.run(req).await
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
