//! Text a register can print, decided character by character.
//!
//! Registers print from an 8-bit code page: cp1251 (Shtrih item names, printed lines)
//! or CP866 (ATOL, and the TLV strings of both families: cashier 1021, contact 1008).
//! An encoder left to itself writes a character outside the code page as an HTML
//! numeric reference, so «Стрижка 💅» would be fiscalised as `Стрижка &#128133;`.
//! Here every character is either kept (the code page has it), mapped to its nearest
//! printable form (typographic quotes, dashes, ellipsis, № and the like), or refused
//! with the character named, before anything is queued or sent.

use crate::receipt::ValidationError;

/// An 8-bit code page of a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Charset {
    Cp1251,
    Cp866,
}

impl Charset {
    fn encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            Charset::Cp1251 => encoding_rs::WINDOWS_1251,
            Charset::Cp866 => encoding_rs::IBM866,
        }
    }

    /// Does this code page have the character?
    pub fn has(self, c: char) -> bool {
        let mut buf = [0u8; 4];
        let (_, _, unmappable) = self.encoding().encode(c.encode_utf8(&mut buf));
        !unmappable
    }

    pub fn name(self) -> &'static str {
        match self {
            Charset::Cp1251 => "cp1251",
            Charset::Cp866 => "cp866",
        }
    }
}

/// A character that neither the code page nor the typographic map can print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unprintable {
    pub ch: char,
    /// 1-based position of the character in the text.
    pub position: usize,
}

impl Unprintable {
    /// `U+1F485 «💅»`: how the character is named in errors.
    pub fn describe(&self) -> String {
        format!("U+{:04X} «{}»", u32::from(self.ch), self.ch)
    }

    /// The 422 for this character in `field` (e.g. "Позиция 2: наименование").
    pub fn to_validation(&self, code: &'static str, field_ru: &str, field_en: &str) -> ValidationError {
        ValidationError {
            code,
            ru: format!(
                "{field_ru}: символ {} (позиция {}) ККТ не может напечатать; уберите его или замените",
                self.describe(),
                self.position
            ),
            en: format!(
                "{field_en}: the register cannot print the character {} (position {}); remove or replace it",
                self.describe(),
                self.position
            ),
        }
    }
}

/// The nearest printable form of a typographic character, tried only when the code
/// page lacks the character itself.
pub fn typographic(c: char) -> Option<&'static str> {
    Some(match c {
        '«' | '»' | '„' | '“' | '”' | '‟' | '″' | '〃' => "\"",
        '‘' | '’' | '‚' | '‛' | '′' | '`' => "'",
        '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | '⁃' => "-",
        '…' => "...",
        '№' => "N",
        '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => " ",
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' => "",
        '•' | '∙' | '·' => "*",
        '×' => "x",
        '÷' => ":",
        '₽' => "руб.",
        '€' => "EUR",
        '™' => "TM",
        '©' => "(c)",
        '®' => "(R)",
        '°' => "o",
        '±' => "+/-",
        '‰' => "o/oo",
        _ => return None,
    })
}

/// The text as the register will print it: every character kept, mapped or refused.
pub fn printable(s: &str, cs: Charset) -> Result<String, Unprintable> {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        if cs.has(c) {
            out.push(c);
        } else if let Some(m) = typographic(c).filter(|m| m.chars().all(|x| cs.has(x))) {
            out.push_str(m);
        } else {
            return Err(Unprintable { ch: c, position: i + 1 });
        }
    }
    Ok(out)
}

/// Encodes printable text; never writes an HTML reference.
pub fn encode(s: &str, cs: Charset) -> Result<Vec<u8>, Unprintable> {
    let p = printable(s, cs)?;
    let (bytes, _, unmappable) = cs.encoding().encode(&p);
    if unmappable {
        // Cannot happen after `printable`; refuse rather than send an entity.
        let ch = p.chars().find(|c| !cs.has(*c)).unwrap_or('\u{FFFD}');
        return Err(Unprintable { ch, position: 0 });
    }
    Ok(bytes.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_is_refused_and_named() {
        let e = printable("Стрижка 💅", Charset::Cp1251).unwrap_err();
        assert_eq!(e.ch, '💅');
        assert_eq!(e.position, 9);
        assert_eq!(e.describe(), "U+1F485 «💅»");
        assert!(encode("Стрижка 💅", Charset::Cp866).is_err());
    }

    #[test]
    fn typography_is_mapped_only_where_the_page_lacks_it() {
        // cp1251 has « » — … № itself.
        assert_eq!(printable("«Ёлка» — №1…", Charset::Cp1251).unwrap(), "«Ёлка» — №1…");
        // CP866 has № and Ё but not « » — …
        assert_eq!(printable("«Ёлка» — №1…", Charset::Cp866).unwrap(), "\"Ёлка\" - №1...");
        assert_eq!(printable("100\u{a0}₽", Charset::Cp1251).unwrap(), "100\u{a0}руб.");
        assert_eq!(printable("100\u{2009}₽", Charset::Cp866).unwrap(), "100 руб.");
    }

    #[test]
    fn never_an_html_reference() {
        let b = encode("Кофе ☕ «латте»", Charset::Cp866);
        assert!(b.is_err());
        let b = encode("Кофе «латте»", Charset::Cp866).unwrap();
        assert!(!b.contains(&b'&'));
    }
}
