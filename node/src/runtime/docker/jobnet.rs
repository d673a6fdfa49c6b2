//! Each job's own network. A job never shares Docker's default bridge: it gets a bridge of
//! its own on a small subnet carved from a pool the provider configures, and the node keeps
//! firewall rules keyed to that bridge:
//!
//! - in `DOCKER-USER` (the forwarding path): replies to established connections first, so
//!   published ports and tunnels keep working; then nothing to link-local (169.254.0.0/16,
//!   cloud metadata included), RFC 1918, shared (100.64.0.0/10), loopback or multicast
//!   addresses, which also keeps jobs apart from each other since the pool is private; then,
//!   when public egress is off, nothing at all;
//! - in `QUBIX-INPUT`, jumped to from `INPUT`: traffic from a job to the host's own
//!   addresses reaches INPUT, never FORWARD, so `DOCKER-USER` alone cannot stop it; only
//!   replies pass.
//!
//! Every rule carries the comment `qubix:<owner>:<agreement>`, so a node removes its own
//! rules when a job ends and at start (orphans), and never another node's. Job networks are
//! IPv4 only, so no IPv6 (ULA or link-local) path exists from a job.
//!
//! The rule and subnet logic is pure; [`Firewall`] runs `iptables`.

use std::net::Ipv4Addr;
use std::time::Duration;

use qubix_protocol::AgreementId;

use crate::runtime::error::RuntimeError;

/// The forwarding chain Docker leaves to the administrator.
pub(crate) const FORWARD_CHAIN: &str = "DOCKER-USER";
/// The node's own chain on the input path.
pub(crate) const INPUT_CHAIN: &str = "QUBIX-INPUT";
/// Each job's subnet: network, gateway (the host's side), the job, broadcast, and spares.
pub(crate) const SUBNET_PREFIX: u8 = 29;
/// Destinations no job may open a connection to.
pub(crate) const FORBIDDEN: [&str; 8] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "0.0.0.0/8",
    "224.0.0.0/3",
];
/// How long one `iptables` call may take (it waits for the xtables lock).
const IPTABLES_TIMEOUT: Duration = Duration::from_secs(20);

/// An IPv4 network, `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Net {
    /// The first address.
    pub addr: Ipv4Addr,
    /// The prefix length.
    pub prefix: u8,
}

impl Ipv4Net {
    /// Parses `a.b.c.d/n` (the address is masked to the prefix).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not address/prefix"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("{prefix:?} is not a prefix length (0-32)"))?;
        Ok(Self {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    fn first(self) -> u32 {
        u32::from(self.addr)
    }

    fn last(self) -> u32 {
        self.first() | !mask(self.prefix)
    }

    /// Whether the two networks share an address.
    pub fn overlaps(self, other: Ipv4Net) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// Whether `other` lies inside this network.
    pub fn contains(self, other: Ipv4Net) -> bool {
        self.first() <= other.first() && other.last() <= self.last()
    }

    /// The `n`th address of the network.
    pub fn nth(self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.first().wrapping_add(n))
    }
}

impl std::fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

/// Checks a pool: private (so jobs on it can never reach each other through the
/// forbidden-destination rules) and large enough for a job subnet.
pub fn check_pool(pool: Ipv4Net) -> Result<(), String> {
    let private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
        .iter()
        .filter_map(|r| Ipv4Net::parse(r).ok())
        .any(|r| r.contains(pool));
    if !private {
        return Err(format!(
            "{pool} is not inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
        ));
    }
    if pool.prefix > SUBNET_PREFIX {
        return Err(format!(
            "{pool} is smaller than one /{SUBNET_PREFIX} job subnet"
        ));
    }
    Ok(())
}

/// A free job subnet of `pool`: the first, starting from a place that depends on the job
/// (so nodes sharing an engine rarely race for the same one), that overlaps none of `used`.
pub(crate) fn free_subnet(pool: Ipv4Net, used: &[Ipv4Net], job: &AgreementId) -> Option<Ipv4Net> {
    let count = 1u64 << (SUBNET_PREFIX - pool.prefix.min(SUBNET_PREFIX));
    let seed = job
        .as_bytes()
        .iter()
        .take(8)
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    (0..count).find_map(|i| {
        let index = u32::try_from((seed.wrapping_add(i)) % count).ok()?;
        let size = 1u32 << (32 - u32::from(SUBNET_PREFIX));
        let candidate = Ipv4Net {
            addr: pool.nth(index.checked_mul(size)?),
            prefix: SUBNET_PREFIX,
        };
        (!used.iter().any(|u| u.overlaps(candidate))).then_some(candidate)
    })
}

/// The bridge interface of a job's network: `qbx` and 12 hex digits of the agreement (15
/// characters, the kernel's limit).
pub(crate) fn bridge_name(job: &AgreementId) -> String {
    format!("qbx{}", &job.to_string()[..12])
}

/// The Docker network of a job.
pub(crate) fn network_name(job: &AgreementId) -> String {
    format!("qubix-net-{job}")
}

/// The comment every rule of `owner`'s job `job` carries.
pub(crate) fn rule_tag(owner: &str, job: &AgreementId) -> String {
    format!("qubix:{owner}:{job}")
}

/// One firewall rule: its chain and its match and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    /// `DOCKER-USER` or `QUBIX-INPUT`.
    pub chain: &'static str,
    /// The rest of the rule, as `iptables` arguments.
    pub spec: Vec<String>,
}

