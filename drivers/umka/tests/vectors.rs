//! The driver against public captures (`protocol-specs/vectors/umka.json`), over real
//! HTTP: a canned server answers each request with the captured body, and the driver's
//! own methods must read what the vector expects. The captured client request is sent to
//! our emulator, which must fiscalise it.

use kkm_core::port::PortSpec;
use kkm_core::{FiscalDriver, Money, Operation, ShiftState};
use kkm_umka::client::{Client, Credentials, Timeouts};
use kkm_umka::{codec, UmkaDriver, NEVA_01_F_UMKA};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn vectors() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../protocol-specs/vectors/umka.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).expect("vector JSON");
    let v = doc["vectors"].as_array().expect("vectors").clone();
    for x in &v {
        assert!(x["source"].as_str().is_some_and(|s| s.contains('@')), "every vector names its source: {x}");
    }
    v
}

/// Serves `answers` (path without query → body) over HTTP/1.1 until dropped.
async fn canned(answers: HashMap<&'static str, Vec<u8>>) -> (PortSpec, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let answers = Arc::new(answers);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let answers = answers.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let target = head.split_whitespace().nth(1).unwrap_or("");
                let path = target.split('?').next().unwrap_or("");
                let (status, body) = match answers.get(path) {
                    Some(b) => ("200 OK", b.clone()),
                    None => ("404 Not Found", b"{}".to_vec()),
                };
                let resp = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    });
    (PortSpec::Http { host: "127.0.0.1".into(), port }, task)
}

fn body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(&v["body"]).unwrap()
}

fn dt(t: &time::PrimitiveDateTime) -> String {
    kkm_core::device::dt::format(t)
}

#[tokio::test]
async fn statuses() {
    let mut n = 0;
    for v in vectors().iter().filter(|v| v["kind"] == "status") {
        n += 1;
        let name = v["name"].as_str().unwrap();
        let e = &v["expect"];
        let (spec, _server) = canned(HashMap::from([("/cashboxstatus.json", body(v))])).await;
        let mut d = UmkaDriver::new(spec, &NEVA_01_F_UMKA);
        let st = d.status().await.unwrap_or_else(|err| panic!("{name}: {err}"));
        let shift = match st.shift {
            ShiftState::Open => "open",
            ShiftState::Closed => "closed",
            ShiftState::Expired => "expired",
        };
        assert_eq!(shift, e["shift"], "{name}");
        if let Some(p) = e["paper"].as_bool() {
            assert_eq!(st.paper_present, p, "{name}");
        }
        if let Some(n) = e["shift_number"].as_u64() {
            assert_eq!(u64::from(st.shift_number), n, "{name}");
        }
        if let Some(c) = e["clock"].as_str() {
            assert_eq!(dt(&st.clock), c, "{name}");
        }
        let id = d.identity().await.unwrap();
        for (key, got) in [("serial", &id.serial), ("modelstr", &id.model_name), ("rnm", &id.rnm), ("inn", &id.inn), ("fn_serial", &id.fn_serial)] {
            if let Some(want) = e[key].as_str() {
                assert_eq!(got, want, "{name}: {key}");
            }
        }
        if let Some(m) = e["model"].as_u64() {
            assert_eq!(u64::from(id.model_id), m, "{name}");
        }
        // The registration's ФФД (`fSfDfVersion`, tag 1190 per temoto/ru-nalog-go
        // umka/status.go) and tax systems (`taxes`, the tag-1062 bit mask).
        if let Some(f) = e["ffd_version"].as_str() {
            assert_eq!(id.ffd_version.map(|v| v.as_str()), Some(f), "{name}");
        }
        if let Some(t) = e.get("tax_systems") {
            assert_eq!(&serde_json::to_value(id.tax_systems).unwrap(), t, "{name}");
        }
        match e["fn_error"].as_str() {
            Some(code) => assert_eq!(d.fn_status().await.unwrap_err().code(), code, "{name}"),
            None => {
                let f = d.fn_status().await.unwrap_or_else(|err| panic!("{name}: {err}"));
                assert_eq!(u64::from(f.last_document_number), e["last_document_number"].as_u64().unwrap(), "{name}");
                if let Some(until) = e["fn_valid_until"].as_str() {
                    assert_eq!(f.valid_until.map(|d| d.to_string()).as_deref(), Some(until), "{name}");
                }
            }
        }
        let ofd = d.ofd_status().await.unwrap();
        if let Some(u) = e["unsent"].as_u64() {
            assert_eq!(u64::from(ofd.unsent_count), u, "{name}");
        }
        if let Some(f) = e["first_unsent"].as_u64() {
            assert_eq!(ofd.first_unsent_number.map(u64::from), Some(f), "{name}");
            assert_eq!(ofd.first_unsent_at.map(|t| dt(&t)).as_deref(), e["first_unsent_at"].as_str(), "{name}");
        }
        if let Some(c) = e["cash"].as_i64() {
            assert_eq!(d.shift_totals().await.unwrap().cash_in_drawer, Money(c), "{name}");
        }
    }
    assert!(n >= 5, "status vectors: {n}");
}

