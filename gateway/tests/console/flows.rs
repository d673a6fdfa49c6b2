//! What a user does: sign in, search the market, launch, watch an instance, terminate it.

use qubix_protocol::control::JobState;

use crate::Console;
use crate::common::data;

#[tokio::test]
async fn login_with_the_token_works_and_a_wrong_token_is_refused() {
    let Some(c) = Console::start("console login").await else {
        return;
    };
    let b = &c.browser;
    b.goto(&c.url("")).await.unwrap();
    b.fill("#login-token", &"0".repeat(64), "the login form")
        .await
        .unwrap();
    b.click("#login-submit", "the sign-in button")
        .await
        .unwrap();
    b.wait_for_text("#login-error", "not this node", "the wrong-token message")
        .await
        .unwrap();
    c.shot("01-login-refused").await;
    b.fill("#login-token", c.token.expose(), "the login form")
        .await
        .unwrap();
    b.click("#login-submit", "the sign-in button")
        .await
        .unwrap();
    b.wait_for("#stat-running", "the dashboard").await.unwrap();
    b.wait_for_text("#network-badge", "testnet", "the network badge")
        .await
        .unwrap();
    b.wait_for_text("#wallet-balance", "97,600 QU", "the wallet balance")
        .await
        .unwrap();
    c.shot("02-dashboard").await;
    b.click("#logout", "the sign-out button").await.unwrap();
    b.wait_for("#login-token", "the login form after signing out")
        .await
        .unwrap();
    c.assert_no_console_errors(&["401"]).await;
    c.finish().await;
}

#[tokio::test]
async fn the_login_url_signs_in_and_leaves_no_token_in_the_address_bar() {
    let Some(c) = Console::start("console login URL").await else {
        return;
    };
    c.sign_in("").await;
    let url = c.browser.eval("return location.href;").await.unwrap();
    assert!(!url.as_str().unwrap().contains(c.token.expose()), "{url}");
    c.browser
        .eval("location.reload(); return true;")
        .await
        .unwrap();
    c.browser
        .wait_for(
            "#stat-running",
            "the dashboard after a reload (session cookie)",
        )
        .await
        .unwrap();
    c.assert_no_console_errors(&[]).await;
    c.finish().await;
}

#[tokio::test]
async fn the_marketplace_shows_simulated_offers_errors_inline_and_explains_empty_results() {
    let Some(c) = Console::start("console marketplace").await else {
        return;
    };
    let b = &c.browser;
    c.sign_in("#/marketplace").await;
    b.wait_until(
        "document.querySelectorAll('#offers-table tbody tr[data-offer]').length === 4",
        "four offers in the table",
    )
    .await
    .unwrap();
    b.wait_until(
        "document.querySelectorAll('#offers-table .badge.simulated').length === 4",
        "a simulated badge on every offer",
    )
    .await
    .unwrap();
    c.shot("03-marketplace").await;
    b.fill("#query", "price<=5000 colour=red", "the query box")
        .await
        .unwrap();
    b.wait_for_text(
        "#query-error",
        "(at character 13)",
        "the inline query error",
    )
    .await
    .unwrap();
    b.wait_until(
        "document.querySelector('#query').getAttribute('aria-invalid') === 'true'",
        "the query box marked invalid",
    )
    .await
    .unwrap();
    c.shot("04-marketplace-query-error").await;
    b.fill("#query", "price<=500", "the query box")
        .await
        .unwrap();
    b.wait_for_text(
        "#explain",
        "price<=500 excluded 4 of 4 offers",
        "why nothing matched",
    )
    .await
    .unwrap();
    b.scroll_to("#explain-panel", "the explain panel")
        .await
        .unwrap();
    c.shot("05-marketplace-explain").await;
    b.fill("#query", "", "the query box").await.unwrap();
    b.fill("#f-vram", "48", "the VRAM filter").await.unwrap();
    b.wait_until(
        "document.querySelectorAll('#offers-table tbody tr[data-offer]').length === 2",
        "two offers with 48 GiB or more",
    )
    .await
    .unwrap();
    let mut extra = data::offers()[1].clone();
    extra.offer.offer_id = qubix_protocol::OfferId::from_bytes([0x77; 16]);
    extra.id = qubix_protocol::OfferRef::new(extra.offer.provider, extra.offer.offer_id);
    c.fake.add_offer(extra);
    b.wait_until(
        "document.querySelectorAll('#offers-table tbody tr[data-offer]').length === 3",
        "the new offer, live from the events stream",
    )
    .await
    .unwrap();
    c.assert_no_console_errors(&["400"]).await;
    c.finish().await;
}

