//! The console in headless Chromium against the gateway and the in-memory node: login,
//! marketplace, launch wizard, instance page, confirmations, every page's screenshot (under
//! `test-artifacts/console/`), and no browser console errors. Skipped with a notice when
//! Chromium is missing, unless `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod flows;
mod pages;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};

use qubix_gateway::browser::{Browser, Tools};
use qubix_gateway::{ApiToken, Gateway, GatewayConfig, login_url, serve_with};

use crate::common::fake::FakeNode;

/// One browser at a time: the machines that run these tests have few cores.
static ONE_BROWSER: Mutex<()> = Mutex::const_new(());

/// A gateway over a fresh in-memory node, and a browser pointed at it.
pub(crate) struct Console {
    pub(crate) fake: Arc<FakeNode>,
    pub(crate) token: ApiToken,
    pub(crate) gateway: Gateway,
    pub(crate) browser: Browser,
    _turn: MutexGuard<'static, ()>,
}

impl Console {
    /// Starts both, or `None` (after a notice) when Chromium is not installed.
    pub(crate) async fn start(test: &str) -> Option<Self> {
        Self::start_with(test, GatewayConfig::default()).await
    }

    /// [`Console::start`] with other gateway limits.
    pub(crate) async fn start_with(test: &str, config: GatewayConfig) -> Option<Self> {
        let tools = Tools::required_or_skip(test)?;
        let turn = ONE_BROWSER.lock().await;
        let fake = Arc::new(FakeNode::new());
        let token = ApiToken::generate();
        let addr = "127.0.0.1:0".parse().unwrap();
        let gateway = serve_with(
            addr,
            Arc::clone(&fake),
            token.clone(),
            config,
            std::future::pending(),
        )
        .await
        .unwrap();
        let browser = Browser::launch(&tools).await.unwrap();
        Some(Self {
            fake,
            token,
            gateway,
            browser,
            _turn: turn,
        })
    }

    /// `http://127.0.0.1:port/` plus `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.gateway.local_addr())
    }

    /// Opens the login URL the node prints, which signs straight in, then `hash`.
    pub(crate) async fn sign_in(&self, hash: &str) {
        self.browser
            .goto(&login_url(self.gateway.local_addr(), &self.token))
            .await
            .unwrap();
        self.browser
            .wait_for("#stat-running", "the dashboard after the login URL")
            .await
            .unwrap();
        if !hash.is_empty() {
            self.go(hash).await;
        }
    }

    /// Navigates inside the console (`#/…`).
    pub(crate) async fn go(&self, hash: &str) {
        let script = format!("location.hash = {}; return true;", serde_json::json!(hash));
        self.browser.eval(&script).await.unwrap();
    }

    /// Saves `test-artifacts/console/<name>.png`.
    pub(crate) async fn shot(&self, name: &str) {
        let path = artifacts().join(format!("{name}.png"));
        self.browser.screenshot(&path).await.unwrap();
    }

    /// Fails on any error in the browser's console, except those `expected` mentions.
    pub(crate) async fn assert_no_console_errors(&self, expected: &[&str]) {
        let errors = self.browser.console_errors().await.unwrap();
        let unexpected: Vec<&String> = errors
            .iter()
            .filter(|e| !expected.iter().any(|x| e.contains(x)))
            .collect();
        assert!(
            unexpected.is_empty(),
            "browser console errors: {unexpected:#?}"
        );
    }

    /// Closes the browser.
    pub(crate) async fn finish(self) {
        self.browser.close().await.unwrap();
    }
}

fn artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../test-artifacts/console")
}
