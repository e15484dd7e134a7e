//! Issue 7, ATOL side: text the register cannot print (CP866) is refused naming the
//! character, typography is mapped, and no HTML reference reaches the device. Sums
//! beyond the BCD field are refused before sending instead of saturating.

use kkm_core::error::DriverError;
use kkm_core::port::PortSpec;
use kkm_core::*;
use kkm_emu::{listen, EmuIdentity, Emulator, FiscalCore, Listen};
use std::sync::{Arc, Mutex};

async fn rig() -> (Arc<Emulator>, Arc<Mutex<Vec<String>>>, kkm_atol::AtolDriver) {
    let mut core = FiscalCore::open(None, EmuIdentity::new("НЕВА-01-Ф", "18001234", "9960440300054321")).unwrap();
    let tape = Arc::new(Mutex::new(Vec::new()));
    let t = tape.clone();
    core.set_print_sink(Box::new(move |l: &[String]| t.lock().unwrap().extend(l.iter().cloned())));
    let emu = Emulator::new(core);
    let ep = listen::start(&Listen::Tcp("127.0.0.1:0".parse().unwrap()), None, emu.clone(), Arc::new(kkm_atol::emulator::AtolEmulator::neva_01_f()))
        .await
        .unwrap();
    let driver = kkm_atol::AtolDriver::new(PortSpec::parse(&ep.port).unwrap(), None, &kkm_atol::NEVA_01_F);
    std::mem::forget(ep);
    (emu, tape, driver)
}

fn receipt(name: &str) -> Receipt {
    Receipt {
        operation: Operation::Sale,
        items: vec![Item {
            name: name.into(),
            price: Money(1_000),
            quantity: Quantity::ONE,
            amount: None,
            vat: VatRate::Vat10, // 22 % has no confirmed ATOL code (issue 12)
            payment_method: PaymentMethod::FullPayment,
            payment_object: PaymentObject::Service,
            department: 1,
            measure_unit: None,
        }],
        payments: vec![Payment { kind: PaymentType::Cash, sum: Money(1_000) }],
        tax_system: TaxSystem::UsnIncome,
        cashier: None,
        customer: None,
    }
}

fn code(e: DriverError) -> &'static str {
    match e {
        DriverError::Invalid(v) => v.code,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn atol_text_is_kept_mapped_or_refused() {
    let (emu, tape, mut d) = rig().await;
    d.open_shift(None).await.unwrap();
    let before = emu.core().last_document_number();
    let e = d.fiscalize(&receipt("Стрижка 💅")).await.unwrap_err();
    assert_eq!(code(e), "receipt.item_name_unprintable");
    assert_eq!(emu.core().last_document_number(), before, "nothing was fiscalised");
    // CP866 lacks « » — …: they become " - ...
    tape.lock().unwrap().clear();
    d.fiscalize(&receipt("«Стрижка» — мастер…")).await.unwrap();
    let printed = tape.lock().unwrap().clone();
    assert!(printed.iter().any(|l| l.contains("\"Стрижка\" - мастер...")), "{printed:#?}");
    assert!(!printed.iter().any(|l| l.contains("&#")), "{printed:#?}");
    let e = d.print_text(&["Кофе ☕".to_string()]).await.unwrap_err();
    assert_eq!(code(e), "print.text_unprintable");
}

#[tokio::test]
async fn atol_cash_sum_beyond_the_bcd_field_is_refused() {
    let (emu, _tape, mut d) = rig().await;
    d.open_shift(None).await.unwrap();
    let e = d.cash_in(Money(10_000_000_000_000)).await.unwrap_err();
    assert_eq!(code(e), "request.sum_too_large");
    assert_eq!(emu.core().registers().cash_in_drawer, Money::ZERO, "the BCD field did not saturate into a cash-in");
}
