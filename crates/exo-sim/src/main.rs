//! `exo-sim serve …`: runs the Exchange Online emulator until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use exo_sim::{SeedSpec, SimConfig};

#[derive(Parser)]
#[command(
    name = "exo-sim",
    about = "Exchange Online emulator (token endpoint, InvokeCommand, control API)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the emulator.
    Serve(Serve),
}

#[derive(clap::Args)]
struct Serve {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The tenant's initial domain; clients address the tenant by it or by --tenant-id.
    #[arg(long, default_value = "contoso.onmicrosoft.com")]
    tenant: String,
    /// The tenant id (GUID); default: one derived from --tenant.
    #[arg(long)]
    tenant_id: Option<uuid::Uuid>,
    /// The Microsoft cloud (worldwide, gcc-high, dod, china): decides the token scope.
    #[arg(long, default_value = "worldwide")]
    cloud: exo_sim::SimCloud,
    /// Application (client) id.
    #[arg(long)]
    client_id: String,
    /// File holding the accepted client secret (trailing newline ignored).
    #[arg(long)]
    client_secret_file: Option<PathBuf>,
    /// PEM certificate whose key signs client assertions.
    #[arg(long)]
    client_cert: Option<PathBuf>,
    /// Generate this many mailboxes at start.
    #[arg(long)]
    seed: Option<usize>,
    /// RNG seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed_rng: u64,
    /// Primary-address domain of generated mailboxes.
    #[arg(long, default_value = "contoso.com")]
    seed_domain: String,
    /// Also create mailboxes for the users of the DC in this exo-writeback.toml's [ad] section.
    #[arg(long, value_name = "CONFIG")]
    seed_from_ad: Option<PathBuf>,
    /// Fraction (0..1) of AD users whose mailbox is not cloud-managed (chosen by objectGUID).
    #[arg(long, default_value_t = 0.0)]
    seed_from_ad_not_cloud_managed: f64,
    /// Access-token lifetime in seconds.
    #[arg(long, default_value_t = 3599)]
    token_lifetime: u64,
    /// Largest InvokeCommand page.
    #[arg(long, default_value_t = 1000)]
    page_size_max: usize,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let Command::Serve(args) = cli.command;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Serve) -> Result<()> {
    if args.client_secret_file.is_none() && args.client_cert.is_none() {
        anyhow::bail!(
            "give --client-secret-file or --client-cert (or both): no client could get a token otherwise"
        );
    }
    let client_secret = match &args.client_secret_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the client secret file {}", p.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        ),
        None => None,
    };
    let client_cert_pem = match &args.client_cert {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the client certificate {}", p.display()))?,
        ),
        None => None,
    };
    if !(0.0..=1.0).contains(&args.seed_from_ad_not_cloud_managed) {
        anyhow::bail!("--seed-from-ad-not-cloud-managed must be within 0..=1");
    }
    let tenant_domain = SimConfig {
        tenant: args.tenant.clone(),
        ..SimConfig::default()
    }
    .tenant_domain();
    let config = SimConfig {
        tenant: args.tenant,
        tenant_id: args.tenant_id,
        cloud: args.cloud,
        client_id: args.client_id,
        client_secret,
        client_cert_pem,
        token_lifetime_secs: args.token_lifetime,
        page_size_max: args.page_size_max,
        seed: args.seed.map(|count| SeedSpec {
            count,
            seed: args.seed_rng,
            domain: args.seed_domain.clone(),
            initial_domain: tenant_domain.clone(),
            ..SeedSpec::default()
        }),
        listen: args.listen,
        fault_seed: 0,
    };
    let handle = exo_sim::spawn(config)
        .await
        .context("cannot start exo-sim")?;
    if let Some(path) = &args.seed_from_ad {
        let options = exo_sim::seed_ad::AdSeedOptions {
            tenant_domain,
            not_cloud_managed: args.seed_from_ad_not_cloud_managed,
        };
        let added = exo_sim::seed_ad::seed_from_ad(&handle.state(), path, &options)
            .await
            .with_context(|| format!("cannot seed from the AD in {}", path.display()))?;
        tracing::info!(
            mailboxes = added.mailboxes,
            groups_and_contacts = added.recipients,
            "recipients created from AD"
        );
    }
    println!("listening on {}", handle.base_url());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    handle.shutdown().await;
    Ok(())
}
