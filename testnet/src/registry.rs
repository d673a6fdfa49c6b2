//! A registry on loopback for tests of image pulls: Debian's `docker-registry` (installed by
//! `scripts/setup-test-env`), on a free port of 127.0.0.1 where Docker pulls without TLS. No
//! pull leaves the machine.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::TestnetError;

fn fail(message: impl std::fmt::Display) -> TestnetError {
    TestnetError::Node {
        name: "registry".into(),
        message: message.to_string(),
    }
}

/// Runs `docker ARGS`, failing with its message.
pub fn docker(args: &[&str]) -> Result<(), TestnetError> {
    let out = Command::new("docker").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(fail(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// A running loopback registry; stopped when dropped.
#[derive(Debug)]
pub struct LoopbackRegistry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl LoopbackRegistry {
    /// Starts one and waits until it accepts connections.
    pub async fn start() -> Result<Self, TestnetError> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                fail(format!(
                    "docker-registry: {e}; run ./scripts/setup-test-env"
                ))
            })?;
        let registry = Self {
            addr,
            child,
            _dir: dir,
        };
        crate::wait_until(Duration::from_secs(30), "the loopback registry", || {
            let addr = registry.addr.clone();
            async move { tokio::net::TcpStream::connect(addr).await.ok().map(|_| ()) }
        })
        .await?;
        Ok(registry)
    }

    /// Publishes `base` with `extra_bytes` of incompressible data on top as
    /// `<registry>/qubix/<name>:1`, and removes the local copy; returns the reference.
    pub fn publish(
        &self,
        base: &str,
        name: &str,
        extra_bytes: u64,
    ) -> Result<String, TestnetError> {
        let image = format!("{}/qubix/{name}:1", self.addr);
        let builder = format!("qubix-publish-{name}");
        let _ = docker(&["rm", "-f", &builder]);
        docker(&[
            "run",
            "--name",
            &builder,
            base,
            "sh",
            "-c",
            &format!("head -c {extra_bytes} /dev/urandom > /extra"),
        ])?;
        let committed = docker(&["commit", &builder, &image]);
        let _ = docker(&["rm", "-f", &builder]);
        committed?;
        docker(&["push", &image])?;
        docker(&["rmi", &image])?;
        Ok(image)
    }
}

impl Drop for LoopbackRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
