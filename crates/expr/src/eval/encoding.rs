//! Encodings: ConvertFromBase64, ConvertToBase64, ConvertToUTF8Hex and StringFromSid.

use base64::Engine as _;

use crate::ast::Named;
use crate::text;
use crate::value::Value;

use super::call::Call;
use super::{Evaluator, R};

pub(super) fn convert_from_base64(this: &mut Evaluator, c: &Call) -> R<Value> {
    let enc = this.mode(
        c,
        1,
        &[Named::Unicode, Named::Utf8, Named::Ascii],
        Named::Unicode,
    )?;
    let v = this.arg(c, 0)?;
    c.map_text(v, 0, |s| {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| c.fail(0, &format!("\"{s}\" is not valid base64: {e}")))?;
    let decoded = match enc {
        Named::Utf8 => String::from_utf8(bytes).ok(),
        Named::Ascii => bytes
            .is_ascii()
            .then(|| String::from_utf8_lossy(&bytes).into_owned()),
        _ => (bytes.len() % 2 == 0)
            .then(|| {
                let units: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|p| u16::from_le_bytes([p[0], p[1]]))
                    .collect();
                String::from_utf16(&units).ok()
            })
            .flatten(),
    };
    decoded.map(Value::Str).ok_or_else(|| {
        c.fail(
            0,
            &format!(
                "the decoded bytes are not valid {} text (name the encoding: Unicode, UTF8 or ASCII)",
                enc.name()
            ),
        )
    })
})
}

pub(super) fn convert_to_base64(this: &mut Evaluator, c: &Call) -> R<Value> {
    let v = this.arg(c, 0)?;
    c.map_value(v, 0, |v| {
        let bytes: Vec<u8> = match v {
            Value::Bytes(b) => b,
            v => v
                .to_text()
                .ok_or_else(|| c.bad(0, &v, "text"))?
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect(),
        };
        Ok(Value::Str(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        ))
    })
}

pub(super) fn convert_to_utf8_hex(this: &mut Evaluator, c: &Call) -> R<Value> {
    let v = this.arg(c, 0)?;
    c.map_text(v, 0, |s| {
        Ok(Value::Str(s.bytes().map(|b| format!("{b:02X}")).collect()))
    })
}

pub(super) fn string_from_sid(this: &mut Evaluator, c: &Call) -> R<Value> {
    let v = this.arg(c, 0)?;
    c.map_value(v, 0, |v| match v {
        Value::Bytes(b) => text::sid_to_string(&b)
            .map(Value::Str)
            .ok_or_else(|| c.fail(0, "the binary value is not a security identifier")),
        Value::Str(s) if s.starts_with("S-") => Ok(Value::Str(s)),
        v => Err(c.bad(0, &v, "a binary security identifier (objectSid)")),
    })
}
