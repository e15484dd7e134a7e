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
    limits: Limits { max_item_name_chars: 128, max_items: 100, max_cashier_chars: 64, max_sum: Money(9_999_999_999) },
    chars_per_line: 32,
};
