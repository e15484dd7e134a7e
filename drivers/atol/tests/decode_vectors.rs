//! `kkm-agent decode` on the frames of `protocol-specs/vectors/atol.txt` (v3 packets
//! verified against public clients, atol4j's captured async result, v2 frames) and on
//! whole exchanges built from the answer layouts there.

use kkm_atol::decode::{decode, Link};
use kkm_atol::{v2, v3};
use kkm_core::capture::{Checksum, Chunk, DecodedFrame, Direction, FrameKind};

fn vectors() -> Vec<(String, String, Vec<u8>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../protocol-specs/vectors/atol.txt");
    let text = std::fs::read_to_string(path).expect("vector file");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let parts: Vec<&str> = l.split('|').map(str::trim).collect();
            (parts[0].to_string(), parts[1].to_string(), kkm_core::capture_text::parse_hex(parts[2]).unwrap_or_default())
        })
        .collect()
}

fn get(name: &str) -> Vec<u8> {
    vectors().into_iter().find(|v| v.0.starts_with(name)).unwrap_or_else(|| panic!("no vector {name}")).2
}

fn chunk(direction: Direction, bytes: Vec<u8>) -> Chunk {
    Chunk { direction, bytes, line: 1 }
}

fn field<'a>(f: &'a DecodedFrame, name_en: &str) -> &'a str {
    f.fields.iter().find(|x| x.name_en == name_en).map(|x| x.value.as_str()).unwrap_or_else(|| panic!("no {name_en} in {f:#?}"))
}

#[test]
fn every_link_vector_decodes_with_its_verdict() {
    for (name, kind, bytes) in vectors() {
        let link = match kind.as_str() {
            "v3" | "v3-bad" => Link::V3,
            "v2" => Link::V2,
            _ => continue,
        };
        let frames = decode(&[chunk(Direction::Unknown, bytes)], link);
        assert_eq!(frames.len(), 1, "{name}: {frames:#?}");
        let f = &frames[0];
        match kind.as_str() {
            "v3" => assert!(matches!(f.checksum, Checksum::Good { name: "CRC-8", .. }), "{name}: {f:#?}"),
            "v2" => assert!(matches!(f.checksum, Checksum::Good { name: "XOR", .. }), "{name}: {f:#?}"),
            _ => assert!(matches!(f.checksum, Checksum::Bad { .. }) || f.kind == FrameKind::Garbage, "{name}: {f:#?}"),
        }
    }
}

#[test]
fn vector_packets_are_named() {
    let one = |name: &str, link| decode(&[chunk(Direction::Unknown, get(name))], link).remove(0);
    let add = one("add-needresult-tid2-a5", Link::V3);
    assert_eq!(add.direction, Direction::ToDevice);
    assert!(add.direction_guessed);
    assert!(add.title.contains("ADD") && add.title.contains("A5h «тип устройства»"), "{}", add.title);
    assert_eq!(field(&add, "task id"), "02");
    assert!(one("abort", Link::V3).title.contains("ABORT"));
    assert!(one("req-tid2", Link::V3).title.contains("REQ"));
    assert!(one("empty-id1", Link::V3).title.contains("пустой пакет"));
    let bad = one("bad-crc", Link::V3);
    assert_eq!(bad.checksum, Checksum::Bad { name: "CRC-8", expected: 0x9D, got: 0x9E });
    let async_result = one("async-result-tid87", Link::V3);
    assert_eq!(async_result.direction, Direction::FromDevice);
    assert_eq!(field(&async_result, "task id"), "57");
    assert_eq!(field(&async_result, "packet id"), "F0");
    let v2_task = one("v2-device-type-request", Link::V2);
    assert!(v2_task.title.contains("A5h"), "{}", v2_task.title);
}

