//! A sniffed ATOL exchange turned into meaning, for `kkm-agent decode`.
//!
//! Both link layers are read with the driver's own codecs: v3 packets with
//! [`v3::decode_unchecked`] (the CRC-8 verdict shown, a bad packet read past), the task
//! buffer commands (ADD/REQ/ACK/ABORT) and the device's task states, matched by packet
//! id and task id as [`crate::link`] matches them; v2 frames with
//! [`v2::decode_unchecked`] and the ENQ/ACK/NAK/EOT line discipline. ATOL answers do
//! not name their command, so the decoder remembers which command each packet id (v3)
//! or the last frame (v2) carried and names the answer after it. The task and answer
//! fields are in [`crate::decode_fields`]. Pure: bytes in, frames out, never a panic.

use crate::decode_fields::{self, Task};
use crate::{v2, v3};
use kkm_core::capture::{runs, Checksum, Chunk, DecodedFrame, Direction, FrameKind, Run};
use std::collections::HashMap;

/// Which link layer the capture speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    V3,
    V2,
}

/// What the decoder remembers between frames: the task each packet id and task id
/// carried (v3) and the last task sent (v2).
#[derive(Default)]
struct Session {
    by_packet: HashMap<u8, Task>,
    by_tid: HashMap<u8, Task>,
    last_task: Option<Task>,
}

/// Decodes a whole capture. Chunks of one direction in a row are joined first.
pub fn decode(capture: &[Chunk], link: Link) -> Vec<DecodedFrame> {
    let mut s = Session::default();
    let mut out = Vec::new();
    for run in runs(capture) {
        match link {
            Link::V3 => v3_run(&run, &mut s, &mut out),
            Link::V2 => v2_run(&run, &mut s, &mut out),
        }
    }
    out
}

fn torn(dir: Direction, line: usize, raw: &[u8]) -> DecodedFrame {
    let mut f = DecodedFrame::new(dir, line, raw, FrameKind::Truncated, "кадр оборван (truncated frame)");
    f.note("данные кончились раньше объявленной длины или конца кадра (the bytes end before the frame does)");
    f
}

fn v3_run(run: &Run, s: &mut Session, out: &mut Vec<DecodedFrame>) {
    let (b, dir) = (&run.bytes[..], run.direction);
    let mut i = 0;
    while i < b.len() {
        let line = run.line_at(i);
        if b[i] != v3::START {
            let end = b[i..].iter().position(|x| *x == v3::START).map_or(b.len(), |p| i + p);
            out.push(DecodedFrame::garbage(dir, line, &b[i..end], "нет FE в начале: это не пакет АТОЛ v3 (no FE: not an ATOL v3 packet)"));
            i = end;
            continue;
        }
        match v3::decode_unchecked(&b[i..]) {
            Ok(None) => {
                out.push(torn(dir, line, &b[i..]));
                return;
            }
            Ok(Some((packet, got, used))) => {
                let expected = v3::crc(packet.id, &packet.data);
                let checksum = if got == expected {
                    Checksum::Good { name: "CRC-8", value: got }
                } else {
                    Checksum::Bad { name: "CRC-8", expected, got }
                };
                let mut f = v3_packet(&b[i..i + used], &packet, dir, s);
                f.line = line;
                if matches!(checksum, Checksum::Bad { .. }) {
                    f.note("пакет с неверной CRC ККТ и драйвер отбрасывают; поля ниже могут быть искажены (a packet with a bad CRC is dropped; the fields may be garbled)");
                }
                f.checksum = checksum;
                out.push(f);
                i += used;
            }
            Err(e) => {
                // Not a packet after all: skip to the next start byte.
                let end = b[i + 1..].iter().position(|x| *x == v3::START).map_or(b.len(), |p| i + 1 + p);
                let why = match e {
                    v3::FrameError::BadEscape => "неверная экранирующая последовательность FD (bad FD escape)",
                    _ => "неверные байты длины (bad length bytes)",
                };
                out.push(DecodedFrame::garbage(dir, line, &b[i..end], why));
                i = end;
            }
        }
    }
}

fn guess_v3(data: &[u8]) -> Direction {
    match data.first().copied() {
        Some(v3::ADD | v3::ACK | v3::REQ | v3::ABORT) => Direction::ToDevice,
        Some(0xA1..=0xA7 | 0xB1..=0xB4) => Direction::FromDevice,
        _ => Direction::Unknown,
    }
}

