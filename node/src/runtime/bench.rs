//! Start latency: the time from the create request to a running container through a
//! [`ContainerRuntime`], beside a plain `docker run -d` of the same image through the CLI,
//! measured in the same run and interleaved so both see the same machine. The ratio is
//! the figure to report; absolute times depend on the storage driver.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use qubix_protocol::ids::AgreementId;
use tokio::process::Command;

use super::ContainerRuntime;
use super::error::RuntimeError;
use super::spec::ContainerSpec;
use super::types::ContainerStatus;

/// How long one start may take before the benchmark gives up.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Measured start latencies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StartLatency {
    /// Create request → `inspect` says running, through the runtime (volume included).
    pub ours: Vec<Duration>,
    /// `docker run -d IMAGE` until the CLI returns (the container then runs).
    pub docker_run: Vec<Duration>,
}

impl StartLatency {
    /// Median of `ours`, in milliseconds.
    pub fn ours_median_ms(&self) -> f64 {
        median_ms(&self.ours)
    }

    /// Median of `docker_run`, in milliseconds.
    pub fn docker_run_median_ms(&self) -> f64 {
        median_ms(&self.docker_run)
    }

    /// Fastest of `ours` and of `docker_run`, in milliseconds.
    pub fn min_ms(&self) -> (f64, f64) {
        let min = |d: &[Duration]| d.iter().min().map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        (min(&self.ours), min(&self.docker_run))
    }

    /// Ours over Docker's CLI (below 1 means faster).
    pub fn ratio(&self) -> f64 {
        self.ours_median_ms() / self.docker_run_median_ms().max(f64::EPSILON)
    }
}

fn median_ms(samples: &[Duration]) -> f64 {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    match ms.len() {
        0 => 0.0,
        n if n % 2 == 1 => ms[n / 2],
        n => (ms[n / 2 - 1] + ms[n / 2]) / 2.0,
    }
}

/// Starts `image` (`sleep 60`) `runs` times each way and removes everything it started.
pub async fn bench_start_latency(
    runtime: &dyn ContainerRuntime,
    image: &str,
    runs: usize,
) -> Result<StartLatency, RuntimeError> {
    let mut result = StartLatency::default();
    for run in 0..runs {
        // Alternate who goes first, so neither always finds a warm (or busy) daemon.
        if run % 2 == 0 {
            result.ours.push(time_ours(runtime, image).await?);
            result.docker_run.push(time_docker_run(image).await?);
        } else {
            result.docker_run.push(time_docker_run(image).await?);
            result.ours.push(time_ours(runtime, image).await?);
        }
    }
    Ok(result)
}

async fn time_ours(runtime: &dyn ContainerRuntime, image: &str) -> Result<Duration, RuntimeError> {
    let spec = bench_spec(image);
    let begun = Instant::now();
    let id = runtime.create(&spec).await?;
    let started = async {
        runtime.start(&id).await?;
        while runtime.inspect(&id).await?.status != ContainerStatus::Running {
            if begun.elapsed() > START_DEADLINE {
                return Err(RuntimeError::Docker {
                    op: "bench",
                    detail: "container never ran".into(),
                });
            }
            tokio::task::yield_now().await;
        }
        Ok(begun.elapsed())
    }
    .await;
    runtime.remove(&id, true).await?;
    started
}

async fn time_docker_run(image: &str) -> Result<Duration, RuntimeError> {
    let begun = Instant::now();
    let run = docker_cli(&[
        "run",
        "-d",
        "--label",
        "qubix.bench=true",
        image,
        "sleep",
        "60",
    ])
    .await?;
    let elapsed = begun.elapsed();
    docker_cli(&["rm", "-f", run.trim()]).await?;
    Ok(elapsed)
}

async fn docker_cli(args: &[&str]) -> Result<String, RuntimeError> {
    let failed = |detail: String| RuntimeError::Docker {
        op: "bench (docker CLI)",
        detail,
    };
    let output = Command::new("docker")
        .args(args)
        .output()
        .await
        .map_err(|e| failed(format!("cannot run the docker CLI: {e}")))?;
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn bench_spec(image: &str) -> ContainerSpec {
    ContainerSpec {
        agreement_id: AgreementId::random(),
        image: image.to_owned(),
        command: vec!["sleep".into(), "60".into()],
        env: Vec::new(),
        gpu_uuids: Vec::new(),
        attach_gpus: false,
        cpu_cores: 1,
        memory_mib: 128,
        shm_mib: 16,
        pids_limit: 64,
        disk_gib: 1,
        ports: Vec::new(),
        publish_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        workspace: true,
        capabilities: vec![],
        disk_limit_mib: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ratio() {
        let ms = Duration::from_millis;
        let l = StartLatency {
            ours: vec![ms(30), ms(10), ms(20)],
            docker_run: vec![ms(40), ms(20)],
        };
        assert_eq!(l.ours_median_ms(), 20.0);
        assert_eq!(l.docker_run_median_ms(), 30.0);
        assert!((l.ratio() - 2.0 / 3.0).abs() < 1e-9);
    }
}
