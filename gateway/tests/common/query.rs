//! A small stand-in for the offer query language (the real one is
//! `qubix_protocol::query`, which the gateway never parses): enough terms for the console's
//! filters, with errors that point at the offending token, as the real one does.

use qubix_protocol::api::{
    ApiError, ConstraintReport, ErrorCode, Explanation, NearMiss, OfferView,
};

/// One constraint of a query.
pub struct Constraint {
    /// As written.
    pub text: String,
    test: Box<dyn Fn(&OfferView) -> bool + Send + Sync>,
}

impl Constraint {
    /// Whether the offer passes.
    pub fn admits(&self, offer: &OfferView) -> bool {
        (self.test)(offer)
    }
}

const FIELDS: &str = "gpu_name, num_gpus, gpu_ram, price, cuda, location, reliability, simulated";

/// Parses `q` into constraints, or `invalid_query` naming the token and its position.
pub fn parse(q: &str) -> Result<Vec<Constraint>, ApiError> {
    let mut constraints = Vec::new();
    let mut rest = q.trim_start();
    while !rest.is_empty() {
        let pos = q.len() - rest.len();
        let (term, tail) = next_term(rest);
        constraints.push(constraint(term, pos)?);
        rest = tail.trim_start();
    }
    Ok(constraints)
}

/// The next term: `key op value` or `key in [a, b]`.
fn next_term(text: &str) -> (&str, &str) {
    let end = if let Some(open) = text.find(" in [").or_else(|| text.find(" notin [")) {
        let first_space = text.find(' ').unwrap_or(text.len());
        if open == first_space {
            text[open..].find(']').map_or(text.len(), |c| open + c + 1)
        } else {
            first_space
        }
    } else {
        text.find(' ').unwrap_or(text.len())
    };
    text.split_at(end)
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidQuery, message).with_field("q")
}

fn constraint(term: &str, pos: usize) -> Result<Constraint, ApiError> {
    if let Some((key, list)) = term.split_once(" in ") {
        let items: Vec<String> = list
            .trim_matches(['[', ']'])
            .split(',')
            .map(|s| s.trim().to_uppercase())
            .collect();
        check_key(key, pos)?;
        let test = move |o: &OfferView| items.contains(&o.offer.location.country);
        return Ok(Constraint {
            text: term.into(),
            test: Box::new(test),
        });
    }
    let op_at = term.find(['=', '<', '>', '!']).ok_or_else(|| {
        invalid(format!(
            "expected a comparison such as price<=1500 at position {pos}, found `{term}`"
        ))
    })?;
    let (key, rest) = term.split_at(op_at);
    let op_len = if rest.len() > 1 && rest.as_bytes()[1] == b'=' {
        2
    } else {
        1
    };
    let (op, value) = rest.split_at(op_len);
    check_key(key, pos)?;
    let test = compare(key, op, value, pos + op_at + op_len)?;
    Ok(Constraint {
        text: term.into(),
        test,
    })
}

fn check_key(key: &str, pos: usize) -> Result<(), ApiError> {
    if FIELDS.split(", ").any(|f| f == key) {
        Ok(())
    } else {
        Err(invalid(format!(
            "unknown field `{key}` at position {pos}; known fields: {FIELDS}"
        )))
    }
}

type Test = Box<dyn Fn(&OfferView) -> bool + Send + Sync>;

fn compare(key: &str, op: &str, value: &str, pos: usize) -> Result<Test, ApiError> {
    if key == "gpu_name" || key == "location" {
        let wanted = value.replace('_', " ").to_lowercase();
        let is_name = key == "gpu_name";
        let negate = op == "!=";
        return Ok(Box::new(move |o: &OfferView| {
            let have = if is_name {
                o.offer.gpu.model.to_lowercase()
            } else {
                o.offer.location.country.to_lowercase()
            };
            have.contains(&wanted) != negate
        }));
    }
    if key == "simulated" {
        let wanted = value == "true";
        return Ok(Box::new(move |o: &OfferView| o.offer.simulated == wanted));
    }
    let number: f64 = value
        .parse()
        .map_err(|_| invalid(format!("`{value}` at position {pos} is not a number")))?;
    let field = key.to_owned();
    let op = op.to_owned();
    Ok(Box::new(move |o: &OfferView| {
        let have = match field.as_str() {
            "num_gpus" => f64::from(o.offer.gpu_count),
            "gpu_ram" => o.offer.vram_gib(),
            "price" => o.offer.price_per_gpu_hour.0 as f64,
            "cuda" => {
                f64::from(o.offer.gpu.cuda_version.major)
                    + f64::from(o.offer.gpu.cuda_version.minor) / 10.0
            }
            _ => o.reliability.unwrap_or(0.0),
        };
        match op.as_str() {
            "=" => (have - number).abs() < 1e-9,
            "!=" => (have - number).abs() >= 1e-9,
            "<" => have < number,
            "<=" => have <= number,
            ">" => have > number,
            _ => have >= number,
        }
    }))
}

/// What each constraint excluded and the near misses, like the real explain.
pub fn explain(offers: &[OfferView], q: &str) -> Result<Explanation, ApiError> {
    let constraints = parse(q)?;
    let failed = |o: &OfferView| -> Vec<String> {
        constraints
            .iter()
            .filter(|c| !c.admits(o))
            .map(|c| c.text.clone())
            .collect()
    };
    let reports = constraints
        .iter()
        .map(|c| ConstraintReport {
            constraint: c.text.clone(),
            excluded: offers.iter().filter(|o| !c.admits(o)).count(),
            only_blocker: offers
                .iter()
                .filter(|o| failed(o) == vec![c.text.clone()])
                .count(),
        })
        .collect::<Vec<_>>();
    let matched = offers.iter().filter(|o| failed(o).is_empty()).count();
    let mut near: Vec<NearMiss> = offers
        .iter()
        .map(|o| NearMiss {
            offer: o.clone(),
            failed: failed(o),
        })
        .filter(|n| !n.failed.is_empty())
        .collect();
    near.sort_by_key(|n| n.failed.len());
    near.truncate(3);
    let summary = match reports.iter().max_by_key(|r| r.excluded) {
        Some(worst) if matched == 0 => format!(
            "{} excluded {} of {} offers",
            worst.constraint,
            worst.excluded,
            offers.len()
        ),
        _ => format!("{matched} of {} offers match", offers.len()),
    };
    Ok(Explanation {
        total: offers.len(),
        matched,
        constraints: reports,
        near_misses: near,
        summary,
    })
}
