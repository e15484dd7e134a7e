//! What a register reports about itself, in protocol-neutral terms.

use crate::money::Money;
use crate::receipt::{Operation, PaymentType, TaxSystem};
use serde::{Deserialize, Serialize};
use time::PrimitiveDateTime;

/// The protocol family a unit speaks on its PC port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolFamily {
    /// Shtrih-M binary protocol (STX/LRC). Azur-01F.
    Shtrih,
    /// ATOL 3.x command set over the v3 (0xFE, CRC-8) or v2 (STX/ETX) link layer.
    /// The former working assumption for Neva-01-F; still available with `protocol = "atol"`.
    Atol,
    /// The Armax УМКА/МЕЩЕРА platform's HTTP+JSON API (Basic auth, port 8088). The working
    /// assumption for Neva-01-F (see `protocol-specs/umka.md`).
    Umka,
}

impl std::fmt::Display for ProtocolFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProtocolFamily::Shtrih => "shtrih",
            ProtocolFamily::Atol => "atol",
            ProtocolFamily::Umka => "umka",
        })
    }
}

/// Who the device is: the numbers an engineer checks against the registration card.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeviceIdentity {
    pub protocol: Option<ProtocolFamily>,
    /// Model id as the device reports it (Shtrih FC, ATOL A5).
    pub model_id: u16,
    pub model_name: String,
    pub firmware: String,
    /// Заводской номер (ЗН). Empty or all zeros means the number was lost.
    pub serial: String,
    /// Регистрационный номер ККТ (РНМ), 16 digits.
    pub rnm: String,
    /// ИНН пользователя.
    pub inn: String,
    /// Номер ФН, 16 digits.
    pub fn_serial: String,
    /// The ФФД version the register is registered with; `None` when the driver cannot
    /// read it (shown as «неизвестно», never guessed).
    #[serde(default)]
    pub ffd_version: Option<FfdVersion>,
    /// The tax systems (СНО) in the register's registration; `None` when the driver
    /// cannot read them.
    #[serde(default)]
    pub tax_systems: Option<TaxSystems>,
}

/// Версия ФФД, as tag 1209 (and the ФН's tag 1190) codes it: 1 = 1.0, 2 = 1.05,
/// 3 = 1.1, 4 = 1.2. Serialised as the version text, `"1.05"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FfdVersion {
    #[serde(rename = "1.0")]
    V1_0,
    #[serde(rename = "1.05")]
    V1_05,
    #[serde(rename = "1.1")]
    V1_1,
    #[serde(rename = "1.2")]
    V1_2,
}

impl FfdVersion {
    /// The tag-1209 code, or `None` for a code no ФФД defines (0: not reported).
    pub fn from_code(code: i64) -> Option<FfdVersion> {
        match code {
            1 => Some(FfdVersion::V1_0),
            2 => Some(FfdVersion::V1_05),
            3 => Some(FfdVersion::V1_1),
            4 => Some(FfdVersion::V1_2),
            _ => None,
        }
    }
    pub fn code(self) -> u8 {
        match self {
            FfdVersion::V1_0 => 1,
            FfdVersion::V1_05 => 2,
            FfdVersion::V1_1 => 3,
            FfdVersion::V1_2 => 4,
        }
    }
    /// The version as people write it: «1.05».
    pub fn as_str(self) -> &'static str {
        match self {
            FfdVersion::V1_0 => "1.0",
            FfdVersion::V1_05 => "1.05",
            FfdVersion::V1_1 => "1.1",
            FfdVersion::V1_2 => "1.2",
        }
    }
    /// Parses «1.05» (also «105», «1,05»).
    pub fn parse(s: &str) -> Option<FfdVersion> {
        match s.trim().replace(',', ".").as_str() {
            "1.0" | "1" | "100" => Some(FfdVersion::V1_0),
            "1.05" | "105" => Some(FfdVersion::V1_05),
            "1.1" | "110" => Some(FfdVersion::V1_1),
            "1.2" | "120" => Some(FfdVersion::V1_2),
            _ => None,
        }
    }
}

