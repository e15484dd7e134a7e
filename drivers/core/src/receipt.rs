//! The receipt (кассовый чек) as the shop program sends it.
//!
//! This is the single serde type behind `POST /api/v1/receipts` and
//! `kkm-agent device … receipt FILE.json`. Unknown fields are rejected so that a typo in
//! the shop program (`"pamyents"`) fails loudly instead of printing a receipt without
//! payments. Money fields are integer kopecks.
//!
//! [`Receipt::validate`] checks everything that can be checked without a device:
//! non-empty items, positive sums without overflow, payments covering the total, and
//! text lengths the device can print. Drivers may assume a validated receipt.

use crate::money::{Money, Quantity};
use crate::text::{self, Charset};
use serde::{Deserialize, Serialize};

/// Признак расчёта (tag 1054).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Приход.
    Sale,
    /// Возврат прихода.
    SaleReturn,
    /// Расход.
    Purchase,
    /// Возврат расхода.
    PurchaseReturn,
}

impl Operation {
    /// The tag-1054 value, shared by both protocol families' FN documents.
    pub fn code(self) -> u8 {
        match self {
            Operation::Sale => 1,
            Operation::SaleReturn => 2,
            Operation::Purchase => 3,
            Operation::PurchaseReturn => 4,
        }
    }
    pub fn from_code(c: u8) -> Option<Operation> {
        Some(match c {
            1 => Operation::Sale,
            2 => Operation::SaleReturn,
            3 => Operation::Purchase,
            4 => Operation::PurchaseReturn,
            _ => return None,
        })
    }
    /// Does money come into the drawer (sale, purchase return) or go out?
    pub fn is_income(self) -> bool {
        matches!(self, Operation::Sale | Operation::PurchaseReturn)
    }
    pub fn name_ru(self) -> &'static str {
        match self {
            Operation::Sale => "Приход",
            Operation::SaleReturn => "Возврат прихода",
            Operation::Purchase => "Расход",
            Operation::PurchaseReturn => "Возврат расхода",
        }
    }
}

/// Ставка НДС (tag 1199) as in force in 2026. The default is 22 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum VatRate {
    #[default]
    #[serde(rename = "vat22")]
    Vat22,
    #[serde(rename = "vat10")]
    Vat10,
    #[serde(rename = "vat5")]
    Vat5,
    #[serde(rename = "vat7")]
    Vat7,
    #[serde(rename = "vat0")]
    Vat0,
    /// Без НДС.
    #[serde(rename = "none")]
    NoVat,
    /// Расчётная ставка 22/122.
    #[serde(rename = "vat122")]
    Vat22_122,
    #[serde(rename = "vat110")]
    Vat10_110,
    #[serde(rename = "vat105")]
    Vat5_105,
    #[serde(rename = "vat107")]
    Vat7_107,
}

impl VatRate {
    pub const ALL: [VatRate; 10] = [
        VatRate::Vat22,
        VatRate::Vat10,
        VatRate::Vat5,
        VatRate::Vat7,
        VatRate::Vat0,
        VatRate::NoVat,
        VatRate::Vat22_122,
        VatRate::Vat10_110,
        VatRate::Vat5_105,
        VatRate::Vat7_107,
    ];

    /// The rate as (numerator, denominator) applied to a VAT-inclusive amount,
    /// or `None` for "без НДС". 22 % included in a price is 22/122 of it.
    pub fn fraction(self) -> Option<(i64, i64)> {
        Some(match self {
            VatRate::Vat22 | VatRate::Vat22_122 => (22, 122),
            VatRate::Vat10 | VatRate::Vat10_110 => (10, 110),
            VatRate::Vat5 | VatRate::Vat5_105 => (5, 105),
            VatRate::Vat7 | VatRate::Vat7_107 => (7, 107),
            VatRate::Vat0 => (0, 1),
            VatRate::NoVat => return None,
        })
    }

    /// The VAT included in a VAT-inclusive amount, rounded half up to kopecks.
    pub fn tax_in(self, amount: Money) -> Money {
        match self.fraction() {
            None | Some((0, _)) => Money::ZERO,
            Some((n, d)) => {
                let v = i128::from(amount.0) * i128::from(n);
                let d = i128::from(d);
                Money(((v + d / 2) / d) as i64)
            }
        }
    }

