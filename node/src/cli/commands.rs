//! Each client command: call the SDK, print a table or JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::{Args, Subcommand};
use futures::StreamExt;
use qubix_protocol::api::{Instance, InstanceAction, LaunchRequest, LogEvent, WithdrawRequest};
use qubix_protocol::job::{PortPurpose, PortRequest};
use qubix_protocol::{AgreementId, OfferRef, Qu};
use qubix_sdk::Client;

use super::output::{bold, json, short, short_offer, table, warn};
use super::{CliError, ClientCommand, Connection};

/// `qubix offers`.
#[derive(Args, Debug)]
pub struct OffersArgs {
    #[command(subcommand)]
    explain: Option<OffersSub>,
    /// Query, e.g. "gpu_name=RTX_4090 num_gpus>=2 price<=1500 location in [DE,FR]".
    query: Option<String>,
    /// Sort key, e.g. price or -reliability.
    #[arg(long)]
    sort: Option<String>,
    /// Most offers shown.
    #[arg(long, default_value_t = 20)]
    limit: u32,
}

#[derive(Subcommand, Debug)]
enum OffersSub {
    /// Why a query matches what it matches, and the near misses.
    Explain {
        /// The query.
        query: String,
    },
}

/// `qubix launch`.
#[derive(Args, Debug)]
pub struct LaunchArgs {
    /// Offer to rent (or use --query).
    #[arg(long, conflicts_with = "query")]
    offer: Option<String>,
    /// Rent the cheapest offer matching this query.
    #[arg(long)]
    query: Option<String>,
    /// Container image.
    #[arg(long)]
    image: String,
    /// GPUs.
    #[arg(long, default_value_t = 1)]
    gpus: u32,
    /// Container port to publish (repeatable); 22 is SSH, 8888 Jupyter.
    #[arg(long = "port")]
    ports: Vec<u16>,
    /// Environment variable K=V (repeatable).
    #[arg(long = "env", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Rental length in hours.
    #[arg(long, default_value_t = 1.0)]
    hours: f64,
    /// Spend at most this many QU: the rental lasts as long as the budget buys at the
    /// chosen offer's price (instead of --hours).
    #[arg(long, conflicts_with = "hours")]
    budget: Option<u64>,
    /// Most to pay per GPU-hour.
    #[arg(long)]
    max_price: Option<u64>,
    /// A Linux capability the job needs beyond its base set, e.g. CHOWN (repeatable; an
    /// SSH port asks for what sshd needs by itself).
    #[arg(long = "cap")]
    capabilities: Vec<qubix_protocol::job::Capability>,
    /// Command to run (after --).
    #[arg(last = true)]
    command: Vec<String>,
    /// Return once the agreement is made instead of waiting for the container.
    #[arg(long)]
    no_wait: bool,
    /// Makes the command safe to run again: a second run with the same key and the same
    /// request gets the first run's instance instead of renting twice (with --budget or an
    /// offer the first run rented whole, the second run may instead find no offer, and
    /// says so). Without it, a fresh key covers the command's own retries.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not K=V"))
}

/// `qubix wallet`.
#[derive(Args, Debug)]
pub struct WalletArgs {
    #[command(subcommand)]
    action: Option<WalletSub>,
}

