//! The emulator against the vendor's protocol, byte by byte.
//!
//! A small client written here from the vendor's protocol description v1.17 and the
//! vendor's JavaPOS driver (not from our driver or codec) builds each frame by hand
//! and checks each answer. Every test names the source of the behaviour it checks;
//! `protocol-specs/shtrih-m.md` has the conformance table.

use kkm_emu::{listen, EmuIdentity, Emulator, FiscalCore, Listen};
use kkm_core::{Money, Operation, VatRate};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Client {
    port: tokio_serial::SerialStream,
    emu: Arc<Emulator>,
}

fn lrc(b: &[u8]) -> u8 {
    b.iter().fold(0, |a, x| a ^ x)
}

/// `STX | N | payload | LRC`, N = payload length, LRC = XOR of N and payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, payload.len() as u8];
    f.extend_from_slice(payload);
    f.push(lrc(&f[1..]));
    f
}

fn le(v: u64, n: usize) -> Vec<u8> {
    v.to_le_bytes()[..n].to_vec()
}

fn pw(p: u32) -> Vec<u8> {
    p.to_le_bytes().to_vec()
}

impl Client {
    async fn start() -> Client {
        let core = FiscalCore::open(None, EmuIdentity::new("АЗУР-01Ф", "0000000045001234", "9960440300012345")).unwrap();
        let emu = Emulator::new(core);
        let ep = listen::start(&Listen::Pty, None, emu.clone(), Arc::new(kkm_shtrih::emulator::ShtrihEmulator::azur_01f()))
            .await
            .unwrap();
        use tokio_serial::SerialPortBuilderExt;
        let port = tokio_serial::new(&ep.port, 115_200).open_native_async().unwrap();
        std::mem::forget(ep); // the emulator task lives as long as the test
        Client { port, emu }
    }

    async fn read(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        tokio::time::timeout(Duration::from_secs(5), self.port.read_exact(&mut buf)).await.expect("answer in time").unwrap();
        buf
    }

    /// One exchange: ENQ/NAK, frame/ACK, answer, ACK. Returns (error byte, fields).
    async fn call(&mut self, cmd: &[u8], params: &[u8]) -> (u8, Vec<u8>) {
        self.port.write_all(&[0x05]).await.unwrap();
        assert_eq!(self.read(1).await, [0x15], "idle device answers ENQ with NAK");
        let mut payload = cmd.to_vec();
        payload.extend_from_slice(params);
        self.port.write_all(&frame(&payload)).await.unwrap();
        assert_eq!(self.read(1).await, [0x06]);
        let head = self.read(2).await;
        assert_eq!(head[0], 0x02);
        let rest = self.read(usize::from(head[1]) + 1).await;
        let (body, check) = rest.split_at(usize::from(head[1]));
        let mut covered = vec![head[1]];
        covered.extend_from_slice(body);
        assert_eq!(lrc(&covered), check[0], "answer LRC");
        self.port.write_all(&[0x06]).await.unwrap();
        assert_eq!(&body[..cmd.len()], cmd, "command echo");
        (body[cmd.len()], body[cmd.len() + 1..].to_vec())
    }

    async fn ok(&mut self, cmd: &[u8], params: &[u8]) -> Vec<u8> {
        let (e, d) = self.call(cmd, params).await;
        assert_eq!(e, 0, "command {cmd:02X?} refused with {e:#04x}");
        d
    }

    async fn open_shift(&mut self) {
        self.ok(&[0xE0], &pw(30)).await;
    }

    /// FF46 ([V117] FF46): pw, operation, quantity(6), price(5), sum(5), tax(5),
    /// tax rate byte, department, 1214, 1212, name.
    fn ff46(password: u32, op: u8, qty_millionths: u64, price: u64, tax_byte: u8, name: &str) -> Vec<u8> {
        let mut p = pw(password);
        p.push(op);
        p.extend(le(qty_millionths, 6));
        p.extend(le(price, 5));
        p.extend([0xFF; 5]);
        p.extend([0xFF; 5]);
        p.extend([tax_byte, 1, 4, 1]);
        p.extend(encoding_rs::WINDOWS_1251.encode(name).0.iter());
        p
    }

