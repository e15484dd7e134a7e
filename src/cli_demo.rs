//! `kkm-agent demo`: the whole agent on an emulated register, with no hardware and no
//! config. It starts the emulator on a pseudo-terminal (TCP on Windows), the daemon with
//! a throw-away data dir, submits the sample receipt through the queue, waits for the
//! ФД number and fiscal sign, and prints how to send another one with curl.

use crate::cli::CliError;
use crate::config::{Config, DeviceConfig, Policy};
use crate::emulate::{start, EmulatedModel, EmulatorOptions};
use crate::queue::{JobRequest, JobStatus};
use std::time::Duration;

fn err(code: &str, e: impl std::fmt::Display) -> CliError {
    CliError::new(code, format!("Демо не запустилось: {e}"), format!("Demo failed: {e}"), "")
}

pub async fn demo(model: EmulatedModel, once: bool) -> Result<(), CliError> {
    // Neva-01-F's default front-end is the УМКА HTTP API, which needs TCP.
    let byte_pty = cfg!(unix) && model != EmulatedModel::Neva01F;
    let listen = if byte_pty { kkm_emu::Listen::Pty } else { kkm_emu::Listen::Tcp(([127, 0, 0, 1], 0).into()) };
    let emu = start(EmulatorOptions { echo_tape: true, ..EmulatorOptions::new(model, listen) })
    .await
    .map_err(|e| err("emulator.start_failed", e))?;
    let data = std::env::temp_dir().join(format!("kkm-agent-demo-{}", std::process::id()));
    let config = Config {
        listen: ([127, 0, 0, 1], if once { 0 } else { 8765 }).into(),
        data_dir: Some(data.clone()),
        policy: Policy::default(),
        allowed_origins: Vec::new(),
        devices: vec![DeviceConfig {
            id: "demo".into(),
            model: model.key().into(),
            port: emu.port.clone(),
            baud: None,
            protocol: None,
            operator_password: None,
            admin_password: None,
            cashier: None,
            cashier_password: None,
            release_port_after_idle: Default::default(),
            timezone: None,
        }],
    };
    let running = match crate::daemon::start(&config).await {
        Ok(r) => r,
        Err(_) if !once => {
            // 8765 is taken (another agent?): any free port will do for a demo.
            let config = Config { listen: ([127, 0, 0, 1], 0).into(), ..config };
            crate::daemon::start(&config).await.map_err(|e| err(e.code, e))?
        }
        Err(e) => return Err(err(e.code, e)),
    };
    println!("Эмулятор {} на порту {}", model.key(), emu.port);
    println!("Агент: http://{}/#token={}  (страница кассира)", running.addr, running.token);
    let receipt: kkm_core::Receipt = serde_json::from_str(include_str!("../tests/fixtures/receipt-sale.json"))
        .map_err(|e| err("receipt.json_invalid", e))?;
    let store = running.store.clone();
    let (job, _) = store.submit("demo", "demo-first-receipt", &JobRequest::Receipt { receipt }).map_err(|e| err("queue", e))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let job = loop {
        let j = store.get(job.id).map_err(|e| err("queue", e))?;
        if j.status.is_final() || tokio::time::Instant::now() > deadline {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    match (&job.status, &job.result) {
        (JobStatus::Done, Some(r)) => {
            println!("Чек напечатан: ФД № {}, ФП {:010} (задание {})", r.document_number, r.fiscal_sign, job.id)
        }
        _ => match &job.error {
            Some(e) => println!("Задание {}: {}. {}. Что делать: {}", job.id, job.status.name_ru(), e.title_ru, e.action_ru),
            None => println!("Задание {}: {}", job.id, job.status.name_ru()),
        },
    }
    println!();
    println!("Токен: {}", running.token);
    println!("Ещё один чек:");
    println!(
        "  curl -s -H 'Authorization: Bearer {}' -H 'Idempotency-Key: demo-2' -H 'Content-Type: application/json' \\\n    --data @tests/fixtures/receipt-sale.json 'http://{}/api/v1/receipts?device=demo'",
        running.token, running.addr
    );
    println!("  curl -s -H 'Authorization: Bearer {}' 'http://{}/api/v1/receipts/2?wait=10'", running.token, running.addr);
    println!("OpenAPI: http://{}/api/v1/openapi.json", running.addr);
    if !once {
        println!("Ctrl-C — выход.");
        crate::daemon::shutdown_signal().await;
    }
    running.stop().await;
    let _ = std::fs::remove_dir_all(&data);
    let ok = job.status == JobStatus::Done;
    if ok {
        Ok(())
    } else {
        Err(CliError::new("demo.receipt_failed", "Демо-чек не напечатан", "The demo receipt did not print", ""))
    }
}