#[derive(Subcommand, Debug)]
enum WalletSub {
    /// Send available QU to another Qubic identity.
    Withdraw {
        /// Destination identity (60 letters).
        #[arg(long)]
        to: String,
        /// Amount in QU.
        #[arg(long)]
        amount: u64,
        /// Makes the command safe to run again: a second run with the same key (and the same
        /// arguments) gets the first run's answer instead of acting twice. Without it, a fresh
        /// key is used, which still covers the command's own retries.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
}

/// Runs a client command.
pub async fn run(conn: &Connection, command: ClientCommand) -> Result<(), CliError> {
    let client = conn.client()?;
    let j = conn.json;
    match command {
        ClientCommand::Offers(args) => offers(&client, args, j).await,
        ClientCommand::Launch(args) => launch(&client, args, j).await,
        ClientCommand::Instances => instances(&client, j).await,
        ClientCommand::Instance { id } => {
            let i = client.instance(resolve(&client, &id).await?).await?;
            show_instance(&i, j);
            Ok(())
        }
        ClientCommand::Logs { id, follow, tail } => logs(&client, &id, follow, tail, j).await,
        ClientCommand::Metrics { id, follow } => metrics(&client, &id, follow, j).await,
        ClientCommand::Stop { id } => act(&client, &id, Some(InstanceAction::Stop), j).await,
        ClientCommand::Start { id } => act(&client, &id, Some(InstanceAction::Start), j).await,
        ClientCommand::Restart { id } => act(&client, &id, Some(InstanceAction::Restart), j).await,
        ClientCommand::Terminate { id } => act(&client, &id, None, j).await,
        ClientCommand::Ssh { id, exec } => ssh(&client, &id, exec).await,
        ClientCommand::Billing => billing(&client, j).await,
        ClientCommand::Receipts { id } => receipts(&client, &id, j).await,
        ClientCommand::Wallet(args) => wallet(&client, args, j).await,
    }
}

/// An instance id from full hex or a unique prefix.
async fn resolve(client: &Client, text: &str) -> Result<AgreementId, CliError> {
    if let Ok(id) = text.parse() {
        return Ok(id);
    }
    let matches: Vec<AgreementId> = client
        .instances()
        .await?
        .into_iter()
        .map(|i| i.id)
        .filter(|id| id.to_string().starts_with(text))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(CliError::Usage(format!(
            "no instance id starts with {text:?}; `qubix instances` lists them"
        ))),
        _ => Err(CliError::Usage(format!(
            "{text:?} matches {} instances; give more characters",
            matches.len()
        ))),
    }
}

