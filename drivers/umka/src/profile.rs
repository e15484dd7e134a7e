//! The model profile on the УМКА protocol.

use kkm_core::{Limits, ModelProfile, Money, ProtocolFamily};

/// Нева-01-Ф on the УМКА HTTP API (the working assumption, see `protocol-specs/umka.md`).
///
/// The API reports a model number (`model`, 200 on УМКА-01-ФА) and a name (`modelstr`);
/// what a Нева reports is not known, so detection matches the name, and `model_ids` is
/// empty. Names are at most 128 characters (tag 1030); money fields are JSON integers
/// in kopecks, so the limit is the ФН's, kept at the narrower ATOL bound the other
/// profiles share.
pub const NEVA_01_F_UMKA: ModelProfile = ModelProfile {
    key: "neva-01-f",
    name: "Нева-01-Ф",
    family: ProtocolFamily::Umka,
    model_ids: &[],
    default_baud: 0,
    bauds: &[],
    default_tcp_port: kkm_core::port::DEFAULT_HTTP_PORT,
    // The API is UTF-8 JSON; what the unit's printer can print is not known, so names
    // are held to the narrower code page the other profiles share.
    limits: Limits {
        max_item_name_chars: 128,
        max_items: 100,
        max_cashier_chars: 64,
        max_sum: Money(9_999_999_999),
        item_charset: kkm_core::text::Charset::Cp866,
    },
    chars_per_line: 32,
};

/// Does a `modelstr` name a Нева (Cyrillic or Latin spelling, any case)?
pub fn is_neva(modelstr: &str) -> bool {
    let up = modelstr.to_uppercase();
    up.contains("НЕВА") || up.contains("NEVA")
}
