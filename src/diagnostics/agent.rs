//! The running agent's own state, as `kkm-agent diag` sees it through the HTTP API.
//!
//! When receipts do not print, the register is only half the story: the agent may have
//! parked a queue (no paper, shift over 24 h) or set jobs aside for a person to check
//! (`needs_attention`). This asks the daemon the way `kkm-agent token` finds it (the
//! config's listen address, the token in the data dir) and turns what it says into
//! findings. It also tells the scan which ports the agent holds, so they are not probed.

use super::health::{Finding, Severity};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// How long one request to the local agent may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Serialize)]
pub struct AgentDevice {
    pub id: String,
    pub model: String,
    pub port: String,
    pub online: bool,
    /// Why the queue waits for a person.
    pub parked: Option<Value>,
    pub last_error: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttentionJob {
    pub id: i64,
    pub device: String,
    pub kind: String,
    pub created_at: String,
    pub error: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentState {
    pub url: String,
    pub running: bool,
    pub devices: Vec<AgentDevice>,
    pub needs_attention: Vec<AttentionJob>,
    /// Jobs waiting their turn, per device.
    pub queued: usize,
    /// `GET /api/v1/diagnostics` as the daemon answers it, where it has that endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Value>,
    pub findings: Vec<Finding>,
}

fn finding(code: &'static str, severity: Severity, ru: String, en: String, action: &str) -> Finding {
    Finding::new(code, severity, ru, en, action)
}

/// Asks the agent at `addr` (e.g. `127.0.0.1:8765`) with `token` (None when unreadable).
pub async fn read(addr: &str, token: Option<&str>) -> AgentState {
    let mut st = AgentState {
        url: format!("http://{addr}"),
        running: false,
        devices: Vec::new(),
        needs_attention: Vec::new(),
        queued: 0,
        diagnostics: None,
        findings: Vec::new(),
    };
    let Some(token) = token else {
        if tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await.is_ok_and(|r| r.is_ok()) {
            st.running = true;
            st.findings.push(finding("agent.token_unreadable", Severity::Warning,
                format!("Агент работает ({addr}), но его ключ доступа не прочитан: состояние очереди не проверено"),
                "The agent runs but its token could not be read".into(),
                "Запустите проверку от имени пользователя службы агента (или администратором), чтобы прочитать ключ."));
        } else {
            st.findings.push(not_running(addr));
        }
        return st;
    };
    let devices = match get(addr, "/api/v1/devices", token).await {
        Ok((200, v)) => v,
        Ok((401 | 403, _)) => {
            st.running = true;
            st.findings.push(finding("agent.token_refused", Severity::Warning,
                format!("Агент по адресу {addr} не принял ключ доступа из папки данных"),
                "The agent refused the token from the data dir".into(),
                "Укажите настройки того агента, что работает (--config), или запустите проверку от имени пользователя службы."));
            return st;
        }
        Ok((status, _)) => {
            st.running = true;
            st.findings.push(finding("agent.api_failed", Severity::Warning,
                format!("Агент по адресу {addr} ответил ошибкой на запрос списка касс"),
                format!("GET /api/v1/devices answered {status}"), "Посмотрите журнал агента (он есть в отчёте --report)."));
            return st;
        }
        Err(_) => {
            st.findings.push(not_running(addr));
            return st;
        }
    };
    st.running = true;
    st.devices = devices.as_array().into_iter().flatten().map(device).collect();
    if let Ok((200, jobs)) = get(addr, "/api/v1/jobs?status=needs_attention&limit=100", token).await {
        st.needs_attention = jobs.as_array().into_iter().flatten().map(job).collect();
    }
    if let Ok((200, jobs)) = get(addr, "/api/v1/jobs?status=queued&limit=1000", token).await {
        st.queued = jobs.as_array().map_or(0, Vec::len);
    }
    if let Ok((200, v)) = get(addr, "/api/v1/diagnostics", token).await {
        st.diagnostics = Some(v);
    }
    st.findings = findings(&st);
    st
}

fn not_running(addr: &str) -> Finding {
    finding("agent.not_running", Severity::Info, format!("Агент не запущен (никто не отвечает по адресу {addr})"),
        format!("No agent answers at {addr}"),
        "Если кассовая программа печатает через агента — запустите его службу (или kkm-agent serve).")
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn device(v: &Value) -> AgentDevice {
    let state = &v["state"];
    let some = |k: &str| state.get(k).filter(|x| !x.is_null()).cloned();
    AgentDevice {
        id: text(v, "id"),
        model: text(v, "model"),
        port: text(v, "port"),
        online: state["online"].as_bool().unwrap_or(false),
        parked: some("parked"),
        last_error: some("last_error"),
    }
}

fn job(v: &Value) -> AttentionJob {
    AttentionJob {
        id: v["id"].as_i64().unwrap_or(0),
        device: text(v, "device"),
        kind: text(v, "kind"),
        created_at: text(v, "created_at"),
        error: v.get("error").filter(|x| !x.is_null()).cloned(),
    }
}

/// What the agent's state means for the engineer.
pub fn findings(st: &AgentState) -> Vec<Finding> {
    let mut out = vec![finding("agent.running", Severity::Ok, format!("Агент работает ({}), касс в настройках: {}", st.url, st.devices.len()),
        "The agent is running".into(), "")];
    for d in &st.devices {
        if let Some(p) = &d.parked {
            out.push(Finding::new(
                "agent.queue_parked",
                Severity::Critical,
                format!("Очередь кассы «{}» остановлена: {}", d.id, text(p, "title_ru")),
                format!("Queue of {} parked: {}", d.id, text(p, "title_en")),
                format!("{} Очередь продолжится сама, когда причина устранена.", text(p, "action_ru")).trim().to_string(),
            ));
        } else if !d.online {
            let why = d.last_error.as_ref().map_or(String::new(), |e| format!(": {}", text(e, "title_ru")));
            out.push(Finding::new(
                "agent.device_offline",
                Severity::Critical,
                format!("Агент не может связаться с кассой «{}» ({}){why}", d.id, d.port),
                format!("The agent has no link to {} ({})", d.id, d.port),
                d.last_error.as_ref().map_or_else(
                    || "Проверьте питание и кабель ККТ.".to_string(),
                    |e| text(e, "action_ru")),
            ));
        } else if let Some(e) = &d.last_error {
            out.push(finding("agent.last_error", Severity::Info,
                format!("Касса «{}» на связи; последняя ошибка: {}", d.id, text(e, "title_ru")),
                format!("{}: last error {}", d.id, text(e, "code")), ""));
        } else {
            out.push(finding("agent.device_online", Severity::Ok, format!("Касса «{}» ({}) на связи", d.id, d.port),
                format!("{} is online", d.id), ""));
        }
    }
    if !st.needs_attention.is_empty() {
        let ids: Vec<String> = st.needs_attention.iter().take(10).map(|j| format!("№{} ({})", j.id, j.device)).collect();
        out.push(finding("agent.needs_attention", Severity::Critical,
            format!("{} операций ждут проверки человеком: {}", st.needs_attention.len(), ids.join(", ")),
            format!("{} jobs need attention", st.needs_attention.len()),
            "Откройте страницу кассира: по каждой операции сверьте ФН (был ли чек) и подтвердите или отмените её. \
             Агент не печатает такие чеки повторно сам."));
    }
    if let Some(diag) = &st.diagnostics {
        out.extend(daemon_health(diag));
    }
    if st.queued > 0 {
        out.push(finding("agent.queued", Severity::Info, format!("В очереди ждут печати: {}", st.queued),
            format!("{} jobs queued", st.queued), ""));
    }
    out
}

/// The health checks the daemon ran on its own devices (`GET /api/v1/diagnostics`,
/// where the daemon has it): the register's findings for a port diag must not open,
/// and the last link errors.
pub fn daemon_health(diag: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    for d in diag["devices"].as_array().into_iter().flatten() {
        let id = text(d, "id");
        let health = &d["health"];
        let when = text(health, "checked_at").replace('T', " ");
        for f in health["findings"].as_array().into_iter().flatten() {
            out.push(Finding::new(
                "agent.device_health",
                Severity::from_api(f["severity"].as_str().unwrap_or_default()),
                format!("Касса «{id}» (проверка агента {when}): {}", text(f, "title_ru")),
                format!("{id}: {}: {}", text(f, "code"), text(f, "title_en")),
                text(f, "action_ru"),
            ));
        }
        if let Some(last) = d["link_errors"].as_array().and_then(|l| l.last()) {
            out.push(finding("agent.link_errors", Severity::Info,
                format!("Касса «{id}»: последняя ошибка связи {}: {}", text(last, "at").replace('T', " "), text(&last["error"], "title_ru")),
                format!("{id}: last link error {}", text(&last["error"], "code")), ""));
        }
    }
    out
}

/// A GET to the local agent, JSON answer (`null` when it is not JSON).
async fn get(addr: &str, path: &str, token: &str) -> std::io::Result<(u16, Value)> {
    let (status, body) = crate::agent_client::exchange(addr, "GET", path, token, None, REQUEST_TIMEOUT, 16 << 20).await?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemons_own_checks_become_findings() {
        let diag = serde_json::json!({"devices": [{
            "id": "salon", "model": "azur-01f", "port": "COM3", "online": true,
            "link_errors": [{"at": "2026-11-26T09:00:00+03:00", "error": {"code": "link.no_answer", "title_ru": "ККТ не отвечает", "title_en": "", "action_ru": ""}}],
            "health": {"checked_at": "2026-11-26T11:17:39+03:00", "findings": [
                {"code": "paper.out", "severity": "error", "title_ru": "Нет бумаги", "title_en": "Out of paper", "action_ru": "Вставьте рулон."},
                {"code": "fn.valid", "severity": "ok", "title_ru": "ФН действителен", "title_en": "", "action_ru": ""}]}}]});
        let f = daemon_health(&diag);
        assert_eq!(f.len(), 3);
        assert_eq!((f[0].severity, f[0].action_ru.as_str()), (Severity::Critical, "Вставьте рулон."));
        assert!(f[0].title_ru.contains("«salon»") && f[0].title_ru.contains("Нет бумаги"), "{}", f[0].title_ru);
        assert_eq!(f[1].severity, Severity::Ok);
        assert!(f[2].title_ru.contains("ККТ не отвечает"));
    }
}
