//! A sniffed Shtrih-M exchange turned into meaning, for `kkm-agent decode`.
//!
//! The link layer is read with the driver's own codec ([`crate::codec`]): ENQ, ACK,
//! NAK as one-byte controls (their meaning depends on what the other side said last,
//! as in [`crate::link`]), `STX N payload LRC` frames checked with [`codec::unframe`],
//! torn frames and noise shown as such. The payload's command and fields are named in
//! [`crate::decode_fields`]. Pure: bytes in, frames out, never a panic.

use crate::codec::{self, CodecError, ACK, ENQ, NAK, STX};
use crate::decode_fields;
use kkm_core::capture::{runs, Checksum, Chunk, DecodedFrame, Direction, FrameKind, Run};

/// What the computer sent last: an ACK or NAK from the register means different things
/// after an ENQ and after a command frame.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Nothing,
    Enq,
    Frame,
}

/// Decodes a whole capture. Chunks of one direction in a row are joined first.
pub fn decode(capture: &[Chunk]) -> Vec<DecodedFrame> {
    let mut out = Vec::new();
    let mut last = Last::Nothing;
    for run in runs(capture) {
        decode_run(&run, &mut last, &mut out);
    }
    out
}

fn is_link_byte(b: u8) -> bool {
    matches!(b, ENQ | ACK | NAK | STX)
}

fn decode_run(run: &Run, last: &mut Last, out: &mut Vec<DecodedFrame>) {
    let (b, dir) = (&run.bytes[..], run.direction);
    let mut i = 0;
    while i < b.len() {
        let line = run.line_at(i);
        match b[i] {
            ENQ | ACK | NAK => {
                out.push(control(b[i], dir, *last, line));
                if b[i] == ENQ && dir != Direction::FromDevice {
                    *last = Last::Enq;
                }
                i += 1;
            }
            STX => {
                let Some(&n) = b.get(i + 1) else {
                    out.push(torn(dir, line, &b[i..], "после STX нет байта длины (no length byte after STX)"));
                    break;
                };
                let end = i + 2 + usize::from(n) + 1;
                if end > b.len() {
                    let (want, got) = (end - i, b.len() - i);
                    let why = format!("по байту длины кадр занимает {want} байт, пришло {got} (the length byte makes it {want} bytes, got {got})");
                    out.push(torn(dir, line, &b[i..], &why));
                    break;
                }
                let frame = frame(&b[i..end], dir, line);
                if frame.direction != Direction::FromDevice {
                    *last = Last::Frame;
                }
                out.push(frame);
                i = end;
            }
            _ => {
                let start = i;
                while i < b.len() && !is_link_byte(b[i]) {
                    i += 1;
                }
                let why = if b[start..i].iter().all(|x| *x == 0xFF) {
                    "байты FF там, где ждали управляющий: так бывает по TCP, драйвер их пропускает (stray FF, seen over TCP; skipped)"
                } else {
                    "нет STX в начале: это не кадр Штрих-М (no STX: not a Shtrih-M frame)"
                };
                out.push(DecodedFrame::garbage(dir, line, &b[start..i], why));
            }
        }
    }
}

fn torn(dir: Direction, line: usize, raw: &[u8], why: &str) -> DecodedFrame {
    let mut f = DecodedFrame::new(dir, line, raw, FrameKind::Truncated, "кадр оборван (truncated frame)");
    f.note(why);
    f
}

fn control(b: u8, dir: Direction, last: Last, line: usize) -> DecodedFrame {
    let title = match (b, dir, last) {
        (ENQ, Direction::FromDevice, _) => "ENQ от ККТ: не по протоколу Штрих-М (ENQ from the device: not in this protocol)",
        (ENQ, _, _) => "ENQ: запрос состояния ККТ (enquiry: is an answer waiting?)",
        (NAK, Direction::FromDevice, Last::Frame) => "NAK: ККТ не приняла кадр, его можно повторить (frame refused)",
        (NAK, Direction::FromDevice, _) => "NAK: ККТ свободна, ответа в ожидании нет (idle, no answer pending)",
        (NAK, Direction::ToDevice, _) => "NAK: ПК не принял ответ (неверная LRC), просит повторить (answer refused, send again)",
        (NAK, Direction::Unknown, _) => "NAK: отказ или «свободна» (refused, or idle)",
        (ACK, Direction::FromDevice, Last::Enq) => "ACK: у ККТ есть ответ на прежнюю команду, он следует (an answer is waiting and follows)",
        (ACK, Direction::FromDevice, _) => "ACK: ККТ приняла кадр (frame accepted)",
        (ACK, Direction::ToDevice, _) => "ACK: ПК принял ответ (answer received)",
        _ => "ACK: подтверждение (acknowledge)",
    };
    let name = match b {
        ENQ => "ENQ",
        ACK => "ACK",
        _ => "NAK",
    };
    let mut f = DecodedFrame::new(dir, line, &[b], FrameKind::Control, title);
    f.field("управляющий байт", "control byte", name);
    f
}