    /// FF45 ([V117] FF45): system administrator's pw, 16 payment sums, rounding,
    /// 6 tax sums, tax system, text.
    fn ff45(password: u32, slots: &[(usize, u64)]) -> Vec<u8> {
        let mut p = pw(password);
        for i in 1..=16 {
            let v = slots.iter().find(|(s, _)| *s == i).map_or(0, |(_, v)| *v);
            p.extend(le(v, 5));
        }
        p.push(0);
        p.extend([0u8; 30]);
        p.push(0x01);
        p
    }
}

/// [JPOS] `FiscalPrinterImpl.getVatCodeShtrih` (2026-02-18), [OPOS] `GetFSTaxBits`,
/// [PHP] `VatType.php`: the FF46 tax byte is a code. 0x08 is «без НДС»; a table-row
/// reading would take it for row 8.
#[tokio::test]
async fn ff46_tax_byte_is_the_vendor_code() {
    let mut c = Client::start().await;
    c.open_shift().await;
    let codes = [
        (0x08, VatRate::NoVat),
        (0x04, VatRate::Vat0),
        (0x02, VatRate::Vat10),
        (0x20, VatRate::Vat10_110),
        (0x81, VatRate::Vat5),
        (0x82, VatRate::Vat7),
        (0x84, VatRate::Vat5_105),
        (0x88, VatRate::Vat7_107),
        (0xCB, VatRate::Vat22),
        (0xCC, VatRate::Vat22_122),
    ];
    for (byte, _) in codes {
        c.ok(&[0xFF, 0x46], &Client::ff46(30, 1, 1_000_000, 10_000, byte, "Товар")).await;
    }
    let lines: Vec<VatRate> = c.emu.core().receipt().unwrap().lines.iter().map(|l| l.vat).collect();
    assert_eq!(lines, codes.iter().map(|(_, r)| *r).collect::<Vec<_>>());
    // Two rate bits at once (what a row number 3 would send) and unknown codes are refused.
    for bad in [0x03, 0x06, 0x00, 0xFF, 0x90] {
        let (e, _) = c.call(&[0xFF, 0x46], &Client::ff46(30, 1, 1_000_000, 10_000, bad, "Товар")).await;
        assert_ne!(e, 0, "tax byte {bad:#04x} must be refused");
    }
}

/// [V117] FF01…FF45 name the system administrator's password; FF46 the operator's.
#[tokio::test]
async fn fn_commands_take_the_system_administrators_password() {
    let mut c = Client::start().await;
    for cmd in [[0xFF, 0x01], [0xFF, 0x02], [0xFF, 0x03], [0xFF, 0x39], [0xFF, 0x40]] {
        let (e, _) = c.call(&cmd, &pw(1)).await;
        assert_eq!(e, 0x4F, "{cmd:02X?} with the cashier's password");
        c.ok(&cmd, &pw(30)).await;
    }
    let (e, _) = c.call(&[0xFF, 0x0A], &[pw(1), le(1, 4)].concat()).await;
    assert_eq!(e, 0x4F);
    // Operator commands take any operator: cashier 1 opens the shift and sells.
    let (e, d) = c.call(&[0x10], &pw(1)).await;
    assert_eq!((e, d[0]), (0, 1), "short status names operator 1");
    c.ok(&[0xE0], &pw(1)).await;
    c.ok(&[0xFF, 0x46], &Client::ff46(1, 1, 1_000_000, 10_000, 0x08, "Товар")).await;
    let (e, _) = c.call(&[0xFF, 0x45], &Client::ff45(1, &[(1, 10_000)])).await;
    assert_eq!(e, 0x4F, "FF45 wants the system administrator");
    c.ok(&[0xFF, 0x45], &Client::ff45(30, &[(1, 10_000)])).await;
    // X and Z: administrator (29) or system administrator (30) only ([V117] 40h, 41h).
    let (e, _) = c.call(&[0x40], &pw(1)).await;
    assert_eq!(e, 0x4F);
    c.ok(&[0x40], &pw(29)).await;
}

