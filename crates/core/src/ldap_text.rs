//! LDAP text: RFC 4515 filter-value escaping and RFC 4514 DN parsing and escaping.
// (implementation: AD connector helper)