    /// The text the device table holds for this rate, e.g. "НДС 22%".
    pub fn label_ru(self) -> &'static str {
        match self {
            VatRate::Vat22 => "НДС 22%",
            VatRate::Vat10 => "НДС 10%",
            VatRate::Vat5 => "НДС 5%",
            VatRate::Vat7 => "НДС 7%",
            VatRate::Vat0 => "НДС 0%",
            VatRate::NoVat => "БЕЗ НДС",
            VatRate::Vat22_122 => "НДС 22/122",
            VatRate::Vat10_110 => "НДС 10/110",
            VatRate::Vat5_105 => "НДС 5/105",
            VatRate::Vat7_107 => "НДС 7/107",
        }
    }

    pub fn json_name(self) -> &'static str {
        match self {
            VatRate::Vat22 => "vat22",
            VatRate::Vat10 => "vat10",
            VatRate::Vat5 => "vat5",
            VatRate::Vat7 => "vat7",
            VatRate::Vat0 => "vat0",
            VatRate::NoVat => "none",
            VatRate::Vat22_122 => "vat122",
            VatRate::Vat10_110 => "vat110",
            VatRate::Vat5_105 => "vat105",
            VatRate::Vat7_107 => "vat107",
        }
    }
}

/// Признак способа расчёта (tag 1214).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    FullPrepayment,
    Prepayment,
    Advance,
    #[default]
    FullPayment,
    PartialPayment,
    Credit,
    CreditPayment,
}

impl PaymentMethod {
    pub fn code(self) -> u8 {
        self as u8 + 1
    }
}

/// Признак предмета расчёта (tag 1212). The common values; others can be added without
/// touching the drivers, which only send [`PaymentObject::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentObject {
    Commodity,
    Excise,
    Job,
    #[default]
    Service,
    GamblingBet,
    GamblingPrize,
    Lottery,
    LotteryPrize,
    IntellectualActivity,
    Payment,
    AgentCommission,
    Composite,
    Another,
}

impl PaymentObject {
    pub fn code(self) -> u8 {
        self as u8 + 1
    }
}

/// How the customer pays. The names follow the FFD payment kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentType {
    /// Наличными.
    Cash,
    /// Безналичными (card, SBP).
    Electronic,
    /// Предварительная оплата (аванс).
    Prepayment,
    /// Последующая оплата (кредит).
    Credit,
    /// Иная форма оплаты (встречное предоставление).
    Other,
}

impl PaymentType {
    pub const ALL: [PaymentType; 5] =
        [PaymentType::Cash, PaymentType::Electronic, PaymentType::Prepayment, PaymentType::Credit, PaymentType::Other];
    pub fn name_ru(self) -> &'static str {
        match self {
            PaymentType::Cash => "наличными",
            PaymentType::Electronic => "безналичными",
            PaymentType::Prepayment => "предоплатой",
            PaymentType::Credit => "в кредит",
            PaymentType::Other => "иной формой оплаты",
        }
    }
}

/// Система налогообложения (tag 1055).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaxSystem {
    /// ОСН.
    Osn,
    /// УСН доход.
    #[default]
    UsnIncome,
    /// УСН доход минус расход.
    UsnIncomeOutcome,
    /// ЕСХН.
    Esn,
    /// Патент.
    Patent,
}

impl TaxSystem {
    /// The tag-1055 bit.
    pub fn bit(self) -> u8 {
        match self {
            TaxSystem::Osn => 0x01,
            TaxSystem::UsnIncome => 0x02,
            TaxSystem::UsnIncomeOutcome => 0x04,
            TaxSystem::Esn => 0x10,
            TaxSystem::Patent => 0x20,
        }
    }
}

/// Мера количества предмета расчёта (tag 2108, ФФД 1.2). The values are the tag's
/// codes; goods sold by weight or volume must say their unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MeasureUnit {
    Piece,
    Gram,
    Kilogram,
    Ton,
    Centimeter,
    Decimeter,
    Meter,
    SquareCentimeter,
    SquareDecimeter,
    SquareMeter,
    Milliliter,
    Liter,
    CubicMeter,
    KilowattHour,
    Gigacalorie,
    Day,
    Hour,
    Minute,
    Second,
    Kilobyte,
    Megabyte,
    Gigabyte,
    Terabyte,
    Other,
}

