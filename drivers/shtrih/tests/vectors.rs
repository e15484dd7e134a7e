//! Codec tests driven by `protocol-specs/vectors/shtrih-m.txt`: encode and decode both
//! ways, including the vendor's documented frames.

use kkm_shtrih::codec::{self, Answer};

struct Vector {
    name: String,
    kind: String,
    bytes: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../protocol-specs/vectors/shtrih-m.txt");
    let text = std::fs::read_to_string(path).expect("vector file");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let parts: Vec<&str> = l.split('|').map(str::trim).collect();
            assert_eq!(parts.len(), 3, "bad vector line {l:?}");
            let hex: String = parts[2].split_whitespace().collect();
            Vector { name: parts[0].into(), kind: parts[1].into(), bytes: hex::decode(hex).expect("hex") }
        })
        .collect()
}

#[test]
fn every_vector_round_trips() {
    let vs = vectors();
    assert!(vs.len() >= 10);
    for v in vs {
        match v.kind.as_str() {
            "request" => {
                let payload = codec::unframe(&v.bytes).unwrap_or_else(|e| panic!("{}: {e}", v.name));
                let (cmd, params) = codec::split_command(payload).unwrap();
                let encoded = codec::request(cmd, params).unwrap();
                assert_eq!(encoded, v.bytes, "{}: encoding differs", v.name);
            }
            "answer" => {
                let payload = codec::unframe(&v.bytes).unwrap_or_else(|e| panic!("{}: {e}", v.name));
                let answer = Answer::parse(payload).unwrap();
                assert_eq!(codec::frame(&answer.payload()).unwrap(), v.bytes, "{}", v.name);
            }
            "bad" => assert!(codec::unframe(&v.bytes).is_err(), "{} must be rejected", v.name),
            other => panic!("unknown vector kind {other}"),
        }
    }
}

#[test]
fn vendor_short_status_answer_fields() {
    let v = vectors().into_iter().find(|v| v.name.starts_with("short-status-receipt-open")).unwrap();
    let a = Answer::parse(codec::unframe(&v.bytes).unwrap()).unwrap();
    assert_eq!((a.cmd, a.error), (0x10, 0));
    assert_eq!(a.data[3] & 0x0F, 8, "mode 8: a document is open");
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic fuzz over the decoder.
    let mut x: u32 = 0x1234_5678;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let len = (x % 40) as usize;
        let bytes: Vec<u8> = (0..len).map(|i| (x.rotate_left(i as u32) & 0xFF) as u8).collect();
        let _ = codec::unframe(&bytes).and_then(Answer::parse);
        let mut framed = vec![0x02, len as u8];
        framed.extend_from_slice(&bytes);
        let _ = codec::unframe(&framed).and_then(Answer::parse);
    }
}

fn vector(name: &str) -> Vec<u8> {
    vectors().into_iter().find(|v| v.name.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("vector {name}")).bytes
}

/// The captured FF01 answer of a real unit, read at the offsets the driver uses.
#[test]
fn captured_fn_status_fields() {
    let a = Answer::parse(codec::unframe(&vector("fn-status-answer-captured")).unwrap()).unwrap();
    assert_eq!((a.cmd, a.error), (0xFF01, 0));
    let d = &a.data;
    assert_eq!(d[0], 0x03, "phase: configured and fiscal");
    assert_eq!(&d[5..10], &[0x15, 0x07, 0x1D, 0x0B, 0x1D], "DATE_TIME YY MM DD HH MM: 2021-07-29 11:29");
    assert_eq!(&d[10..26], b"9287440301120991");
    assert_eq!(u32::from_le_bytes(d[26..30].try_into().unwrap()), 425, "last ФД");
}

/// The driver's FF46 bytes equal the hand-built vendor frames: the tax byte is the
/// vendor's code (0x08 без НДС, 0xCB 22 %), not a table row.
#[test]
fn driver_ff46_is_the_vendor_layout() {
    use kkm_core::*;
    use kkm_shtrih::commands::{vat_code, VatCodeSet, OPERATION_V2};
    let item = |vat| Item {
        name: "A".into(),
        price: Money(10_000),
        quantity: Quantity::ONE,
        amount: None,
        vat,
        payment_method: PaymentMethod::FullPayment,
        payment_object: PaymentObject::Service,
        department: 1,
        measure_unit: None,
    };
    for (rate, name) in [(VatRate::NoVat, "ff46-sale-no-vat"), (VatRate::Vat22, "ff46-sale-vat22")] {
        let code = vat_code(rate, VatCodeSet::for_model(45));
        let p = kkm_shtrih::driver::operation_v2_params(1, Operation::Sale, &item(rate), Money(10_000), code).unwrap();
        assert_eq!(codec::request(OPERATION_V2, &p).unwrap(), vector(name), "{name}");
    }
    // ШТРИХ-NANO-Ф uses its own codes for 22 % ([JPOS] getVatCodeShtrihNano).
    assert_eq!(vat_code(VatRate::Vat22, VatCodeSet::for_model(152)), 0x90);
    assert_eq!(vat_code(VatRate::Vat22_122, VatCodeSet::for_model(152)), 0xA0);
}

/// Register reads: one byte up to 255, two bytes for K-registers.
#[test]
fn driver_register_reads_are_the_vendor_layout() {
    use kkm_shtrih::commands::{payment_register, CASH_REGISTER};
    use kkm_shtrih::driver::cash_register_params;
    assert_eq!(payment_register(14, 0), Some(4180), "prepayment, sale");
    assert_eq!(payment_register(2, 0), Some(197), "payment type 2, sale");
    assert_eq!(payment_register(16, 3), Some(4191));
    assert_eq!(payment_register(17, 0), None);
    assert_eq!(codec::request(CASH_REGISTER, &cash_register_params(30, 4180)).unwrap(), vector("cash-register-4180"));
    assert_eq!(codec::request(CASH_REGISTER, &cash_register_params(30, 197)).unwrap(), vector("cash-register-197"));
}
