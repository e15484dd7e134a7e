//! Shtrih codec throughput: encodes and decodes a typical FF46 item frame in a loop and
//! prints frames/s and MB/s. Run with `cargo bench -p kkm-shtrih`. Figures, not asserts.

use kkm_core::{Money, Quantity};
use kkm_shtrih::codec::{self, Answer, Writer};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let params = Writer::new()
        .u32(30)
        .u8(1)
        .quantity6(Quantity(2000))
        .money(Money(45_050))
        .money(Money(90_100))
        .bytes(&[0xFF; 5])
        .u8(2)
        .u8(1)
        .u8(4)
        .u8(1)
        .text("Шампунь для окрашенных волос 250 мл", 128)
        .done();
    let n = 2_000_000u32;
    let started = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..n {
        let f = codec::request(black_box(0xFF46), black_box(&params)).unwrap();
        bytes += f.len();
        black_box(f);
    }
    report("encode FF46", n, bytes, started);

    let frame = codec::request(0xFF46, &params).unwrap();
    let started = Instant::now();
    for _ in 0..n {
        let p = codec::unframe(black_box(&frame)).unwrap();
        black_box(Answer::parse(p).unwrap());
    }
    report("decode FF46", n, frame.len() * n as usize, started);
}

fn report(what: &str, n: u32, bytes: usize, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "shtrih {what:<12} {:>12.0} frames/s {:>8.1} MB/s ({n} frames in {secs:.3} s)",
        f64::from(n) / secs,
        bytes as f64 / secs / 1e6
    );
}
