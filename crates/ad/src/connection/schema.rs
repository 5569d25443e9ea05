//! The rootDSE, the bind identity (WhoAmI), the schema, and values decoded by its syntaxes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use exo_writeback_core::directory::{AttrValue, Attributes, DirectoryObject};
use exo_writeback_core::guid::uuid_from_object_guid;
use exo_writeback_core::schema::{AttributeSchema, Schema, Syntax};

use super::{AdConnection, RootDse, SearchScope};
use crate::error::AdError;
use crate::wire::RawEntry;

/// The schema reads of a connection and its side connection: one at a time, and counted, so
/// that a caller who asked while a read was under way takes that read's result instead of
/// reading the whole schema again (a fresh process's first cycle asked for it three times at
/// once: the scan's decoding, the cycle's refresh and the rights probe's account lookup).
///
/// A refresh first reads the schema NC head's `schemaInfo` and keeps the cached schema when it
/// was read under the same value (`still_current`): Microsoft Learn, "Schema-Info attribute"
/// (and MS-ADA3 2.228, "Attribute schemaInfo"), describes it as an internal binary value used
/// to detect schema changes between DCs — on the class DMD (the schema NC head), system-only,
/// an octet string, not single-valued. Its layout (0xFF, a big-endian revision incremented by
/// every originating schema change, the invocationId of the DC that made it; MS-DRSR) is not
/// relied on: the value is compared byte for byte. Checked on the lab Samba 4.17 DC: 21 bytes
/// from 0xFF, readable as Administrator, and adding an attributeSchema changed it (the tests
/// `schema_info.rs`). A DC that does not show it (absent, or not readable by the bind account)
/// gets the full read every time, as before.
#[derive(Debug, Default)]
pub(super) struct SchemaReads {
    gate: tokio::sync::Mutex<()>,
    done: AtomicU64,
    /// Whether the absence of `schemaInfo` was said already (once per connection).
    no_schema_info_said: AtomicBool,
}

/// Whether `cached` may be kept instead of reading the schema again: it was read under the
/// `schemaInfo` the DC shows `now`. Without a value on either side, never.
pub(super) fn still_current(cached: Option<&Schema>, now: Option<&[u8]>) -> bool {
    matches!((cached.and_then(Schema::schema_info), now), (Some(then), Some(now)) if then == now)
}

impl AdConnection {
    // ---- rootDSE, identity, schema ----

