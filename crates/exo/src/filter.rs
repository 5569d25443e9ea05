//! OPATH filter text for `Get-Mailbox -Filter`.

/// Quotes a value for an OPATH filter: single quotes around it, embedded `'` doubled.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `WhenChangedUTC -ge '<since>'`, `since` in UTC to the second (rounded down, so nothing
/// changed within that second is missed).
pub fn when_changed_filter(since: jiff::Timestamp) -> String {
    let floored = jiff::Timestamp::from_second(since.as_second()).unwrap_or(since);
    format!(
        "WhenChangedUTC -ge {}",
        quote(&floored.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    )
}

/// `<property> -eq '<value>'`.
pub fn equals(property: &str, value: &str) -> String {
    format!("{property} -eq {}", quote(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let cases = [
            ("plain", "'plain'"),
            ("O'Brien", "'O''Brien'"),
            ("''", "''''''"),
            ("", "''"),
            ("a\"b", "'a\"b'"),
        ];
        for (input, want) in cases {
            assert_eq!(quote(input), want, "{input:?}");
        }
        assert_eq!(
            equals("CustomAttribute1", "it's"),
            "CustomAttribute1 -eq 'it''s'"
        );
    }

    #[test]
    fn when_changed() {
        let t: jiff::Timestamp = "2024-04-10T08:56:22.9876543Z".parse().expect("ts");
        assert_eq!(
            when_changed_filter(t),
            "WhenChangedUTC -ge '2024-04-10T08:56:22Z'"
        );
    }
}
