//! Chaos: kill -9 the agent at random moments while it prints N receipts, restart it,
//! and repeat. Passes when the emulator's ФН holds exactly one receipt per key and every
//! job ends `done` with that receipt's number.
//!
//! CI runs a small N; run the long version with
//! `KKM_CHAOS_N=200 cargo test --release --test chaos -- --nocapture`
//! (`KKM_CHAOS_MODEL=neva-01-f` to run one model only).

mod common;

use common::{receipt, Rig};
use rand::Rng;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[tokio::test]
async fn kill_9_while_printing_azur_01f() {
    chaos("azur-01f").await
}

#[tokio::test]
async fn kill_9_while_printing_neva_01_f() {
    chaos("neva-01-f").await
}

async fn chaos(model: &str) {
    let n: usize = std::env::var("KKM_CHAOS_N").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    if std::env::var("KKM_CHAOS_MODEL").is_ok_and(|m| m != model) {
        return;
    }
    let mut rig = Rig::start_model(model, true).await;
    // A little latency per answer widens the windows a kill can hit.
    rig.ctl("fault delay=15");
    let mut rng = rand::thread_rng();
    let mut ids: HashMap<String, i64> = HashMap::new();
    let mut kills = 0;
    let mut next = 0;
    let started = Instant::now();
    while next < n || kills == 0 {
        // Submit a few receipts, then kill at a random moment.
        let burst = rng.gen_range(1..=4);
        for _ in 0..burst {
            if next >= n {
                break;
            }
            let key = format!("chaos-{next}");
            let (code, job) = rig.post("/api/v1/receipts", Some(&key), Some(&receipt(100_000 + next as i64 * 100))).await;
            assert!(code == 202 || code == 200, "{code} {job}");
            ids.insert(key, job["id"].as_i64().unwrap());
            next += 1;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(20..400))).await;
        rig.kill_agent();
        kills += 1;
        rig.start_agent();
        // Keys already accepted stay accepted across the restart.
        let (code, _) = rig.post("/api/v1/receipts", Some("chaos-0"), Some(&receipt(100_000))).await;
        assert_eq!(code, 200);
    }
    rig.ctl("fault delay=0");
    let mut numbers = Vec::new();
    for (key, id) in &ids {
        let job = rig.wait_job(*id).await;
        assert_eq!(job["status"], "done", "{key}: {job}");
        numbers.push(job["result"]["document_number"].as_u64().unwrap());
    }
    let state = rig.emu_state();
    let receipts: Vec<&serde_json::Value> =
        state["documents"].as_array().unwrap().iter().filter(|d| d["kind"] == "receipt").collect();
    assert_eq!(receipts.len(), n, "exactly one receipt per key in the ФН");
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), n, "every job has its own document");
    for (key, id) in &ids {
        let (_, job) = rig.get(&format!("/api/v1/receipts/{id}")).await;
        let fd = job["result"]["document_number"].as_u64().unwrap();
        let doc = receipts.iter().find(|d| d["number"].as_u64() == Some(fd)).expect("the job's document is in the ФН");
        let i: i64 = key.trim_start_matches("chaos-").parse().unwrap();
        assert_eq!(doc["total"].as_i64(), Some(100_000 + i * 100), "{key}");
    }
    println!("chaos: model {model}, N = {n} receipts, {kills} kills, {:.1} s", started.elapsed().as_secs_f64());
}
