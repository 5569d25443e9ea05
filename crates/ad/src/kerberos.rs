//! Kerberos credentials for a SASL GSSAPI bind, taken from a keytab without touching the
//! process environment: MIT Kerberos' `gss_acquire_cred_from` with the credential store
//! `client_keytab=<keytab>` and a private in-memory ticket cache (`ccache=MEMORY:…`), so that the
//! keytab is used to get the initial ticket and nothing is written to disk or to the user's
//! default cache. (The krb5.conf still comes from `KRB5_CONFIG` or `/etc/krb5.conf`: MIT reads
//! no other; see docs/windows-ad.md.)

use std::ffi::CString;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use libgssapi_sys::{
    _GSS_C_INDEFINITE, GSS_C_INITIATE, GSS_C_NT_USER_NAME, GSS_S_COMPLETE, OM_uint32, gss_OID_set,
    gss_acquire_cred_from, gss_buffer_desc, gss_cred_id_t, gss_import_name,
    gss_key_value_element_desc, gss_key_value_set_desc, gss_name_t, gss_release_name,
};

/// Why no Kerberos credential could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialError(pub String);

fn gss_error(what: &str, major: OM_uint32, minor: OM_uint32) -> CredentialError {
    let error = libgssapi::error::Error {
        major: libgssapi::error::MajorFlags::from_bits_retain(major),
        minor,
    };
    CredentialError(format!("{what}: {error}"))
}

/// Initiator credentials of `principal` (e.g. `svc-writeback@CORP.EXAMPLE`): from `keytab`
/// when given, else from the default ticket cache / client keytab of the process.
/// Blocking (it may ask the KDC for a ticket): call it from `spawn_blocking`.
pub fn initiator_credential(
    principal: &str,
    keytab: Option<&Path>,
) -> Result<cross_krb5::Cred, CredentialError> {
    use cross_krb5::K5Cred;
    let Some(keytab) = keytab else {
        return cross_krb5::Cred::client_acquire(
            cross_krb5::InitiateFlags::empty(),
            Some(principal),
        )
        .map_err(|e| CredentialError(format!("{e:#}")));
    };
    static CACHE: AtomicU64 = AtomicU64::new(0);
    let keytab = CString::new(format!("FILE:{}", keytab.display()))
        .map_err(|_| CredentialError("the keytab path contains a NUL byte".into()))?;
    let ccache = CString::new(format!(
        "MEMORY:exo-writeback-{}-{}",
        std::process::id(),
        CACHE.fetch_add(1, Ordering::Relaxed)
    ))
    .map_err(|_| CredentialError("bad ccache name".into()))?;
    let principal_c = CString::new(principal)
        .map_err(|_| CredentialError("the principal contains a NUL byte".into()))?;
    let client_keytab = c"client_keytab";
    let ccache_key = c"ccache";
    let elements = [
        gss_key_value_element_desc {
            key: client_keytab.as_ptr(),
            value: keytab.as_ptr(),
        },
        gss_key_value_element_desc {
            key: ccache_key.as_ptr(),
            value: ccache.as_ptr(),
        },
    ];
    let store = gss_key_value_set_desc {
        count: elements.len() as OM_uint32,
        elements: elements.as_ptr() as *mut gss_key_value_element_desc,
    };
    let mut minor: OM_uint32 = 0;
    let mut name: gss_name_t = ptr::null_mut();
    let mut buffer = gss_buffer_desc {
        length: principal_c.as_bytes().len(),
        value: principal_c.as_ptr() as *mut std::ffi::c_void,
    };
    // SAFETY: every pointer passed is valid for the call (CStrings and arrays above outlive
    // it); GSS_C_NT_USER_NAME is a constant OID the library defines; the name is released below.
    let major = unsafe { gss_import_name(&mut minor, &mut buffer, GSS_C_NT_USER_NAME, &mut name) };
    if major != GSS_S_COMPLETE {
        return Err(gss_error(
            &format!("the principal {principal:?}"),
            major,
            minor,
        ));
    }
    let mut cred: gss_cred_id_t = ptr::null_mut();
    // SAFETY: as above; `store` and its elements live until the call returns; on success the
    // credential handle is owned by the libgssapi Cred built from it (released on drop).
    let major = unsafe {
        gss_acquire_cred_from(
            &mut minor,
            name,
            _GSS_C_INDEFINITE,
            ptr::null_mut() as gss_OID_set,
            GSS_C_INITIATE as i32,
            &store,
            &mut cred,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    let mut release_minor: OM_uint32 = 0;
    // SAFETY: `name` was allocated by gss_import_name above and is not used after this.
    unsafe { gss_release_name(&mut release_minor, &mut name) };
    if major != GSS_S_COMPLETE {
        return Err(gss_error(
            &format!("no credential for {principal} from the keytab"),
            major,
            minor,
        ));
    }
    Ok(cross_krb5::Cred::from(libgssapi::credential::Cred::from(
        cred,
    )))
}
