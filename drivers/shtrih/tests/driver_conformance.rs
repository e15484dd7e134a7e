//! The driver against the emulator over a real pseudo-terminal, for the points where
//! the two used to share a private dialect (issue 7): VAT codes, payment registers,
//! passwords, identity, cashier on shift documents, tag 2108, sum widths, text.
//! The emulator side of each point is checked byte by byte against the vendor's
//! documents in `emulator_conformance.rs`.

use kkm_core::error::DriverError;
use kkm_core::port::PortSpec;
use kkm_core::*;
use kkm_emu::{listen, EmuIdentity, Emulator, FiscalCore, Listen};
use kkm_shtrih::{ShtrihDriver, AZUR_01F};
use std::sync::{Arc, Mutex};

struct Rig {
    emu: Arc<Emulator>,
    tape: Arc<Mutex<Vec<String>>>,
    port: String,
}

impl Rig {
    async fn start() -> Rig {
        let mut core = FiscalCore::open(None, EmuIdentity::new("АЗУР-01Ф", "0000000045001234", "9960440300012345")).unwrap();
        let tape = Arc::new(Mutex::new(Vec::new()));
        let t = tape.clone();
        core.set_print_sink(Box::new(move |lines: &[String]| t.lock().unwrap().extend(lines.iter().cloned())));
        let emu = Emulator::new(core);
        let ep = listen::start(&Listen::Pty, None, emu.clone(), Arc::new(kkm_shtrih::emulator::ShtrihEmulator::azur_01f()))
            .await
            .unwrap();
        let port = ep.port.clone();
        std::mem::forget(ep);
        Rig { emu, tape, port }
    }

    /// Cashier 1 (password 1) and the system administrator (30): different values.
    fn driver(&self) -> ShtrihDriver {
        ShtrihDriver::new(PortSpec::parse(&self.port).unwrap(), None, &AZUR_01F).with_passwords(1, 30)
    }

    fn tape(&self) -> Vec<String> {
        std::mem::take(&mut *self.tape.lock().unwrap())
    }
}

fn item(name: &str, price: i64, vat: VatRate) -> Item {
    Item {
        name: name.into(),
        price: Money(price),
        quantity: Quantity::ONE,
        amount: None,
        vat,
        payment_method: PaymentMethod::FullPayment,
        payment_object: PaymentObject::Service,
        department: 1,
        measure_unit: None,
    }
}

fn receipt(op: Operation, items: Vec<Item>, payments: Vec<(PaymentType, i64)>) -> Receipt {
    Receipt {
        operation: op,
        items,
        payments: payments.into_iter().map(|(kind, s)| Payment { kind, sum: Money(s) }).collect(),
        tax_system: TaxSystem::UsnIncome,
        cashier: None,
        customer: None,
    }
}