fn v3_packet(raw: &[u8], p: &v3::Packet, dir: Direction, s: &mut Session) -> DecodedFrame {
    let (direction, guessed) = match dir {
        Direction::Unknown => (guess_v3(&p.data), true),
        d => (d, false),
    };
    let mut f = match (direction, p.data.as_slice()) {
        (_, []) => {
            let mut f = DecodedFrame::new(direction, 0, raw, FrameKind::Frame, "пустой пакет: просьба повторить пакет с этим номером (empty packet: send that packet again)");
            f.field("номер пакета", "packet id", format!("{:02X}", p.id));
            f
        }
        (Direction::FromDevice, data) => device_packet(raw, p.id, data, s),
        (_, data) => host_packet(raw, p.id, data, s),
    };
    f.direction = direction;
    f.direction_guessed = guessed && direction != Direction::Unknown;
    f
}

fn host_packet(raw: &[u8], id: u8, data: &[u8], s: &mut Session) -> DecodedFrame {
    let (title, tid) = match data {
        [v3::ADD, _, tid, ..] => ("ADD: поставить задание в буфер ККТ (add a task)", Some(*tid)),
        [v3::ACK, tid, ..] => ("ACK: освободить выполненное задание (release a finished task)", Some(*tid)),
        [v3::REQ, tid, ..] => ("REQ: спросить о задании (ask about a task)", Some(*tid)),
        [v3::ABORT, ..] => ("ABORT: очистить буфер заданий (clear the task buffer)", None),
        _ => ("неизвестная команда буфера (unknown buffer command)", None),
    };
    let mut f = match data {
        [v3::ADD, flags, tid, task @ ..] => {
            let (mut f, t) = decode_fields::task(task, raw, title);
            if let Some(t) = t {
                s.by_packet.insert(id, t);
                s.by_tid.insert(*tid, t);
            }
            let mut flag_names = Vec::new();
            for (bit, name) in [(v3::NEED_RESULT, "NeedResult"), (v3::IGNORE_ERROR, "IgnoreError"), (v3::WAIT_ASYNC, "WaitAsyncData")] {
                if flags & bit != 0 {
                    flag_names.push(name);
                }
            }
            f.fields.insert(0, kkm_core::capture::Field { name_ru: "флаги", name_en: "flags", value: format!("{flags:02X} {}", flag_names.join(" ")) });
            f
        }
        _ => DecodedFrame::new(Direction::ToDevice, 0, raw, FrameKind::Frame, title),
    };
    if let Some(tid) = tid {
        if data[0] == v3::REQ {
            if let Some(t) = s.by_tid.get(&tid).copied() {
                s.by_packet.insert(id, t);
            }
        }
        f.fields.insert(0, kkm_core::capture::Field { name_ru: "номер задания", name_en: "task id", value: format!("{tid:02X}") });
    }
    f.fields.insert(0, kkm_core::capture::Field { name_ru: "номер пакета", name_en: "packet id", value: format!("{id:02X}") });
    f
}

