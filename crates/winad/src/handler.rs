//! One request in, its replies out: a pure function over the directory and the connection's
//! session (the socket side is `server.rs`). Bind, modify and WhoAmI rules here; search rules
//! in `search.rs`.
//!
//! - **Bind** (KB 4520412 "LDAP channel binding and LDAP signing requirements"): with LDAP signing required a simple bind without TLS gets
//!   `strongerAuthRequired (8)`, `00002028: LdapErr: DSID-0C090259, comment: The server
//!   requires binds to turn on integrity checking if SSL\TLS are not already active on the
//!   connection, data 0, v4563`; a wrong password or an unusable account gets
//!   `invalidCredentials (49)`, `80090308: LdapErr: DSID-0C09041C, comment:
//!   AcceptSecurityContext error, data <code>, v4563` with the Win32 error of the logon in hex
//!   (52e bad password or unknown account, 530 logon hours, 531 workstation, 532 password
//!   expired, 533 disabled, 701 account expired, 773 must change password, 775 locked out).
//! - **Modify**: only on the DC's own domain (another domain's object gets a referral naming
//!   that domain); a read-only DC refers every write to a writable DC of its domain
//!   (`0000202B: RefErr`, `ldap://<writable DC>/<dn>`), as the lab's Samba RODC answers. Permissive modify (1.2.840.113556.1.4.1413, MS-ADTS 3.1.1.3.4.1 LDAP extended controls):
//!   adding a present value or deleting an absent one succeeds; without it they fail with
//!   `attributeOrValueExists (20)` / `noSuchAttribute (16)`. A second value on a
//!   single-valued attribute is `constraintViolation (19)`.
//! - **WhoAmI** (RFC 4532): `u:<NETBIOS>\<sAMAccountName>`, as AD answers.

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindResponse, LdapExtendedResponse, LdapModifyRequest, LdapModifyType,
    LdapMsg, LdapOp, LdapResult, LdapResultCode, OID_WHOAMI,
};

use crate::model::{AccountState, DcSpec, Directory, norm};
use crate::search::{BIND_FIRST, Port, referral_text, search};
use crate::session::Session;

/// Simple bind without TLS where signing is required.
pub const SIGNING_REQUIRED: &str = "00002028: LdapErr: DSID-0C090259, comment: The server requires binds to turn on integrity checking if SSL\\TLS are not already active on the connection, data 0, v4563";
/// The permissive-modify control.
const PERMISSIVE_MODIFY: &str = "1.2.840.113556.1.4.1413";

/// `80090308: … data <code>, v4563`: AD's diagnostic of a failed simple bind.
pub fn bind_failure_text(subcode: &str) -> String {
    format!(
        "80090308: LdapErr: DSID-0C09041C, comment: AcceptSecurityContext error, data {subcode}, v4563"
    )
}

fn result(code: LdapResultCode, message: &str, referral: Vec<String>) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.to_string(),
        referral,
    }
}

/// The replies to `msg` (empty for an unbind or abandon).
pub fn handle(
    dir: &mut Directory,
    port: Port<'_>,
    session: &mut Session,
    msg: LdapMsg,
) -> Vec<LdapMsg> {
    let dc = port.dc;
    let msgid = msg.msgid;
    let reply = |op: LdapOp| {
        vec![LdapMsg {
            msgid,
            op,
            ctrl: Vec::new(),
        }]
    };
    match msg.op {
        LdapOp::BindRequest(req) => {
            let res = bind(dir, session, &req.dn, &req.cred);
            reply(LdapOp::BindResponse(LdapBindResponse {
                res,
                saslcreds: None,
            }))
        }
        LdapOp::SearchRequest(req) => search(dir, port, session, msgid, &req, &msg.ctrl),
        LdapOp::ModifyRequest(req) => {
            let permissive = msg
                .ctrl
                .iter()
                .any(|c| matches!(c, LdapControl::Unknown { oid, .. } if oid == PERMISSIVE_MODIFY));
            reply(LdapOp::ModifyResponse(modify(
                dir, dc, session, &req, permissive,
            )))
        }
        LdapOp::ExtendedRequest(req) if req.name == OID_WHOAMI => {
            let authzid = session
                .bound
                .and_then(|i| dir.accounts.get(i))
                .map(|a| format!("u:{}", a.down_level))
                .unwrap_or_default();
            reply(LdapOp::ExtendedResponse(LdapExtendedResponse {
                res: result(LdapResultCode::Success, "", Vec::new()),
                name: None,
                value: Some(authzid.into_bytes()),
            }))
        }
        LdapOp::ExtendedRequest(_) => reply(LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: result(
                LdapResultCode::ProtocolError,
                "unsupported extended operation",
                Vec::new(),
            ),
            name: None,
            value: None,
        })),
        LdapOp::UnbindRequest | LdapOp::AbandonRequest(_) => Vec::new(),
        LdapOp::AddRequest(_) => reply(LdapOp::AddResponse(result(
            LdapResultCode::UnwillingToPerform,
            "winad does not create objects",
            Vec::new(),
        ))),
        LdapOp::DelRequest(_) => reply(LdapOp::DelResponse(result(
            LdapResultCode::UnwillingToPerform,
            "winad does not delete objects",
            Vec::new(),
        ))),
        _ => reply(LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: result(
                LdapResultCode::ProtocolError,
                "unsupported operation",
                Vec::new(),
            ),
            name: None,
            value: None,
        })),
    }
}

