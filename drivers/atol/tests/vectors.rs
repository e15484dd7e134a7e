//! Codec tests driven by `protocol-specs/vectors/atol.txt`, both directions, including
//! the frames verified in the research notes.

use kkm_atol::{v2, v3};

struct Vector {
    name: String,
    kind: String,
    bytes: Vec<u8>,
    expect: String,
}

fn vectors() -> Vec<Vector> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../protocol-specs/vectors/atol.txt");
    std::fs::read_to_string(path)
        .expect("vector file")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let p: Vec<&str> = l.split('|').map(str::trim).collect();
            assert!(p.len() == 3 || p.len() == 4, "bad line {l:?}");
            let hex: String = p[2].split_whitespace().collect();
            Vector {
                name: p[0].to_string(),
                kind: p[1].to_string(),
                bytes: hex::decode(hex).unwrap(),
                expect: p.get(3).copied().unwrap_or("").to_string(),
            }
        })
        .collect()
}

/// `key=value;key=value` of a vector's EXPECT column.
fn expect(v: &Vector) -> std::collections::HashMap<&str, &str> {
    v.expect.split(';').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.trim(), v.trim())).collect()
}

fn rate(name: &str) -> kkm_core::VatRate {
    serde_json::from_value(serde_json::Value::String(name.into())).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Checks an answer vector against the driver's parser for its command.
fn check_answer(v: &Vector) {
    use kkm_atol::{answers, commands::*, driver::answer_fields};
    let want = expect(v);
    let cmd = match v.kind.as_str() {
        "answer-a5" => DEVICE_TYPE,
        "answer-4d" => CASH_IN_DRAWER,
        "answer-4a" => CLOSE_RECEIPT,
        _ => FN_REQUEST,
    };
    let fields = answer_fields(cmd, &v.bytes);
    if let Some(code) = want.get("error") {
        match fields {
            Err(kkm_core::error::DriverError::Device { raw, .. }) => {
                assert_eq!(raw, u16::from_str_radix(code, 16).unwrap(), "{}", v.name)
            }
            other => panic!("{}: expected device error {code}, got {other:?}", v.name),
        }
        return;
    }
    let f = fields.unwrap_or_else(|e| panic!("{}: {e}", v.name));
    let got: Vec<(String, String)> = match v.kind.as_str() {
        "answer-a5" => {
            let t = answers::device_type(&f).unwrap();
            vec![("model".into(), t.model.to_string()), ("name".into(), t.name)]
        }
        "answer-4d" => vec![("sum".into(), kkm_atol::bcd::decode(&f).unwrap().to_string())],
        "answer-4a" => vec![("fields".into(), hex::encode_upper(&f))],
        "answer-a4-30" => {
            let s = answers::fn_status(&f).unwrap();
            vec![
                ("phase".into(), s.phase.to_string()),
                ("document".into(), s.current_document.to_string()),
                ("shift_open".into(), u8::from(s.shift_open).to_string()),
                ("serial".into(), s.serial),
                ("last".into(), s.last_document_number.to_string()),
            ]
        }
        "answer-a4-20" => {
            let o = answers::ofd_status(&f).unwrap();
            let mut g = vec![("unsent".into(), o.unsent_count.to_string())];
            if let Some(n) = o.first_unsent_number {
                g.push(("first".into(), n.to_string()));
            }
            if let Some(at) = o.first_unsent_at {
                g.push(("at".into(), format!("{} {:02}:{:02}", at.date(), at.hour(), at.minute())));
            }
            g
        }
        "answer-a4-32" => vec![("until".into(), answers::fn_expiry(&f).unwrap().map(|d| d.to_string()).unwrap_or_default())],
        "answer-a4-10" => vec![("shift".into(), format!("{:?}", answers::shift_state(&f).unwrap()).to_lowercase())],
        "answer-a4-45" => {
            let (t, l) = answers::document_header(&f).unwrap();
            vec![("type".into(), t.to_string()), ("length".into(), l.to_string())]
        }
        "answer-a4-46" => {
            let (t, value) = answers::tlv(&f).unwrap();
            vec![("tag".into(), t.to_string()), ("length".into(), value.len().to_string())]
        }
        other => panic!("unknown kind {other}"),
    };
    for (k, g) in &got {
        if let Some(w) = want.get(k.as_str()) {
            assert_eq!(g, w, "{}: {k}", v.name);
        }
    }
    for k in want.keys() {
        assert!(got.iter().any(|(g, _)| g == k), "{}: {k} is not checked", v.name);
    }
}

#[test]
fn every_vector_round_trips() {
    let vs = vectors();
    assert!(vs.iter().filter(|v| v.name.contains("(verified)") || v.name.contains("(atol4j: ")).count() >= 7);
    for v in &vs {
        let (name, bytes) = (&v.name, &v.bytes);
        match v.kind.as_str() {
            "v3" => {
                let (p, used) = v3::decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}")).expect(name);
                assert_eq!(used, bytes.len(), "{name}");
                assert_eq!(&v3::encode(p.id, &p.data).unwrap(), bytes, "{name}");
            }
            "v3-bad" => assert!(v3::decode(bytes).is_err(), "{name} must be rejected"),
            "v2" => {
                let (data, used) = v2::decode(bytes).unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert_eq!(used, bytes.len());
                assert_eq!(&v2::encode(&data), bytes, "{name}");
            }
            "text" => {
                assert_eq!(kkm_atol::bcd::from_atol_text(bytes), v.expect, "{name}");
                assert_eq!(&kkm_atol::bcd::atol_text(&v.expect), bytes, "{name}");
            }
            "vat" => {
                assert_eq!(bytes.len(), 1, "{name}");
                assert_eq!(kkm_atol::commands::tax_code(rate(&v.expect)), Some(bytes[0]), "{name}");
                assert_eq!(kkm_atol::commands::tax_of(bytes[0]), Some(rate(&v.expect)), "{name}");
            }
            "vat-none" => assert_eq!(kkm_atol::commands::tax_code(rate(&v.expect)), None, "{name}"),
            k if k.starts_with("answer-") => check_answer(v),
            other => panic!("unknown kind {other}"),
        }
    }
}

