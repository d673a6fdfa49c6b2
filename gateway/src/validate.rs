//! Shape checks of request bodies before they reach the node: lengths, ranges and formats,
//! with the same limits the wire types enforce, so a bad request is refused with the field
//! at fault instead of failing later inside a negotiation. Semantic checks (does the offer
//! exist, is there money) are the node's.

use std::collections::BTreeSet;

use qubix_protocol::amount::MAX_QU;
use qubix_protocol::api::{ApiError, ErrorCode, LaunchRequest, ProviderPricing, WithdrawRequest};
use qubix_protocol::job::{MAX_ARGS, MAX_ENV_VARS, MAX_PORTS};
use qubix_protocol::offer::MAX_RENTAL_SECS;
use qubix_protocol::validate::{ValidationError, check, check_identity_format, check_text};

/// The longest offer query accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 4096;
/// The most GPU models a pricing may name.
pub const MAX_PRICED_MODELS: usize = 64;

/// Checks a launch request's shape.
pub(crate) fn launch(r: &LaunchRequest) -> Result<(), ApiError> {
    launch_target(r).map_err(invalid)?;
    check_text(&r.image, "image", 256).map_err(invalid)?;
    check(
        !r.image.contains(char::is_whitespace),
        "image",
        "must not contain spaces",
    )
    .map_err(invalid)?;
    launch_command(r).map_err(invalid)?;
    launch_ports(r).map_err(invalid)?;
    launch_resources(r).map_err(invalid)
}

fn launch_target(r: &LaunchRequest) -> Result<(), ValidationError> {
    check(
        r.offer_id.is_some() || r.query.is_some(),
        "offer_id",
        "give the offer to rent, or a query to pick one",
    )?;
    check(
        !(r.offer_id.is_some() && r.query.is_some()),
        "query",
        "give offer_id or query, not both",
    )?;
    match &r.query {
        Some(q) => check(
            q.len() <= MAX_QUERY_LEN,
            "query",
            "must be at most 4096 bytes",
        ),
        None => Ok(()),
    }
}

fn launch_command(r: &LaunchRequest) -> Result<(), ValidationError> {
    check(
        r.command.len() <= MAX_ARGS,
        "command",
        "at most 64 arguments",
    )?;
    check(
        r.command
            .iter()
            .all(|a| a.len() <= 4096 && !a.contains('\0')),
        "command",
        "each argument at most 4096 bytes, no NUL",
    )?;
    check(r.env.len() <= MAX_ENV_VARS, "env", "at most 64 variables")?;
    for (name, value) in &r.env {
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        check(
            first_ok && rest_ok && name.len() <= 128,
            "env",
            "names must match [A-Za-z_][A-Za-z0-9_]*",
        )?;
        check(
            value.len() <= 4096 && !value.contains('\0'),
            "env",
            "values at most 4096 bytes, no NUL",
        )?;
    }
    Ok(())
}

fn launch_ports(r: &LaunchRequest) -> Result<(), ValidationError> {
    check(r.ports.len() <= MAX_PORTS, "ports", "at most 16 ports")?;
    check(
        r.ports.iter().all(|p| p.container_port != 0),
        "ports",
        "port 0 is not a port",
    )?;
    let distinct: BTreeSet<u16> = r.ports.iter().map(|p| p.container_port).collect();
    check(
        distinct.len() == r.ports.len(),
        "ports",
        "each container port at most once",
    )
}

fn launch_resources(r: &LaunchRequest) -> Result<(), ValidationError> {
    check(r.gpus > 0 && r.gpus <= 64, "gpus", "must be 1 to 64")?;
    check(
        r.duration_secs >= 60 && r.duration_secs <= MAX_RENTAL_SECS,
        "duration_secs",
        "must be 60 seconds to 90 days",
    )?;
    if let Some(price) = r.max_price_per_gpu_hour {
        check(
            price.0 > 0 && price.0 <= MAX_QU,
            "max_price_per_gpu_hour",
            "must be 1 QU to 10^15 QU",
        )?;
    }
    check(
        r.cpu_cores.is_none_or(|c| c > 0 && c <= 4096),
        "cpu_cores",
        "must be 1 to 4096",
    )?;
    check(
        r.ram_mib.is_none_or(|m| m > 0),
        "ram_mib",
        "must be above 0",
    )?;
    check(
        r.disk_gib.is_none_or(|d| d > 0),
        "disk_gib",
        "must be above 0",
    )
}

/// Checks a withdrawal's shape.
pub(crate) fn withdraw(r: &WithdrawRequest) -> Result<(), ApiError> {
    check_identity_format(&r.to, "to").map_err(invalid)?;
    check(
        r.amount.0 > 0 && r.amount.0 <= MAX_QU,
        "amount",
        "must be 1 QU to 10^15 QU",
    )
    .map_err(invalid)
}