impl MeasureUnit {
    /// The tag-2108 value.
    pub fn code(self) -> u8 {
        use MeasureUnit::*;
        match self {
            Piece => 0,
            Gram => 10,
            Kilogram => 11,
            Ton => 12,
            Centimeter => 20,
            Decimeter => 21,
            Meter => 22,
            SquareCentimeter => 30,
            SquareDecimeter => 31,
            SquareMeter => 32,
            Milliliter => 40,
            Liter => 41,
            CubicMeter => 42,
            KilowattHour => 50,
            Gigacalorie => 51,
            Day => 70,
            Hour => 71,
            Minute => 72,
            Second => 73,
            Kilobyte => 80,
            Megabyte => 81,
            Gigabyte => 82,
            Terabyte => 83,
            Other => 255,
        }
    }

    pub const ALL: [MeasureUnit; 24] = {
        use MeasureUnit::*;
        [
            Piece, Gram, Kilogram, Ton, Centimeter, Decimeter, Meter, SquareCentimeter, SquareDecimeter, SquareMeter,
            Milliliter, Liter, CubicMeter, KilowattHour, Gigacalorie, Day, Hour, Minute, Second, Kilobyte, Megabyte,
            Gigabyte, Terabyte, Other,
        ]
    };

    /// The short printed form («кг», «л»).
    pub fn label_ru(self) -> &'static str {
        use MeasureUnit::*;
        match self {
            Piece => "шт",
            Gram => "г",
            Kilogram => "кг",
            Ton => "т",
            Centimeter => "см",
            Decimeter => "дм",
            Meter => "м",
            SquareCentimeter => "кв. см",
            SquareDecimeter => "кв. дм",
            SquareMeter => "кв. м",
            Milliliter => "мл",
            Liter => "л",
            CubicMeter => "куб. м",
            KilowattHour => "кВт*ч",
            Gigacalorie => "Гкал",
            Day => "сутки",
            Hour => "час",
            Minute => "мин",
            Second => "с",
            Kilobyte => "Кбайт",
            Megabyte => "Мбайт",
            Gigabyte => "Гбайт",
            Terabyte => "Тбайт",
            Other => "",
        }
    }

    pub fn from_code(c: u8) -> Option<MeasureUnit> {
        MeasureUnit::ALL.into_iter().find(|u| u.code() == c)
    }
}

/// One line of the receipt (предмет расчёта).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// 1 to 128 characters the register can print (others are refused with 422).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub name: String,
    /// Price per unit, kopecks, VAT included.
    pub price: Money,
    #[serde(default = "one")]
    pub quantity: Quantity,
    /// Line total in kopecks. When absent it is `price × quantity`, rounded to kopecks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    #[serde(default)]
    pub vat: VatRate,
    #[serde(default)]
    pub payment_method: PaymentMethod,
    #[serde(default)]
    pub payment_object: PaymentObject,
    /// Отдел (секция), 1..=16.
    #[serde(default = "dept_one")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 16, default = 1))]
    pub department: u8,
    /// Мера количества (tag 2108). Absent: the device's default (штуки).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure_unit: Option<MeasureUnit>,
}

fn one() -> Quantity {
    Quantity::ONE
}
fn dept_one() -> u8 {
    1
}

