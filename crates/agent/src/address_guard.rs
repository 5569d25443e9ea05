//! The duplicate-address guard's look-up: who in the **whole forest** already holds an address
//! a plan adds. Exchange requires every proxy address to be unique in the organisation —
//! mailboxes, contacts, groups, public folders, in every domain — so the search is not limited
//! to `ad.search_bases`: it goes to the global catalog from the forest root when the partial
//! attribute set holds proxyAddresses and mail (Exchange's schema preparation adds
//! proxyAddresses to it), else to each domain of the forest from its naming context
//! (`ForestDirectory::find_any_forest_wide`). A holder anywhere blocks the object, named by DN.

use std::collections::HashSet;

use exo_writeback_ad::AdError;
use exo_writeback_ad::forest_directory::ForestDirectory;
use exo_writeback_core::directory::AttrValue;

/// Addresses per search: a mailbox with thousands of aliases never sends one huge filter
/// (servers bound request sizes and drop the connection beyond them).
const ADDRESS_CHUNK: usize = 100;

/// The equalities that find a holder of `address`: a bare SMTP address in proxyAddresses
/// (`smtp:` + address; AD compares case-insensitively, so `SMTP:` values too) and mail; a
/// whole proxy value (`X500:/o=…`, with its prefix; a bare SMTP address has no colon) in
/// proxyAddresses.
fn equalities(address: &str) -> Vec<(&'static str, String)> {
    if address.contains(':') {
        vec![("proxyAddresses", address.to_string())]
    } else {
        vec![
            ("proxyAddresses", format!("smtp:{address}")),
            ("mail", address.to_string()),
        ]
    }
}

/// `(value held, DN)` of every object of the forest holding one of `addresses` (see the
/// engine's `Directory::address_holders`).
pub async fn holders(
    forest: &ForestDirectory,
    addresses: &[String],
) -> Result<Vec<(String, String)>, AdError> {
    let attrs = ["proxyAddresses", "mail"];
    let mut out = Vec::new();
    for chunk in addresses.chunks(ADDRESS_CHUNK) {
        let asked: Vec<(&str, String)> = chunk.iter().flat_map(|a| equalities(a)).collect();
        let filter: Vec<(&str, AttrValue)> = asked
            .iter()
            .map(|(a, v)| (*a, AttrValue::Text(v.clone())))
            .collect();
        let found = forest.find_any_forest_wide(&filter, &attrs).await?;
        for object in found {
            let held = |attribute: &str| -> HashSet<String> {
                object
                    .attributes
                    .get(attribute)
                    .iter()
                    .filter_map(|v| v.as_text())
                    .map(str::to_lowercase)
                    .collect()
            };
            let (proxies, mails) = (held("proxyAddresses"), held("mail"));
            let mut named = false;
            for (attribute, value) in &asked {
                let set = if *attribute == "mail" {
                    &mails
                } else {
                    &proxies
                };
                if set.contains(&value.to_lowercase()) {
                    out.push((value.clone(), object.dn.clone()));
                    named = true;
                }
            }
            if !named {
                // The server matched by a comparison this side does not reproduce (Unicode
                // case folding): count the object as holding every asked value of the chunk
                // rather than miss a conflict.
                out.extend(asked.iter().map(|(attribute, value)| {
                    let value = if *attribute == "mail" {
                        format!("smtp:{value}")
                    } else {
                        value.clone()
                    };
                    (value, object.dn.clone())
                }));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_addresses_are_looked_up_in_both_attributes_other_proxies_whole() {
        assert_eq!(
            equalities("ann@contoso.example"),
            [
                ("proxyAddresses", "smtp:ann@contoso.example".to_string()),
                ("mail", "ann@contoso.example".to_string())
            ]
        );
        assert_eq!(
            equalities("X500:/o=Org/ou=x/cn=Recipients/cn=ann"),
            [(
                "proxyAddresses",
                "X500:/o=Org/ou=x/cn=Recipients/cn=ann".to_string()
            )]
        );
    }
}