#[tokio::test]
async fn the_launch_wizard_estimates_the_cost_and_posts_a_launch() {
    let Some(c) = Console::start("console launch wizard").await else {
        return;
    };
    let b = &c.browser;
    let offer = data::offers()[0].id;
    c.sign_in(&format!("#/launch?offer={offer}")).await;
    b.wait_for("#template-pytorch", "the template step")
        .await
        .unwrap();
    c.shot("06-launch-template").await;
    b.click("#wizard-next", "Next").await.unwrap();
    b.fill("#gpus", "2", "the GPU count").await.unwrap();
    b.fill("#hours", "3", "the duration").await.unwrap();
    b.wait_for_text(
        "#estimate",
        "7,200 QU",
        "the estimate 1,200 QU × 2 GPUs × 3 h",
    )
    .await
    .unwrap();
    c.shot("07-launch-configure").await;
    b.click("#wizard-next", "Review").await.unwrap();
    b.wait_for_text("#review-total", "7,200 QU", "the reviewed budget")
        .await
        .unwrap();
    c.shot("08-launch-review").await;
    b.click("#launch-submit", "Launch").await.unwrap();
    b.wait_for(
        "#open-instance",
        "the instance running after negotiation, payment, pull and start",
    )
    .await
    .unwrap();
    c.shot("09-launch-progress").await;
    let launches = c.fake.launches();
    assert_eq!(launches.len(), 1);
    let l = &launches[0];
    assert_eq!(
        (l.offer_id, l.gpus, l.duration_secs),
        (Some(offer), 2, 3 * 3600)
    );
    assert_eq!(l.image, "pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime");
    assert_eq!(l.ports[0].container_port, 8888);
    b.click("#open-instance", "Open instance").await.unwrap();
    b.wait_for_text("#connect-panel", "ssh -p 40022", "the connection details")
        .await
        .unwrap();
    c.assert_no_console_errors(&[]).await;
    c.finish().await;
}

#[tokio::test]
async fn a_launch_that_outlives_the_timeout_is_retried_with_its_key_and_rents_once() {
    let config = qubix_gateway::GatewayConfig {
        request_timeout: std::time::Duration::from_millis(800),
        ..qubix_gateway::GatewayConfig::default()
    };
    let Some(c) = Console::start_with("console launch retry", config).await else {
        return;
    };
    // The first call times out at 0.8 s and the console retries 0.5 s later with the same
    // key; without the key the node would never answer within the timeout.
    c.fake
        .slow_down_calls(std::time::Duration::from_millis(1_200));
    let b = &c.browser;
    let offer = data::offers()[0].id;
    c.sign_in(&format!("#/launch?offer={offer}")).await;
    b.wait_for("#template-pytorch", "the template step")
        .await
        .unwrap();
    b.click("#wizard-next", "Next").await.unwrap();
    b.click("#wizard-next", "Review").await.unwrap();
    b.click("#launch-submit", "Launch").await.unwrap();
    b.wait_for("#open-instance", "the instance after the retried launch")
        .await
        .unwrap();
    assert_eq!(c.fake.launches().len(), 1, "the retry rented twice");
    c.assert_no_console_errors(&["504"]).await;
    c.finish().await;
}

