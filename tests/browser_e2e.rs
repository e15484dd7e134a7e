//! The cashier page in a real browser (headless Chromium): the cashier types the
//! program's cash, presses «Сверить» and reads the explanation.
//!
//! Chromium is driven over the DevTools protocol on `--remote-debugging-pipe` (JSON
//! messages ended by NUL on fds 3 and 4), so no WebSocket client is needed. Typing is
//! `Input.insertText` into the focused field and the click is a real mouse event at the
//! button's position. Without Chromium the test says so and passes, unless
//! `KKM_REQUIRE_BROWSER=1` (CI sets it and installs Chromium).

mod common;

use common::Rig;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn chromium() -> Option<String> {
    if let Ok(p) = std::env::var("KKM_CHROMIUM") {
        return Some(p);
    }
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"].into_iter().map(str::to_string).find(|name| {
        Command::new("sh").arg("-c").arg(format!("command -v {name}")).stdout(Stdio::null()).status().is_ok_and(|s| s.success())
    })
}

struct Browser {
    child: Child,
    to: ChildStdin,
    from: mpsc::Receiver<Value>,
    next_id: u64,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn launch(bin: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        // fd 3: commands to the browser; fd 4: its answers.
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg(bin)
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
            .args(["--no-default-browser-check", "--remote-debugging-pipe", "--window-size=1200,900"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let to = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (tx, from) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            while out.read_until(0, &mut buf).map(|n| n > 0).unwrap_or(false) {
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
                buf.clear();
            }
        });
        Browser { child, to, from, next_id: 0, session: None, _profile: profile }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        self.to.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.from.recv_timeout(left).unwrap_or_else(|_| panic!("no answer to {method}"));
            if v["id"].as_u64() == Some(id) {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true, "awaitPromise": true}));
        r["result"]["value"].clone()
    }

    fn wait_for(&mut self, expr: &str, what: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self.eval(expr);
            if !v.is_null() && v != json!(false) && v != json!("") {
                return v;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the page never showed {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_into(&mut self, id: &str, text: &str) {
        self.eval(&format!("(e => {{ e.value = ''; e.focus(); }})(document.getElementById('{id}'))"));
        self.call("Input.insertText", json!({"text": text}));
    }

    fn click(&mut self, id: &str) {
        let at = self.eval(&format!(
            "(r => [r.x + r.width / 2, r.y + r.height / 2])(document.getElementById('{id}').getBoundingClientRect())"
        ));
        let (x, y) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
        for kind in ["mousePressed", "mouseReleased"] {
            self.call("Input.dispatchMouseEvent", json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}));
        }
    }
}

#[tokio::test]
async fn cashier_reconciles_on_the_page() {
    let Some(bin) = chromium() else {
        assert!(std::env::var("KKM_REQUIRE_BROWSER").is_err(), "KKM_REQUIRE_BROWSER is set but Chromium is not installed");
        eprintln!("SKIPPED: no Chromium (apt-get install -y chromium)");
        return;
    };
    let rig = Rig::start(true).await;
    for (key, sum) in [("visit-1", 2_000_000), ("visit-2", 221_250)] {
        let body = json!({"operation": "sale", "items": [{"name": "Стрижка", "price": sum, "vat": "none"}], "payments": [{"type": "cash", "sum": sum}]});
        let (_, job) = rig.post("/api/v1/receipts", Some(key), Some(&body)).await;
        assert_eq!(rig.wait_job(job["id"].as_i64().unwrap()).await["status"], "done");
    }
    rig.ctl("keypad cash-in 200,00");

    let base = rig.base.clone();
    let token = rig.token.trim().to_string();
    tokio::task::spawn_blocking(move || {
        let mut b = Browser::launch(&bin);
        let targets = b.call("Target.getTargets", json!({}));
        let page = targets["targetInfos"].as_array().unwrap().iter().find(|t| t["type"] == "page").expect("a page target").clone();
        let attached = b.call("Target.attachToTarget", json!({"targetId": page["targetId"], "flatten": true}));
        b.session = Some(attached["sessionId"].as_str().unwrap().to_string());
        // The link `kkm-agent demo` prints: the token in the fragment, stored by the page.
        b.call("Page.navigate", json!({"url": format!("{base}/#token={token}")}));
        b.wait_for("document.readyState === 'complete' && document.getElementById('rc-device').options.length > 0", "the device list");

        // A typo first: the page asks for roubles, nothing is sent.
        b.type_into("rc-cash", "двадцать");
        b.click("rc-go");
        let msg = b.wait_for("document.getElementById('rc-result').innerText", "the input error");
        assert!(msg.as_str().unwrap().contains("Введите сумму в рублях"), "{msg}");

        b.type_into("rc-cash", "22 212,50");
        b.click("rc-go");
        let text = b.wait_for(
            "(t => t.includes('разница') ? t : '')(document.getElementById('rc-result').innerText)",
            "the explanation",
        );
        let text = text.as_str().unwrap();
        assert!(text.contains("По кассе 22 412,50 ₽ наличными, по программе 22 212,50 ₽: разница +200,00 ₽"), "{text}");
        assert!(text.contains("Вся разница объяснена"), "{text}");
        assert!(text.contains("+200,00 ₽ — Внесение на 200,00 ₽ есть на кассе"), "{text}");
        assert!(text.contains("Что делать:"), "{text}");
    })
    .await
    .unwrap();
}
