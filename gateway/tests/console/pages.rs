//! Every other page renders its data, tables sort, and the console works on a phone-sized
//! screen and from the keyboard. Each page leaves a screenshot.

use crate::Console;
use crate::common::data;

#[tokio::test]
async fn instances_billing_provider_and_network_pages_render() {
    let Some(c) = Console::start("console pages").await else {
        return;
    };
    let b = &c.browser;
    c.sign_in("#/instances").await;
    b.wait_for(
        &format!(
            "#instances-table tr[data-instance='{}']",
            data::running_id()
        ),
        "the running instance",
    )
    .await
    .unwrap();
    b.wait_for(
        "#instances-table .badge.simulated",
        "the simulated badge on the instance",
    )
    .await
    .unwrap();
    c.shot("15-instances").await;
    c.go("#/billing").await;
    b.wait_for_text("#deposit-identity", data::IDENTITY, "the deposit identity")
        .await
        .unwrap();
    b.wait_until(
        "document.querySelectorAll('#ledger-table tbody tr').length === 10",
        "a page of ledger entries",
    )
    .await
    .unwrap();
    b.wait_for("#export-csv", "the CSV export").await.unwrap();
    c.shot("16-billing").await;
    c.go("#/provider").await;
    b.wait_until(
        "document.querySelectorAll('#checklist li').length === 5",
        "the onboarding checklist",
    )
    .await
    .unwrap();
    b.wait_for(
        "#checklist li.todo[data-check=nvidia_runtime]",
        "the unmet NVIDIA runtime check",
    )
    .await
    .unwrap();
    b.wait_for("#gpus-table .badge.simulated", "the simulated GPUs")
        .await
        .unwrap();
    b.wait_for("#pricing-form", "the pricing editor")
        .await
        .unwrap();
    c.shot("17-provider").await;
    b.fill("#price-default", "900", "the default price")
        .await
        .unwrap();
    b.click("#pricing-save", "Save pricing").await.unwrap();
    b.wait_for_text("#toasts", "Pricing saved", "the saved notice")
        .await
        .unwrap();
    c.go("#/network").await;
    b.wait_until(
        "document.querySelectorAll('#peers-table tbody tr').length === 4",
        "four peers",
    )
    .await
    .unwrap();
    b.wait_for_text(
        "#network-node-id",
        &data::me().to_string(),
        "this node's id",
    )
    .await
    .unwrap();
    c.shot("18-network").await;
    c.assert_no_console_errors(&[]).await;
    c.finish().await;
}

#[tokio::test]
async fn table_headers_sort_and_are_buttons() {
    let Some(c) = Console::start("console sorting").await else {
        return;
    };
    let b = &c.browser;
    c.sign_in("#/marketplace").await;
    let first_price =
        "document.querySelector('#offers-table tbody tr td:nth-child(6)').textContent";
    b.wait_until(
        &format!("{first_price} === '700 QU'"),
        "the cheapest offer first",
    )
    .await
    .unwrap();
    b.click(
        "#offers-table th:nth-child(6) button.sort",
        "the price header",
    )
    .await
    .unwrap();
    b.wait_until(
        &format!("{first_price} === '9,000 QU'"),
        "the dearest offer first after sorting descending",
    )
    .await
    .unwrap();
    b.wait_until("document.querySelector('#offers-table th:nth-child(6)').getAttribute('aria-sort') === 'descending'", "aria-sort").await.unwrap();
    c.finish().await;
}

#[tokio::test]
async fn on_a_phone_the_sidebar_collapses_behind_the_menu_button() {
    let Some(c) = Console::start("console phone").await else {
        return;
    };
    let b = &c.browser;
    b.resize(390, 844).await.unwrap();
    c.sign_in("").await;
    b.wait_until(
        "getComputedStyle(document.querySelector('#menu-toggle')).display !== 'none'",
        "the menu button",
    )
    .await
    .unwrap();
    b.wait_until(
        "document.querySelector('#sidebar').getBoundingClientRect().right <= 0",
        "the sidebar off screen",
    )
    .await
    .unwrap();
    c.shot("19-phone-dashboard").await;
    b.click("#menu-toggle", "the menu button").await.unwrap();
    b.wait_until(
        "document.querySelector('#sidebar').getBoundingClientRect().left >= 0",
        "the sidebar open",
    )
    .await
    .unwrap();
    c.shot("20-phone-menu").await;
    b.click("#sidebar a[data-nav=marketplace]", "the Marketplace link")
        .await
        .unwrap();
    b.wait_until(
        "document.querySelectorAll('#offers-table tbody tr[data-offer]').length === 4",
        "the offers",
    )
    .await
    .unwrap();
    b.wait_until(
        "document.querySelector('#sidebar').getBoundingClientRect().right <= 0",
        "the sidebar closed after navigating",
    )
    .await
    .unwrap();
    b.scroll_to("#offers-panel", "the offers panel")
        .await
        .unwrap();
    c.shot("21-phone-marketplace").await;
    c.assert_no_console_errors(&[]).await;
    c.finish().await;
}

#[tokio::test]
async fn the_console_is_reachable_by_keyboard() {
    let Some(c) = Console::start("console keyboard").await else {
        return;
    };
    let b = &c.browser;
    c.sign_in("").await;
    // Every interactive element is a real link, button or input, so it takes focus.
    let clickable_divs =
        "[...document.querySelectorAll('[onclick], div[role=button], span[role=button]')].length";
    assert_eq!(
        b.eval(&format!("return {clickable_divs};")).await.unwrap(),
        0
    );
    b.eval("document.querySelector('#sidebar a[data-nav=instances]').focus(); return true;")
        .await
        .unwrap();
    b.wait_until(
        "document.activeElement.dataset.nav === 'instances'",
        "focus on the Instances link",
    )
    .await
    .unwrap();
    b.wait_until(
        "getComputedStyle(document.activeElement).outlineStyle !== 'none'",
        "a visible focus ring",
    )
    .await
    .unwrap();
    b.client()
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    b.wait_for("#instances-table", "the instances page opened with Enter")
        .await
        .unwrap();
    c.finish().await;
}
