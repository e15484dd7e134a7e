//! Model profiles of the Shtrih-M family.

use kkm_core::{Limits, ModelProfile, Money, ProtocolFamily};

/// АЗУР-01Ф: reports model id 45 in "get device type" (0xFC).
pub const AZUR_01F: ModelProfile = ModelProfile {
    key: "azur-01f",
    name: "АЗУР-01Ф",
    family: ProtocolFamily::Shtrih,
    model_ids: &[45],
    default_baud: 115_200,
    bauds: &[115_200, 57_600, 38_400, 19_200, 9_600, 4_800, 2_400],
    default_tcp_port: 7778,
    limits: Limits { max_item_name_chars: 128, max_items: 100, max_cashier_chars: 64, max_sum: Money(9_999_999_999), item_charset: kkm_core::text::Charset::Cp1251 },
    chars_per_line: 32,
};

/// Which unit answered "get device type". Model id 45 is shared: [UPD]
/// (`FirmwareUpdater.pas`) lists АЗУР-01Ф, ШТРИХ-СМАРТПОС-Ф and ШТРИХ-СМАРТПОС-МИНИ-Ф
/// under 45, so the name (the rest of the 0xFC answer) decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// What the unit is, in the vendor's naming.
    pub name: &'static str,
    /// Our profile, when kkm-agent supports this unit.
    pub profile: Option<&'static ModelProfile>,
}

pub fn identify(model_id: u16, reported_name: &str) -> Option<Unit> {
    if model_id != 45 {
        return None;
    }
    let n: String = reported_name.to_uppercase().chars().filter(|c| c.is_alphanumeric()).collect();
    Some(if n.contains("АЗУР") || n.contains("AZUR") {
        Unit { name: "АЗУР-01Ф", profile: Some(&AZUR_01F) }
    } else if n.contains("СМАРТПОСМИНИ") || n.contains("SMARTPOSMINI") {
        Unit { name: "ШТРИХ-СМАРТПОС-МИНИ-Ф", profile: None }
    } else if n.contains("СМАРТПОС") || n.contains("SMARTPOS") {
        Unit { name: "ШТРИХ-СМАРТПОС-Ф", profile: None }
    } else {
        Unit { name: "неизвестная ККТ с кодом модели 45 (АЗУР-01Ф, ШТРИХ-СМАРТПОС-Ф или ШТРИХ-СМАРТПОС-МИНИ-Ф)", profile: None }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_45_is_told_apart_by_name() {
        assert_eq!(identify(45, "АЗУР-01Ф").and_then(|u| u.profile).map(|p| p.key), Some("azur-01f"));
        let s = identify(45, "ШТРИХ-СМАРТПОС-Ф").unwrap();
        assert_eq!((s.name, s.profile), ("ШТРИХ-СМАРТПОС-Ф", None));
        assert_eq!(identify(45, "ШТРИХ-СМАРТПОС-МИНИ-Ф").unwrap().name, "ШТРИХ-СМАРТПОС-МИНИ-Ф");
        assert!(identify(45, "").unwrap().profile.is_none());
        assert!(identify(250, "ШТРИХ-М-01Ф").is_none());
    }
}
