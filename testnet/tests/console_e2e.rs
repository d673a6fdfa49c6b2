//! The web console in headless Chromium against a real loopback testnet: a provider with a
//! simulated RTX 4090, a consumer node serving the console, the Qubic devnet for payments and
//! real Docker containers. A user signs in with the login URL, filters the marketplace (and
//! sees a bad query's error inline), launches `qubix/test:latest` from the wizard, watches its
//! logs and metrics, stops and terminates it through the confirmations, and finds what it
//! paid, spent and got back in Billing. Every page leaves a screenshot under
//! `test-artifacts/console-e2e/` (and `failure.png` when a step fails). Skipped with a notice
//! when Chromium or Docker is missing, unless `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use qubix_gateway::browser::{Browser, Tools};
use qubix_node::node::GatewayInfo;
use qubix_node::service::NodeHandle;
use qubix_protocol::AgreementId;
use qubix_testnet::{NodeSpec, Testnet, wait_until};
use serde_json::{Value, json};

const NETWORK: &str = "console-e2e";
/// How long the page may take to show what it already has (the machines are small and busy).
const UI_WAIT: Duration = Duration::from_secs(30);
/// How long a step of the real network (gossip, payment on the devnet, Docker) may take.
const NET_WAIT: Duration = Duration::from_secs(90);
const LOG_LINE: &str = "hello-from-console";
const QUERY: &str = "gpu_name=RTX_4090 price<=5000";

/// The browser, with waits sized for a real network. Every wait names what did not appear.
struct Console {
    browser: Browser,
}

impl Console {
    /// Waits up to `limit` for the JavaScript `condition` to be truthy.
    async fn until(&self, condition: &str, what: &str, limit: Duration) -> anyhow::Result<()> {
        Ok(self.browser.wait_until_for(condition, what, limit).await?)
    }

    /// Waits for an element matching `css`.
    async fn wait(&self, css: &str, what: &str) -> anyhow::Result<()> {
        let condition = format!("document.querySelector({})", json!(css));
        self.until(&condition, &format!("{what} (`{css}`)"), UI_WAIT)
            .await
    }

    /// Waits until the first element matching `css` contains `needle`.
    async fn wait_text(&self, css: &str, needle: &str, what: &str) -> anyhow::Result<()> {
        let condition = format!(
            "document.querySelector({}).textContent.includes({})",
            json!(css),
            json!(needle)
        );
        let what = format!("{what} (`{css}` containing {needle:?})");
        self.until(&condition, &what, UI_WAIT).await
    }

    async fn click(&self, css: &str, what: &str) -> anyhow::Result<()> {
        self.wait(css, what).await?;
        Ok(self.browser.click(css, what).await?)
    }

    async fn fill(&self, css: &str, text: &str, what: &str) -> anyhow::Result<()> {
        self.wait(css, what).await?;
        Ok(self.browser.fill(css, text, what).await?)
    }

    /// Runs `script` (a function body with `return`) in the page.
    async fn js(&self, script: &str) -> anyhow::Result<Value> {
        Ok(self.browser.eval(script).await?)
    }

    /// Navigates inside the console (`#/…`).
    async fn go(&self, hash: &str) -> anyhow::Result<()> {
        self.js(&format!("location.hash = {}; return true;", json!(hash)))
            .await
            .map(drop)
    }

    /// Saves `test-artifacts/console-e2e/<name>.png`.
    async fn shot(&self, name: &str) -> anyhow::Result<()> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../test-artifacts/console-e2e")
            .join(format!("{name}.png"));
        Ok(self.browser.screenshot(&path).await?)
    }

    /// Closes the notices, so they do not cover what a screenshot is for.
    async fn dismiss_toasts(&self) -> anyhow::Result<()> {
        self.js("document.querySelectorAll('#toasts .toast-close').forEach((b) => b.click()); return true;")
            .await?;
        self.until(
            "document.querySelector('#toasts').children.length === 0",
            "the notices closed",
            UI_WAIT,
        )
        .await
    }

    /// Confirms the open dialog, typing `typed` first when the action asks for it.
    async fn confirm(&self, typed: Option<&str>, shot: &str) -> anyhow::Result<()> {
        let open = "document.querySelector('#confirm-dialog')?.open === true";
        self.until(open, "the confirmation dialog", UI_WAIT).await?;
        if let Some(word) = typed {
            self.fill("#confirm-typed", word, "the confirmation word")
                .await?;
        }
        self.until(
            "document.querySelector('#confirm-ok').disabled === false",
            "the dialog's confirm button enabled",
            UI_WAIT,
        )
        .await?;
        self.shot(shot).await?;
        self.click("#confirm-ok", "the dialog's confirm button")
            .await
    }
}

