//! The cashier page in a real browser (headless Chromium): the cashier types the
//! program's cash, presses «Сверить» and reads the explanation.
//!
//! The browser is driven by `common::browser` (the DevTools protocol over a pipe).
//! Without Chromium the test says so and passes, unless `KKM_REQUIRE_BROWSER=1` (CI
//! sets it and installs Chromium).

mod common;

use common::browser::{chromium, Browser};
use common::Rig;
use serde_json::json;

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
        // The link `kkm-agent demo` prints: the token in the fragment, stored by the page.
        b.open(&format!("{base}/#token={token}"));
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