#[tokio::test]
async fn documents_and_errors() {
    let status = vectors().into_iter().find(|v| v["kind"] == "status").unwrap();
    let mut n = 0;
    for v in vectors().iter().filter(|v| v["kind"] == "document" || v["kind"] == "error") {
        n += 1;
        let name = v["name"].as_str().unwrap();
        let e = &v["expect"];
        let (spec, _server) =
            canned(HashMap::from([("/fiscaldoc.json", body(v)), ("/cashboxstatus.json", body(&status))])).await;
        let mut d = UmkaDriver::new(spec, &NEVA_01_F_UMKA);
        let asked = e["number"].as_u64().unwrap_or(1) as u32;
        let got = d.find_document(asked).await;
        if let Some(code) = e["code"].as_str() {
            let err = got.unwrap_err();
            assert_eq!(err.code(), code, "{name}");
            assert!(matches!(err, kkm_core::DriverError::Device { raw, .. } if u64::from(raw) == e["result"].as_u64().unwrap()), "{name}: {err}");
            assert!(!err.title_ru().is_empty() && !err.action_ru().is_empty());
            continue;
        }
        if let Some(code) = e["error"].as_str() {
            assert_eq!(got.unwrap_err().code(), code, "{name}");
            continue;
        }
        let doc = got.unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(u64::from(doc.number), e["number"].as_u64().unwrap(), "{name}");
        assert_eq!(u64::from(doc.fiscal_sign), e["fiscal_sign"].as_u64().unwrap(), "{name}");
        assert_eq!(dt(&doc.datetime), e["datetime"].as_str().unwrap(), "{name}");
        assert_eq!(doc.kind, kkm_core::DocumentKind::Receipt, "{name}");
        assert_eq!(doc.operation, Some(Operation::Sale), "{name}");
        assert_eq!(doc.total, Some(Money(e["total"].as_i64().unwrap())), "{name}");
        assert_eq!(doc.shift_number.map(u64::from), e["shift"].as_u64(), "{name}");
        if name.contains("by number") {
            // Lines and payments, as recovery compares them.
            let c = d.receipt_content(asked).await.unwrap();
            let amounts: Vec<i64> = c.items.iter().map(|i| i.amount.0).collect();
            assert_eq!(amounts, [30, 970], "{name}");
            assert!(c.items.iter().all(|i| i.quantity == kkm_core::Quantity(1000)), "{name}");
            assert_eq!(c.payments, vec![(kkm_core::PaymentType::Cash, Money(1000))], "{name}");
            assert_eq!((c.total, c.operation), (Some(Money(1000)), Some(Operation::Sale)));
        }
        // The same answer as the reply to a receipt.
        let data = codec::parse_document(&body(v)).unwrap();
        assert_eq!(codec::fiscal_result(&data).unwrap().fiscal_sign, doc.fiscal_sign);
    }
    assert!(n >= 6, "document and error vectors: {n}");
}

/// A request a public client sent to Armax's test till, sent to our emulator with the
/// same Basic auth: it must fiscalise it once, paid by `moneyType`.
#[tokio::test]
async fn a_captured_request_is_fiscalised_by_the_emulator() {
    let v = vectors().into_iter().find(|v| v["kind"] == "request").unwrap();
    assert_eq!(v["authorization"], "Basic NzA6NzA=", "cashier 70, password 70");
    let core = kkm_emu::FiscalCore::open(None, kkm_emu::EmuIdentity::new("НЕВА-01-Ф", "18001234", "9960440300054321")).unwrap();
    let emu = kkm_emu::Emulator::new(core);
    emu.core().open_shift().unwrap();
    let front = Arc::new(kkm_umka::emulator::UmkaEmulator::neva_01_f());
    let listen = kkm_emu::Listen::Tcp("127.0.0.1:0".parse().unwrap());
    let ep = kkm_emu::listen::start(&listen, None, emu.clone(), front).await.unwrap();
    let spec = PortSpec::parse(&ep.port.replacen("tcp:", "http://", 1)).unwrap();
    let client = Client::new(&spec, Credentials::new(70, Some("70")), Timeouts::default()).unwrap();
    let before = emu.core().last_document_number();
    let answer = client.post("/fiscalcheck.json", body(&v), std::time::Duration::from_secs(10)).await.unwrap();
    let r = codec::fiscal_result(&codec::parse_document(&answer).unwrap()).unwrap();
    assert_eq!(r.document_number, before + 1);
    let doc = emu.core().document(r.document_number).unwrap().clone();
    assert_eq!(doc.total, Some(Money(v["expect"]["total"].as_i64().unwrap())));
    assert_eq!(doc.operation, Some(Operation::Sale));
    assert_eq!(doc.fiscal_sign, r.fiscal_sign);
    // The same sessionId again: the same answer, no second receipt (see the spec: inferred).
    let again = client.post("/fiscalcheck.json", body(&v), std::time::Duration::from_secs(10)).await.unwrap();
    assert_eq!(again, answer);
    assert_eq!(emu.core().last_document_number(), before + 1);
}