/// [JPOS] `CashRegister.java`, `SMFiscalPrinterImpl.readDayPayments`: payment types
/// 1–4 in registers 193–208 (193 + operation + 4 × (type − 1)); types 5–16 in the
/// two-byte K-registers 4144 + operation + 4 × (type − 5). 209 is VAT turnover.
#[tokio::test]
async fn shift_payments_are_in_the_vendors_registers() {
    let mut c = Client::start().await;
    c.open_shift().await;
    // Sale paid: 100 cash, 200 electronic, 300 prepayment (14), 400 credit (15),
    // 500 other (16): one receipt of 1500,00.
    c.ok(&[0xFF, 0x46], &Client::ff46(30, 1, 1_000_000, 150_000, 0x08, "Услуга")).await;
    c.ok(&[0xFF, 0x45], &Client::ff45(30, &[(1, 10_000), (2, 20_000), (14, 30_000), (15, 40_000), (16, 50_000)])).await;
    let mut value = Vec::new();
    for n in [193u16, 197, 201, 205, 209, 4180, 4184, 4188, 4181] {
        // One byte for 0…255, two for the K-registers ([V117] 1Ah; [JPOS] ReadCashRegister).
        let mut p = pw(30);
        if n > 255 {
            p.extend(n.to_le_bytes());
        } else {
            p.push(n as u8);
        }
        let d = c.ok(&[0x1A], &p).await;
        assert_eq!(d.len(), 7, "operator + 6-byte value");
        value.push((n, u64::from_le_bytes([d[1], d[2], d[3], d[4], d[5], d[6], 0, 0])));
    }
    assert_eq!(
        value,
        vec![
            (193, 10_000), // cash, sale
            (197, 20_000), // type 2, sale
            (201, 0),      // type 3: nothing
            (205, 0),      // type 4: nothing
            (209, 0),      // VAT turnover, not a payment: «без НДС» has none
            (4180, 30_000), // type 14 prepayment, sale
            (4184, 40_000), // type 15 credit, sale
            (4188, 50_000), // type 16 other, sale
            (4181, 0),      // type 14, purchase
        ]
    );
}

/// [V117] lists no command 0Fh; identity comes from 11h (serial: low 4 bytes at 30,
/// high word after the ИНН) and FF09 (registration totals: ИНН, РНМ).
#[tokio::test]
async fn serial_from_full_status_and_rnm_from_registration_totals() {
    let mut c = Client::start().await;
    let (e, _) = c.call(&[0x0F], &pw(30)).await;
    assert_eq!(e, 0x37, "0Fh is not in the vendor's protocol");
    let d = c.ok(&[0x11], &pw(30)).await;
    assert!(d.len() >= 48, "11h answer with the serial's high word: {} bytes", d.len());
    let low = u32::from_le_bytes(d[30..34].try_into().unwrap());
    let high = u16::from_le_bytes(d[46..48].try_into().unwrap());
    assert_eq!((u64::from(high) << 32) | u64::from(low), 45_001_234);
    let d = c.ok(&[0xFF, 0x09], &pw(30)).await;
    let rnm = String::from_utf8_lossy(&d[17..37]).trim_matches(|c: char| c == '\0' || c == ' ').to_string();
    assert_eq!(rnm, c.emu.core().identity().rnm);
}