impl Item {
    /// The line total: the explicit amount or price × quantity.
    pub fn total(&self) -> Option<Money> {
        match self.amount {
            Some(a) => Some(a),
            None => self.quantity.times(self.price),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Payment {
    #[serde(rename = "type")]
    pub kind: PaymentType,
    pub sum: Money,
}

/// Кассир (tags 1021, 1203).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Cashier {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inn: Option<String>,
}

/// Where the electronic receipt goes (tag 1008): a phone (+7…) or an e-mail.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Customer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Could an electronic receipt reach this contact? A phone is `+` and 11 to 15 digits
/// (`+7` and ten digits in Russia); an e-mail is one `@` between a local part and a
/// dotted domain, no spaces.
pub fn deliverable_contact(c: &Customer) -> bool {
    let phone_ok = c.phone.as_deref().is_none_or(|p| {
        p.strip_prefix('+').is_some_and(|d| (11..=15).contains(&d.len()) && d.chars().all(|ch| ch.is_ascii_digit()))
            && (!p.starts_with("+7") || p.len() == 12)
    });
    let email_ok = c.email.as_deref().is_none_or(|e| {
        let Some((local, domain)) = e.split_once('@') else { return false };
        let labels: Vec<&str> = domain.split('.').collect();
        !local.is_empty()
            && !e.chars().any(|ch| ch.is_whitespace() || ch == ',' || ch == ';')
            && !domain.contains('@')
            && labels.len() >= 2
            && labels.iter().all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'))
            && labels.last().is_some_and(|tld| tld.chars().count() >= 2)
    });
    phone_ok && email_ok
}

impl Customer {
    pub fn contact(&self) -> Option<&str> {
        self.email.as_deref().or(self.phone.as_deref())
    }
}

/// A receipt to fiscalise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub operation: Operation,
    /// 1 to 100 lines (the model's limit).
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
    pub items: Vec<Item>,
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 16))]
    pub payments: Vec<Payment>,
    #[serde(default)]
    pub tax_system: TaxSystem,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier: Option<Cashier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
}

/// Text and count limits of a device, from its model profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_item_name_chars: usize,
    pub max_items: usize,
    pub max_cashier_chars: usize,
    /// The largest sum the device's money fields hold (5 bytes binary or 5 bytes BCD).
    pub max_sum: Money,
    /// The code page item names are printed in. Cashier names and customer contacts
    /// travel as TLV strings in CP866 on both families.
    pub item_charset: Charset,
}

impl Default for Limits {
    fn default() -> Self {
        // The narrower of both families: ATOL's BCD5 sum holds 9 999 999 999 kopecks,
        // and CP866 is the narrower code page.
        Limits {
            max_item_name_chars: 128,
            max_items: 100,
            max_cashier_chars: 64,
            max_sum: Money(9_999_999_999),
            item_charset: Charset::Cp866,
        }
    }
}

/// Checks a cash-in or cash-out sum against the model's limit (and so its wire field)
/// before anything is sent: above zero, at most `limits.max_sum`.
pub fn check_sum(sum: Money, limits: &Limits) -> Result<(), ValidationError> {
    if sum.0 <= 0 {
        return Err(invalid("request.sum_invalid", "Сумма должна быть больше нуля", "The sum must be above zero"));
    }
    if sum > limits.max_sum {
        return Err(invalid(
            "request.sum_too_large",
            format!("Сумма {sum} ₽ больше, чем принимает ККТ (не больше {} ₽)", limits.max_sum),
            format!("The sum {sum} exceeds what the register accepts (at most {})", limits.max_sum),
        ));
    }
    Ok(())
}

/// Why a receipt cannot be fiscalised, found before talking to the device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {en}")]
pub struct ValidationError {
    /// Stable, machine-readable code, e.g. `receipt.items_empty`.
    pub code: &'static str,
    pub ru: String,
    pub en: String,
}

fn invalid(code: &'static str, ru: impl Into<String>, en: impl Into<String>) -> ValidationError {
    ValidationError { code, ru: ru.into(), en: en.into() }
}

/// What the device needs after validation: per-line totals and the receipt total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptTotals {
    pub lines: Vec<Money>,
    pub total: Money,
    pub paid: Money,
    /// Сдача: only cash can exceed the total.
    pub change: Money,
    /// VAT per rate, in the order of [`VatRate::ALL`].
    pub vat: Vec<(VatRate, Money)>,
}