async fn offers(client: &Client, args: OffersArgs, j: bool) -> Result<(), CliError> {
    if let Some(OffersSub::Explain { query }) = args.explain {
        let e = client.explain(&query).await?;
        if j {
            json(&e);
        } else {
            println!("{}", bold(&e.summary));
            let rows = e
                .constraints
                .iter()
                .map(|c| {
                    vec![
                        c.constraint.clone(),
                        c.excluded.to_string(),
                        c.only_blocker.to_string(),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["CONSTRAINT", "EXCLUDED", "ONLY BLOCKER"], &rows);
        }
        return Ok(());
    }
    let page = client
        .offers(
            args.query.as_deref().unwrap_or(""),
            args.sort.as_deref(),
            Some(args.limit),
            None,
        )
        .await?;
    if j {
        json(&page);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = page
        .offers
        .iter()
        .map(|v| {
            let o = &v.offer;
            vec![
                short_offer(&v.id),
                format!(
                    "{}{}",
                    o.gpu.model,
                    if o.simulated {
                        warn(" (simulated)")
                    } else {
                        String::new()
                    }
                ),
                o.gpu_count.to_string(),
                format!("{} GiB", o.gpu.vram_mib / 1024),
                o.gpu.cuda_version.to_string(),
                o.location.country.clone(),
                o.price_per_gpu_hour.to_string(),
                v.reliability
                    .map_or("new".into(), |r| format!("{:.0}%", r * 100.0)),
            ]
        })
        .collect();
    table(
        &[
            "OFFER",
            "GPU",
            "N",
            "VRAM",
            "CUDA",
            "WHERE",
            "PER GPU-HOUR",
            "RELIABILITY",
        ],
        &rows,
    );
    println!("{} of {} matching offers", page.offers.len(), page.total);
    if page.total == 0 {
        if let Some(q) = args.query.filter(|q| !q.is_empty()) {
            println!("why: {}", client.explain(&q).await?.summary);
        }
    }
    Ok(())
}

fn port_request(port: u16) -> PortRequest {
    let purpose = match port {
        22 => PortPurpose::Ssh,
        8888 => PortPurpose::Jupyter,
        _ => PortPurpose::Tcp,
    };
    PortRequest {
        container_port: port,
        purpose,
    }
}

/// The offer `--offer` names: a full name (`<offer id>@<provider>`), a bare offer id, or the
/// short name `qubix offers` shows (`<id prefix>@<provider suffix>`), which must match
/// exactly one offer in the market.
async fn named_offer(client: &Client, text: &str) -> Result<OfferRef, CliError> {
    if let Ok(named) = text.parse::<OfferRef>() {
        return Ok(named);
    }
    let (prefix, suffix) = text.split_once('@').unwrap_or((text, ""));
    let usage = |why: String| CliError::Usage(format!("--offer {text:?}: {why}"));
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(usage(
            "expected an offer name as `qubix offers` shows it (e.g. 3fa9c2e1@x7QkZp)".into(),
        ));
    }
    let page = client.offers("", None, Some(1000), None).await?;
    let matches: Vec<OfferRef> = page
        .offers
        .iter()
        .map(|v| v.id)
        .filter(|id| {
            id.offer_id
                .to_string()
                .starts_with(&prefix.to_ascii_lowercase())
                && id.provider.is_some_and(|p| p.to_string().ends_with(suffix))
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(usage(
            "no offer in the market has that name; `qubix offers` lists them".into(),
        )),
        _ => Err(usage(format!(
            "{} offers share that short name; give the full one from `qubix offers --json`",
            matches.len()
        ))),
    }
}

/// The offer a `--budget` launch would rent: the one named, or the cheapest match.
async fn priced_offer(
    client: &Client,
    args: &LaunchArgs,
    offer_id: Option<OfferRef>,
) -> Result<qubix_protocol::offer::Offer, CliError> {
    let mut query = args.query.clone().unwrap_or_default();
    query.push_str(&format!(" num_gpus>={}", args.gpus));
    if let Some(max) = args.max_price {
        query.push_str(&format!(" price<={max}"));
    }
    let limit = if offer_id.is_some() { 1000 } else { 1 };
    let page = client
        .offers(&query, Some("price"), Some(limit), None)
        .await?;
    let found = page
        .offers
        .into_iter()
        .find(|v| {
            offer_id.is_none_or(|named| match named.provider {
                Some(_) => v.id == named,
                None => v.id.offer_id == named.offer_id,
            })
        })
        .map(|v| v.offer);
    found.ok_or_else(|| match offer_id {
        Some(id) => CliError::Usage(format!(
            "offer {id} is not in the market with {} free GPUs; `qubix offers` lists what is",
            args.gpus
        )),
        None => CliError::Usage(format!(
            "no offer matches {:?}; `qubix offers explain` says why",
            query.trim()
        )),
    })
}

/// How long `budget` rents `gpus` GPUs at `price` per GPU-hour, in whole seconds.
fn budget_secs(budget: Qu, price: Qu, gpus: u32) -> Result<u64, CliError> {
    let per_hour = u128::from(price.0) * u128::from(gpus.max(1));
    let secs = (u128::from(budget.0) * 3600)
        .checked_div(per_hour)
        .map_or(u64::MAX, |s| u64::try_from(s).unwrap_or(u64::MAX));
    if secs < 60 {
        return Err(CliError::Usage(format!(
            "--budget {budget} buys less than a minute of {gpus} GPU(s) at {price} per GPU-hour"
        )));
    }
    Ok(secs)
}

async fn launch(client: &Client, args: LaunchArgs, j: bool) -> Result<(), CliError> {
    if !(args.hours > 0.0 && args.hours <= 90.0 * 24.0) {
        return Err(CliError::Usage(
            "--hours must be above 0 and at most 2160".into(),
        ));
    }
    // A rerun with the key of a run that rented the offer may no longer find it.
    let rerun_hint = |e: CliError| match (&args.idempotency_key, e) {
        (Some(key), CliError::Usage(why)) => CliError::Usage(format!(
            "{why}; if an earlier run with --idempotency-key {key} rented it, `qubix instances` lists it"
        )),
        (_, e) => e,
    };
    let mut offer_id = match &args.offer {
        Some(text) => Some(named_offer(client, text).await.map_err(rerun_hint)?),
        None => None,
    };
    let mut duration_secs = (args.hours * 3600.0).round() as u64;
    if let Some(budget) = args.budget {
        let offer = priced_offer(client, &args, offer_id)
            .await
            .map_err(rerun_hint)?;
        duration_secs = budget_secs(Qu(budget), offer.price_per_gpu_hour, args.gpus)?;
        // Rent exactly the offer the budget was worked out for.
        offer_id = Some(OfferRef::new(offer.provider, offer.offer_id));
    }
    let request = LaunchRequest {
        offer_id,
        query: if offer_id.is_some() {
            None
        } else {
            args.query.clone()
        },
        image: args.image.clone(),
        command: args.command.clone(),
        env: args.env.iter().cloned().collect::<BTreeMap<_, _>>(),
        ports: args.ports.iter().map(|p| port_request(*p)).collect(),
        gpus: args.gpus,
        duration_secs,
        max_price_per_gpu_hour: args.max_price.map(Qu),
        cpu_cores: None,
        ram_mib: None,
        disk_gib: None,
        capabilities: args.capabilities.clone(),
    };
    let bar = (!j).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(Duration::from_millis(120));
        b.set_message("negotiating with the provider…");
        b
    });
    let key = args
        .idempotency_key
        .clone()
        .unwrap_or_else(qubix_sdk::new_idempotency_key);
    let instance = client.launch_with_key(&request, &key).await?;
    let instance = if args.no_wait {
        instance
    } else {
        let b = bar.clone();
        client
            .wait_until_running(instance.id, Duration::from_secs(900), move |i| {
                if let Some(b) = &b {
                    b.set_message(
                        i.progress
                            .as_ref()
                            .map_or_else(|| i.state.as_str().to_owned(), |p| p.detail.clone()),
                    );
                }
            })
            .await?
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    show_instance(&instance, j);
    Ok(())
}

fn show_instance(i: &Instance, j: bool) {
    if j {
        json(i);
        return;
    }
    println!("{} {}", bold("instance"), i.id);
    println!("  state      {}", i.state.as_str());
    println!("  provider   {}", i.provider);
    println!(
        "  gpus       {} × {}{}",
        i.gpus,
        i.gpu_model,
        if i.simulated {
            warn(" (simulated)")
        } else {
            String::new()
        }
    );
    println!("  image      {}", i.image);
    println!(
        "  price      {} per GPU-hour, budget {}, paid {}, spent {}",
        i.price_per_gpu_hour, i.budget, i.paid, i.spent
    );
    for c in &i.connections {
        println!("  port {:<5}  {}", c.container_port, c.hint);
    }
}

async fn instances(client: &Client, j: bool) -> Result<(), CliError> {
    let list = client.instances().await?;
    if j {
        json(&list);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|i| {
            vec![
                short(&i.id.to_string()),
                i.state.as_str().into(),
                format!("{} × {}", i.gpus, i.gpu_model),
                i.image.clone(),
                i.spent.to_string(),
            ]
        })
        .collect();
    table(&["ID", "STATE", "GPUS", "IMAGE", "SPENT"], &rows);
    Ok(())
}

async fn logs(client: &Client, id: &str, follow: bool, tail: u32, j: bool) -> Result<(), CliError> {
    let id = resolve(client, id).await?;
    if !follow {
        for line in client.logs(id, tail).await? {
            if j {
                json(&line)
            } else {
                println!("{}", line.line)
            }
        }
        return Ok(());
    }
    let mut stream = Box::pin(client.log_stream(id, tail));
    while let Some(event) = stream.next().await {
        match event? {
            LogEvent::Line(line) if j => json(&line),
            LogEvent::Line(line) => println!("{}", line.line),
            LogEvent::Lagged { missed } => eprintln!(
                "{}",
                warn(&format!("… {missed} lines skipped (reader too slow)"))
            ),
        }
    }
    Ok(())
}

async fn metrics(client: &Client, id: &str, follow: bool, j: bool) -> Result<(), CliError> {
    let id = resolve(client, id).await?;
    let print = |s: &qubix_protocol::api::MetricsSample| {
        if j {
            json(s);
            return;
        }
        let gpus: Vec<String> = s
            .gpus
            .iter()
            .map(|g| {
                format!(
                    "{:.0}% {}MiB {:.0}°C {:.0}W",
                    g.utilization_pct, g.memory_used_mib, g.temperature_c, g.power_w
                )
            })
            .collect();
        println!(
            "cpu {:.0}%  mem {}/{} MiB  gpu [{}]{}",
            s.cpu_pct,
            s.memory_used_mib,
            s.memory_limit_mib,
            gpus.join(", "),
            if s.simulated {
                warn(" simulated")
            } else {
                String::new()
            }
        );
    };
    if !follow {
        client.metrics(id, 1).await?.iter().for_each(print);
        return Ok(());
    }
    let mut stream = Box::pin(client.metrics_stream(id, 1));
    while let Some(event) = stream.next().await {
        match event? {
            qubix_protocol::api::MetricsEvent::Sample(sample) => print(&sample),
            qubix_protocol::api::MetricsEvent::Lagged { missed } => eprintln!(
                "{}",
                warn(&format!("… {missed} samples skipped (reader too slow)"))
            ),
        }
    }
    Ok(())
}

async fn act(
    client: &Client,
    id: &str,
    action: Option<InstanceAction>,
    j: bool,
) -> Result<(), CliError> {
    let id = resolve(client, id).await?;
    let instance = match action {
        Some(a) => client.act(id, a).await?,
        None => client.terminate(id).await?,
    };
    show_instance(&instance, j);
    Ok(())
}

async fn ssh(client: &Client, id: &str, exec: bool) -> Result<(), CliError> {
    let instance = client.instance(resolve(client, id).await?).await?;
    let conn = instance
        .connections
        .iter()
        .find(|c| c.purpose == PortPurpose::Ssh)
        .ok_or_else(|| {
            CliError::Api("this instance publishes no SSH port; launch it with --port 22".into())
        })?;
    if !exec {
        println!("{}", conn.hint);
        return Ok(());
    }
    let status = std::process::Command::new("ssh")
        .args(["-p", &conn.port.to_string(), &format!("root@{}", conn.host)])
        .status()
        .map_err(|e| CliError::Usage(format!("cannot run ssh: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::Connection(format!("ssh exited with {status}")))
    }
}

async fn billing(client: &Client, j: bool) -> Result<(), CliError> {
    let b = client.billing().await?;
    if j {
        json(&b);
        return Ok(());
    }
    println!(
        "available {}  escrow {}  prepaid {}  spent {}",
        b.available, b.escrow, b.prepaid, b.spent
    );
    if let Some(id) = &b.deposit_identity {
        println!("deposit to {id}");
    }
    let rows: Vec<Vec<String>> = b
        .instances
        .iter()
        .map(|i| {
            vec![
                short(&i.id.to_string()),
                i.budget.to_string(),
                i.escrow.to_string(),
                i.paid.to_string(),
                i.spent.to_string(),
                i.refunded.to_string(),
            ]
        })
        .collect();
    table(
        &["INSTANCE", "BUDGET", "ESCROW", "PAID", "SPENT", "REFUNDED"],
        &rows,
    );
    Ok(())
}

async fn receipts(client: &Client, id: &str, j: bool) -> Result<(), CliError> {
    let id = resolve(client, id).await?;
    let receipts = client.receipts(id).await?;
    if j {
        json(&receipts);
        return Ok(());
    }
    if receipts.is_empty() {
        println!("no receipts yet: the first comes with the provider's first usage report");
        return Ok(());
    }
    let now = qubix_protocol::UnixMillis::now().0;
    let rows: Vec<Vec<String>> = receipts
        .iter()
        .map(|r| {
            vec![
                r.report_sequence.to_string(),
                format!("{:.1}", r.billable_millis as f64 / 60_000.0),
                r.amount.to_string(),
                format!("{}s ago", now.saturating_sub(r.issued_at.0) / 1000),
            ]
        })
        .collect();
    table(&["REPORT", "BILLED MIN", "TOTAL", "SIGNED"], &rows);
    Ok(())
}

async fn wallet(client: &Client, args: WalletArgs, j: bool) -> Result<(), CliError> {
    match args.action {
        Some(WalletSub::Withdraw {
            to,
            amount,
            idempotency_key,
        }) => {
            let key = idempotency_key.unwrap_or_else(qubix_sdk::new_idempotency_key);
            let request = WithdrawRequest {
                to,
                amount: Qu(amount),
            };
            let t = client.withdraw_with_key(&request, &key).await?;
            if j {
                json(&t)
            } else {
                println!(
                    "sent {} to {} (tx {}, {})",
                    t.amount, t.to, t.tx_id, t.status
                )
            }
        }
        None => {
            let w = client.wallet().await?;
            if j {
                json(&w);
            } else {
                println!(
                    "identity {}",
                    w.identity.as_deref().unwrap_or("none configured")
                );
                match (w.balance, &w.error) {
                    (Some(b), _) => println!("balance  {b} (tick {})", w.tick.unwrap_or(0)),
                    (None, Some(e)) => println!("balance  unknown: {e}"),
                    (None, None) => println!("balance  unknown"),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_buys_whole_seconds_of_the_offer() {
        assert_eq!(budget_secs(Qu(1_800), Qu(3_600), 1).ok(), Some(1_800));
        assert_eq!(budget_secs(Qu(1_800), Qu(3_600), 2).ok(), Some(900));
        assert_eq!(budget_secs(Qu(1_000), Qu(7), 1).ok(), Some(514_285));
        assert!(matches!(
            budget_secs(Qu(10), Qu(3_600), 1),
            Err(CliError::Usage(m)) if m.contains("less than a minute")
        ));
    }
}