impl std::fmt::Display for FfdVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The registered tax systems: the bit mask of tag 1062 «системы налогообложения»
/// (bit 0 ОСН, 1 УСН доход, 2 УСН доход минус расход, 3 ЕНВД, 4 ЕСХН, 5 Патент; the
/// receipt's tag 1055 uses the same bits, see [`TaxSystem::bit`]). ЕНВД has no
/// [`TaxSystem`]: receipts cannot be sent with it, but an old registration may hold it.
/// Serialised as a list of names: `["osn", "usn_income"]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TaxSystems(pub u8);

/// Each tag-1062 bit: its JSON name and its Russian short name.
const TAX_BITS: [(u8, &str, &str); 6] = [
    (0x01, "osn", "ОСН"),
    (0x02, "usn_income", "УСН доход"),
    (0x04, "usn_income_outcome", "УСН доход минус расход"),
    (0x08, "envd", "ЕНВД"),
    (0x10, "esn", "ЕСХН"),
    (0x20, "patent", "Патент"),
];

impl TaxSystems {
    pub fn contains(self, t: TaxSystem) -> bool {
        self.0 & t.bit() != 0
    }
    /// JSON names of the set bits, in bit order (unknown high bits left out).
    pub fn names(self) -> Vec<&'static str> {
        TAX_BITS.iter().filter(|(b, _, _)| self.0 & b != 0).map(|(_, n, _)| *n).collect()
    }
    /// «ОСН, УСН доход»; «не указаны» for an empty mask.
    pub fn names_ru(self) -> String {
        let v: Vec<&str> = TAX_BITS.iter().filter(|(b, _, _)| self.0 & b != 0).map(|(_, _, r)| *r).collect();
        if v.is_empty() {
            "не указаны".to_string()
        } else {
            v.join(", ")
        }
    }
    /// Parses a list like `osn,usn-income` (JSON names, `-` or `_`).
    pub fn parse_list(s: &str) -> Option<TaxSystems> {
        let mut mask = 0u8;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let name = part.to_ascii_lowercase().replace('-', "_");
            mask |= TAX_BITS.iter().find(|(_, n, _)| *n == name)?.0;
        }
        Some(TaxSystems(mask))
    }
}

/// Russian short name of a receipt's tax system: «УСН доход».
pub fn tax_system_name_ru(t: TaxSystem) -> &'static str {
    TAX_BITS.iter().find(|(b, _, _)| *b == t.bit()).map_or("", |(_, _, r)| *r)
}

impl Serialize for TaxSystems {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

impl<'de> Deserialize<'de> for TaxSystems {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        TaxSystems::parse_list(&v.join(","))
            .ok_or_else(|| serde::de::Error::custom(format!("unknown tax system in {v:?}")))
    }
}

/// Состояние смены.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftState {
    Closed,
    Open,
    /// Open for more than 24 hours: only a Z-report is accepted.
    Expired,
}

impl ShiftState {
    /// As a cashier says it: «Смена: закрыта».
    pub fn name_ru(self) -> &'static str {
        match self {
            ShiftState::Closed => "закрыта",
            ShiftState::Open => "открыта",
            ShiftState::Expired => "открыта больше 24 часов",
        }
    }
}

/// A live snapshot of the device, cheap enough to poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub shift: ShiftState,
    pub shift_number: u32,
    /// A receipt is open on the device (started, not closed or cancelled).
    pub receipt_open: bool,
    pub paper_present: bool,
    /// Paper is back after it ran out mid-document, and the device waits for the host
    /// to finish that print ([`crate::FiscalDriver::continue_print`]) before anything.
    #[serde(default)]
    pub awaiting_continue: bool,
    pub cover_open: bool,
    /// The device's clock.
    #[serde(with = "crate::device::dt")]
    pub clock: PrimitiveDateTime,
    /// The raw mode as the protocol reports it, for engineers.
    pub mode_raw: u8,
    pub submode_raw: u8,
}

/// Фаза жизни ФН.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FnPhase {
    /// Готовность к фискализации.
    Ready,
    /// Фискальный режим.
    Fiscal,
    /// Постфискальный режим (архив закрыт, только передача в ОФД).
    PostFiscal,
    /// Чтение данных из архива.
    Archive,
    Unknown,
}

