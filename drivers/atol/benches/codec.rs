//! ATOL codec throughput (v3 and v2): encodes and decodes a typical EB position packet in
//! a loop and prints packets/s and MB/s. Run with `cargo bench -p kkm-atol`.

use kkm_atol::{bcd, v2, v3};
use kkm_core::{Money, Quantity};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let mut task = vec![0xC1, 0x01, 0x07, 0x00, 0x00, 0xEB, 0x00];
    task.extend(bcd::money(Money(45_050), 7));
    task.extend(bcd::quantity(Quantity(2000)));
    task.extend(bcd::money(Money(90_100), 7));
    task.extend([1]);
    task.extend(bcd::money(Money(16_247), 7));
    task.extend([1, 1, 4, 0]);
    task.extend(bcd::money(Money::ZERO, 7));
    task.extend([0, 0]);
    task.extend(bcd::atol_text("Шампунь для окрашенных волос 250 мл"));
    let n = 2_000_000u32;

    let t = Instant::now();
    let mut bytes = 0;
    for i in 0..n {
        let f = v3::encode(black_box((i % 0xDF) as u8), black_box(&task)).unwrap();
        bytes += f.len();
        black_box(f);
    }
    report("v3 encode", n, bytes, t);
    let frame = v3::encode(7, &task).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        black_box(v3::decode(black_box(&frame)).unwrap());
    }
    report("v3 decode", n, frame.len() * n as usize, t);

    let t = Instant::now();
    let mut bytes = 0;
    for _ in 0..n {
        let f = v2::encode(black_box(&task[3..]));
        bytes += f.len();
        black_box(f);
    }
    report("v2 encode", n, bytes, t);
    let frame = v2::encode(&task[3..]);
    let t = Instant::now();
    for _ in 0..n {
        black_box(v2::decode(black_box(&frame)).unwrap());
    }
    report("v2 decode", n, frame.len() * n as usize, t);
}

fn report(what: &str, n: u32, bytes: usize, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!("atol {what:<10} {:>12.0} packets/s {:>8.1} MB/s ({n} in {secs:.3} s)", f64::from(n) / secs, bytes as f64 / secs / 1e6);
}
