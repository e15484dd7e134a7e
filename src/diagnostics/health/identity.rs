//! Who the register is: a lost ЗН, ИНН and РНМ check digits, the sticker's ЗН.

use super::{finding, Finding, Severity};
use kkm_core::checks::{self, SerialFormat};
use kkm_core::DeviceIdentity;

pub(super) fn findings(id: &DeviceIdentity, sticker: Option<&str>, out: &mut Vec<Finding>) {
    let lost = checks::serial_is_lost(&id.serial);
    if lost {
        out.push(finding(
            "identity.serial_lost",
            Severity::Critical,
            "Слетел заводской номер ККТ (ЗН): устройство сообщает пустой или нулевой номер".into(),
            "The factory number is lost: the device reports an empty or all-zero serial".into(),
            "Сверьте ЗН с наклейкой на корпусе (kkm-agent device … check --serial <ЗН>). Записать ЗН \
             обратно может только сервисный центр с ПО производителя; до этого не перерегистрируйте ККТ.",
        )
        .for_cashier("Позовите мастера: заводской номер ККТ восстанавливает сервисный центр."));
    }
    if !id.inn.trim().is_empty() && !checks::inn_is_valid(&id.inn) {
        out.push(finding(
            "identity.inn_invalid",
            Severity::Warning,
            format!("ИНН пользователя {} не проходит проверку контрольных цифр", id.inn.trim()),
            format!("The user's INN {} fails its check digits", id.inn.trim()),
            "Сверьте ИНН с карточкой регистрации ККТ; при ошибке нужна перерегистрация.",
        ));
    }
    let rnm = id.rnm.trim();
    if rnm.is_empty() || rnm.chars().all(|c| c == '0') {
        out.push(finding(
            "identity.not_registered",
            Severity::Warning,
            "ККТ не зарегистрирована: РНМ пуст".into(),
            "The device is not registered: the RNM is empty".into(),
            "Зарегистрируйте ККТ в ФНС и запишите РНМ в устройство.",
        ));
    } else if !lost {
        if checks::rnm_matches(rnm, &id.inn, &id.serial) {
            out.push(finding(
                "identity.rnm_ok",
                Severity::Ok,
                format!("РНМ {rnm} соответствует ЗН {} и ИНН {}", id.serial.trim(), id.inn.trim()),
                "The RNM's check digits match the serial and INN".into(),
                "",
            ));
        } else {
            out.push(finding(
                "identity.rnm_mismatch",
                Severity::Critical,
                format!("Контрольные цифры РНМ {rnm} не сходятся с ЗН {} и ИНН {}", id.serial.trim(), id.inn.trim()),
                "The RNM's check digits do not match the serial and INN".into(),
                "Возможные причины: слетел или изменён ЗН, в ККТ записан неверный ИНН, или ККТ \
                 зарегистрирована с другим номером. Сверьте ЗН с наклейкой и карточку регистрации.",
            ));
        }
    }
    if let Some(sticker) = sticker {
        out.push(sticker_finding(id, rnm, sticker.trim(), lost));
    }
}

/// The ЗН typed from the sticker: first its format, then against the РНМ.
fn sticker_finding(id: &DeviceIdentity, rnm: &str, sticker: &str, lost: bool) -> Finding {
    let why = match checks::serial_format(sticker) {
        SerialFormat::Ok => None,
        SerialFormat::Empty => Some("номер пустой"),
        SerialFormat::NotDigits => Some("в нём есть не только цифры"),
        SerialFormat::TooLong => Some("в нём больше 20 цифр"),
    };
    if let Some(why) = why {
        return finding(
            "identity.sticker_invalid",
            Severity::Warning,
            format!("Введённый ЗН «{sticker}» не может быть заводским номером: {why}"),
            format!("The typed serial {sticker:?} is not a factory number: 1 to 20 digits expected"),
            "Заводской номер состоит только из цифр (до 20). Перепишите его с наклейки на корпусе \
             без пробелов и букв; буква О вместо нуля — частая опечатка.",
        );
    }
    if checks::rnm_matches(rnm, &id.inn, sticker) {
        finding(
            "identity.sticker_confirmed",
            Severity::Ok,
            format!("ЗН с наклейки {sticker} подтверждён РНМ: это та самая ККТ"),
            "The sticker's serial is confirmed by the RNM".into(),
            if lost { "ЗН можно восстановить в сервисном центре по этому номеру." } else { "" },
        )
    } else {
        finding(
            "identity.sticker_mismatch",
            Severity::Critical,
            format!("ЗН с наклейки {sticker} не подходит к РНМ {rnm} и ИНН {}", id.inn.trim()),
            "The sticker's serial does not match the RNM and INN".into(),
            "Проверьте, что номер введён верно; иначе ККТ зарегистрирована на другой номер.",
        )
    }
}
