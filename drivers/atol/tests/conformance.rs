//! The ATOL driver against the ATOL emulator over TCP, for what the independent sources
//! say a real unit does (protocol-specs/atol.md): requisites reach the device, 22 % is
//! refused before anything is sent, the 30-day ОФД block is error 0xEF, the shift stays
//! open after receipts, and a receipt's ФД and ФП are read back from the ФН.

use kkm_atol::emulator::AtolEmulator;
use kkm_atol::{bcd, AtolDriver, NEVA_01_F};
use kkm_core::port::PortSpec;
use kkm_core::{Condition, FiscalDriver, Receipt, ShiftState};
use kkm_emu::{EmuIdentity, Emulator, FiscalCore, Listen};
use std::sync::{Arc, Mutex};

struct Rig {
    emu: Arc<Emulator>,
    requisites: kkm_atol::emulator::RequisiteLog,
    tape: Arc<Mutex<Vec<String>>>,
    driver: AtolDriver,
}

async fn rig() -> Rig {
    let mut core = FiscalCore::open(None, EmuIdentity::new("НЕВА-01-Ф", "18001234", "9960440300054321")).unwrap();
    let tape = Arc::new(Mutex::new(Vec::new()));
    let sink = tape.clone();
    core.set_print_sink(Box::new(move |lines: &[String]| sink.lock().unwrap().extend(lines.iter().cloned())));
    let emu = Emulator::new(core);
    let device = AtolEmulator::neva_01_f();
    let requisites = device.requisite_log();
    let listen = Listen::Tcp("127.0.0.1:0".parse().unwrap());
    let endpoint = kkm_emu::listen::start(&listen, None, emu.clone(), Arc::new(device)).await.unwrap();
    let driver = AtolDriver::new(PortSpec::parse(&endpoint.port).unwrap(), None, &NEVA_01_F);
    Rig { emu, requisites, tape, driver }
}

fn receipt(vat: &str) -> Receipt {
    serde_json::from_value(serde_json::json!({
        "operation": "sale",
        "items": [{ "name": "Стрижка № 1", "price": 150000, "quantity": 1, "vat": vat, "payment_object": "service" }],
        "payments": [{ "type": "cash", "sum": 150000 }],
        "tax_system": "usn_income",
        "cashier": { "name": "Иванова А. С.", "inn": "500100732259" },
        "customer": { "email": "client@example.ru" }
    }))
    .unwrap()
}

#[tokio::test]
async fn cashier_tax_system_and_customer_contact_reach_the_device() {
    let mut r = rig().await;
    r.driver.open_shift(None).await.unwrap();
    let res = r.driver.fiscalize(&receipt("vat10")).await.expect("receipt prints");
    let log = r.requisites.lock().unwrap().clone();
    let tags: Vec<u16> = log.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, vec![1021, 1203, 1055, 1008], "cashier and INN before the receipt, then 1055 and 1008");
    assert_eq!(log[0].1, bcd::atol_text("Иванова А. С."));
    assert_eq!(log[1].1, b"500100732259".to_vec());
    assert_eq!(log[2].1, vec![0x02], "УСН доход");
    assert_eq!(log[3].1, b"client@example.ru".to_vec());
    let tape = r.tape.lock().unwrap().join("\n");
    assert!(tape.contains("Иванова А. С."), "the cashier is on the receipt:\n{tape}");
    assert!(tape.contains("client@example.ru"), "the contact is on the receipt:\n{tape}");
    assert_eq!(res.document_number, r.emu.core().last_document_number());
}

#[tokio::test]
async fn vat_22_is_refused_before_anything_is_sent() {
    let mut r = rig().await;
    r.driver.open_shift(None).await.unwrap();
    let before = r.emu.core().last_document_number();
    for vat in ["vat22", "vat122"] {
        let e = r.driver.fiscalize(&receipt(vat)).await.expect_err("22 % has no confirmed ATOL code");
        assert_eq!(e.code(), "receipt.vat_rate_unconfirmed", "{e}");
    }
    assert!(r.requisites.lock().unwrap().is_empty(), "nothing was written");
    assert!(r.emu.core().receipt().is_none(), "no receipt was opened");
    assert_eq!(r.emu.core().last_document_number(), before);
}

#[tokio::test]
async fn receipt_result_is_read_back_from_the_fn_and_the_shift_stays_open() {
    let mut r = rig().await;
    r.driver.open_shift(None).await.unwrap();
    for _ in 0..3 {
        let res = r.driver.fiscalize(&receipt("vat5")).await.expect("receipt prints");
        let core = r.emu.core();
        let doc = core.document(res.document_number).unwrap();
        assert_eq!(res.document_number, core.last_document_number());
        assert_eq!(res.fiscal_sign, doc.fiscal_sign);
        assert_eq!(res.datetime, doc.datetime);
    }
    // A4 10's receipt-number field is not an "expired" flag.
    assert_eq!(r.driver.status().await.unwrap().shift, ShiftState::Open);
    let fs = r.driver.fn_status().await.unwrap();
    assert_eq!(fs.last_document_number, r.emu.core().last_document_number());
    assert_eq!(fs.serial, "9960440300054321");
    assert_eq!(fs.valid_until, Some(r.emu.core().identity().fn_valid_until));
}

#[tokio::test]
async fn thirty_day_ofd_block_is_error_ef() {
    let mut r = rig().await;
    r.emu.core().set_ofd_online(false);
    r.driver.open_shift(None).await.unwrap();
    r.driver.fiscalize(&receipt("vat10")).await.unwrap();
    let ofd = r.driver.ofd_status().await.unwrap();
    assert_eq!(ofd.unsent_count, 2);
    r.emu.core().shift_clock(time::Duration::days(31));
    r.driver.close_shift(None).await.expect("the Z-report still goes");
    let e = r.driver.open_shift(None).await.expect_err("blocked");
    assert!(matches!(e, kkm_core::error::DriverError::Device { raw: 0xEF, .. }), "{e:?}");
    assert_eq!(e.condition(), Some(Condition::OfdBlocked));
    assert_eq!(e.code(), "device.ofd_overdue");
}

#[tokio::test]
async fn unsent_documents_error_ed_is_not_the_30_day_block() {
    let e = kkm_atol::errors::device_error(0xED);
    assert_ne!(e.condition(), Some(Condition::OfdBlocked));
    assert_eq!(e.code(), "device.fn_unsent_documents");
}