/// The registration, byte by byte from the spec, not from the driver: FF09's tax byte
/// right after the 20-character РНМ ([V117] FF09h; [JPOS] `FSReadFiscalization`), FF03's
/// «done» count ([PYS] 0xFF03), and FF0E (pw, report, tag LE) answering tag 1209 as a
/// TLV with a 1-byte value ([V117] FF0Eh; [JPOS] `FSRequestFiscalizationTag`, `TLVTags`).
#[tokio::test]
async fn registration_tax_byte_and_ffd_tag() {
    let mut c = Client::start().await;
    c.emu.core().set_tax_systems(0x05);
    c.emu.core().set_ffd(2);
    let d = c.ok(&[0xFF, 0x09], &pw(30)).await;
    assert_eq!(d[37], 0x05, "ОСН + УСН доход минус расход");
    let d = c.ok(&[0xFF, 0x03], &pw(30)).await;
    assert_eq!(d[4], 1, "registered once");
    let d = c.ok(&[0xFF, 0x0E], &[pw(30), vec![1], 1209u16.to_le_bytes().to_vec()].concat()).await;
    assert_eq!(d, [0xB9, 0x04, 0x01, 0x00, 0x02], "tag 1209, length 1, ФФД 1.05");
    let d = c.ok(&[0xFF, 0x0E], &[pw(30), vec![1], 1062u16.to_le_bytes().to_vec()].concat()).await;
    assert_eq!(d, [0x26, 0x04, 0x01, 0x00, 0x05]);
    let (e, _) = c.call(&[0xFF, 0x0E], &[pw(30), vec![2], 1209u16.to_le_bytes().to_vec()].concat()).await;
    assert_ne!(e, 0, "only report 1 exists");
    let (e, _) = c.call(&[0xFF, 0x0E], &[pw(29), vec![1], 1209u16.to_le_bytes().to_vec()].concat()).await;
    assert_eq!(e, 0x4F, "FF0E takes the system administrator's password");
}

/// Table 19 «Параметры ОФД» ([SETUP]; [JPOS] `MonitoringCommands`): row 1, field 1 the
/// server as 64 characters, field 2 the port as 2 bytes little-endian.
#[tokio::test]
async fn ofd_server_from_table_19() {
    let mut c = Client::start().await;
    c.emu.core().set_ofd_address("connect.ofd-ya.ru", 7779);
    let table = |field: u8| [pw(30), vec![19, 1, 0, field]].concat();
    let d = c.ok(&[0x1F], &table(1)).await;
    assert_eq!(d.len(), 64);
    assert_eq!(String::from_utf8_lossy(&d).trim_end_matches('\0'), "connect.ofd-ya.ru");
    assert_eq!(c.ok(&[0x1F], &table(2)).await, 7779u16.to_le_bytes());
    let (e, _) = c.call(&[0x1F], &[pw(30), vec![19, 2, 0, 1]].concat()).await;
    assert_ne!(e, 0, "only row 1 exists");
}

/// [V117] 50h, 80h, 85h: a sum field holds 0000000000…9999999999.
#[tokio::test]
async fn sums_beyond_the_documented_range_are_refused() {
    let mut c = Client::start().await;
    c.open_shift().await;
    let (e, _) = c.call(&[0x50], &[pw(30), le(10_000_000_000, 5)].concat()).await;
    assert_ne!(e, 0, "100 000 000,00 ₽ does not fit");
    assert_eq!(c.emu.core().registers().cash_in_drawer, Money::ZERO);
    c.ok(&[0x50], &[pw(30), le(9_999_999_999, 5)].concat()).await;
    // FF46: a given sum may differ from price × quantity by one kopeck at most.
    let mut p = Client::ff46(30, 1, 2_000_000, 10_000, 0x08, "Товар");
    p[16..21].copy_from_slice(&le(20_002, 5));
    let (e, _) = c.call(&[0xFF, 0x46], &p).await;
    assert_ne!(e, 0, "sum 200,02 for 2 × 100,00");
}