impl Receipt {
    /// Checks the receipt against the domain rules and a device's limits.
    pub fn validate(&self, limits: &Limits) -> Result<ReceiptTotals, ValidationError> {
        if self.items.is_empty() {
            return Err(invalid("receipt.items_empty", "В чеке нет ни одной позиции", "The receipt has no items"));
        }
        if self.items.len() > limits.max_items {
            return Err(invalid(
                "receipt.too_many_items",
                format!("Слишком много позиций: {} (не больше {})", self.items.len(), limits.max_items),
                format!("Too many items: {} (at most {})", self.items.len(), limits.max_items),
            ));
        }
        let mut lines = Vec::with_capacity(self.items.len());
        let mut total = Money::ZERO;
        let overflow = || invalid("receipt.sum_overflow", "Сумма чека слишком велика", "The receipt total is too large");
        for (i, item) in self.items.iter().enumerate() {
            let n = i + 1;
            let name_chars = item.name.chars().count();
            if item.name.trim().is_empty() {
                return Err(invalid(
                    "receipt.item_name_empty",
                    format!("Позиция {n}: пустое наименование"),
                    format!("Item {n}: empty name"),
                ));
            }
            if name_chars > limits.max_item_name_chars {
                return Err(invalid(
                    "receipt.item_name_too_long",
                    format!("Позиция {n}: наименование длиннее {} символов", limits.max_item_name_chars),
                    format!("Item {n}: name longer than {} characters", limits.max_item_name_chars),
                ));
            }
            if item.name.chars().any(|c| c.is_control()) {
                return Err(invalid(
                    "receipt.item_name_control",
                    format!("Позиция {n}: в наименовании управляющие символы"),
                    format!("Item {n}: control characters in the name"),
                ));
            }
            if let Err(u) = text::printable(&item.name, limits.item_charset) {
                return Err(u.to_validation(
                    "receipt.item_name_unprintable",
                    &format!("Позиция {n}: наименование"),
                    &format!("Item {n}: name"),
                ));
            }
            if item.price.is_negative() || item.price > limits.max_sum {
                return Err(invalid(
                    "receipt.item_price_invalid",
                    format!("Позиция {n}: недопустимая цена"),
                    format!("Item {n}: invalid price"),
                ));
            }
            if item.quantity.0 <= 0 || item.quantity.0 > 99_999_999 {
                return Err(invalid(
                    "receipt.item_quantity_invalid",
                    format!("Позиция {n}: количество должно быть больше нуля и меньше 100 000"),
                    format!("Item {n}: quantity must be above zero and below 100 000"),
                ));
            }
            if !(1..=16).contains(&item.department) {
                return Err(invalid(
                    "receipt.item_department_invalid",
                    format!("Позиция {n}: отдел должен быть от 1 до 16"),
                    format!("Item {n}: department must be 1..16"),
                ));
            }
            let line = item.total().ok_or_else(overflow)?;
            // An explicit amount is price × quantity as the register rounds it (one
            // kopeck either way); a discount is a lower price, never a silent sum.
            if let (Some(a), Some(pq)) = (item.amount, item.quantity.times(item.price)) {
                if a.0.abs_diff(pq.0) > 1 {
                    return Err(invalid(
                        "receipt.item_amount_mismatch",
                        format!("Позиция {n}: сумма {a} не равна цена × количество ({pq}); для скидки уменьшите цену"),
                        format!("Item {n}: amount {a} is not price × quantity ({pq}); give a discount as a lower price"),
                    ));
                }
            }
            if line.is_negative() || line > limits.max_sum {
                return Err(invalid(
                    "receipt.item_amount_invalid",
                    format!("Позиция {n}: недопустимая сумма"),
                    format!("Item {n}: invalid amount"),
                ));
            }
            total = total.checked_add(line).filter(|t| *t <= limits.max_sum).ok_or_else(overflow)?;
            lines.push(line);
        }
        if total == Money::ZERO {
            return Err(invalid("receipt.total_zero", "Сумма чека равна нулю", "The receipt total is zero"));
        }
        if self.payments.is_empty() {
            return Err(invalid("receipt.payments_empty", "В чеке нет оплаты", "The receipt has no payments"));
        }
        let mut paid = Money::ZERO;
        let mut non_cash = Money::ZERO;
        for (i, p) in self.payments.iter().enumerate() {
            if p.sum.0 <= 0 || p.sum > limits.max_sum {
                return Err(invalid(
                    "receipt.payment_invalid",
                    format!("Оплата {}: сумма должна быть больше нуля", i + 1),
                    format!("Payment {}: the sum must be above zero", i + 1),
                ));
            }
            paid = paid.checked_add(p.sum).filter(|t| *t <= limits.max_sum).ok_or_else(overflow)?;
            if p.kind != PaymentType::Cash {
                non_cash = non_cash.checked_add(p.sum).ok_or_else(overflow)?;
            }
        }
        if paid < total {
            return Err(invalid(
                "receipt.payments_short",
                format!("Оплата {paid} меньше суммы чека {total}"),
                format!("Payments {paid} are less than the total {total}"),
            ));
        }
        if non_cash > total {
            return Err(invalid(
                "receipt.non_cash_exceeds_total",
                format!("Безналичная оплата {non_cash} больше суммы чека {total}"),
                format!("Non-cash payments {non_cash} exceed the total {total}"),
            ));
        }
        if let Some(c) = &self.cashier {
            if let Err(u) = text::printable(&c.name, Charset::Cp866) {
                return Err(u.to_validation("receipt.cashier_unprintable", "Имя кассира", "Cashier name"));
            }
            if c.name.chars().count() > limits.max_cashier_chars {
                return Err(invalid(
                    "receipt.cashier_too_long",
                    format!("Имя кассира длиннее {} символов", limits.max_cashier_chars),
                    format!("Cashier name longer than {} characters", limits.max_cashier_chars),
                ));
            }
            if let Some(inn) = &c.inn {
                if !crate::checks::inn_is_valid(inn) {
                    return Err(invalid(
                        "receipt.cashier_inn_invalid",
                        "ИНН кассира неверен (не сходятся контрольные цифры)",
                        "The cashier's INN is invalid (check digits do not match)",
                    ));
                }
            }
        }
        if let Some(c) = &self.customer {
            if let Some(contact) = c.contact() {
                if let Err(u) = text::printable(contact, Charset::Cp866) {
                    return Err(u.to_validation(
                        "receipt.customer_contact_unprintable",
                        "Телефон или e-mail покупателя",
                        "The customer's phone or e-mail",
                    ));
                }
                if !deliverable_contact(c) {
                    return Err(invalid(
                        "receipt.customer_contact_undeliverable",
                        "Электронный чек не дойдёт: телефон нужен в виде +79991234567, e-mail — в виде имя@домен.ru",
                        "The e-receipt cannot be delivered: a phone must look like +79991234567, an e-mail like name@example.ru",
                    ));
                }
                if contact.chars().count() > 64 || contact.chars().any(|ch| ch.is_control()) {
                    return Err(invalid(
                        "receipt.customer_contact_invalid",
                        "Телефон или e-mail покупателя недопустим",
                        "The customer's phone or e-mail is invalid",
                    ));
                }
            }
        }
        let mut vat = Vec::new();
        for rate in VatRate::ALL {
            let base: i64 = self.items.iter().zip(&lines).filter(|(it, _)| it.vat == rate).map(|(_, l)| l.0).sum();
            if base != 0 || self.items.iter().any(|it| it.vat == rate) {
                vat.push((rate, rate.tax_in(Money(base))));
            }
        }
        Ok(ReceiptTotals { lines, total, paid, change: Money(paid.0 - total.0), vat })
    }

