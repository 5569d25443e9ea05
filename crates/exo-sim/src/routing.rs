//! Which back-end mailbox server answers an InvokeCommand request: the one its routing anchor
//! (`X-AnchorMailbox`) resolves to. A result page's skiptoken names that server, so a
//! follow-up page is only served when its anchor resolves to the same server (PROTOCOL.md §3,
//! "Paging and routing").
//!
//! Sources: the real skiptoken of capture A4 is `AD` + base64 of a GUID and a mailbox server
//! name (`…LOBP265MB9249`); graph2otel (`internal/exoclient/exoclient.go`) saw every
//! follow-up without a resolvable anchor fail at once with "Expired or Invalid pagination
//! request"; the anchors public clients send for app-only calls are
//! `APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@<tenant id>` (CIPP-API
//! `New-ExoRequest.ps1`, GreyCorbel/ExoHelper `New-ExoConnection.ps1`) and
//! `UPN:SystemMailbox{bb558c35-…}@<initial domain>` (the module, capture A2; cisagov/ScubaGear
//! `EXORestHelper.psm1`).

use uuid::Uuid;

use crate::state::SimState;

/// The organization's system mailbox that app-only requests are anchored to.
pub const SYSTEM_MAILBOX: &str = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}";

/// The emulated back-end mailbox servers (names in the style of capture A4's skiptoken).
pub const BACKENDS: [&str; 4] = [
    "LOBP265MB9249",
    "AM9PR03MB7712",
    "SJ0PR11MB5023",
    "DM6PR07MB4489",
];

/// What an anchor resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The anchor names a mailbox of this tenant: requests go to its server (an index into
    /// [`BACKENDS`]).
    Mailbox(usize),
    /// The anchor is missing or names no mailbox: the front door picks any server.
    Unresolved,
}

/// The tenant an anchor must belong to.
pub struct Tenant<'a> {
    pub id: Uuid,
    pub initial_domain: &'a str,
}

fn backend_of(key: &Uuid) -> usize {
    // Stable, and spread over the servers.
    (key.as_u128() % BACKENDS.len() as u128) as usize
}

/// Resolves an `X-AnchorMailbox` value (`PREFIX:value`, prefix case-insensitive).
///
/// * `APP:SystemMailbox{bb558c35-…}@<tenant id or initial domain>` → the system mailbox.
/// * `UPN:SystemMailbox{bb558c35-…}@<initial domain>` → the system mailbox. The same with the
///   tenant id after the `@` is no user principal name of the tenant: unresolved.
/// * `UPN:<upn>` / `SMTP:<address>` of a mailbox → that mailbox.
/// * anything else, or no header → unresolved.
pub fn resolve(anchor: Option<&str>, tenant: &Tenant<'_>, state: &SimState) -> Route {
    let Some((prefix, value)) = anchor.map(str::trim).and_then(|a| a.split_once(':')) else {
        return Route::Unresolved;
    };
    let value = value.trim();
    let system = value
        .rsplit_once('@')
        .filter(|(local, _)| local.eq_ignore_ascii_case(SYSTEM_MAILBOX))
        .map(|(_, domain)| domain);
    let is_id = |d: &str| Uuid::parse_str(d).is_ok_and(|u| u == tenant.id);
    let is_domain = |d: &str| d.eq_ignore_ascii_case(tenant.initial_domain);
    match prefix.to_ascii_uppercase().as_str() {
        "APP" => match system {
            Some(d) if is_id(d) || is_domain(d) => Route::Mailbox(backend_of(&tenant.id)),
            _ => Route::Unresolved,
        },
        "UPN" | "SMTP" => match system {
            Some(d) if is_domain(d) => Route::Mailbox(backend_of(&tenant.id)),
            Some(_) => Route::Unresolved,
            None => match state.mailbox(value) {
                Some(m)
                    if m.user_principal_name.eq_ignore_ascii_case(value)
                        || m.email_addresses.iter().any(|a| {
                            a.split_once(':').is_some_and(|(p, x)| {
                                p.eq_ignore_ascii_case("smtp") && x.eq_ignore_ascii_case(value)
                            })
                        }) =>
                {
                    Route::Mailbox(backend_of(&m.guid))
                }
                _ => Route::Unresolved,
            },
        },
        _ => Route::Unresolved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::SimMailbox;

    #[test]
    fn anchors_resolve_as_public_clients_use_them() {
        let state = SimState::new(0);
        let now = jiff::Timestamp::UNIX_EPOCH;
        let m = SimMailbox::new(Uuid::from_u128(7), "jdoe", "j.doe@contoso.com", now);
        let upn = m.user_principal_name.clone();
        state.add_mailbox(m).expect("added");
        let id = Uuid::from_u128(0x4b8c18bd_2f9f_4227_af55_9f1061cf9c32);
        let t = Tenant {
            id,
            initial_domain: "contoso.onmicrosoft.com",
        };
        let sys = Route::Mailbox(backend_of(&id));
        let user = Route::Mailbox(backend_of(&Uuid::from_u128(7)));
        let cases: Vec<(Option<String>, Route)> = vec![
            (Some(format!("APP:{SYSTEM_MAILBOX}@{id}")), sys),
            (
                Some(format!("app:{SYSTEM_MAILBOX}@CONTOSO.onmicrosoft.com")),
                sys,
            ),
            (
                Some(format!("UPN:{SYSTEM_MAILBOX}@contoso.onmicrosoft.com")),
                sys,
            ),
            (
                Some(format!("UPN:{SYSTEM_MAILBOX}@{id}")),
                Route::Unresolved,
            ),
            (
                Some(format!("UPN:{SYSTEM_MAILBOX}@contoso.com")),
                Route::Unresolved,
            ),
            (
                Some(format!("APP:{SYSTEM_MAILBOX}@{}", Uuid::nil())),
                Route::Unresolved,
            ),
            (Some(format!("UPN:{upn}")), user),
            (Some("SMTP:J.Doe@contoso.com".into()), user),
            (Some("UPN:nobody@contoso.com".into()), Route::Unresolved),
            (
                Some("UPN:SystemMailbox@contoso.onmicrosoft.com".into()),
                Route::Unresolved,
            ),
            (Some("garbage".into()), Route::Unresolved),
            (None, Route::Unresolved),
        ];
        for (anchor, want) in cases {
            assert_eq!(resolve(anchor.as_deref(), &t, &state), want, "{anchor:?}");
        }
    }
}
