//! The lab forest: three DCs of one domain (`lab/forest.sh`) — `dc1` (the first DC: the KDC
//! and the realm's DNS, Samba's internal DNS with the DC locator's SRV records), `dc2` (a second
//! writable DC) and `rodc1` (a read-only DC) — each on its own loopback address. The template
//! holds all three (joined once, with `samba-tool domain join … DC|RODC`); a test starts only
//! the members it needs, and can stop and start them again (failover tests).
//!
//! The members hold the same objects as of the template; they do not replicate with each other
//! after that (Samba's replication finds its partners through the system resolver, which does
//! not know the lab's names): write on one DC and read on the same one.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::{LabDc, LabError, LabOptions, NEXT_DC, free_address, run_down, run_root};

/// The forest's Kerberos realm (and, lower-case, its DNS domain).
pub const REALM: &str = "LAB.EXAMPLE.TEST";

/// One DC of the lab forest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForestMember {
    /// The first DC: KDC, the realm's DNS (SRV records), a global catalog.
    Dc1,
    /// A second writable DC (also a KDC and a global catalog).
    Dc2,
    /// A read-only DC: answers reads, refers writes to a writable DC (LDAP referral, 10).
    Rodc1,
}

impl ForestMember {
    pub const ALL: [ForestMember; 3] = [ForestMember::Dc1, ForestMember::Dc2, ForestMember::Rodc1];

    /// `dc1`, `dc2`, `rodc1`: the member's host name in the realm.
    pub fn name(self) -> &'static str {
        match self {
            ForestMember::Dc1 => "dc1",
            ForestMember::Dc2 => "dc2",
            ForestMember::Rodc1 => "rodc1",
        }
    }

    /// `dc1.lab.example.test`, the DC's dnsHostName (the target of its SRV records, the host of
    /// its `ldap/` service principal).
    pub fn fqdn(self) -> String {
        format!("{}.{}", self.name(), REALM.to_ascii_lowercase())
    }

    pub(crate) fn index(self) -> usize {
        match self {
            ForestMember::Dc1 => 0,
            ForestMember::Dc2 => 1,
            ForestMember::Rodc1 => 2,
        }
    }
}

/// Which members to start with the forest (dc1 always starts: it serves the DNS and the KDC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForestOptions {
    pub dc2: bool,
    pub rodc1: bool,
    /// Each samba stops by itself after this long.
    pub max_runtime: Duration,
}

impl Default for ForestOptions {
    fn default() -> Self {
        ForestOptions {
            dc2: false,
            rodc1: false,
            max_runtime: Duration::from_secs(60 * 60),
        }
    }
}

impl ForestOptions {
    /// dc1, dc2 and rodc1.
    pub fn all() -> Self {
        ForestOptions {
            dc2: true,
            rodc1: true,
            ..ForestOptions::default()
        }
    }
}

/// The test accounts of the forest (see [`LabForest::account_password`]).
pub const ACCOUNTS: [&str; 4] = ["svc-agent", "svc-kerberos", "svc-noread", "plainuser"];

/// What `lab/up` needs to start one member (internal to [`LabOptions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberSpec {
    pub member: ForestMember,
    /// The addresses of dc1, dc2 and rodc1.
    pub addrs: [String; 3],
    pub dir: PathBuf,
}

/// A running lab forest. Dropping it stops every member and removes its directory.
#[derive(Debug)]
pub struct LabForest {
    /// Holds one lab directory per member (`<dir>/dc1`, …).
    pub dir: PathBuf,
    /// The addresses of dc1, dc2 and rodc1 (fixed for the forest's life, running or not).
    addrs: [String; 3],
    dcs: [Option<LabDc>; 3],
    max_runtime: Duration,
}

