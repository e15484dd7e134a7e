//! An independent client, written from the vendor's documented frames rather than from
//! our encoder, reads the emulator's status and ФН status over a real pseudo-terminal.

use kkm_emu::{listen, EmuIdentity, Emulator, FiscalCore, Listen};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn read_exact_timeout(port: &mut tokio_serial::SerialStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(5), port.read_exact(&mut buf)).await.expect("answer in time").unwrap();
    buf
}

fn lrc(b: &[u8]) -> u8 {
    b.iter().fold(0, |a, x| a ^ x)
}

/// Sends ENQ, expects NAK, sends a vendor frame, expects ACK and a well-formed answer.
async fn vendor_exchange(port: &mut tokio_serial::SerialStream, frame: &[u8]) -> Vec<u8> {
    port.write_all(&[0x05]).await.unwrap();
    assert_eq!(read_exact_timeout(port, 1).await, [0x15], "idle device answers ENQ with NAK");
    port.write_all(frame).await.unwrap();
    assert_eq!(read_exact_timeout(port, 1).await, [0x06], "device ACKs a good frame");
    let head = read_exact_timeout(port, 2).await;
    assert_eq!(head[0], 0x02);
    let rest = read_exact_timeout(port, usize::from(head[1]) + 1).await;
    let (payload, check) = rest.split_at(usize::from(head[1]));
    let mut covered = vec![head[1]];
    covered.extend_from_slice(payload);
    assert_eq!(lrc(&covered), check[0], "answer LRC");
    port.write_all(&[0x06]).await.unwrap();
    payload.to_vec()
}

#[tokio::test]
async fn vendor_status_and_fn_status_frames() {
    use tokio_serial::SerialPortBuilderExt;
    let core = FiscalCore::open(None, EmuIdentity::new("АЗУР-01Ф", "0000000045001234", "9960440300012345")).unwrap();
    let emu = Emulator::new(core);
    let ep = listen::start(&Listen::Pty, None, emu.clone(), Arc::new(kkm_shtrih::emulator::ShtrihEmulator::azur_01f()))
        .await
        .unwrap();
    let mut port = tokio_serial::new(&ep.port, 115_200).open_native_async().unwrap();

    // Short status, password 30 (vendor frame).
    let a = vendor_exchange(&mut port, &[0x02, 0x05, 0x10, 0x1E, 0x00, 0x00, 0x00, 0x0B]).await;
    assert_eq!(&a[..2], &[0x10, 0x00], "echo and success");
    assert_eq!(a.len(), 16, "N = 16 like the captured device");
    assert_eq!(a[5] & 0x0F, 4, "mode 4: shift closed");

    // FN status, password 30 (vendor frame).
    let a = vendor_exchange(&mut port, &[0x02, 0x06, 0xFF, 0x01, 0x1E, 0x00, 0x00, 0x00, 0xE6]).await;
    assert_eq!(&a[..3], &[0xFF, 0x01, 0x00]);
    let fields = &a[3..];
    assert_eq!(fields[0], 0x03, "fiscal mode");
    assert_eq!(&fields[10..26], b"9960440300012345", "FN number, ASCII");
    assert_eq!(u32::from_le_bytes(fields[26..30].try_into().unwrap()), 1, "last FD: the registration");

    // Get device type (vendor frame): model 45.
    let a = vendor_exchange(&mut port, &[0x02, 0x01, 0xFC, 0xFD]).await;
    assert_eq!(&a[..2], &[0xFC, 0x00]);
    assert_eq!(a[6], 45);
    drop(emu);
}