/// The rules of one job's bridge, in the order they must be evaluated.
pub(crate) fn job_rules(bridge: &str, tag: &str, public_egress: bool) -> Vec<Rule> {
    let rule = |chain: &'static str, middle: &[&str], target: &str| Rule {
        chain,
        spec: ["-i", bridge]
            .iter()
            .chain(middle)
            .chain(&["-m", "comment", "--comment", tag, "-j", target])
            .map(|s| (*s).to_owned())
            .collect(),
    };
    let replies = ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"];
    let mut rules = vec![rule(FORWARD_CHAIN, &replies, "ACCEPT")];
    rules.extend(
        FORBIDDEN
            .iter()
            .map(|range| rule(FORWARD_CHAIN, &["-d", range], "DROP")),
    );
    if !public_egress {
        rules.push(rule(FORWARD_CHAIN, &[], "DROP"));
    }
    rules.push(rule(INPUT_CHAIN, &replies, "ACCEPT"));
    rules.push(rule(INPUT_CHAIN, &[], "DROP"));
    rules
}

/// The `-D` arguments that delete each rule of `listing` (the output of `iptables -S
/// CHAIN`) whose comment starts with `tag_prefix`.
pub(crate) fn deletions(listing: &str, tag_prefix: &str) -> Vec<Vec<String>> {
    listing
        .lines()
        .filter(|line| line.starts_with("-A "))
        .filter_map(|line| {
            let words: Vec<String> = line
                .split_whitespace()
                .map(|w| w.trim_matches('"').to_owned())
                .collect();
            let tagged = words
                .windows(2)
                .any(|w| w[0] == "--comment" && w[1].starts_with(tag_prefix));
            tagged.then(|| {
                let mut delete = words;
                delete[0] = "-D".to_owned();
                delete
            })
        })
        .collect()
}

/// Runs `iptables` for the node's job rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct Firewall;