/// A provider with one simulated RTX 4090 at 3,600 QU/h and a consumer serving the console.
async fn start_testnet() -> (Testnet, usize) {
    let mut net = Testnet::with_devnet(NETWORK, Duration::from_millis(200))
        .await
        .unwrap();
    net.add(NodeSpec::provider("provider", "RTX 4090:24:1", 3_600, "DE"))
        .await
        .unwrap();
    let mut spec = NodeSpec::consumer("consumer");
    spec.gateway = Some("127.0.0.1:0".parse().unwrap());
    let consumer = net.add(spec).await.unwrap();
    (net, consumer)
}

/// Opens the login URL (token in the fragment): the dashboard shows, the token does not stay.
async fn sign_in(c: &Console, gateway: &GatewayInfo) -> anyhow::Result<()> {
    c.browser.goto(&gateway.login_url).await?;
    c.wait("#stat-running", "the dashboard after the login URL")
        .await?;
    c.wait_text("#network-badge", NETWORK, "the network badge")
        .await?;
    c.until(
        "/[1-9]/.test(document.querySelector('#wallet-balance').textContent)",
        "the wallet balance from the devnet",
        UI_WAIT,
    )
    .await?;
    let href = c.js("return location.href;").await?;
    ensure!(
        !href.to_string().contains(&gateway.token),
        "the token stayed in the address bar: {href}"
    );
    c.shot("01-dashboard").await
}

/// Filters to the RTX 4090 (as soon as its offer arrives), shows a bad query's error inline, then opens the offer's wizard.
async fn marketplace(c: &Console) -> anyhow::Result<()> {
    c.go("#/marketplace").await?;
    c.fill("#query", QUERY, "the query box").await?;
    c.wait_text("#effective-query", QUERY, "the query applied")
        .await?;
    // The offer may still be on its way: the table follows the node's offer events.
    c.until(
        "document.querySelectorAll('#offers-table tbody tr[data-offer]').length === 1",
        "exactly one offer for the query",
        NET_WAIT,
    )
    .await?;
    let row = "#offers-table tr[data-offer]";
    c.wait_text(row, "RTX 4090", "the RTX 4090 offer").await?;
    c.wait_text(row, "3,600 QU", "the offer's price").await?;
    c.wait(&format!("{row} .badge.simulated"), "the simulated badge")
        .await?;
    c.shot("02-marketplace").await?;
    c.fill("#query", "gpu_name=RTX_4090 colour=red", "the query box")
        .await?;
    c.wait_text(
        "#query-error",
        "unknown field `colour`",
        "the inline query error",
    )
    .await?;
    c.until(
        "document.querySelector('#query').getAttribute('aria-invalid') === 'true'",
        "the query box marked invalid",
        UI_WAIT,
    )
    .await?;
    c.shot("03-marketplace-query-error").await?;
    c.fill("#query", QUERY, "the query box").await?;
    c.click(
        &format!("{row} a[href^='#/launch']"),
        "the offer's Launch button",
    )
    .await
}

/// Walks the wizard with the custom image up to the review, checking the cost estimate.
async fn configure(c: &Console) -> anyhow::Result<()> {
    c.click("#template-custom", "the custom image template")
        .await?;
    c.until(
        "document.querySelector('#template-custom')?.checked === true",
        "the custom template chosen",
        UI_WAIT,
    )
    .await?;
    c.shot("04-launch-template").await?;
    c.click("#wizard-next", "Next").await?;
    // The wizard splits the command like a shell, honouring double quotes.
    let command = format!("sh -c \"echo {LOG_LINE}; while true; do sleep 1; done\"");
    for (css, text, what) in [
        ("#image", "qubix/test:latest", "the image"),
        ("#command", command.as_str(), "the command"),
        ("#gpus", "1", "the GPU count"),
        ("#disk", "1", "the disk size"),
        ("#hours", "0.5", "the duration"),
    ] {
        c.fill(css, text, what).await?;
    }
    c.wait_text(
        "#estimate",
        "1,800 QU",
        "the estimate 3,600 QU × 1 GPU × 0.5 h",
    )
    .await?;
    c.shot("05-launch-configure").await?;
    c.click("#wizard-next", "Review").await?;
    c.wait_text("#review-total", "1,800 QU", "the reviewed budget")
        .await?;
    c.wait_text("#page", LOG_LINE, "the reviewed command")
        .await?;
    c.shot("06-launch-review").await
}