fn invalid_code(e: DriverError) -> &'static str {
    match e {
        DriverError::Invalid(v) => v.code,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn every_rate_reaches_the_fn_as_itself() {
    let rig = Rig::start().await;
    let mut d = rig.driver();
    d.open_shift(None).await.unwrap();
    let items: Vec<Item> = VatRate::ALL.iter().map(|r| item(&format!("Позиция {}", r.json_name()), 1_000, *r)).collect();
    rig.tape();
    d.fiscalize(&receipt(Operation::Sale, items, vec![(PaymentType::Cash, 10_000)])).await.unwrap();
    let printed: Vec<String> =
        rig.tape().into_iter().map(|l| l.trim().to_string()).filter(|l| l.starts_with("НДС") || l == "БЕЗ НДС").collect();
    let expected: Vec<String> = VatRate::ALL.iter().map(|r| r.label_ru().to_string()).collect();
    assert_eq!(printed, expected, "«без НДС» must not become «НДС 0%»");
}

#[tokio::test]
async fn distinct_passwords_and_totals_that_agree_with_the_x_report() {
    let rig = Rig::start().await;
    let mut d = rig.driver();
    d.open_shift(None).await.unwrap();
    d.cash_in(Money(500_000)).await.unwrap();
    let fd = d.fn_status().await.unwrap().last_document_number;
    for (kind, sum) in [
        (PaymentType::Cash, 10_000),
        (PaymentType::Electronic, 20_000),
        (PaymentType::Prepayment, 30_000),
        (PaymentType::Credit, 40_000),
        (PaymentType::Other, 50_000),
    ] {
        d.fiscalize(&receipt(Operation::Sale, vec![item("Услуга", sum, VatRate::Vat22)], vec![(kind, sum)])).await.unwrap();
    }
    d.fiscalize(&receipt(Operation::SaleReturn, vec![item("Услуга", 7_000, VatRate::Vat22)], vec![(PaymentType::Cash, 7_000)]))
        .await
        .unwrap();
    let fs = d.fn_status().await.unwrap();
    assert_eq!(fs.last_document_number, fd + 6);
    let doc = d.find_document(fs.last_document_number).await.unwrap();
    assert_eq!((doc.kind, doc.total), (DocumentKind::Receipt, Some(Money(7_000))));
    d.ofd_status().await.unwrap();
    let totals = d.shift_totals().await.unwrap();
    let mut got: Vec<(Operation, PaymentType, Money)> = totals.by_operation.iter().map(|t| (t.operation, t.payment, t.sum)).collect();
    got.sort_by_key(|(o, p, _)| (o.code(), PaymentType::ALL.iter().position(|x| x == p)));
    assert_eq!(
        got,
        vec![
            (Operation::Sale, PaymentType::Cash, Money(10_000)),
            (Operation::Sale, PaymentType::Electronic, Money(20_000)),
            (Operation::Sale, PaymentType::Prepayment, Money(30_000)),
            (Operation::Sale, PaymentType::Credit, Money(40_000)),
            (Operation::Sale, PaymentType::Other, Money(50_000)),
            (Operation::SaleReturn, PaymentType::Cash, Money(7_000)),
        ]
    );
    assert_eq!(totals.cash_in_drawer, Money(500_000 + 10_000 - 7_000));
    rig.tape();
    d.x_report().await.unwrap();
    let x = rig.tape();
    for t in &totals.by_operation {
        let label = format!("{} {}", t.operation.name_ru(), t.payment.name_ru());
        let line = x.iter().find(|l| l.starts_with(&label)).unwrap_or_else(|| panic!("X-report has no line {label:?}: {x:#?}"));
        assert!(line.ends_with(&t.sum.to_string()), "{line:?} vs {}", t.sum);
    }
    d.close_shift(None).await.unwrap();
}

#[tokio::test]
async fn identity_comes_from_full_status_and_registration_totals() {
    let rig = Rig::start().await;
    let mut d = rig.driver();
    let id = d.identity().await.unwrap();
    let emu_id = rig.emu.core().identity().clone();
    assert_eq!(id.model_id, 45);
    assert_eq!(id.serial, "0000000045001234");
    assert_eq!(id.rnm, emu_id.rnm);
    assert_eq!(id.inn, emu_id.inn);
    assert_eq!(id.fn_serial, "9960440300012345");
}

#[tokio::test]
async fn sums_wider_than_the_field_are_refused_before_sending() {
    let rig = Rig::start().await;
    let mut d = rig.driver();
    d.open_shift(None).await.unwrap();
    // `device … cash-in 100000000000`: 10^13 kopecks would wrap in a 5-byte field.
    let e = d.cash_in(Money(10_000_000_000_000)).await.unwrap_err();
    assert_eq!(invalid_code(e), "request.sum_too_large");
    let e = d.cash_out(Money(10_000_000_000)).await.unwrap_err();
    assert_eq!(invalid_code(e), "request.sum_too_large");
    assert_eq!(rig.emu.core().registers().cash_in_drawer, Money::ZERO, "nothing reached the device");
    d.cash_in(Money(9_999_999_999)).await.unwrap();
    assert_eq!(rig.emu.core().registers().cash_in_drawer, Money(9_999_999_999));
}

#[tokio::test]
async fn unprintable_text_never_reaches_the_device() {
    let rig = Rig::start().await;
    let mut d = rig.driver();
    d.open_shift(None).await.unwrap();
    let before = rig.emu.core().last_document_number();
    let e = d
        .fiscalize(&receipt(Operation::Sale, vec![item("Стрижка 💅", 1_000, VatRate::Vat22)], vec![(PaymentType::Cash, 1_000)]))
        .await
        .unwrap_err();
    match &e {
        DriverError::Invalid(v) => assert!(v.code == "receipt.item_name_unprintable" && v.ru.contains("U+1F485"), "{v:?}"),
        other => panic!("{other:?}"),
    }
    assert!(rig.emu.core().receipt().is_none());
    assert_eq!(rig.emu.core().last_document_number(), before);
    // Typography: cp1251 prints « — … itself; the cashier's name (CP866) gets quotes.
    let mut r = receipt(Operation::Sale, vec![item("«Стрижка» — мастер…", 1_000, VatRate::Vat22)], vec![(PaymentType::Cash, 1_000)]);
    r.cashier = Some(Cashier { name: "Анна «Мастер»".into(), inn: None });
    rig.tape();
    d.fiscalize(&r).await.unwrap();
    let tape = rig.tape();
    assert!(tape.iter().any(|l| l.contains("«Стрижка» — мастер…")), "{tape:#?}");
    assert!(tape.iter().any(|l| l.contains("Анна \"Мастер\"")), "{tape:#?}");
    assert!(!tape.iter().any(|l| l.contains("&#")), "no HTML references: {tape:#?}");
    let mut r = receipt(Operation::Sale, vec![item("Стрижка", 1_000, VatRate::Vat22)], vec![(PaymentType::Cash, 1_000)]);
    r.customer = Some(Customer { phone: None, email: Some("анна😀@mail.ru".into()) });
    assert_eq!(invalid_code(d.fiscalize(&r).await.unwrap_err()), "receipt.customer_contact_unprintable");
    r.customer = Some(Customer { phone: None, email: Some("anna\u{200B}@mail.ru".into()) });
    rig.tape();
    d.fiscalize(&r).await.unwrap();
    assert!(rig.tape().iter().any(|l| l.contains("anna@mail.ru")), "zero-width space dropped");
    let e = d.close_shift(Some(&Cashier { name: "Анна 🌸".into(), inn: None })).await.unwrap_err();
    assert_eq!(invalid_code(e), "receipt.cashier_unprintable");
    assert_eq!(rig.emu.core().shift_state(), ShiftState::Open, "the shift was not closed");
    let e = d.print_text(&["Кофе ☕".to_string()]).await.unwrap_err();
    assert_eq!(invalid_code(e), "print.text_unprintable");
}

#[tokio::test]
async fn shift_documents_carry_the_cashier() {
    let rig = Rig::start().await;
    let mut d = rig.driver();
    let cashier = Cashier { name: "Иванова А.".into(), inn: Some("500100732259".into()) };
    d.open_shift(Some(&cashier)).await.unwrap();
    let tape = rig.tape();
    assert!(tape.iter().any(|l| l.starts_with("Кассир") && l.ends_with("Иванова А.")), "{tape:#?}");
    d.close_shift(Some(&cashier)).await.unwrap();
    let tape = rig.tape();
    assert!(tape.iter().any(|l| l.contains("ОТЧЁТ О ЗАКРЫТИИ СМЕНЫ")));
    assert!(tape.iter().any(|l| l.starts_with("Кассир") && l.ends_with("Иванова А.")), "{tape:#?}");
    // Without a cashier nothing extra is sent and nothing is printed.
    d.open_shift(None).await.unwrap();
    assert!(!rig.tape().iter().any(|l| l.starts_with("Кассир")));
}

#[tokio::test]
async fn measure_unit_is_sent_with_the_item() {
    let rig = Rig::start().await;
    let mut d = rig.driver();
    d.open_shift(None).await.unwrap();
    let mut apples = item("Яблоки", 15_000, VatRate::Vat10);
    apples.quantity = Quantity(750);
    apples.measure_unit = Some(MeasureUnit::Kilogram);
    rig.tape();
    d.fiscalize(&receipt(Operation::Sale, vec![apples, item("Пакет", 500, VatRate::Vat22)], vec![(PaymentType::Cash, 11_750)]))
        .await
        .unwrap();
    let tape = rig.tape();
    assert!(tape.iter().any(|l| l.trim_start().starts_with("0.75 кг x 150,00")), "{tape:#?}");
    assert!(tape.iter().any(|l| l.trim_start().starts_with("1 x 5,00")), "no unit where none was given: {tape:#?}");
}

/// [V117] FF46 note 1: the unit refuses a line sum more than a kopeck off price ×
/// quantity; the driver says so before sending anything.
#[tokio::test]
async fn line_sum_off_price_times_quantity_is_refused_before_sending() {
    let rig = Rig::start().await;
    let mut d = rig.driver();
    d.open_shift(None).await.unwrap();
    let mut discounted = item("Стрижка", 100_000, VatRate::Vat22);
    discounted.amount = Some(Money(90_000));
    let e = d.fiscalize(&receipt(Operation::Sale, vec![item("Мытьё", 5_000, VatRate::Vat22), discounted], vec![(PaymentType::Cash, 95_000)])).await.unwrap_err();
    assert_eq!(invalid_code(e), "receipt.item_amount_mismatch");
    assert!(rig.emu.core().receipt().is_none(), "no receipt was opened");
    // One kopeck of rounding is fine.
    let mut rounded = item("Кофе", 333, VatRate::Vat22);
    rounded.quantity = Quantity(1_500);
    rounded.amount = Some(Money(499));
    d.fiscalize(&receipt(Operation::Sale, vec![rounded], vec![(PaymentType::Cash, 499)])).await.unwrap();
}
