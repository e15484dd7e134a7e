//! Headless Chromium driven over the DevTools protocol, for tests of the cashier page.
//!
//! The protocol runs on `--remote-debugging-pipe` (JSON messages ended by NUL on fds 3
//! and 4), so no WebSocket client is needed. Typing is `Input.insertText` into the
//! focused field and a click is a real mouse event at the element's position.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn chromium() -> Option<String> {
    if let Ok(p) = std::env::var("KKM_CHROMIUM") {
        return Some(p);
    }
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"].into_iter().map(str::to_string).find(|name| {
        Command::new("sh").arg("-c").arg(format!("command -v {name}")).stdout(Stdio::null()).status().is_ok_and(|s| s.success())
    })
}

pub struct Browser {
    child: Child,
    to: ChildStdin,
    from: mpsc::Receiver<Value>,
    next_id: u64,
    pub session: Option<String>,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    pub fn launch(bin: &str) -> Browser {
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

    pub fn call(&mut self, method: &str, params: Value) -> Value {
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

    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true, "awaitPromise": true}));
        r["result"]["value"].clone()
    }

    pub fn wait_for(&mut self, expr: &str, what: &str) -> Value {
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

    pub fn type_into(&mut self, id: &str, text: &str) {
        self.eval(&format!("(e => {{ e.value = ''; e.focus(); }})(document.getElementById('{id}'))"));
        self.call("Input.insertText", json!({"text": text}));
    }

    pub fn click(&mut self, id: &str) {
        self.clicks(id, 1);
    }

    /// `n` clicks in a row at the element's centre, as a person's double click
    /// (`clickCount` 1, then 2): each lands on whatever is there at that moment.
    pub fn clicks(&mut self, id: &str, n: u32) {
        let at = self.eval(&format!(
            "(e => e && (e.scrollIntoView({{block: 'center'}}), (r => [r.x + r.width / 2, r.y + r.height / 2])(e.getBoundingClientRect())))(document.getElementById('{id}'))"
        ));
        assert!(at.is_array(), "no element #{id} to click");
        let (x, y) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
        for count in 1..=n {
            for kind in ["mousePressed", "mouseReleased"] {
                self.call("Input.dispatchMouseEvent", json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": count}));
            }
        }
    }

    /// Attaches to the browser's first tab and opens `url` in it.
    pub fn open(&mut self, url: &str) {
        if self.session.is_none() {
            let targets = self.call("Target.getTargets", json!({}));
            let page = targets["targetInfos"].as_array().unwrap().iter().find(|t| t["type"] == "page").expect("a page target").clone();
            let attached = self.call("Target.attachToTarget", json!({"targetId": page["targetId"], "flatten": true}));
            self.session = Some(attached["sessionId"].as_str().unwrap().to_string());
        }
        self.call("Page.navigate", json!({"url": url}));
    }

    /// What a person reads on the page.
    pub fn text(&mut self) -> String {
        self.eval("document.body.innerText").as_str().unwrap_or_default().to_string()
    }

    /// Saves a PNG of the page (for a person to look at; nothing is compared).
    pub fn screenshot(&mut self, path: &std::path::Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true}));
        let png = base64_decode(shot["data"].as_str().unwrap_or_default());
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(path, png).expect("write the screenshot");
    }
}


/// Standard base64 (the screenshot's PNG), without a dependency for one use.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::with_capacity(text.len() * 3 / 4), 0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
