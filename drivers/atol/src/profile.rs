//! Model profiles of the ATOL family.

use kkm_core::{Limits, ModelProfile, Money, ProtocolFamily};

/// Нева-01-Ф, profiled as an ATOL-3.x-compatible core. The model id is our
/// assumption (no public list has it); `detect` reports what a real unit says.
pub const NEVA_01_F: ModelProfile = ModelProfile {
    key: "neva-01-f",
    name: "Нева-01-Ф",
    family: ProtocolFamily::Atol,
    model_ids: &[200],
    default_baud: 115_200,
    bauds: &[115_200, 57_600, 38_400, 19_200, 9_600],
    default_tcp_port: 5555,
    limits: Limits { max_item_name_chars: 128, max_items: 100, max_cashier_chars: 64, max_sum: Money(9_999_999_999), item_charset: kkm_core::text::Charset::Cp866 },
    chars_per_line: 32,
};
