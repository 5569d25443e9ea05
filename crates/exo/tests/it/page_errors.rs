//! Item 5 of issue 11: `@adminapi.errors` in a successful (HTTP 200) page. The module reports
//! each entry as a cmdlet error and marks the run failed; the client hands on the page's
//! records, then one error carrying the entries' text.

use exo_sim::{Endpoint, FaultKind, SimCloud};

use crate::support::*;

#[tokio::test]
async fn errors_in_a_200_page_follow_its_records_and_end_the_listing() {
    let sim = spawn(tenant(25, SimCloud::Worldwide, None)).await;
    let c = client(&section(&sim.base_url(), TENANT_ID, "page_size = 10"));
    c.check_token().await.expect("token");
    let text = "The operation couldn't be performed because object 'x@contoso.com' couldn't be read from the directory.";
    fault(
        &sim,
        Endpoint::NextLink,
        FaultKind::AdminApiErrors {
            errors: vec![text.into()],
        },
        Some(1),
    );
    let (mailboxes, errors) = drain(c.mailboxes(None)).await;
    assert_eq!(
        mailboxes.len(),
        20,
        "the records of both pages read so far are handed on"
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert!(!e.is_record_error(), "{e}");
    let shown = e.to_string();
    assert!(shown.contains(text), "{shown}");
    assert!(
        shown.contains("@adminapi.errors") || shown.contains("reported errors"),
        "{shown}"
    );
}

#[tokio::test]
async fn errors_beside_a_single_mailbox_fail_get_mailbox() {
    let sim = spawn(tenant(2, SimCloud::Worldwide, None)).await;
    let c = client(&section(&sim.base_url(), TENANT_ID, ""));
    let id = sim.state().mailboxes_after(None, 1)[0].guid.to_string();
    fault(
        &sim,
        Endpoint::Invoke,
        FaultKind::AdminApiErrors {
            errors: vec!["A property of this mailbox could not be read.".into()],
        },
        Some(1),
    );
    let err = c.get_mailbox(&id).await.expect_err("reported errors count");
    assert!(err.to_string().contains("could not be read"), "{err}");
    assert!(c.get_mailbox(&id).await.expect("then clean").is_some());
}