impl LabForest {
    /// Starts dc1, and dc2 / rodc1 as `opts` asks. The forest template is built on first use
    /// (about 40 s on a quiet 2-core machine, once per machine and version of the lab scripts).
    pub fn start(opts: ForestOptions) -> Result<LabForest, LabError> {
        let run_dir = run_root();
        let n = NEXT_DC.fetch_add(3, Ordering::Relaxed);
        let dir = run_dir.join(format!("forest-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|source| LabError::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        let pid = std::process::id();
        let mut addrs: Vec<String> = Vec::with_capacity(3);
        for i in 0..3u32 {
            // Distinct attempts per member, so the three addresses differ.
            let mut attempt = n.wrapping_add(i);
            loop {
                let a = free_address(pid, attempt)?.to_string();
                if !addrs.contains(&a) {
                    addrs.push(a);
                    break;
                }
                attempt = attempt.wrapping_add(1);
            }
        }
        let addrs: [String; 3] = [addrs[0].clone(), addrs[1].clone(), addrs[2].clone()];
        let mut forest = LabForest {
            dir,
            addrs,
            dcs: [None, None, None],
            max_runtime: opts.max_runtime,
        };
        forest.start_member(ForestMember::Dc1)?;
        // The forest's shared files, kept at its root so that they outlive a stopped dc1.
        let dc1 = forest.member_dir(ForestMember::Dc1);
        let shared = ["krb5.conf", "svc-kerberos.keytab", "tls/ca.pem"]
            .into_iter()
            .map(String::from)
            .chain(ACCOUNTS.iter().map(|a| format!("{a}-password")));
        for file in shared {
            let from = dc1.join(&file);
            let to = forest
                .dir
                .join(Path::new(&file).file_name().unwrap_or_default());
            std::fs::copy(&from, &to).map_err(|source| LabError::Io {
                action: "copy",
                path: from.clone(),
                source,
            })?;
        }
        if opts.dc2 {
            forest.start_member(ForestMember::Dc2)?;
        }
        if opts.rodc1 {
            forest.start_member(ForestMember::Rodc1)?;
        }
        Ok(forest)
    }

    /// Starts `member` (from the template, on its address). A member stopped by
    /// [`LabForest::stop_member`] starts again fresh from the template.
    pub fn start_member(&mut self, member: ForestMember) -> Result<&LabDc, LabError> {
        if self.dcs[member.index()].is_none() {
            let opts = LabOptions {
                max_runtime: self.max_runtime,
                forest: Some(MemberSpec {
                    member,
                    addrs: self.addrs.clone(),
                    dir: self.dir.join(member.name()),
                }),
                ..LabOptions::default()
            };
            self.dcs[member.index()] = Some(LabDc::start(opts)?);
        }
        Ok(self.dcs[member.index()]
            .as_ref()
            .expect("the member was just started"))
    }

    /// Stops `member` (`lab/down`: its connections are reset, its address stops answering).
    pub fn stop_member(&mut self, member: ForestMember) -> Result<(), LabError> {
        match self.dcs[member.index()].take() {
            Some(dc) => dc.stop(),
            None => Ok(()),
        }
    }

    /// The running DC `member`, if it runs.
    pub fn dc(&self, member: ForestMember) -> Option<&LabDc> {
        self.dcs[member.index()].as_ref()
    }

    /// The running DC `member`, for [`LabDc::restart`].
    pub fn dc_mut(&mut self, member: ForestMember) -> Option<&mut LabDc> {
        self.dcs[member.index()].as_mut()
    }

    /// The address `member` has (or will have) in this forest; its A record names it.
    pub fn addr(&self, member: ForestMember) -> &str {
        &self.addrs[member.index()]
    }

    /// dc1's address: the DNS server of the realm (Samba's internal DNS, port 53).
    pub fn dns_server(&self) -> &str {
        self.addr(ForestMember::Dc1)
    }

    /// The lab CA (the same for every member).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A krb5.conf naming the realm's KDCs (dc1 and dc2) by address, nothing looked up in DNS.
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.join("krb5.conf")
    }

    /// The keytab of `svc-kerberos@LAB.EXAMPLE.TEST` (`samba-tool domain exportkeytab`).
    pub fn keytab(&self) -> PathBuf {
        self.dir.join("svc-kerberos.keytab")
    }

    /// The password of a test account of the forest: `svc-agent` (read and write every
    /// attribute in the domain), `svc-kerberos`, `svc-noread` (denied Read Property on
    /// extensionAttribute15 domain-wide) or `plainuser` (default rights only). Each can bind
    /// on every member, rodc1 included (its secrets are preloaded there).
    pub fn account_password(&self, account: &str) -> Result<String, LabError> {
        let path = self.dir.join(format!("{account}-password"));
        std::fs::read_to_string(&path)
            .map(|p| p.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|source| LabError::Io {
                action: "read",
                path,
                source,
            })
    }

    /// `<account>@lab.example.test`.
    pub fn upn(account: &str) -> String {
        format!("{account}@{}", REALM.to_ascii_lowercase())
    }

    fn member_dir(&self, member: ForestMember) -> PathBuf {
        self.dir.join(member.name())
    }
}

impl Drop for LabForest {
    fn drop(&mut self) {
        for dc in self.dcs.iter_mut().rev() {
            drop(dc.take());
        }
        // Members' directories are gone with lab/down; remove what is left (nothing running).
        for member in ForestMember::ALL {
            let dir = self.dir.join(member.name());
            if dir.exists()
                && let Err(e) = run_down(&LabDc::repo_root(), &dir)
            {
                eprintln!("exo-writeback-testlab: {e}");
            }
        }
        for file in ["krb5.conf", "svc-kerberos.keytab", "ca.pem"]
            .into_iter()
            .map(String::from)
            .chain(ACCOUNTS.iter().map(|a| format!("{a}-password")))
        {
            let _ = std::fs::remove_file(self.dir.join(file));
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}