/// Checks a provider pricing's shape.
pub(crate) fn pricing(p: &ProviderPricing) -> Result<(), ApiError> {
    let price_ok = |qu: u64| qu > 0 && qu <= MAX_QU;
    check(
        price_ok(p.default_price_per_gpu_hour.0),
        "default_price_per_gpu_hour",
        "must be 1 QU to 10^15 QU",
    )
    .map_err(invalid)?;
    check(
        p.per_model.len() <= MAX_PRICED_MODELS,
        "per_model",
        "at most 64 models",
    )
    .map_err(invalid)?;
    for (model, price) in &p.per_model {
        check_text(model, "per_model", 64).map_err(invalid)?;
        check(
            price_ok(price.0),
            "per_model",
            "each price must be 1 QU to 10^15 QU",
        )
        .map_err(invalid)?;
    }
    check(
        p.max_rental_secs > 0 && p.max_rental_secs <= MAX_RENTAL_SECS,
        "max_rental_secs",
        "must be 1 second to 90 days",
    )
    .map_err(invalid)?;
    check(
        p.min_rental_secs <= p.max_rental_secs,
        "min_rental_secs",
        "must not exceed max_rental_secs",
    )
    .map_err(invalid)
}

/// Checks an offer query's length (its grammar is the node's).
pub(crate) fn query(q: &str, field: &str) -> Result<(), ApiError> {
    check(
        q.len() <= MAX_QUERY_LEN,
        field,
        "must be at most 4096 bytes",
    )
    .map_err(invalid)
}

fn invalid(e: ValidationError) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidValue,
        format!("{}: {}", e.field, e.problem),
    )
    .with_field(e.field)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use qubix_protocol::Qu;
    use qubix_protocol::job::{PortPurpose, PortRequest};

    use super::*;

    fn request() -> LaunchRequest {
        LaunchRequest {
            offer_id: None,
            query: Some("num_gpus>=1".into()),
            image: "pytorch/pytorch:latest".into(),
            command: vec![],
            env: BTreeMap::new(),
            ports: vec![PortRequest {
                container_port: 22,
                purpose: PortPurpose::Ssh,
            }],
            gpus: 1,
            duration_secs: 3600,
            max_price_per_gpu_hour: None,
            cpu_cores: None,
            ram_mib: None,
            disk_gib: None,
            capabilities: Vec::new(),
        }
    }

    fn field_of(r: Result<(), ApiError>) -> String {
        r.unwrap_err().error.field.unwrap_or_default()
    }

    #[test]
    fn a_good_launch_passes() {
        launch(&request()).unwrap();
    }

    type Spoil = fn(&mut LaunchRequest);

    #[test]
    fn each_bad_launch_names_its_field() {
        let cases: Vec<(Spoil, &str)> = vec![
            (|r| r.gpus = 0, "gpus"),
            (|r| r.duration_secs = 59, "duration_secs"),
            (|r| r.image = "a b".into(), "image"),
            (|r| r.query = None, "offer_id"),
            (
                |r| {
                    r.ports.push(PortRequest {
                        container_port: 22,
                        purpose: PortPurpose::Tcp,
                    })
                },
                "ports",
            ),
            (|r| _ = r.env.insert("1BAD".into(), "x".into()), "env"),
            (
                |r| r.max_price_per_gpu_hour = Some(Qu(0)),
                "max_price_per_gpu_hour",
            ),
            (|r| r.cpu_cores = Some(0), "cpu_cores"),
        ];
        for (spoil, field) in cases {
            let mut r = request();
            spoil(&mut r);
            assert_eq!(field_of(launch(&r)), field);
        }
    }

    #[test]
    fn withdraw_and_pricing_ranges() {
        let to = "A".repeat(60);
        assert!(
            withdraw(&WithdrawRequest {
                to: to.clone(),
                amount: Qu(5)
            })
            .is_ok()
        );
        assert_eq!(
            field_of(withdraw(&WithdrawRequest {
                to: "abc".into(),
                amount: Qu(5)
            })),
            "to"
        );
        assert_eq!(
            field_of(withdraw(&WithdrawRequest { to, amount: Qu(0) })),
            "amount"
        );
        let mut p = ProviderPricing {
            default_price_per_gpu_hour: Qu(100),
            per_model: BTreeMap::new(),
            min_rental_secs: 600,
            max_rental_secs: 3600,
        };
        assert!(pricing(&p).is_ok());
        p.min_rental_secs = 7200;
        assert_eq!(field_of(pricing(&p)), "min_rental_secs");
    }
}