/// Launches and follows negotiation, payment, pull and start; returns the instance's id.
async fn launch(c: &Console) -> anyhow::Result<AgreementId> {
    c.click("#launch-submit", "Launch").await?;
    c.until(
        "document.querySelector('#open-instance, #launch-result .alert-error')",
        "the launch to end, running or with an error",
        NET_WAIT,
    )
    .await?;
    let failure = c
        .js("return document.querySelector('#launch-result .alert-error')?.textContent ?? null;")
        .await?;
    ensure!(failure.is_null(), "the launch failed: {failure}");
    c.shot("07-launch-running").await?;
    let href = c
        .js("return document.querySelector('#open-instance').getAttribute('href');")
        .await?;
    let id = href
        .as_str()
        .and_then(|h| h.strip_prefix("#/instances/"))
        .with_context(|| format!("Open instance links to {href}"))?
        .parse()?;
    c.click("#open-instance", "Open instance").await?;
    Ok(id)
}

/// The running instance's page: state, the container's log line and live metrics.
async fn watch(c: &Console) -> anyhow::Result<()> {
    c.wait("#page h1 [data-state=running]", "the running state")
        .await?;
    c.wait_text("#page", "qubix/test:latest", "the image")
        .await?;
    c.shot("08-instance-details").await?;
    c.click("#tab-logs", "the Logs tab").await?;
    let logged = format!(
        "document.querySelector('#logs').textContent.includes({})",
        json!(LOG_LINE)
    );
    let what = format!("the container's line {LOG_LINE:?} in the logs");
    c.until(&logged, &what, NET_WAIT).await?;
    c.shot("09-instance-logs").await?;
    c.click("#tab-monitoring", "the Monitoring tab").await?;
    c.until(
        "Number(document.querySelector('#chart-gpu').dataset.points) >= 2",
        "a second GPU sample, so the chart draws a line",
        NET_WAIT,
    )
    .await?;
    for id in [
        "chart-gpu",
        "chart-vram",
        "chart-temp",
        "chart-cpu",
        "chart-mem",
    ] {
        let valued = format!("document.querySelector('#{id} .chart-value').textContent !== '—'");
        c.until(&valued, &format!("a value in {id}"), UI_WAIT)
            .await?;
    }
    c.shot("10-instance-monitoring").await
}

/// Billing needs spend, which arrives with the first countersigned usage report. The console
/// has no live view of that, so wait for it on the node.
async fn first_receipt(handle: &NodeHandle, id: AgreementId) -> anyhow::Result<()> {
    wait_until(
        NET_WAIT,
        "a countersigned usage report (spend above 0)",
        || {
            let h = handle.clone();
            async move { (h.instance(id).await.ok()?.spent.0 > 0).then_some(()) }
        },
    )
    .await?;
    Ok(())
}

/// Stop, then terminate, each through its confirmation dialog.
async fn stop_and_terminate(c: &Console) -> anyhow::Result<()> {
    c.click("#tab-details", "the Details tab").await?;
    c.click("#action-stop", "the Stop button").await?;
    c.confirm(None, "11-stop-confirm").await?;
    c.until(
        "document.querySelector('#page h1 [data-state=stopped]')",
        "the stopped state",
        NET_WAIT,
    )
    .await?;
    c.wait_text("#toasts", "Instance stopped.", "the stop notice")
        .await?;
    c.shot("12-instance-stopped").await?;
    c.click("#action-terminate", "the Terminate button").await?;
    c.confirm(Some("terminate"), "13-terminate-confirm").await?;
    c.until(
        "document.querySelector('#page h1 [data-state=terminated]')",
        "the terminated state",
        NET_WAIT,
    )
    .await?;
    c.until(
        "document.querySelector('#action-terminate').disabled === true",
        "Terminate disabled once terminated",
        UI_WAIT,
    )
    .await?;
    c.dismiss_toasts().await?;
    c.shot("14-instance-terminated").await
}

/// JavaScript: the number in the Billing page's stat labelled `label`.
fn stat(label: &str) -> String {
    format!(
        "Number([...document.querySelectorAll('.stat')].find((s) => s.querySelector('.stat-label').textContent === {}).querySelector('.stat-value').textContent.replace(/[^0-9]/g, ''))",
        json!(label)
    )
}