#[test]
fn crc_check_value_and_arbitrary_input() {
    assert_eq!(v3::CRC8.checksum(b"123456789"), 0xF7);
    let mut x: u32 = 0xDEAD_BEEF;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let len = (x % 48) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|i| (x.rotate_left(i as u32) & 0xFF) as u8).collect();
        let _ = v3::decode(&bytes);
        let _ = v2::decode(&bytes);
        // Answer parsers never panic on bad wire input.
        use kkm_atol::answers;
        let _ = answers::device_type(&bytes);
        let _ = answers::fn_status(&bytes);
        let _ = answers::ofd_status(&bytes);
        let _ = answers::fn_expiry(&bytes);
        let _ = answers::shift_state(&bytes);
        let _ = answers::document_header(&bytes);
        let _ = answers::tlv(&bytes);
        let _ = answers::document_from_tlv(Some(3), &[bytes.clone(), bytes.iter().rev().copied().collect()]);
        let _ = kkm_atol::bcd::from_atol_text(&bytes);
        for cmd in [0x3F, 0xA5, 0x4D, 0xA4] {
            let _ = kkm_atol::driver::answer_fields(cmd, &bytes);
        }
        if let Some(b) = bytes.first_mut() {
            *b = v3::START;
        }
        let _ = v3::decode(&bytes);
    }
}

/// A receipt's TLV records (tags and encodings of the ФФД, as A4 46 returns them one by
/// one), read without the `A4 45` header: 1054 makes it a receipt.
#[test]
fn tlv_document_without_a_header_is_told_by_its_records() {
    use kkm_atol::answers::{document_from_tlv, encode_tlv};
    let records = vec![
        encode_tlv(1012, &1_764_150_000u32.to_le_bytes()),
        encode_tlv(1040, &298u32.to_le_bytes()),
        encode_tlv(1077, &[0x31, 0x04, 0xDE, 0xAD, 0xBE, 0xEF]),
        encode_tlv(1054, &[2]),
        encode_tlv(1020, &[0x10, 0x27]),
        encode_tlv(1059, &[0x01, 0x02, 0x03]),
    ];
    let d = document_from_tlv(None, &records).unwrap();
    assert_eq!(d.kind, kkm_core::DocumentKind::Receipt);
    assert_eq!(d.number, 298);
    assert_eq!(d.fiscal_sign, 0xDEAD_BEEF);
    assert_eq!(d.operation, Some(kkm_core::Operation::SaleReturn));
    assert_eq!(d.total, Some(kkm_core::Money(10_000)));
    assert_eq!(d.datetime.date().year(), 2025);
    let shift = document_from_tlv(Some(5), &records[..3]).unwrap();
    assert_eq!(shift.kind, kkm_core::DocumentKind::ShiftClose);
    assert!(document_from_tlv(None, &records[1..]).is_err(), "no 1012: malformed, not a panic");
}
