//! The Exchange Online side of `check`: an access token, a sample of mailboxes read over more
//! than one page, and the client certificate to compare with the app registration.

use serde::Serialize;

use crate::config::Config;

/// The Exchange Online half.
#[derive(Debug, Serialize, Default)]
pub struct ExoReport {
    pub ok: bool,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Mailboxes read in the sample (at most [`EXO_SAMPLE`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailboxes_sampled: Option<usize>,
    /// Whether the tenant has more mailboxes than the sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub more_mailboxes: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_mailbox: Option<String>,
    /// The client certificate, to compare with the app registration (certificate
    /// credentials only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateReport>,
    /// What should be dealt with soon although nothing fails (a certificate close to expiry).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The client certificate as the Entra admin center shows it under Certificates & secrets.
#[derive(Debug, Serialize, Default)]
pub struct CertificateReport {
    pub subject: String,
    pub sha1_thumbprint: String,
    pub sha256_thumbprint: String,
    pub expires: String,
}

/// How many mailboxes `check` reads from Exchange Online.
pub const EXO_SAMPLE: usize = 100;

/// The result pages `check` asks for: small, so a tenant of more than this many mailboxes
/// shows whether paging works (a routing anchor that finds no mailbox fails at the second
/// page) before the first cycle does.
pub const EXO_CHECK_PAGE: u32 = 50;

/// Gets a token and reads a sample of mailboxes (one result page at most).
pub(super) async fn check_exo_side(config: &Config, asked_alone: bool) -> ExoReport {
    use futures::StreamExt;
    let Some(exo) = &config.exo else {
        return ExoReport {
            // Skipped, not failed, unless it was asked for alone.
            ok: !asked_alone,
            status: "not configured (no [exo] section)".into(),
            ..ExoReport::default()
        };
    };
    let mut report = ExoReport {
        tenant: Some(exo.tenant.clone()),
        ..ExoReport::default()
    };
    let fail = |mut report: ExoReport, status: &str, e: &dyn std::fmt::Display| {
        report.status = status.into();
        report.error = Some(e.to_string());
        report
    };
    let client = match exo.settings() {
        Ok(mut settings) => {
            settings.page_size = settings.page_size.min(EXO_CHECK_PAGE);
            match exo_writeback_exo::ExoClient::new(settings) {
                Ok(c) => c,
                Err(e) => return fail(report, "FAILED: configuration", &e),
            }
        }
        Err(e) => return fail(report, "FAILED: configuration", &e),
    };
    report.endpoint = Some(client.endpoint().to_string());
    if let Some(c) = &client.settings().certificate {
        report.certificate = Some(CertificateReport {
            subject: c.subject.clone(),
            sha1_thumbprint: c.sha1_thumbprint.clone(),
            sha256_thumbprint: c.sha256_thumbprint.clone(),
            expires: c.expiry(),
        });
    }
    report.warnings = client.settings().warnings(jiff::Timestamp::now());
    if let Err(e) = client.check_token().await {
        return fail(report, "FAILED: no access token", &e);
    }
    let mut sample = client.mailboxes(None).take(EXO_SAMPLE + 1);
    let mut read = 0usize;
    while let Some(item) = sample.next().await {
        match item {
            Ok(m) => {
                read += 1;
                if report.first_mailbox.is_none() {
                    report.first_mailbox = m.primary_smtp_address.or(m.user_principal_name);
                }
            }
            // One odd record does not fail the check; it is reported.
            Err(e) if e.is_record_error() => {
                read += 1;
                report.error.get_or_insert_with(|| e.to_string());
            }
            Err(e) => return fail(report, "FAILED: cannot read mailboxes", &e),
        }
    }
    report.mailboxes_sampled = Some(read.min(EXO_SAMPLE));
    report.more_mailboxes = Some(read > EXO_SAMPLE);
    report.ok = true;
    report.status = "OK".into();
    report
}