/// Billing, once the bill is settled: the instance paid its first window, spent a little
/// and had the rest refunded, nothing is left in escrow, and the refund is back in the
/// wallet (available + spent = the consumer's funds). The page is not live, so it is opened
/// again until it shows that: the refund takes a few devnet ticks, and the node may briefly
/// report a terminated instance as stopped after terminating it (a status poll answered
/// before the terminate is applied after it).
async fn settled_billing(c: &Console, id: AgreementId, funds: u64) -> anyhow::Result<()> {
    let row = format!("#escrow-table a[href=\"#/instances/{id}\"]");
    let cell = |label: &str| {
        format!(
            "Number(document.querySelector({}).closest('tr').querySelector('td[data-label={label}]').textContent.replace(/[^0-9]/g, ''))",
            json!(row)
        )
    };
    let (paid, spent, refunded) = (cell("Paid"), cell("Spent"), cell("Refunded"));
    let settled = format!(
        "return {paid} > 0 && {spent} > 0 && {refunded} > 0 && {paid} === {spent} + {refunded} && {escrow} === 0 && {available} + {total} === {funds};",
        escrow = stat("In escrow"),
        available = stat("Available"),
        total = stat("Spent"),
    );
    let deadline = tokio::time::Instant::now() + NET_WAIT;
    let mut pace = tokio::time::interval(Duration::from_millis(500));
    loop {
        pace.tick().await;
        c.go("#/").await?;
        c.wait("#stat-running", "the dashboard").await?;
        c.go("#/billing").await?;
        c.wait(&row, "the instance's row in Billing").await?;
        if c.js(&settled).await?.as_bool() == Some(true) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let shown = c
                .js("return document.querySelector('#page').innerText;")
                .await?;
            anyhow::bail!("Billing never showed a settled bill within {NET_WAIT:?}: {shown}");
        }
    }
}

/// The settled bill, and the window payment among the transactions.
async fn billing(c: &Console, id: AgreementId, funds: u64) -> anyhow::Result<()> {
    settled_billing(c, id, funds).await?;
    c.dismiss_toasts().await?;
    c.shot("15-billing").await?;
    let rows = format!("#ledger-table a[href=\"#/instances/{id}\"]");
    c.wait(&rows, "the instance's transactions").await?;
    let text = c
        .js(&format!(
            "return [...document.querySelectorAll({})].map((a) => a.closest('tr').textContent).join('\\n');",
            json!(rows)
        ))
        .await?;
    let text = text.as_str().unwrap_or_default().to_owned();
    ensure!(
        text.lines()
            .any(|row| row.contains("pay window") && row.contains("600 QU")),
        "no 600 QU window payment among the instance's transactions:\n{text}"
    );
    for kind in ["lock escrow", "receipt", "end agreement", "refund received"] {
        ensure!(
            text.contains(kind),
            "no {kind} among the instance's transactions:\n{text}"
        );
    }
    c.browser
        .scroll_to("#ledger-table", "the transactions table")
        .await?;
    c.shot("16-billing-transactions").await
}

/// What the user does, from the login URL to the bill.
async fn user_flow(
    c: &Console,
    gateway: &GatewayInfo,
    handle: &NodeHandle,
    funds: u64,
) -> anyhow::Result<()> {
    sign_in(c, gateway).await?;
    marketplace(c).await?;
    configure(c).await?;
    let id = launch(c).await?;
    watch(c).await?;
    first_receipt(handle, id).await?;
    stop_and_terminate(c).await?;
    billing(c, id, funds).await?;
    // The bad query's 400 is expected: Chromium logs every failed request.
    let errors = c.browser.console_errors().await?;
    let unexpected: Vec<&String> = errors
        .iter()
        .filter(|e| !(e.contains("colour%3Dred") && e.contains("400")))
        .collect();
    ensure!(
        unexpected.is_empty(),
        "browser console errors: {unexpected:#?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_filter_launch_watch_stop_terminate_and_see_the_bill() {
    qubix_testnet::init_test_logging();
    let Some(tools) = Tools::required_or_skip("console end to end") else {
        return;
    };
    if !qubix_testnet::docker_available() {
        eprintln!(
            "SKIPPED console end to end: no Docker daemon (set CI=true to make this a failure)"
        );
        return;
    }
    let (net, consumer) = start_testnet().await;
    let node = &net.nodes[consumer];
    let gateway = node
        .gateway()
        .cloned()
        .expect("the consumer serves the console");
    let handle = node.handle().clone();
    let c = Console {
        browser: Browser::launch(&tools).await.unwrap(),
    };
    let outcome = user_flow(&c, &gateway, &handle, node.spec.funds).await;
    if outcome.is_err() {
        let _ = c.shot("failure").await;
        // What the node itself says, next to what the page showed.
        eprintln!("the consumer's instances: {:#?}", handle.instances().await);
    }
    let _ = c.browser.close().await;
    net.shutdown().await;
    if let Err(e) = outcome {
        panic!("{e:#} (the page is in test-artifacts/console-e2e/failure.png)");
    }
}