    pub(super) async fn read_root_dse(&self) -> Result<RootDse, AdError> {
        let attrs: Vec<String> = [
            "namingContexts",
            "defaultNamingContext",
            "schemaNamingContext",
            "configurationNamingContext",
            "dnsHostName",
            "supportedControl",
            "supportedExtension",
            "supportedCapabilities",
            "dsServiceName",
            "rootDomainNamingContext",
            "isGlobalCatalogReady",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let entries = self
            .run(|ldap| {
                self.search_once(ldap, "", SearchScope::Base, "(objectClass=*)", &attrs, None)
            })
            .await?
            .0;
        let entry = entries
            .into_iter()
            .next()
            .ok_or_else(|| self.protocol("reading the rootDSE", "no rootDSE entry".into()))?;
        let texts = |name: &str| -> Vec<String> {
            entry
                .attributes
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .flat_map(|(_, vs)| vs.iter().map(|v| String::from_utf8_lossy(v).into_owned()))
                .collect()
        };
        let first = |name: &str| texts(name).into_iter().next();
        Ok(RootDse {
            naming_contexts: texts("namingContexts"),
            default_naming_context: first("defaultNamingContext"),
            schema_naming_context: first("schemaNamingContext"),
            configuration_naming_context: first("configurationNamingContext"),
            dns_host_name: first("dnsHostName"),
            supported_controls: texts("supportedControl"),
            supported_extensions: texts("supportedExtension"),
            supported_capabilities: texts("supportedCapabilities"),
            ds_service_name: first("dsServiceName"),
            root_domain_naming_context: first("rootDomainNamingContext"),
            global_catalog_ready: first("isGlobalCatalogReady")
                .is_some_and(|v| v.eq_ignore_ascii_case("TRUE")),
        })
    }

    pub(super) async fn who_am_i(&self) -> Result<String, AdError> {
        let result = self
            .run(|mut ldap| async move {
                ldap.with_timeout(self.timeout);
                ldap.extended(ldap3::exop::WhoAmI)
                    .await
                    .map_err(|e| self.op_error(e, "asking WhoAmI of", "", ""))
            })
            .await?;
        let ldap3::result::ExopResult(exop, res) = result;
        if res.rc != 0 {
            tracing::debug!(rc = res.rc, text = %res.text, "WhoAmI not answered; using the bind DN");
            return Ok(self.config.bind_dn.clone());
        }
        let authzid = exop
            .val
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default();
        let identity = authzid
            .strip_prefix("dn:")
            .or_else(|| authzid.strip_prefix("u:"))
            .unwrap_or(&authzid)
            .to_string();
        if identity.is_empty() {
            return Ok(self.config.bind_dn.clone());
        }
        Ok(identity)
    }

    /// The AD schema (every attributeSchema), read once and cached: on this connection when
    /// nothing has read it yet (a connection used once, e.g. the global catalog's, opens no
    /// side connection for it), else the result of the read under way.
    pub async fn schema(&self) -> Result<Arc<Schema>, AdError> {
        if let Some(schema) = self.cached_schema() {
            return Ok(schema);
        }
        let _gate = self.schema_reads.gate.lock().await;
        if let Some(schema) = self.cached_schema() {
            return Ok(schema);
        }
        let schema_info = self.read_schema_info(self).await;
        self.read_schema(self, schema_info).await
    }

    /// The schema if it was read already.
    pub fn cached_schema(&self) -> Option<Arc<Schema>> {
        self.schema.read().ok().and_then(|guard| guard.clone())
    }

    /// Use `schema` (read on another DC of the forest: the schema is the forest's; or kept in
    /// the state by an earlier process) instead of reading it again. A refresh still checks
    /// its `schemaInfo` tag against the DC's.
    pub fn adopt_schema(&self, schema: Arc<Schema>) {
        if let Ok(mut guard) = self.schema.write() {
            *guard = Some(schema);
        }
    }

    /// Read the schema again if it changed (e.g. after an error, or to pick up a schema
    /// extension, at the start of a cycle), on the side connection (`side.rs`): the schema NC
    /// head's `schemaInfo` first, and the attributeSchema objects only when it differs from the
    /// cached schema's (or either is missing). When a read or check is under way already, its
    /// result.
    pub async fn refresh_schema(&self) -> Result<Arc<Schema>, AdError> {
        let done = self.schema_reads.done.load(Ordering::Acquire);
        let _gate = self.schema_reads.gate.lock().await;
        if self.schema_reads.done.load(Ordering::Acquire) != done
            && let Some(schema) = self.cached_schema()
        {
            return Ok(schema);
        }
        let on = self.side();
        // Read before the attributes: a change while they are read shows as a new value at
        // the next refresh, which then reads them again.
        let schema_info = self.read_schema_info(on).await;
        if let Some(cached) = self.cached_schema()
            && still_current(Some(&cached), schema_info.as_deref())
        {
            tracing::debug!("the schema is unchanged (same schemaInfo); not read again");
            self.schema_reads.done.fetch_add(1, Ordering::Release);
            return Ok(cached);
        }
        self.read_schema(on, schema_info).await
    }

    /// The schema naming context (the rootDSE's `schemaNamingContext`).
    fn schema_nc(&self, op: &'static str) -> Result<String, AdError> {
        self.root_dse
            .schema_naming_context
            .clone()
            .ok_or_else(|| self.protocol(op, "the rootDSE names no schemaNamingContext".into()))
    }

    /// The schema NC head's `schemaInfo` over `on` (one base-object search), or `None` when
    /// the DC does not show it to this account or the search fails (the full read that follows
    /// reports a failure that matters); said once per connection, at debug level.
    async fn read_schema_info(&self, on: &AdConnection) -> Option<Vec<u8>> {
        let found = match self.schema_nc("reading schemaInfo") {
            Ok(base) => on
                .raw_search(
                    &base,
                    SearchScope::Base,
                    "(objectClass=*)",
                    &["schemaInfo".to_string()],
                )
                .await
                .map(|entries| schema_info_of(&entries)),
            Err(e) => Err(e),
        };
        let why = match found {
            Ok(Some(value)) => return Some(value),
            Ok(None) => "the schema NC head shows no schemaInfo to this account".to_string(),
            Err(e) => format!("reading the schema NC head's schemaInfo failed: {e}"),
        };
        if !self
            .schema_reads
            .no_schema_info_said
            .swap(true, Ordering::Relaxed)
        {
            tracing::debug!(
                reason = %why,
                "schema changes cannot be detected; the whole schema is read at every refresh"
            );
        }
        None
    }

    /// Reads the schema over `on` (this connection or its side one; the caller holds the
    /// gate), tagged with `schema_info`, read just before.
    async fn read_schema(
        &self,
        on: &AdConnection,
        schema_info: Option<Vec<u8>>,
    ) -> Result<Arc<Schema>, AdError> {
        const OP: &str = "reading the schema";
        let base = self.schema_nc(OP)?;
        let attrs: Vec<String> = [
            "lDAPDisplayName",
            "attributeID",
            "attributeSyntax",
            "oMSyntax",
            "isSingleValued",
            "rangeLower",
            "rangeUpper",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let entries = on
            .raw_search(
                &base,
                SearchScope::OneLevel,
                "(objectClass=attributeSchema)",
                &attrs,
            )
            .await?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let get = |name: &str| entry.first_text(name);
            let Some(name) = get("lDAPDisplayName") else {
                tracing::warn!(dn = %entry.dn, "attributeSchema without lDAPDisplayName skipped");
                continue;
            };
            let syntax_oid = get("attributeSyntax").unwrap_or_default();
            let om = get("oMSyntax").and_then(|v| v.parse().ok()).unwrap_or(0);
            out.push(AttributeSchema {
                ldap_display_name: name,
                attribute_id: get("attributeID").unwrap_or_default(),
                syntax: Syntax::from_oids(&syntax_oid, om),
                single_valued: get("isSingleValued")
                    .is_some_and(|v| v.eq_ignore_ascii_case("TRUE")),
                range_lower: get("rangeLower").and_then(|v| v.parse().ok()),
                range_upper: get("rangeUpper").and_then(|v| v.parse().ok()),
            });
        }
        let schema = Arc::new(Schema::new(out).with_schema_info(schema_info));
        if let Ok(mut guard) = self.schema.write() {
            *guard = Some(schema.clone());
        }
        self.schema_reads.done.fetch_add(1, Ordering::Release);
        Ok(schema)
    }
}

/// The `schemaInfo` of a base-object search's entry: its value, or (it is multi-valued in the
/// schema) its values sorted, each after its length, so that one tag stands for the set.
fn schema_info_of(entries: &[RawEntry]) -> Option<Vec<u8>> {
    let mut values: Vec<&Vec<u8>> = entries
        .iter()
        .flat_map(|e| e.attributes.iter())
        .filter(|(name, _)| name.eq_ignore_ascii_case("schemaInfo"))
        .flat_map(|(_, values)| values.iter())
        .filter(|v| !v.is_empty())
        .collect();
    match values.as_slice() {
        [] => None,
        [one] => Some(one.to_vec()),
        _ => {
            values.sort();
            Some(
                values
                    .iter()
                    .flat_map(|v| {
                        (v.len() as u32)
                            .to_be_bytes()
                            .into_iter()
                            .chain(v.iter().copied())
                    })
                    .collect(),
            )
        }
    }
}

/// Decode an entry's values by the schema's syntax: binary syntaxes (octet string, SID, and
/// attributes unknown to the schema) as bytes, text syntaxes as UTF-8 text.
pub fn decode(entry: RawEntry, schema: &Schema) -> Result<DirectoryObject, AdError> {
    let mut attributes = Attributes::new();
    let mut object_guid = None;
    for (name, values) in entry.attributes {
        if name.eq_ignore_ascii_case("objectGUID") {
            object_guid = values.first().and_then(|v| uuid_from_object_guid(v).ok());
        }
        let binary = schema.get(&name).is_none_or(|a| a.syntax.is_binary());
        let decoded = values
            .into_iter()
            .map(|v| {
                if binary {
                    AttrValue::Bytes(v)
                } else {
                    match String::from_utf8(v) {
                        Ok(text) => AttrValue::Text(text),
                        Err(e) => {
                            tracing::warn!(dn = %entry.dn, attribute = %name, "a value of a text attribute is not UTF-8; kept as bytes");
                            AttrValue::Bytes(e.into_bytes())
                        }
                    }
                }
            })
            .collect();
        attributes.insert(&name, decoded);
    }
    let object_guid = object_guid.ok_or_else(|| AdError::MissingObjectGuid {
        dn: entry.dn.clone(),
    })?;
    Ok(DirectoryObject {
        dn: entry.dn,
        object_guid,
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn schema() -> Schema {
        let attr = |name: &str, syntax: Syntax| AttributeSchema {
            ldap_display_name: name.into(),
            attribute_id: String::new(),
            syntax,
            single_valued: false,
            range_lower: None,
            range_upper: None,
        };
        Schema::new([
            attr("objectGUID", Syntax::OctetString),
            attr("mail", Syntax::Unicode),
            attr("objectSid", Syntax::Sid),
            attr("msExchSafeSendersHash", Syntax::OctetString),
        ])
    }

    #[test]
    fn decodes_by_syntax_not_content() {
        let guid = Uuid::parse_str("00112233-4455-6677-8899-aabbccddeeff").unwrap();
        let entry = RawEntry {
            dn: "CN=x".into(),
            attributes: vec![
                ("objectGUID".into(), vec![guid.to_bytes_le().to_vec()]),
                ("mail".into(), vec![b"a@b".to_vec()]),
                // printable bytes in a binary attribute stay bytes
                ("msExchSafeSendersHash".into(), vec![b"ABCD".to_vec()]),
                ("objectSid".into(), vec![vec![1, 5, 0]]),
                ("notInSchema".into(), vec![b"text".to_vec()]),
            ],
        };
        let o = decode(entry, &schema()).unwrap();
        assert_eq!(o.object_guid, guid);
        assert_eq!(o.attributes.get("MAIL"), &[AttrValue::Text("a@b".into())]);
        assert_eq!(
            o.attributes.get("msExchSafeSendersHash"),
            &[AttrValue::Bytes(b"ABCD".to_vec())]
        );
        assert_eq!(
            o.attributes.get("objectSid"),
            &[AttrValue::Bytes(vec![1, 5, 0])]
        );
        assert_eq!(
            o.attributes.get("notInSchema"),
            &[AttrValue::Bytes(b"text".to_vec())]
        );
    }

    #[test]
    fn a_cached_schema_is_kept_only_under_the_same_schema_info() {
        let info = |rev: u8| Some(vec![0xFF, 0, 0, 0, rev, 1, 2, 3]);
        let read_under = |v: Option<Vec<u8>>| schema().with_schema_info(v);
        let cached = read_under(info(0x23));
        assert!(still_current(Some(&cached), info(0x23).as_deref()));
        assert!(
            !still_current(Some(&cached), info(0x24).as_deref()),
            "a schema change: read again"
        );
        assert!(
            !still_current(Some(&cached), None),
            "the DC shows no schemaInfo now: read again"
        );
        assert!(
            !still_current(Some(&read_under(None)), None),
            "no value on either side: read every time, as without the check"
        );
        assert!(!still_current(
            Some(&read_under(None)),
            info(0x23).as_deref()
        ));
        assert!(
            !still_current(None, info(0x23).as_deref()),
            "nothing cached"
        );
    }

    #[test]
    fn schema_info_is_taken_from_the_head_entry() {
        let entry = |values: Vec<Vec<u8>>| RawEntry {
            dn: "CN=Schema,CN=Configuration,DC=x".into(),
            attributes: vec![("schemaInfo".into(), values)],
        };
        assert_eq!(
            schema_info_of(&[entry(vec![vec![0xFF, 0, 0, 0, 0x23]])]),
            Some(vec![0xFF, 0, 0, 0, 0x23])
        );
        assert_eq!(schema_info_of(&[entry(vec![])]), None);
        assert_eq!(schema_info_of(&[]), None, "not shown to this account");
        let two = schema_info_of(&[entry(vec![vec![2], vec![1]])]);
        assert_eq!(
            two,
            schema_info_of(&[entry(vec![vec![1], vec![2]])]),
            "several values: one tag whatever their order"
        );
        assert_eq!(two, Some(vec![0, 0, 0, 1, 1, 0, 0, 0, 1, 2]));
    }

    #[test]
    fn entry_without_guid_is_an_error() {
        let entry = RawEntry {
            dn: "CN=x".into(),
            attributes: vec![("objectGUID".into(), vec![vec![1, 2]])],
        };
        assert!(matches!(
            decode(entry, &schema()),
            Err(AdError::MissingObjectGuid { .. })
        ));
    }
}