fn bind(dir: &Directory, session: &mut Session, dn: &str, cred: &LdapBindCred) -> LdapResult {
    session.bound = None;
    let password = match cred {
        LdapBindCred::Simple(password) => password,
        _ => {
            return result(
                LdapResultCode::AuthMethodNotSupported,
                "winad answers simple binds only",
                Vec::new(),
            );
        }
    };
    if dn.is_empty() && password.is_empty() {
        return result(LdapResultCode::Success, "", Vec::new()); // anonymous
    }
    if !session.tls {
        return result(
            LdapResultCode::StrongerAuthRequired,
            SIGNING_REQUIRED,
            Vec::new(),
        );
    }
    let found = dir.accounts.iter().position(|a| {
        a.upn.eq_ignore_ascii_case(dn)
            || a.down_level.eq_ignore_ascii_case(dn)
            || norm(&a.dn) == norm(dn)
    });
    let Some(index) = found else {
        return result(
            LdapResultCode::InvalidCredentials,
            &bind_failure_text("52e"),
            Vec::new(),
        );
    };
    let account = &dir.accounts[index];
    if account.password != *password {
        return result(
            LdapResultCode::InvalidCredentials,
            &bind_failure_text("52e"),
            Vec::new(),
        );
    }
    if let Some(code) = account.state.subcode() {
        return result(
            LdapResultCode::InvalidCredentials,
            &bind_failure_text(code),
            Vec::new(),
        );
    }
    debug_assert_eq!(account.state, AccountState::Usable);
    session.bound = Some(index);
    result(LdapResultCode::Success, "", Vec::new())
}

fn modify(
    dir: &mut Directory,
    dc: &DcSpec,
    session: &Session,
    req: &LdapModifyRequest,
    permissive: bool,
) -> LdapResult {
    if session.bound.is_none() {
        return result(LdapResultCode::OperationsError, BIND_FIRST, Vec::new());
    }
    let Some(domain) = dir.domain_of(&req.dn).cloned() else {
        return result(
            LdapResultCode::NoSuchObject,
            "0000208D: NameErr: DSID-0310028D, problem 2001 (NO_OBJECT), data 0",
            Vec::new(),
        );
    };
    if !domain.dns.eq_ignore_ascii_case(&dc.domain) {
        return result(
            LdapResultCode::Referral,
            &referral_text(&domain.dns),
            vec![format!("ldap://{}/{}", domain.dns, req.dn)],
        );
    }
    if dc.read_only {
        let writable = dir
            .writable_dc(&dc.domain)
            .map(|d| d.host.clone())
            .unwrap_or_else(|| dc.domain.clone());
        return result(
            LdapResultCode::Referral,
            &referral_text(&writable),
            vec![format!("ldap://{writable}/{}", req.dn)],
        );
    }
    let key = norm(&req.dn);
    let schema = dir.schema.clone();
    let Some(entry) = dir.entries.get_mut(&key) else {
        return result(
            LdapResultCode::NoSuchObject,
            "0000208D: NameErr: DSID-0310028D, problem 2001 (NO_OBJECT), data 0",
            Vec::new(),
        );
    };
    let mut updated = entry.clone();
    for change in &req.changes {
        let name = change.modification.atype.as_str();
        let values = &change.modification.vals;
        let mut current = updated.get(name).cloned().unwrap_or_default();
        match change.operation {
            LdapModifyType::Add => {
                for v in values {
                    if current.contains(v) {
                        if !permissive {
                            return result(
                                LdapResultCode::AttributeOrValueExists,
                                "00002083: AtrErr: DSID-03151818, #1:\n\t0: 00002083: DSID-03151818, problem 1006 (ATT_OR_VALUE_EXISTS), data 0",
                                Vec::new(),
                            );
                        }
                    } else {
                        current.push(v.clone());
                    }
                }
            }
            LdapModifyType::Delete if values.is_empty() => current.clear(),
            LdapModifyType::Delete => {
                for v in values {
                    match current.iter().position(|c| c == v) {
                        Some(at) => {
                            current.remove(at);
                        }
                        None if permissive => {}
                        None => {
                            return result(
                                LdapResultCode::NoSuchAttribute,
                                "00002083: AtrErr: DSID-03151818, #1:\n\t0: 00002083: DSID-03151818, problem 1001 (NO_ATTRIBUTE_OR_VAL), data 0",
                                Vec::new(),
                            );
                        }
                    }
                }
            }
            LdapModifyType::Replace => current = values.clone(),
            LdapModifyType::Increment => {
                return result(
                    LdapResultCode::UnwillingToPerform,
                    "increment is not supported",
                    Vec::new(),
                );
            }
        }
        let single = schema
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .is_some_and(|a| a.single_valued);
        if single && current.len() > 1 {
            return result(
                LdapResultCode::ConstraintViolation,
                "00002081: AtrErr: DSID-03151818, #1:\n\t0: 00002081: DSID-03151818, problem 1005 (CONSTRAINT_ATT_TYPE), data 0",
                Vec::new(),
            );
        }
        updated.set(name, current);
    }
    *entry = updated;
    dir.modifies.push((dc.host.clone(), req.dn.clone()));
    result(LdapResultCode::Success, "", Vec::new())
}