    /// The sum paid by a payment type.
    pub fn paid_by(&self, kind: PaymentType) -> Money {
        Money(self.payments.iter().filter(|p| p.kind == kind).map(|p| p.sum.0).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, price: i64, vat: VatRate) -> Item {
        Item {
            name: name.into(),
            price: Money(price),
            quantity: Quantity::ONE,
            amount: None,
            vat,
            payment_method: PaymentMethod::FullPayment,
            payment_object: PaymentObject::Service,
            department: 1,
            measure_unit: None,
        }
    }

    #[test]
    fn undeliverable_contacts_and_amounts_off_price_times_quantity_are_refused() {
        let mut r = Receipt {
            operation: Operation::Sale,
            items: vec![item("Стрижка", 150_000, VatRate::Vat22)],
            payments: vec![Payment { kind: PaymentType::Cash, sum: Money(200_000) }],
            tax_system: TaxSystem::UsnIncome,
            cashier: None,
            customer: None,
        };
        let l = Limits::default();
        for (phone, email, ok) in [
            (Some("+79991234567"), None, true),
            (Some("89991234567"), None, false),
            (Some("+7999123456"), None, false),
            (Some("+7 999 123-45-67"), None, false),
            (None, Some("anna@mail.ru"), true),
            (None, Some("anna@mail"), false),
            (None, Some("anna mail.ru"), false),
            (None, Some("anna@@mail.ru"), false),
            (None, Some("anna@mail.ru, bob@mail.ru"), false),
        ] {
            r.customer = Some(Customer { phone: phone.map(Into::into), email: email.map(Into::into) });
            let v = r.validate(&l);
            assert_eq!(v.is_ok(), ok, "{phone:?} {email:?}: {v:?}");
            if !ok {
                assert_eq!(v.unwrap_err().code, "receipt.customer_contact_undeliverable");
            }
        }
        r.customer = None;
        r.items[0].amount = Some(Money(1_500_000)); // roubles sent as kopecks ×10
        assert_eq!(r.validate(&l).unwrap_err().code, "receipt.item_amount_mismatch");
        r.items[0].amount = Some(Money(150_001)); // rounding: one kopeck is fine
        assert!(r.validate(&l).is_ok());
    }

    #[test]
    fn totals_and_change() {
        let r = Receipt {
            operation: Operation::Sale,
            items: vec![item("Стрижка", 150_000, VatRate::Vat22), item("Шампунь", 50_050, VatRate::Vat10)],
            payments: vec![
                Payment { kind: PaymentType::Electronic, sum: Money(100_000) },
                Payment { kind: PaymentType::Cash, sum: Money(110_000) },
            ],
            tax_system: TaxSystem::UsnIncome,
            cashier: None,
            customer: None,
        };
        let t = r.validate(&Limits::default()).unwrap();
        assert_eq!(t.total, Money(200_050));
        assert_eq!(t.change, Money(9_950));
        assert_eq!(t.vat[0], (VatRate::Vat22, Money(27_049)));
    }

    #[test]
    fn rejects_short_payment_and_non_cash_overpay() {
        let mut r = Receipt {
            operation: Operation::Sale,
            items: vec![item("A", 1000, VatRate::Vat22)],
            payments: vec![Payment { kind: PaymentType::Cash, sum: Money(999) }],
            tax_system: TaxSystem::Osn,
            cashier: None,
            customer: None,
        };
        assert_eq!(r.validate(&Limits::default()).unwrap_err().code, "receipt.payments_short");
        r.payments = vec![Payment { kind: PaymentType::Electronic, sum: Money(1001) }];
        assert_eq!(r.validate(&Limits::default()).unwrap_err().code, "receipt.non_cash_exceeds_total");
    }

    #[test]
    fn unprintable_text_is_refused_naming_the_character() {
        let mut r = Receipt {
            operation: Operation::Sale,
            items: vec![item("Стрижка 💅", 1000, VatRate::Vat22)],
            payments: vec![Payment { kind: PaymentType::Cash, sum: Money(1000) }],
            tax_system: TaxSystem::Osn,
            cashier: None,
            customer: None,
        };
        let e = r.validate(&Limits::default()).unwrap_err();
        assert_eq!(e.code, "receipt.item_name_unprintable");
        assert!(e.ru.contains("U+1F485") && e.en.contains("💅"), "{e:?}");
        r.items[0].name = "«Стрижка» — мастер…".into();
        r.validate(&Limits::default()).unwrap();
        r.cashier = Some(Cashier { name: "Иванова 🌸".into(), inn: None });
        assert_eq!(r.validate(&Limits::default()).unwrap_err().code, "receipt.cashier_unprintable");
        r.cashier = None;
        r.customer = Some(Customer { phone: None, email: Some("анна😀@mail.ru".into()) });
        assert_eq!(r.validate(&Limits::default()).unwrap_err().code, "receipt.customer_contact_unprintable");
    }

    #[test]
    fn cash_sums_are_checked_against_the_model_limit() {
        let l = Limits::default();
        assert_eq!(check_sum(Money(10_000_000_000_000), &l).unwrap_err().code, "request.sum_too_large");
        assert_eq!(check_sum(Money(0), &l).unwrap_err().code, "request.sum_invalid");
        check_sum(Money(9_999_999_999), &l).unwrap();
    }

    #[test]
    fn measure_unit_is_accepted() {
        let j = r#"{"name":"Яблоки","price":15000,"quantity":"0.75","measure_unit":"kilogram"}"#;
        let it: Item = serde_json::from_str(j).unwrap();
        assert_eq!(it.measure_unit.map(MeasureUnit::code), Some(11));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let j = r#"{"operation":"sale","items":[],"payments":[],"pamyents":[]}"#;
        assert!(serde_json::from_str::<Receipt>(j).is_err());
    }
}
