//! OPATH filter text for `Get-Mailbox -Filter`.

/// Quotes a value for an OPATH filter: single quotes around it, embedded `'` doubled.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `WhenChangedUTC -ge '<since>'`, `since` in UTC to the second (rounded down, so nothing
/// changed within that second is missed), written `M/d/yyyy h:mm:ss tt` (en-US): the only
/// date form Microsoft documents for Exchange Online filters ("Filterable properties for the
/// Filter parameter": `WhenChangedUTC -gt '8/1/2017 2:00:00 PM'`). ISO 8601 with `Z` is not
/// documented, and the service reads date literals with its regional settings.
pub fn when_changed_filter(since: jiff::Timestamp) -> String {
    let floored = jiff::Timestamp::from_second(since.as_second()).unwrap_or(since);
    format!(
        "WhenChangedUTC -ge {}",
        quote(&floored.strftime("%-m/%-d/%Y %-I:%M:%S %p").to_string())
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
            "WhenChangedUTC -ge '4/10/2024 8:56:22 AM'"
        );
        for (t, want) in [
            ("2024-04-10T00:00:00Z", "4/10/2024 12:00:00 AM"),
            ("2024-04-10T12:00:00Z", "4/10/2024 12:00:00 PM"),
            ("2024-12-31T23:59:59.999Z", "12/31/2024 11:59:59 PM"),
        ] {
            let t: jiff::Timestamp = t.parse().expect("ts");
            assert_eq!(
                when_changed_filter(t),
                format!("WhenChangedUTC -ge '{want}'")
            );
        }
    }
}