impl FnPhase {
    /// The ФН's phase byte as FN status commands report it (both protocol families).
    pub fn from_code(code: u8) -> FnPhase {
        match code {
            0x01 => FnPhase::Ready,
            0x03 => FnPhase::Fiscal,
            0x07 => FnPhase::PostFiscal,
            0x0F => FnPhase::Archive,
            _ => FnPhase::Unknown,
        }
    }
}

/// The fiscal storage's own account of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FnStatus {
    pub serial: String,
    pub phase: FnPhase,
    /// Номер последнего фискального документа. The anchor of exactly-once recovery.
    pub last_document_number: u32,
    pub shift_open: bool,
    /// A document (receipt) is started in the ФН but not closed.
    pub document_open: bool,
    /// ФН warning flags as reported (replace soon, resource, memory, OFD timeout).
    pub warnings: u8,
    #[serde(with = "crate::device::opt_date")]
    pub valid_until: Option<time::Date>,
}

/// Состояние обмена с ОФД.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfdStatus {
    pub unsent_count: u32,
    pub first_unsent_number: Option<u32>,
    #[serde(with = "crate::device::opt_dt")]
    pub first_unsent_at: Option<PrimitiveDateTime>,
}

/// The ОФД server the register sends its documents to, as its own settings hold it
/// (Shtrih: table 19 «Параметры ОФД», fields 1 and 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfdAddress {
    /// An IP address or a host name; empty when the setting is blank.
    pub host: String,
    pub port: u16,
}

/// Тип фискального документа.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    Registration,
    ShiftOpen,
    Receipt,
    Correction,
    ShiftClose,
    FnClose,
    CalculationReport,
    Other,
}

impl DocumentKind {
    /// The document's name as the ФФД calls it, for people.
    pub fn name_ru(self) -> &'static str {
        match self {
            DocumentKind::Registration => "отчёт о регистрации",
            DocumentKind::ShiftOpen => "отчёт об открытии смены",
            DocumentKind::Receipt => "кассовый чек",
            DocumentKind::Correction => "чек коррекции",
            DocumentKind::ShiftClose => "отчёт о закрытии смены",
            DocumentKind::FnClose => "отчёт о закрытии ФН",
            DocumentKind::CalculationReport => "отчёт о текущем состоянии расчётов",
            DocumentKind::Other => "другой документ",
        }
    }
}

/// A fiscal document read back from the ФН by its number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiscalDocument {
    pub number: u32,
    pub kind: DocumentKind,
    #[serde(with = "crate::device::dt")]
    pub datetime: PrimitiveDateTime,
    /// Фискальный признак документа (ФПД).
    pub fiscal_sign: u32,
    /// For receipts: the operation and the total.
    pub operation: Option<Operation>,
    pub total: Option<Money>,
    /// For shift documents.
    pub shift_number: Option<u32>,
    /// Sent to (and acknowledged by) the ОФД.
    pub ofd_acknowledged: bool,
    /// The agent's reference the receipt carries, for protocols that stamp one and read
    /// it back (УМКА: tag 1192); `None` where the protocol has none or the receipt
    /// carries none. See [`crate::FiscalDriver::receipt_reference`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// What a fiscalising command reports back: enough to find the document again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FiscalResult {
    /// Номер ФД.
    pub document_number: u32,
    /// ФП (фискальный признак).
    pub fiscal_sign: u32,
    /// The register's local time of the document (ISO 8601, no offset).
    #[serde(with = "crate::device::dt")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "2026-11-26T10:15:00"))]
    pub datetime: PrimitiveDateTime,
    pub shift_number: Option<u32>,
}