/// ADD → A3 answer matched by packet id, the answer's fields read with the driver's
/// parsers: the device type, the ФН status, and an error.
#[test]
fn v3_answers_are_named_after_their_task() {
    let add = |id: u8, tid: u8, task: &[u8]| {
        let mut d = vec![v3::ADD, v3::NEED_RESULT, tid];
        d.extend_from_slice(task);
        v3::encode(id, &d).unwrap()
    };
    let reply = |id: u8, answer: &[u8]| {
        let mut d = vec![v3::RESULT];
        d.extend_from_slice(answer);
        v3::encode(id, &d).unwrap()
    };
    let capture = [
        chunk(Direction::ToDevice, add(7, 2, &[0, 0, 0xA5])),
        chunk(Direction::FromDevice, reply(7, &get("a5-device-type"))),
        chunk(Direction::ToDevice, add(8, 3, &[0, 0, 0xA4, 0x30])),
        chunk(Direction::FromDevice, reply(8, &get("a4-30-fn-status"))),
        chunk(Direction::ToDevice, add(9, 4, &[0, 0, 0x4D])),
        chunk(Direction::FromDevice, reply(9, &get("4d-error"))),
    ];
    let f = decode(&capture, Link::V3);
    assert_eq!(f.len(), 6, "{f:#?}");
    assert!(f[1].title.contains("ответ на A5h"), "{}", f[1].title);
    assert_eq!(field(&f[1], "name"), "«АТОЛ 91Ф»");
    assert_eq!(field(&f[1], "type and model"), "1 76");
    assert_eq!(field(&f[3], "FN number"), "9960440300054321");
    assert_eq!(field(&f[3], "last document"), "298");
    let e = f[5].error.as_ref().unwrap();
    assert_eq!((e.raw, e.info.code), (0x66, "device.not_in_mode"));
}

#[test]
fn v2_session_with_controls_and_a_bad_check() {
    let task = v2::encode(&[0, 0, 0xA4, 0x32]);
    let answer = v2::encode(&get("a4-32-fn-expiry"));
    let mut corrupt = answer.clone();
    *corrupt.last_mut().unwrap() ^= 0xFF;
    let capture = [
        chunk(Direction::ToDevice, vec![v2::ENQ]),
        chunk(Direction::FromDevice, vec![v2::ACK]),
        chunk(Direction::ToDevice, [task, vec![v2::EOT]].concat()),
        chunk(Direction::FromDevice, [vec![v2::ENQ], corrupt].concat()),
        chunk(Direction::ToDevice, vec![v2::NAK]),
        chunk(Direction::FromDevice, answer),
    ];
    let f = decode(&capture, Link::V2);
    assert_eq!(f.len(), 8, "{f:#?}");
    assert!(f[2].title.contains("A4h") && f[2].title.contains("32h"), "{}", f[2].title);
    assert!(matches!(f[5].checksum, Checksum::Bad { name: "XOR", .. }));
    assert!(f[6].title.starts_with("NAK"));
    assert_eq!(field(&f[7], "FN valid until"), "2026-12-31");
}

#[test]
fn garbage_and_torn_packets_never_panic() {
    let good = v3::encode(1, &[v3::ABORT]).unwrap();
    for cut in 0..good.len() {
        let bytes = [&[0x41, 0x42][..], &good[..cut]].concat();
        let f = decode(&[chunk(Direction::FromDevice, bytes.clone())], Link::V3);
        assert_eq!(f[0].kind, FrameKind::Garbage);
        let _ = decode(&[chunk(Direction::Unknown, bytes)], Link::V2);
    }
}

/// Pseudo-random bytes, biased to the framing bytes, in every direction and on both
/// links: decoding never panics and accounts for every byte.
#[test]
fn random_bytes_never_panic() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let len = (next() % 64) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| match next() % 6 {
                0 => [v3::START, v3::ESC, v2::STX, v2::ETX, v2::DLE][(next() % 5) as usize],
                1 => [0xC1, 0xC2, 0xC3, 0xA3, 0xA6, 0x55, 0xA4][(next() % 7) as usize],
                2 => (next() % 8) as u8,
                _ => next() as u8,
            })
            .collect();
        for direction in [Direction::ToDevice, Direction::FromDevice, Direction::Unknown] {
            for link in [Link::V3, Link::V2] {
                let frames = decode(&[chunk(direction, bytes.clone())], link);
                assert_eq!(frames.iter().map(|f| f.raw.len()).sum::<usize>(), bytes.len(), "{bytes:02X?}");
            }
        }
    }
}
