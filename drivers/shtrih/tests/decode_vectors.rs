//! `kkm-agent decode` on the frames of `protocol-specs/vectors/shtrih-m.txt`: the
//! vendor's documented frames, a real unit's captured FF01 answer, and the bad ones.

use kkm_core::capture::{Checksum, Chunk, DecodedFrame, Direction, FrameKind};
use kkm_shtrih::decode::decode;

fn vectors() -> Vec<(String, String, Vec<u8>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../protocol-specs/vectors/shtrih-m.txt");
    let text = std::fs::read_to_string(path).expect("vector file");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let parts: Vec<&str> = l.split('|').map(str::trim).collect();
            (parts[0].to_string(), parts[1].to_string(), kkm_core::capture_text::parse_hex(parts[2]).expect("hex"))
        })
        .collect()
}

fn one(direction: Direction, bytes: &[u8]) -> DecodedFrame {
    let frames = decode(&[Chunk { direction, bytes: bytes.to_vec(), line: 1 }]);
    assert_eq!(frames.len(), 1, "{frames:#?}");
    frames.into_iter().next().unwrap()
}

fn field<'a>(f: &'a DecodedFrame, name_en: &str) -> &'a str {
    f.fields.iter().find(|x| x.name_en == name_en).map(|x| x.value.as_str()).unwrap_or_else(|| panic!("no {name_en} in {f:#?}"))
}

#[test]
fn every_vector_decodes_with_its_verdict_and_a_known_command() {
    let vs = vectors();
    assert!(vs.len() >= 20);
    for (name, kind, bytes) in vs {
        match kind.as_str() {
            "request" | "answer" => {
                let dir = if kind == "request" { Direction::ToDevice } else { Direction::FromDevice };
                let f = one(dir, &bytes);
                assert_eq!(f.kind, FrameKind::Frame, "{name}");
                assert!(matches!(f.checksum, Checksum::Good { name: "LRC", .. }), "{name}: {:?}", f.checksum);
                assert!(!f.title.contains("неизвестна"), "{name}: {}", f.title);
                // Without a direction the guess must agree with the vector's kind.
                let guessed = one(Direction::Unknown, &bytes);
                assert_eq!(guessed.direction, dir, "{name}: guessed the wrong direction");
                assert!(guessed.direction_guessed);
            }
            "bad" => {
                let f = one(Direction::ToDevice, &bytes);
                let ok = matches!(f.checksum, Checksum::Bad { .. }) || f.kind == FrameKind::Truncated;
                assert!(ok, "{name}: {f:#?}");
            }
            other => panic!("unknown kind {other}"),
        }
    }
}

#[test]
fn the_captured_fn_status_answer_reads_as_the_unit_meant() {
    let v = vectors().into_iter().find(|v| v.0.starts_with("fn-status-answer-captured")).unwrap();
    let f = one(Direction::FromDevice, &v.2);
    assert!(f.title.contains("FF01h"), "{}", f.title);
    assert_eq!(field(&f, "FN number"), "9287440301120991");
    assert_eq!(field(&f, "last document"), "425");
    assert_eq!(field(&f, "FN date-time"), "2021-07-29 11:29");
    // The fourth byte is 01: by [V117] FF01's layout the shift is open (the vector's
    // comment says "shift closed"; the bytes decide).
    assert_eq!(field(&f, "shift open"), "да (yes)");
    assert!(f.error.is_none());
}

#[test]
fn sale_line_short_status_and_errors_are_named() {
    let vs = vectors();
    let get = |n: &str| vs.iter().find(|v| v.0.starts_with(n)).unwrap().2.clone();
    let sale = one(Direction::ToDevice, &get("ff46-sale-no-vat"));
    assert_eq!(field(&sale, "price"), "100,00 руб. (10000 коп.)");
    assert_eq!(field(&sale, "quantity"), "1.000000");
    assert!(field(&sale, "VAT code").starts_with("08 БЕЗ НДС"), "{}", field(&sale, "VAT code"));
    assert_eq!(field(&sale, "name"), "«A»");
    let vat22 = one(Direction::ToDevice, &get("ff46-sale-vat22"));
    assert!(field(&vat22, "VAT code").starts_with("CB НДС 22%"));
    let status = one(Direction::FromDevice, &get("short-status-shift-open"));
    assert!(field(&status, "mode").contains("смена открыта"), "{}", field(&status, "mode"));
    let paper = one(Direction::FromDevice, &get("no-paper-error"));
    let e = paper.error.as_ref().unwrap();
    assert_eq!((e.raw, e.info.code), (0x6B, "device.paper_out"));
    assert!(paper.render(1).contains("Нет чековой ленты / Out of receipt paper"));
    let cash = one(Direction::ToDevice, &get("cash-in-100-roubles"));
    assert_eq!(field(&cash, "sum"), "100,00 руб. (10000 коп.)");
    assert_eq!(field(&cash, "password"), "30");
    let bad = one(Direction::ToDevice, &get("bad-lrc"));
    assert_eq!(bad.checksum, Checksum::Bad { name: "LRC", expected: 0x0B, got: 0x0C });
}