/// Money counters of the current shift, by payment type and operation: what an X-report
/// prints. Read without printing where the protocol allows (Shtrih registers, ATOL 0x91).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShiftTotals {
    pub shift_number: u32,
    /// Наличные в кассе.
    pub cash_in_drawer: Money,
    pub cash_ins: Money,
    pub cash_outs: Money,
    /// Sums by operation and payment type. Missing pairs are zero.
    pub by_operation: Vec<OperationTotals>,
    pub receipt_count: u32,
    /// Receipts by operation (the counters behind `receipt_count`). Missing ones are zero.
    #[serde(default)]
    pub receipts_by_operation: Vec<OperationCount>,
    /// When the shift was opened, by the device's clock. No counter holds it: the agent
    /// fills it from the ФН's shift-open document; drivers leave it `None`.
    #[serde(default, with = "crate::device::opt_dt")]
    pub opened_at: Option<PrimitiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationCount {
    pub operation: Operation,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationTotals {
    pub operation: Operation,
    pub payment: PaymentType,
    pub sum: Money,
}

impl ShiftTotals {
    pub fn sum(&self, op: Operation, pay: PaymentType) -> Money {
        Money(self.by_operation.iter().filter(|t| t.operation == op && t.payment == pay).map(|t| t.sum.0).sum())
    }
    pub fn count(&self, op: Operation) -> u32 {
        self.receipts_by_operation.iter().filter(|c| c.operation == op).map(|c| c.count).sum()
    }
}

/// Serde for device date-times as `YYYY-MM-DDTHH:MM:SS` (the device has no time zone).
pub mod dt {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::macros::format_description;
    use time::PrimitiveDateTime;
    const F: &[time::format_description::FormatItem<'static>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    pub fn serialize<S: Serializer>(v: &PrimitiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.format(F).map_err(serde::ser::Error::custom)?)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PrimitiveDateTime, D::Error> {
        let s = String::deserialize(d)?;
        PrimitiveDateTime::parse(&s, F).map_err(serde::de::Error::custom)
    }
    pub fn format(v: &PrimitiveDateTime) -> String {
        v.format(F).unwrap_or_default()
    }
}

pub mod opt_dt {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::PrimitiveDateTime;
    pub fn serialize<S: Serializer>(v: &Option<PrimitiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::dt::serialize(v, s),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PrimitiveDateTime>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "super::dt")] PrimitiveDateTime);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

pub mod opt_date {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::macros::format_description;
    use time::Date;
    const F: &[time::format_description::FormatItem<'static>] = format_description!("[year]-[month]-[day]");
    pub fn serialize<S: Serializer>(v: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&v.format(F).map_err(serde::ser::Error::custom)?),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| Date::parse(&s, F).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod registration_tests {
    use super::*;

    #[test]
    fn tax_systems_names_and_json() {
        // Tag 1062 bits: 0 ОСН, 1 УСН доход, 2 УСН доход минус расход, 3 ЕНВД, 4 ЕСХН, 5 Патент.
        let all = TaxSystems(63);
        assert_eq!(all.names(), ["osn", "usn_income", "usn_income_outcome", "envd", "esn", "patent"]);
        assert_eq!(TaxSystems(0x06).names_ru(), "УСН доход, УСН доход минус расход");
        assert_eq!(TaxSystems(0).names_ru(), "не указаны");
        assert!(TaxSystems(0x02).contains(TaxSystem::UsnIncome));
        assert!(!TaxSystems(0x01).contains(TaxSystem::UsnIncome));
        assert_eq!(serde_json::to_string(&TaxSystems(0x21)).unwrap(), r#"["osn","patent"]"#);
        assert_eq!(serde_json::from_str::<TaxSystems>(r#"["osn","patent"]"#).unwrap(), TaxSystems(0x21));
        assert_eq!(TaxSystems::parse_list("osn, usn-income"), Some(TaxSystems(0x03)));
        assert_eq!(TaxSystems::parse_list("usn"), None);
        assert_eq!(tax_system_name_ru(TaxSystem::UsnIncomeOutcome), "УСН доход минус расход");
    }

    #[test]
    fn ffd_versions() {
        assert_eq!(FfdVersion::from_code(2), Some(FfdVersion::V1_05));
        assert_eq!(FfdVersion::from_code(0), None);
        assert_eq!(serde_json::to_string(&FfdVersion::V1_2).unwrap(), r#""1.2""#);
        assert_eq!(FfdVersion::parse("1,05"), Some(FfdVersion::V1_05));
        assert_eq!(FfdVersion::V1_1.code(), 3);
    }
}
