//! The attributes the directory account may not read: AD leaves them out of its answers
//! without an error, so a plan would see them empty, rewrite them every cycle and journal a
//! wrong previous value. Probed at the start of every cycle, preview and provision
//! ([`Directory::unreadable_attributes`]); they are not planned (`PlanInput::unreadable`), each
//! is logged as an error naming the account and the grant, and the cycle's report lists them.

use uuid::Uuid;

use crate::engine::Engine;
use crate::ports::{Directory, UnreadableAttribute};

impl<S, D: Directory, St> Engine<S, D, St> {
    /// Probe the attributes the plans read — on `samples` where given (the objects about to
    /// be evaluated, `Directory::unreadable_attributes`); remember those the account may not
    /// read. A probe that cannot decide (no sample object, a DACL the account may not read)
    /// plans every attribute, with a warning.
    pub(crate) async fn probe_read_rights(&self, samples: &[Uuid]) -> Vec<UnreadableAttribute> {
        let attributes = self.settings.required_ad_attributes();
        let found = match self
            .directory
            .unreadable_attributes(&attributes, samples)
            .await
        {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot verify that the bind account may read the attributes the plans need");
                Vec::new()
            }
        };
        for u in &found {
            tracing::error!(attribute = %u.attribute, "not planned: {}", u.message);
        }
        if let Ok(mut names) = self.unreadable.write() {
            *names = found.iter().map(|u| u.attribute.clone()).collect();
        }
        found
    }

    /// The attributes not planned (the last probe's).
    pub(crate) fn unreadable_names(&self) -> Vec<String> {
        self.unreadable
            .read()
            .map(|n| n.clone())
            .unwrap_or_default()
    }
}