impl Firewall {
    async fn iptables(&self, args: &[String]) -> Result<String, String> {
        let run = tokio::process::Command::new("iptables")
            .arg("-w")
            .args(args)
            .output();
        let out = tokio::time::timeout(IPTABLES_TIMEOUT, run)
            .await
            .map_err(|_| format!("iptables {} took over 20 s", args.join(" ")))?
            .map_err(|e| format!("iptables could not run ({e}); job isolation needs it"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "iptables {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Makes `QUBIX-INPUT` exist and `INPUT` jump to it first (shared by every node of this
    /// machine; never removed).
    async fn ensure_input_chain(&self) -> Result<(), String> {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        if self.iptables(&s(&["-S", INPUT_CHAIN])).await.is_err() {
            // Another node may create it at the same moment: fine either way.
            let _ = self.iptables(&s(&["-N", INPUT_CHAIN])).await;
        }
        if self
            .iptables(&s(&["-C", "INPUT", "-j", INPUT_CHAIN]))
            .await
            .is_err()
        {
            self.iptables(&s(&["-I", "INPUT", "1", "-j", INPUT_CHAIN]))
                .await?;
        }
        Ok(())
    }

    /// Installs `rules` at the top of their chains, keeping their order.
    pub(crate) async fn install(&self, rules: &[Rule]) -> Result<(), RuntimeError> {
        let fail = |detail: String| RuntimeError::Isolation { detail };
        self.ensure_input_chain().await.map_err(fail)?;
        for chain in [FORWARD_CHAIN, INPUT_CHAIN] {
            let mine: Vec<&Rule> = rules.iter().filter(|r| r.chain == chain).collect();
            for rule in mine.iter().rev() {
                let mut args = vec!["-I".to_owned(), chain.to_owned(), "1".to_owned()];
                args.extend(rule.spec.iter().cloned());
                self.iptables(&args).await.map_err(fail)?;
            }
        }
        Ok(())
    }

    /// Removes every rule whose comment starts with `tag_prefix`; returns how many. A rule
    /// another removal took first is fine; one still there after two passes is an error.
    pub(crate) async fn remove(&self, tag_prefix: &str) -> Result<usize, RuntimeError> {
        let mut removed = 0;
        for _pass in 0..2 {
            let mut left = Vec::new();
            for chain in [FORWARD_CHAIN, INPUT_CHAIN] {
                let Ok(listing) = self.iptables(&["-S".to_owned(), chain.to_owned()]).await else {
                    continue; // no such chain: nothing of ours in it
                };
                for delete in deletions(&listing, tag_prefix) {
                    match self.iptables(&delete).await {
                        Ok(_) => removed += 1,
                        Err(e) => left.push(e),
                    }
                }
            }
            if left.is_empty() {
                return Ok(removed);
            }
        }
        // What failed twice, if it is still there.
        for chain in [FORWARD_CHAIN, INPUT_CHAIN] {
            if let Ok(listing) = self.iptables(&["-S".to_owned(), chain.to_owned()]).await
                && !deletions(&listing, tag_prefix).is_empty()
            {
                return Err(RuntimeError::Isolation {
                    detail: format!("rules {tag_prefix}* in {chain} could not be removed"),
                });
            }
        }
        Ok(removed)
    }

    /// The agreements `owner` has rules for.
    pub(crate) async fn tagged(&self, owner: &str) -> Vec<String> {
        let prefix = format!("qubix:{owner}:");
        let mut jobs = Vec::new();
        for chain in [FORWARD_CHAIN, INPUT_CHAIN] {
            let Ok(listing) = self.iptables(&["-S".to_owned(), chain.to_owned()]).await else {
                continue;
            };
            for line in listing.lines() {
                let found = line
                    .split_whitespace()
                    .map(|w| w.trim_matches('"'))
                    .find_map(|w| w.strip_prefix(&prefix));
                if let Some(job) = found
                    && !jobs.iter().any(|j| j == job)
                {
                    jobs.push(job.to_owned());
                }
            }
        }
        jobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        Ipv4Net::parse(s).unwrap()
    }

    #[test]
    fn networks_parse_overlap_and_contain() {
        assert_eq!(net("10.213.7.9/16"), net("10.213.0.0/16"));
        assert!(net("10.0.0.0/8").contains(net("10.213.0.8/29")));
        assert!(!net("10.213.0.0/29").overlaps(net("10.213.0.8/29")));
        assert!(net("10.213.0.0/28").overlaps(net("10.213.0.8/29")));
        assert!(Ipv4Net::parse("10.0.0.0").is_err());
        assert!(Ipv4Net::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn pools_must_be_private_and_hold_a_subnet() {
        assert!(check_pool(net("10.213.0.0/16")).is_ok());
        assert!(check_pool(net("198.51.100.0/24")).is_err());
        assert!(check_pool(net("10.213.0.0/30")).is_err());
    }

    #[test]
    fn free_subnets_avoid_every_used_one_and_run_out() {
        let pool = net("10.213.0.0/27"); // four /29s
        let job = AgreementId::from_bytes([0; 16]);
        let mut used = vec![net("172.17.0.0/16")];
        for _ in 0..4 {
            let s = free_subnet(pool, &used, &job).unwrap();
            assert!(pool.contains(s) && s.prefix == SUBNET_PREFIX);
            assert!(!used.iter().any(|u| u.overlaps(s)));
            used.push(s);
        }
        assert_eq!(free_subnet(pool, &used, &job), None);
        // A pool the engine already covers has nothing free.
        assert_eq!(free_subnet(pool, &[net("10.0.0.0/8")], &job), None);
    }

    #[test]
    fn rules_accept_replies_first_then_refuse_private_and_host() {
        let rules = job_rules("qbx0123456789ab", "qubix:me:job", true);
        let forward: Vec<&Rule> = rules.iter().filter(|r| r.chain == FORWARD_CHAIN).collect();
        assert!(forward[0].spec.join(" ").contains("RELATED,ESTABLISHED"));
        assert!(forward[0].spec.ends_with(&["-j".into(), "ACCEPT".into()]));
        for range in [
            "10.0.0.0/8",
            "169.254.0.0/16",
            "192.168.0.0/16",
            "172.16.0.0/12",
        ] {
            assert!(
                forward
                    .iter()
                    .any(|r| r.spec.join(" ").contains(&format!("-d {range}"))
                        && r.spec.ends_with(&["-j".into(), "DROP".into()])),
                "{range}"
            );
        }
        assert!(
            rules
                .iter()
                .all(|r| r.spec[..2] == ["-i", "qbx0123456789ab"])
        );
        assert!(
            rules
                .iter()
                .all(|r| r.spec.join(" ").contains("--comment qubix:me:job"))
        );
        let input: Vec<&Rule> = rules.iter().filter(|r| r.chain == INPUT_CHAIN).collect();
        assert_eq!(input.len(), 2);
        assert!(input[1].spec.ends_with(&["-j".into(), "DROP".into()]));
        // Public egress off: everything else is refused too, after the replies.
        let closed = job_rules("qbx0123456789ab", "qubix:me:job", false);
        let last_forward = closed.iter().rfind(|r| r.chain == FORWARD_CHAIN).unwrap();
        assert_eq!(last_forward.spec.len(), 2 + 4 + 2);
    }

    #[test]
    fn deletions_take_only_the_tagged_rules() {
        let listing = "-N DOCKER-USER\n\
            -A DOCKER-USER -i qbxa -m comment --comment \"qubix:me:a\" -j ACCEPT\n\
            -A DOCKER-USER -i qbxb -m comment --comment qubix:other:b -j DROP\n\
            -A DOCKER-USER -j RETURN\n";
        let d = deletions(listing, "qubix:me:");
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].join(" "),
            "-D DOCKER-USER -i qbxa -m comment --comment qubix:me:a -j ACCEPT"
        );
    }

    #[test]
    fn names_fit_the_kernel_and_docker() {
        let job = AgreementId::from_bytes([0xab; 16]);
        assert_eq!(bridge_name(&job).len(), 15);
        assert!(network_name(&job).starts_with("qubix-net-"));
    }
}