/// One whole `STX N payload LRC` frame (its LRC may be wrong).
fn frame(raw: &[u8], dir: Direction, line: usize) -> DecodedFrame {
    let n = usize::from(raw[1]);
    let payload = &raw[2..2 + n];
    // The frame is whole here, so a bad LRC is the only way `unframe` can refuse it.
    let checksum = match codec::unframe(raw) {
        Err(CodecError::BadLrc { expected, got }) => Checksum::Bad { name: "LRC", expected, got },
        _ => Checksum::Good { name: "LRC", value: raw[2 + n] },
    };
    let Ok((cmd, params)) = codec::split_command(payload) else {
        let mut f = DecodedFrame::new(dir, line, raw, FrameKind::Frame, "пустой кадр (empty frame)");
        f.checksum = checksum;
        f.note("N = 0: в кадре нет команды (no command in the frame)");
        return f;
    };
    let (direction, guessed) = match dir {
        Direction::Unknown => (guess_direction(params), true),
        d => (d, false),
    };
    let mut f = if direction == Direction::ToDevice {
        decode_fields::request(cmd, params, raw)
    } else {
        decode_fields::answer(cmd, params, raw)
    };
    f.direction = direction;
    f.direction_guessed = guessed;
    f.line = line;
    if let Checksum::Bad { .. } = checksum {
        f.note("кадр с неверной LRC ККТ и драйвер отвергают (NAK); поля ниже могут быть искажены (a frame with a bad LRC is refused; the fields may be garbled)");
    }
    f.checksum = checksum;
    f
}

/// A frame without a direction: a request carries a 4-byte password first, whose high
/// bytes are zero for every factory password (1…30), or nothing at all (FCh); an answer
/// carries the error byte and then fields. A guess, and shown as one.
fn guess_direction(params: &[u8]) -> Direction {
    if params.is_empty() || (params.len() >= 4 && params[1..4] == [0, 0, 0]) {
        Direction::ToDevice
    } else {
        Direction::FromDevice
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(direction: Direction, hex: &str) -> Chunk {
        Chunk { direction, bytes: kkm_core::capture_text::parse_hex(hex).unwrap(), line: 1 }
    }

    #[test]
    fn a_whole_exchange_with_controls() {
        let capture = [
            chunk(Direction::ToDevice, "05"),
            chunk(Direction::FromDevice, "15"),
            chunk(Direction::ToDevice, "02 05 10 1E 00 00 00 0B"),
            chunk(Direction::FromDevice, "06 02 02 10 6B 79"),
            chunk(Direction::ToDevice, "06"),
        ];
        let f = decode(&capture);
        assert_eq!(f.len(), 6);
        assert!(f[1].title.contains("свободна"), "{}", f[1].title);
        assert!(f[3].title.contains("приняла кадр"), "{}", f[3].title);
        assert_eq!(f[4].error.as_ref().unwrap().info.code, "device.paper_out");
        assert!(f[5].title.contains("ПК принял ответ"));
    }

    /// Pseudo-random bytes, biased to the link bytes and frame starts, in every
    /// direction: decoding never panics and accounts for every byte.
    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
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
                    0 => STX,
                    1 => [ENQ, ACK, NAK, 0xFF][(next() % 4) as usize],
                    2 => (next() % 8) as u8,
                    _ => next() as u8,
                })
                .collect();
            for direction in [Direction::ToDevice, Direction::FromDevice, Direction::Unknown] {
                let frames = decode(&[Chunk { direction, bytes: bytes.clone(), line: 1 }]);
                assert_eq!(frames.iter().map(|f| f.raw.len()).sum::<usize>(), bytes.len());
            }
        }
    }

    #[test]
    fn torn_and_garbage_never_panic() {
        for len in 0..12 {
            let bytes: Vec<u8> = [0x02, 0x05, 0x10, 0x1E, 0x00, 0x00, 0x00, 0x0B, 0x02, 0xFF, 0x41, 0x02][..len].to_vec();
            let _ = decode(&[Chunk { direction: Direction::Unknown, bytes, line: 0 }]);
        }
        let f = decode(&[chunk(Direction::FromDevice, "41 42 02 05 10")]);
        assert_eq!(f[0].kind, FrameKind::Garbage);
        assert_eq!(f[1].kind, FrameKind::Truncated);
    }
}
