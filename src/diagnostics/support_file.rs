//! The file an engineer sends to support: `kkm-agent diag --report FILE`.
//!
//! It holds the diagnosis and the last hour of the agent's log (daily files in
//! `DATA_DIR/logs`, see `cli::init_logging`), so support sees what the agent saw without
//! remote access. It must never carry the API token or a customer's data: every line
//! goes through [`redact`], which hides `token=…`/`#token=…`/bearer values, the token
//! itself, e-mail addresses and phone numbers. Register identifiers (ЗН, ИНН of the
//! shop, РНМ, ФН) stay: support needs them and they are printed on every receipt.

use regex::Regex;
use std::path::Path;
use std::sync::OnceLock;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The log window support gets.
pub const LOG_WINDOW: time::Duration = time::Duration::hours(1);

/// At most this much log text goes into the file (the newest part is kept).
const MAX_LOG_BYTES: usize = 2 << 20;

struct Patterns {
    token_param: Regex,
    bearer: Regex,
    token_json: Regex,
    email: Regex,
    phone_intl: Regex,
    phone_local: Regex,
    phone_json: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        // The patterns are constants; a failure here is a bug caught by the tests.
        let re = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("redaction pattern {p}: {e}"));
        Patterns {
            token_param: re(r"(?i)(#?\btoken=)[^\s&#'\x22]+"),
            bearer: re(r"(?i)(\bbearer\s+)[^\s'\x22,;]+"),
            token_json: re(r#"(?i)("token"\s*:\s*")[^"]*""#),
            email: re(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z\p{Cyrillic}]{2,}"),
            // `+` and 11 to 15 digits, as receipts carry them (tag 1008), with separators.
            phone_intl: re(r"\+\d[\d\s()\-]{9,20}\d"),
            // 8 (916) 123-45-67: only with separators, so bare long numbers (ЗН, ФН) stay.
            phone_local: re(r"\b8[\s(\-]+\d{3}[\s)\-]+\d{3}[\s\-]+\d{2}[\s\-]+\d{2}\b"),
            phone_json: re(r#"(?i)("phone"\s*:\s*")[^"]*""#),
        }
    })
}

/// Hides tokens, e-mail addresses and phone numbers in `text`. `secrets` are literal
/// values to hide wherever they appear (the API token).
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let p = patterns();
    let mut s = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        s = s.replace(secret, "[скрыто]");
    }
    let s = p.token_param.replace_all(&s, "${1}[скрыто]");
    let s = p.bearer.replace_all(&s, "${1}[скрыто]");
    let s = p.token_json.replace_all(&s, "${1}[скрыто]\"");
    let s = p.phone_json.replace_all(&s, "${1}[телефон скрыт]\"");
    let s = p.email.replace_all(&s, "[e-mail скрыт]");
    let s = p.phone_intl.replace_all(&s, "[телефон скрыт]");
    p.phone_local.replace_all(&s, "[телефон скрыт]").into_owned()
}

/// The log lines of the last [`LOG_WINDOW`] before `now`, oldest first. A line without
/// a time stamp (a continuation) goes with the line before it.
pub fn recent_log(logs_dir: &Path, now: OffsetDateTime) -> std::io::Result<String> {
    let mut files: Vec<_> = std::fs::read_dir(logs_dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("kkm-agent") && n.ends_with(".log")))
        .collect();
    // Daily names sort by date; the window spans today's file and, after midnight, yesterday's.
    files.sort();
    let since = now - LOG_WINDOW;
    let mut out = String::new();
    for path in files.iter().rev().take(2).rev() {
        let text = String::from_utf8_lossy(&std::fs::read(path)?).into_owned();
        let mut keep = false;
        for l in text.lines() {
            if let Some(t) = l.split_whitespace().next().and_then(|w| OffsetDateTime::parse(w, &Rfc3339).ok()) {
                keep = t >= since && t <= now + time::Duration::minutes(5);
            }
            if keep {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    if out.len() > MAX_LOG_BYTES {
        let mut cut = out.len() - MAX_LOG_BYTES;
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        out = format!("… (начало обрезано)\n{}", &out[cut..]);
    }
    Ok(out)
}

/// The whole support file: the diagnosis, its JSON, and the recent log, redacted.
pub fn compose(diagnosis: &str, json: &str, logs_dir: &Path, secrets: &[&str]) -> String {
    let log = match recent_log(logs_dir, OffsetDateTime::now_utc()) {
        Ok(l) if l.is_empty() => "(за последний час записей нет)\n".to_string(),
        Ok(l) => l,
        Err(e) => format!("(журнал не прочитан: {}: {e})\n", logs_dir.display()),
    };
    let text = format!(
        "{diagnosis}\n==== Журнал агента за последний час ({}) ====\n{log}\n==== Данные для поддержки (JSON) ====\n{json}\n",
        logs_dir.display()
    );
    redact(&text, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_tokens_contacts_but_keeps_register_numbers() {
        let token = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdo";
        let text = format!(
            "page http://127.0.0.1:8765/#token={token} and ?token=abc123def456&x=1\n\
             Authorization: Bearer {token}\n{{\"token\": \"secretsecret\"}}\n\
             customer ivan.petrov@example.ru, phone +7 (916) 123-45-67, +79161234567, 8 916 123-45-67\n\
             {{\"phone\": \"79161234567\"}}\n\
             ЗН 0012345678901, РНМ 0000000001012345, ФН 9960440300012345, ИНН 7707083893, сумма 1500,00\n"
        );
        let r = redact(&text, &[token]);
        for gone in [token, "abc123def456", "secretsecret", "ivan.petrov", "916", "79161234567"] {
            assert!(!r.contains(gone), "{gone} left in:\n{r}");
        }
        for kept in ["0012345678901", "0000000001012345", "9960440300012345", "7707083893", "1500,00", "#token=[скрыто]"] {
            assert!(r.contains(kept), "{kept} lost in:\n{r}");
        }
    }

    #[test]
    fn keeps_the_last_hour_of_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::parse("2026-11-26T10:00:00Z", &Rfc3339).unwrap();
        std::fs::write(dir.path().join("kkm-agent.2026-11-25.log"), "2026-11-25T23:59:00.1Z  INFO old\n").unwrap();
        std::fs::write(
            dir.path().join("kkm-agent.2026-11-26.log"),
            "2026-11-26T08:30:00.000001Z  INFO too old\n  continued old\n\
             2026-11-26T09:10:00.000001Z  WARN recent\n  continued recent\n2026-11-26T09:59:59.5Z  INFO last\n",
        )
        .unwrap();
        let log = recent_log(dir.path(), now).unwrap();
        assert_eq!(log, "2026-11-26T09:10:00.000001Z  WARN recent\n  continued recent\n2026-11-26T09:59:59.5Z  INFO last\n");
    }
}