/// [V117] 80h, 82h, 85h; [PYS] `commands.py` `sale`, `return_sale`, `close_check`:
/// the classic receipt commands still work and fiscalise in the ФН.
#[tokio::test]
async fn classic_sale_and_close() {
    let mut c = Client::start().await;
    c.open_shift().await;
    let before = c.emu.core().last_document_number();
    // 80h: pw, quantity(5, thousandths), price(5), department, 4 tax groups, text(40).
    let mut sale = pw(1);
    sale.extend(le(2_000, 5));
    sale.extend(le(12_345, 5));
    sale.push(0);
    sale.extend([1, 0, 0, 0]);
    let mut text = encoding_rs::WINDOWS_1251.encode("Кофе").0.to_vec();
    text.resize(40, 0);
    sale.extend(&text);
    let d = c.ok(&[0x80], &sale).await;
    assert_eq!(d, [1], "80h answers the operator's number");
    {
        let core = c.emu.core();
        let r = core.receipt().expect("80h opens a sale receipt");
        assert_eq!(r.operation, Operation::Sale);
        assert_eq!(r.lines[0].amount, Money(24_690));
        assert_eq!(r.lines[0].vat, VatRate::Vat22, "tax group 1 is table 6 row 1");
    }
    // 85h: pw, cash, types 2–4, discount(2), 4 taxes, text(40) → operator, change(5).
    let mut close = pw(1);
    close.extend(le(30_000, 5));
    close.extend(le(0, 5));
    close.extend(le(0, 5));
    close.extend(le(0, 5));
    close.extend([0, 0]);
    close.extend([0, 0, 0, 0]);
    close.extend([0u8; 40]);
    let d = c.ok(&[0x85], &close).await;
    assert_eq!(d[0], 1);
    assert_eq!(u64::from_le_bytes([d[1], d[2], d[3], d[4], d[5], 0, 0, 0]), 5_310, "change");
    assert_eq!(c.emu.core().last_document_number(), before + 1, "the ФН made one receipt");
    // 82h: a sale return, classic style.
    c.ok(&[0x50], &[pw(1), le(100_000, 5)].concat()).await;
    c.ok(&[0x82], &sale).await;
    assert_eq!(c.emu.core().receipt().unwrap().operation, Operation::SaleReturn);
    c.ok(&[0x85], &[pw(1), le(24_690, 5), vec![0; 15], vec![0; 6], vec![0; 40]].concat()).await;
    assert_eq!(c.emu.core().last_document_number(), before + 2);
}

/// [V117] FF4D with [JPOS] `TLVTags` 2108 (one byte): the measure unit is bound to the
/// operation just added.
#[tokio::test]
async fn measure_unit_is_bound_to_the_last_operation() {
    let mut c = Client::start().await;
    c.open_shift().await;
    c.ok(&[0xFF, 0x46], &Client::ff46(30, 1, 750_000, 15_000, 0x08, "Яблоки")).await;
    c.ok(&[0xFF, 0x4D], &[pw(30), le(2108, 2), le(1, 2), vec![11]].concat()).await;
    assert_eq!(c.emu.core().receipt().unwrap().lines[0].measure_unit, Some(11));
    let (e, _) = c.call(&[0xFF, 0x4D], &[pw(30), le(2108, 2), le(1, 2), vec![99]].concat()).await;
    assert_ne!(e, 0, "99 is not a tag-2108 value");
}

/// [V117] 13h, 29h, 89h, 8Dh, FF3F: the other classic commands older software uses.
#[tokio::test]
async fn other_common_classic_commands() {
    let mut c = Client::start().await;
    assert_eq!(c.ok(&[0x13], &pw(1)).await, [1], "beep answers the operator");
    assert_eq!(c.ok(&[0x29], &[pw(1), vec![0x02, 3]].concat()).await, [1], "feed 3 lines");
    c.open_shift().await;
    // 8Dh opens an empty sale receipt; 89h reads its subtotal as lines are added.
    assert_eq!(c.ok(&[0x8D], &[pw(1), vec![0]].concat()).await, [1]);
    assert_eq!(c.emu.core().receipt().map(|r| r.operation), Some(Operation::Sale));
    c.ok(&[0xFF, 0x46], &Client::ff46(1, 1, 1_000_000, 12_345, 0x08, "Товар")).await;
    let d = c.ok(&[0x89], &pw(1)).await;
    assert_eq!((d[0], u64::from_le_bytes([d[1], d[2], d[3], d[4], d[5], 0, 0, 0])), (1, 12_345));
    c.ok(&[0xFF, 0x45], &Client::ff45(30, &[(1, 12_345)])).await;
    let (e, _) = c.call(&[0x89], &pw(1)).await;
    assert_eq!(e, 0x55, "no receipt open");
    // FF3F: documents without an ОФД receipt.
    let d = c.ok(&[0xFF, 0x3F], &pw(30)).await;
    assert_eq!(d.len(), 2);
}