#[tokio::test]
async fn the_instance_page_shows_connection_details_live_charts_and_live_logs() {
    let Some(c) = Console::start("console instance page").await else {
        return;
    };
    let b = &c.browser;
    c.sign_in(&format!("#/instances/{}", data::running_id()))
        .await;
    b.wait_for_text(
        "#connect-panel",
        "ssh -p 40022 root@127.0.0.1",
        "the SSH command",
    )
    .await
    .unwrap();
    b.wait_for_text(
        "#connect-panel",
        "http://127.0.0.1:48888/",
        "the Jupyter URL",
    )
    .await
    .unwrap();
    c.shot("10-instance-details").await;
    b.click("#tab-monitoring", "the Monitoring tab")
        .await
        .unwrap();
    b.wait_until(
        "Number(document.querySelector('#chart-gpu').dataset.points) === 30",
        "30 samples of history in the charts",
    )
    .await
    .unwrap();
    for id in ["chart-vram", "chart-temp", "chart-cpu", "chart-mem"] {
        b.wait_until(
            &format!("Number(document.querySelector('#{id}').dataset.points) === 30"),
            id,
        )
        .await
        .unwrap();
    }
    c.fake.push_metrics(30);
    b.wait_until(
        "Number(document.querySelector('#chart-gpu').dataset.points) === 31",
        "a live sample",
    )
    .await
    .unwrap();
    c.shot("11-instance-monitoring").await;
    b.click("#tab-logs", "the Logs tab").await.unwrap();
    b.wait_for_text("#logs", "epoch 19: loss 0.100", "the log history")
        .await
        .unwrap();
    c.fake.push_log("hello from the test");
    b.wait_for_text("#logs", "hello from the test", "a live log line")
        .await
        .unwrap();
    b.click("#logs-pause", "Pause").await.unwrap();
    c.fake.push_log("held while paused");
    b.wait_until(
        "document.querySelector('#logs-pause').getAttribute('aria-pressed') === 'true'",
        "paused",
    )
    .await
    .unwrap();
    assert!(
        !b.text("#logs", "the logs")
            .await
            .unwrap()
            .contains("held while paused")
    );
    b.click("#logs-pause", "Resume").await.unwrap();
    b.wait_for_text("#logs", "held while paused", "the held line after resuming")
        .await
        .unwrap();
    c.shot("12-instance-logs").await;
    c.assert_no_console_errors(&[]).await;
    c.finish().await;
}

#[tokio::test]
async fn terminate_asks_for_confirmation_first() {
    let Some(c) = Console::start("console terminate").await else {
        return;
    };
    let b = &c.browser;
    let id = data::running_id();
    c.sign_in(&format!("#/instances/{id}")).await;
    b.click("#action-terminate", "the Terminate button")
        .await
        .unwrap();
    b.wait_until(
        "document.querySelector('#confirm-dialog')?.open === true",
        "the confirmation dialog",
    )
    .await
    .unwrap();
    c.shot("13-terminate-confirm").await;
    b.click("#confirm-cancel", "Cancel").await.unwrap();
    b.wait_until(
        "!document.querySelector('#confirm-dialog')",
        "the dialog closed",
    )
    .await
    .unwrap();
    assert_eq!(
        c.fake.state_of(id),
        Some(JobState::Running),
        "cancel must not terminate"
    );
    b.click("#action-terminate", "the Terminate button")
        .await
        .unwrap();
    b.wait_until(
        "document.querySelector('#confirm-ok')?.disabled === true",
        "Terminate disabled until the word is typed",
    )
    .await
    .unwrap();
    b.fill("#confirm-typed", "terminate", "the confirmation word")
        .await
        .unwrap();
    b.click("#confirm-ok", "Terminate").await.unwrap();
    b.wait_for("[data-state=terminated]", "the terminated state")
        .await
        .unwrap();
    assert_eq!(c.fake.state_of(id), Some(JobState::Terminated));
    b.click("#tab-details", "the Details tab").await.unwrap();
    c.shot("14-instance-terminated").await;
    c.assert_no_console_errors(&[]).await;
    c.finish().await;
}
