//! Headless Chromium driven through chromedriver (feature `browser`), for console tests
//! here and, later, against a real testnet. Every wait names what it waited for, so a
//! failing test says what did not appear.
//!
//! ```no_run
//! # async fn demo() -> Result<(), qubix_gateway::browser::BrowserError> {
//! use qubix_gateway::browser::{Browser, Tools};
//! let Some(tools) = Tools::required_or_skip("console login") else { return Ok(()) };
//! let browser = Browser::launch(&tools).await?;
//! browser.goto("http://127.0.0.1:8080/").await?;
//! browser.wait_for("#login-token", "the login form").await?;
//! browser.close().await
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a wait lasts before it fails, unless told otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// Chromium's flags: headless, no network chatter, no first-run UI, a fresh profile.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// What went wrong driving the browser.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserError {
    /// chromedriver could not be started.
    #[error("could not start chromedriver ({path}): {detail}; install Debian's chromium-driver")]
    Driver {
        /// The chromedriver binary.
        path: PathBuf,
        /// What happened.
        detail: String,
    },
    /// No WebDriver session could be opened.
    #[error(
        "chromedriver refused a session: {0}; check that chromium and chromium-driver have the same version"
    )]
    Session(#[from] fantoccini::error::NewSessionError),
    /// A WebDriver command failed.
    #[error("browser command failed: {0}")]
    Command(#[from] fantoccini::error::CmdError),
    /// A condition did not hold in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
    },
    /// A test artifact could not be written.
    #[error("could not write {path}: {source}")]
    Artifact {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The Chromium and chromedriver binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// The browser.
    pub chromium: PathBuf,
    /// The WebDriver server.
    pub chromedriver: PathBuf,
}

impl Tools {
    /// Finds the binaries: `QUBIX_CHROMIUM` and `QUBIX_CHROMEDRIVER`, else `PATH`.
    pub fn find() -> Result<Self, String> {
        let chromium = std::env::var_os("QUBIX_CHROMIUM")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("/usr/lib/chromium/chromium")).filter(|p| p.is_file()))
            .or_else(|| {
                ["chromium", "chromium-browser", "google-chrome"]
                    .iter()
                    .find_map(|n| on_path(n))
            })
            .ok_or("chromium not found (apt-get install chromium, or set QUBIX_CHROMIUM)")?;
        let chromedriver = std::env::var_os("QUBIX_CHROMEDRIVER")
            .map(PathBuf::from)
            .or_else(|| on_path("chromedriver"))
            .ok_or("chromedriver not found (apt-get install chromium-driver, or set QUBIX_CHROMEDRIVER)")?;
        Ok(Self {
            chromium,
            chromedriver,
        })
    }

    /// The binaries, or `None` after printing why the test `test` is skipped. Under
    /// `CI=true` a missing browser fails the test instead (DESIGN §10).
    #[allow(clippy::panic)]
    pub fn required_or_skip(test: &str) -> Option<Self> {
        match Self::find() {
            Ok(tools) => Some(tools),
            Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("{test}: {why}; browser tests may not be skipped under CI=true")
            }
            Err(why) => {
                // Straight to stderr, past the test harness's capture, so the skip is seen.
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
                None
            }
        }
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A headless Chromium session. Dropping it kills chromedriver (and with it the browser);
/// call [`Browser::close`] to end the session cleanly.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    _driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a session with a fresh profile.
    pub async fn launch(tools: &Tools) -> Result<Self, BrowserError> {
        let (driver, port) = start_driver(&tools.chromedriver).await?;
        let profile = tempfile::tempdir().map_err(|e| driver_error(tools, e))?;
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": tools.chromium, "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(Capabilities::from_iter(capabilities))
            .connect(&format!("http://127.0.0.1:{port}"))
            .await?;
        Ok(Self {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    /// The WebDriver client, for anything these helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        Ok(self.client.goto(url).await?)
    }

    /// Resizes the window (e.g. 390×844 for a phone).
    pub async fn resize(&self, width: u32, height: u32) -> Result<(), BrowserError> {
        Ok(self.client.set_window_size(width, height).await?)
    }

    /// Waits until an element matching `css` exists, and returns it.
    pub async fn wait_for(&self, css: &str, what: &str) -> Result<Element, BrowserError> {
        self.client
            .wait()
            .at_most(DEFAULT_WAIT)
            .for_element(Locator::Css(css))
            .await
            .map_err(|_| timeout(format!("{what} (`{css}`)"), DEFAULT_WAIT))
    }

    /// Waits until the JavaScript expression `condition` is truthy in the page.
    pub async fn wait_until(&self, condition: &str, what: &str) -> Result<(), BrowserError> {
        self.wait_until_for(condition, what, DEFAULT_WAIT).await
    }

    /// [`Browser::wait_until`] with its own time limit. Re-evaluates the condition every
    /// 50 ms; this polls a condition, it does not sleep for a guess.
    pub async fn wait_until_for(
        &self,
        condition: &str,
        what: &str,
        limit: Duration,
    ) -> Result<(), BrowserError> {
        let script = format!("try {{ return !!({condition}); }} catch (e) {{ return false; }}");
        let deadline = tokio::time::Instant::now() + limit;
        let mut ticks = tokio::time::interval(Duration::from_millis(50));
        loop {
            ticks.tick().await;
            if self.client.execute(&script, vec![]).await?.as_bool() == Some(true) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(timeout(what.to_owned(), limit));
            }
        }
    }

    /// Waits until the text of the first element matching `css` contains `needle`.
    pub async fn wait_for_text(
        &self,
        css: &str,
        needle: &str,
        what: &str,
    ) -> Result<(), BrowserError> {
        let condition = format!(
            "(document.querySelector({css}) || {{}}).textContent?.includes({needle})",
            css = json!(css),
            needle = json!(needle)
        );
        self.wait_until(
            &condition,
            &format!("{what} (`{css}` containing {needle:?})"),
        )
        .await
    }

    /// Clicks the element matching `css` once it exists.
    pub async fn click(&self, css: &str, what: &str) -> Result<(), BrowserError> {
        Ok(self.wait_for(css, what).await?.click().await?)
    }

    /// Replaces the value of the input matching `css` with `text`, as typed keys.
    pub async fn fill(&self, css: &str, text: &str, what: &str) -> Result<(), BrowserError> {
        let input = self.wait_for(css, what).await?;
        input.clear().await?;
        Ok(input.send_keys(text).await?)
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str, what: &str) -> Result<String, BrowserError> {
        Ok(self.wait_for(css, what).await?.text().await?)
    }

    /// Scrolls the element matching `css` into view (for screenshots of long pages).
    pub async fn scroll_to(&self, css: &str, what: &str) -> Result<(), BrowserError> {
        let element = self.wait_for(css, what).await?;
        let arg = serde_json::to_value(&element).unwrap_or(Value::Null);
        self.client
            .execute(
                "arguments[0].scrollIntoView({ block: 'start' }); return true;",
                vec![arg],
            )
            .await?;
        Ok(())
    }

    /// Evaluates `script` (a function body; use `return`) in the page.
    pub async fn eval(&self, script: &str) -> Result<Value, BrowserError> {
        Ok(self.client.execute(script, vec![]).await?)
    }

    /// Saves a PNG of the viewport to `path`, creating its directory.
    pub async fn screenshot(&self, path: &Path) -> Result<(), BrowserError> {
        let png = self.client.screenshot().await?;
        let artifact = |source| BrowserError::Artifact {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(artifact)?;
        }
        std::fs::write(path, png).map_err(artifact)
    }

    /// Severe entries of the browser's console log since the last call (script errors,
    /// failed loads, CSP violations).
    pub async fn console_errors(&self) -> Result<Vec<String>, BrowserError> {
        let entries = self.client.issue_cmd(BrowserLog).await?;
        let errors = entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect();
        Ok(errors)
    }

    /// Ends the session and the browser.
    pub async fn close(self) -> Result<(), BrowserError> {
        Ok(self.client.close().await?)
    }
}

/// chromedriver's `POST /session/{id}/se/log` (`{"type": "browser"}`).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(r#"{"type":"browser"}"#.to_owned()),
        )
    }
}

/// Starts chromedriver on a free port and waits for it to say it is ready.
async fn start_driver(path: &Path) -> Result<(Child, u16), BrowserError> {
    let fail = |detail: String| BrowserError::Driver {
        path: path.to_owned(),
        detail,
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| fail(format!("no free port: {e}")))?
        .port();
    let mut child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| fail("no stdout".into()))?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("started successfully") {
                return true;
            }
        }
        false
    };
    match tokio::time::timeout(Duration::from_secs(20), ready).await {
        Ok(true) => {
            // Keep reading, so chromedriver never writes into a closed pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Ok((child, port))
        }
        Ok(false) => Err(fail("it exited before it was ready".into())),
        Err(_) => Err(fail("it did not report ready within 20 s".into())),
    }
}

fn driver_error(tools: &Tools, e: std::io::Error) -> BrowserError {
    BrowserError::Driver {
        path: tools.chromedriver.clone(),
        detail: e.to_string(),
    }
}

fn timeout(what: String, after: Duration) -> BrowserError {
    BrowserError::Timeout { what, after }
}
