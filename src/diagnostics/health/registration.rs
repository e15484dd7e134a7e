//! What the register was registered with: the ФФД version and the tax systems (СНО).
//!
//! Both are shown as information (with «неизвестно» when the driver cannot read them,
//! never a guess), and one rule checks them against the agent: a receipt sent without
//! `tax_system` is fiscalised with the receipt API's default ([`TaxSystem::default`],
//! УСН доход); a register not registered with that system refuses such receipts. The
//! agent has no per-device default in its configuration, so the API default is the one
//! compared.

use super::{finding, Finding, Severity};
use kkm_core::device::tax_system_name_ru;
use kkm_core::{DeviceIdentity, TaxSystem};

pub(super) fn findings(id: &DeviceIdentity, out: &mut Vec<Finding>) {
    out.push(match id.ffd_version {
        Some(v) => finding(
            "registration.ffd",
            Severity::Info,
            format!("Версия ФФД, с которой зарегистрирована касса: {v}"),
            format!("The register is registered with FFD {v}"),
            "",
        ),
        None => finding(
            "registration.ffd",
            Severity::Info,
            "Версия ФФД: неизвестно (касса её не сообщает)".into(),
            "FFD version: unknown (the register does not report it)".into(),
            "",
        ),
    });
    let Some(taxes) = id.tax_systems else {
        out.push(finding(
            "registration.tax_systems",
            Severity::Info,
            "Системы налогообложения при регистрации: неизвестно (касса их не сообщает)".into(),
            "Registered tax systems: unknown (the register does not report them)".into(),
            "",
        ));
        return;
    };
    out.push(finding(
        "registration.tax_systems",
        Severity::Info,
        format!("Системы налогообложения при регистрации: {}", taxes.names_ru()),
        format!("Registered tax systems: {}", taxes.names().join(", ")),
        "",
    ));
    let default = TaxSystem::default();
    if taxes.0 != 0 && !taxes.contains(default) {
        let name = tax_system_name_ru(default);
        out.push(finding(
            "registration.default_tax_system_not_registered",
            Severity::Warning,
            format!(
                "Касса зарегистрирована с СНО «{}», а чеки, в которых кассовая программа не указала СНО, \
                 агент пробивает как «{name}» — такие чеки касса отклонит",
                taxes.names_ru()
            ),
            format!(
                "The register is registered with {} only; receipts sent without a tax system go as {:?} and will be refused",
                taxes.names().join(", "),
                default
            ),
            &format!(
                "Что делать: настройте кассовую программу так, чтобы в каждом чеке она указывала систему \
                 налогообложения, с которой зарегистрирована касса ({}); если касса должна работать на «{name}», \
                 перерегистрируйте её с этой системой в личном кабинете ФНС.",
                taxes.names_ru()
            ),
        )
        .for_cashier("Сообщите в поддержку кассовой программы: в каждом чеке она должна указывать систему налогообложения кассы."));
    }
}