fn device_packet(raw: &[u8], id: u8, data: &[u8], s: &Session) -> DecodedFrame {
    let state = data[0];
    let state_text = match state {
        v3::PENDING => "A1: задание ждёт очереди (pending)",
        v3::IN_PROGRESS => "A2: задание выполняется (in progress)",
        v3::RESULT => "A3: задание выполнено, результат (result)",
        v3::ERROR => "A4: задание завершилось ошибкой (error)",
        v3::STOPPED => "A5: задание остановлено или снято (stopped)",
        v3::ASYNC_RESULT => "A6: асинхронный результат (async result)",
        v3::ASYNC_ERROR => "A7: асинхронная ошибка (async error)",
        v3::OVERFLOW => "B1: буфер заданий переполнен (buffer overflow)",
        v3::TID_EXISTS => "B2: задание с таким номером уже есть (task id exists)",
        v3::NOT_FOUND => "B3: задания нет в буфере: ADD не дошёл (no such task)",
        v3::ILLEGAL => "B4: недопустимая команда буфера (illegal)",
        _ => "неизвестное состояние (unknown state)",
    };
    let (task, answer) = match data {
        [v3::ASYNC_RESULT | v3::ASYNC_ERROR, tid, rest @ ..] => (s.by_tid.get(tid).copied(), rest),
        [v3::RESULT | v3::ERROR, rest @ ..] => (s.by_packet.get(&id).copied(), rest),
        [_, rest @ ..] => (None, rest),
        [] => (None, &[][..]),
    };
    let mut f = if matches!(state, v3::RESULT | v3::ERROR | v3::ASYNC_RESULT | v3::ASYNC_ERROR) {
        decode_fields::answer(task, answer, raw, state_text)
    } else {
        let mut f = DecodedFrame::new(Direction::FromDevice, 0, raw, FrameKind::Frame, state_text);
        if !answer.is_empty() {
            f.field("данные", "data", kkm_core::capture::hex(answer));
        }
        f
    };
    if let [v3::ASYNC_RESULT | v3::ASYNC_ERROR, tid, ..] = data {
        f.fields.insert(0, kkm_core::capture::Field { name_ru: "номер задания", name_en: "task id", value: format!("{tid:02X}") });
    }
    f.fields.insert(0, kkm_core::capture::Field { name_ru: "номер пакета", name_en: "packet id", value: format!("{id:02X}") });
    f
}

fn v2_control(b: u8, dir: Direction, line: usize) -> DecodedFrame {
    let from_device = dir == Direction::FromDevice;
    let (name, title) = match b {
        v2::ENQ if from_device => ("ENQ", "ENQ: ККТ занимает линию, чтобы передать ответ (device takes the line to answer)"),
        v2::ENQ => ("ENQ", "ENQ: ПК занимает линию (PC takes the line)"),
        v2::ACK => ("ACK", "ACK: принято (accepted)"),
        v2::NAK => ("NAK", "NAK: кадр не принят (неверная контрольная сумма), повторить (frame refused, resend)"),
        _ => ("EOT", "EOT: конец передачи, линия свободна (end of transfer)"),
    };
    let mut f = DecodedFrame::new(dir, line, &[b], FrameKind::Control, title);
    f.field("управляющий байт", "control byte", name);
    f
}

fn v2_run(run: &Run, s: &mut Session, out: &mut Vec<DecodedFrame>) {
    let (b, dir) = (&run.bytes[..], run.direction);
    let is_link = |x: u8| matches!(x, v2::STX | v2::ENQ | v2::ACK | v2::NAK | v2::EOT);
    let mut i = 0;
    while i < b.len() {
        let line = run.line_at(i);
        match b[i] {
            v2::ENQ | v2::ACK | v2::NAK | v2::EOT => {
                out.push(v2_control(b[i], dir, line));
                i += 1;
            }
            v2::STX => match v2::decode_unchecked(&b[i..]) {
                Ok((data, expected, got, used)) => {
                    let raw = &b[i..i + used];
                    let direction = match dir {
                        Direction::Unknown if matches!(data.first().copied(), Some(crate::commands::ANSWER_U | crate::commands::ANSWER_D)) => Direction::FromDevice,
                        Direction::Unknown => Direction::ToDevice,
                        d => d,
                    };
                    let mut f = if direction == Direction::FromDevice {
                        decode_fields::answer(s.last_task, &data, raw, "ответ (answer)")
                    } else {
                        let (f, t) = decode_fields::task(&data, raw, "задание (task)");
                        s.last_task = t.or(s.last_task);
                        f
                    };
                    f.direction = direction;
                    f.direction_guessed = dir == Direction::Unknown;
                    f.line = line;
                    f.checksum = if got == expected {
                        Checksum::Good { name: "XOR", value: got }
                    } else {
                        f.note("кадр с неверной контрольной суммой отвергается (NAK); поля ниже могут быть искажены (refused with NAK; the fields may be garbled)");
                        Checksum::Bad { name: "XOR", expected, got }
                    };
                    out.push(f);
                    i += used;
                }
                Err(_) => {
                    out.push(torn(dir, line, &b[i..]));
                    return;
                }
            },
            _ => {
                let start = i;
                while i < b.len() && !is_link(b[i]) {
                    i += 1;
                }
                out.push(DecodedFrame::garbage(dir, line, &b[start..i], "нет STX в начале: это не кадр АТОЛ v2 (no STX: not an ATOL v2 frame)"));
            }
        }
    }
}
