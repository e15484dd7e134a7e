//! Codec tests driven by `protocol-specs/vectors/atol.txt`, both directions, including
//! the frames verified in the research notes.

use kkm_atol::{v2, v3};

fn vectors() -> Vec<(String, String, Vec<u8>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../protocol-specs/vectors/atol.txt");
    std::fs::read_to_string(path)
        .expect("vector file")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let p: Vec<&str> = l.split('|').map(str::trim).collect();
            assert_eq!(p.len(), 3, "bad line {l:?}");
            let hex: String = p[2].split_whitespace().collect();
            (p[0].to_string(), p[1].to_string(), hex::decode(hex).unwrap())
        })
        .collect()
}

#[test]
fn every_vector_round_trips() {
    let vs = vectors();
    assert!(vs.iter().filter(|v| v.0.contains("(verified)")).count() >= 5);
    for (name, kind, bytes) in vs {
        match kind.as_str() {
            "v3" => {
                let (p, used) = v3::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}")).expect(&name);
                assert_eq!(used, bytes.len(), "{name}");
                assert_eq!(v3::encode(p.id, &p.data).unwrap(), bytes, "{name}");
            }
            "v3-bad" => assert!(v3::decode(&bytes).is_err(), "{name} must be rejected"),
            "v2" => {
                let (data, used) = v2::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert_eq!(used, bytes.len());
                assert_eq!(v2::encode(&data), bytes, "{name}");
            }
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
        if let Some(b) = bytes.first_mut() {
            *b = v3::START;
        }
        let _ = v3::decode(&bytes);
    }
}
