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
