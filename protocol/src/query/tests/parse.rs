//! Parse tables: valid text → canonical text and structure; invalid text → message and
//! the span of the offending token.

use crate::offer::Version;

use super::super::{
    Constraint, Field, MAX_CONSTRAINTS, MAX_QUERY_BYTES, Op, Query, QueryError, SortKey, Value,
};
use super::{node, query};

#[test]
fn valid_queries_parse_to_their_canonical_text() {
    let full = "gpu_name=RTX_4090 num_gpus>=2 gpu_ram>=24 price<=1500 cuda>=12.2 \
                location in [DE,FR] reliability>=0.95 simulated=false sort=-reliability \
                limit=20 offset=40";
    let cases = [
        ("", ""),
        ("  \t ", ""),
        (full, full),
        ("GPU = rtx_4090", "gpu_name=rtx_4090"),
        ("model=\"RTX 4090\"", "gpu_name=\"RTX 4090\""),
        ("location in [de, fr]", "location in [DE,FR]"),
        ("country=[DE,FR]", "location in [DE,FR]"),
        ("location!=[US]", "location notin [US]"),
        ("Location NOTIN [ us ]", "location notin [US]"),
        ("gpu_count == 4", "num_gpus=4"),
        ("cuda>=12", "cuda>=12.0"),
        (
            "cuda>12.10 compute_capability<9",
            "cuda>12.10 compute_cap<9.0",
        ),
        ("gpu_ram>=24.0 vram<80.50", "gpu_ram>=24 gpu_ram<80.5"),
        ("reliability>=0.950", "reliability>=0.95"),
        (
            "simulated=FALSE nvlink!=true",
            "simulated=false nvlink!=true",
        ),
        ("sort=price,-reliability", "sort=price,-reliability"),
        ("sort=+price , -Reliability", "sort=price,-reliability"),
        ("sort=vram limit=1000 offset=0", "sort=gpu_ram limit=1000"),
        ("offset=3 limit=5 price<9", "price<9 limit=5 offset=3"),
        (
            "max_duration>=0.5 disk>=100 ram>=64 cpus>=8 pcie_gen>=4 driver=550 region=eu_central",
            "max_duration>=0.5 disk>=100 ram>=64 cpu_cores>=8 pcie>=4 driver=550 region=eu_central",
        ),
        (
            "total_price<=6000 gpu notin [T4, \"A 100\"]",
            "total_price<=6000 gpu_name notin [T4,\"A 100\"]",
        ),
        (
            r#"gpu_name="say \"hi\" \\ o""#,
            r#"gpu_name="say \"hi\" \\ o""#,
        ),
        ("price>=0 price<=1500", "price>=0 price<=1500"),
    ];
    for (input, canonical) in cases {
        let parsed = query(input);
        assert_eq!(parsed.to_string(), canonical, "canonical text of {input:?}");
        assert_eq!(
            query(canonical),
            parsed,
            "{canonical:?} parses back to the same query"
        );
    }
}

#[test]
fn the_design_example_has_the_expected_structure() {
    let q = query(
        "gpu_name=RTX_4090 num_gpus>=2 gpu_ram>=24 price<=1500 cuda>=12.2 location in [DE,FR] \
         reliability>=0.95 simulated=false sort=-reliability limit=20 offset=40",
    );
    let shape: Vec<(Field, Op)> = q.constraints.iter().map(|c| (c.field(), c.op())).collect();
    use Field::*;
    assert_eq!(
        shape,
        [
            (GpuName, Op::Eq),
            (NumGpus, Op::Ge),
            (GpuRam, Op::Ge),
            (Price, Op::Le),
            (Cuda, Op::Ge),
            (Location, Op::In),
            (Reliability, Op::Ge),
            (Simulated, Op::Eq),
        ]
    );
    let Value::Text(name) = &q.constraints[0].values()[0] else {
        panic!("gpu_name holds text")
    };
    assert_eq!(
        (name.as_str(), name.words()),
        ("RTX_4090", &["rtx".to_owned(), "4090".to_owned()][..])
    );
    assert_eq!(q.constraints[1].values(), [Value::Integer(2)]);
    assert_eq!(q.constraints[2].values(), [Value::Decimal(24.0)]);
    assert_eq!(
        q.constraints[4].values(),
        [Value::Version(Version::new(12, 2))]
    );
    assert_eq!(
        q.constraints[5].values(),
        [Value::Country("DE".into()), Value::Country("FR".into())]
    );
    assert_eq!(q.constraints[7].values(), [Value::Bool(false)]);
    assert_eq!(q.sort, [SortKey::descending(Reliability)]);
    assert_eq!((q.limit, q.offset), (Some(20), 40));
}

#[test]
fn provider_takes_a_node_id() {
    let id = node(1);
    let q = query(&format!("provider in [{id}, {}] node!={id}", node(2)));
    assert_eq!(
        q.constraints[0].values(),
        [Value::Node(id), Value::Node(node(2))]
    );
    assert_eq!(
        q.to_string(),
        format!("provider in [{id},{}] provider!={id}", node(2))
    );
    let one: Constraint = format!("provider={id}").parse().unwrap();
    assert_eq!(one.values(), [Value::Node(id)]);
}

/// `(input, part of the message, the token the span must cover)`; the token is found with
/// `rfind`, and an empty token means the end of the input.
const INVALID: &[(&str, &str, &str)] = &[
    ("price>=cheap", "needs a whole number", "cheap"),
    ("simulated<true", "cannot be ordered", "<"),
    ("location>DE", "cannot be ordered", ">"),
    ("gpu_name>=RTX", "cannot be ordered", ">="),
    (
        "gpu_rma>=24",
        "unknown field `gpu_rma`; did you mean `gpu_ram`?",
        "gpu_rma",
    ),
    ("srot=price", "did you mean `sort`?", "srot"),
    (
        "foo=1",
        "unknown field `foo`; fields: gpu_name, num_gpus",
        "foo",
    ),
    ("location in []", "empty list", "[]"),
    ("location in [ ]", "empty list", "[ ]"),
    ("gpu_name=\"RTX 4090", "unterminated quote", "\"RTX 4090"),
    (
        "gpu_name=\"RTX 4090\\\"",
        "unterminated quote",
        "\"RTX 4090\\\"",
    ),
    (
        "sort=price sort=-reliability",
        "`sort` is given twice",
        "sort",
    ),
    ("limit=10 limit=20", "`limit` is given twice", "limit"),
    ("offset=1 offset=2", "`offset` is given twice", "offset"),
    ("limit=0", "from 1 to 1000", "0"),
    ("limit=1001", "from 1 to 1000", "1001"),
    ("limit=ten", "from 1 to 1000", "ten"),
    ("offset=-1", "from 0 to", "-1"),
    ("limit<5", "`limit` takes `=`", "<"),
    ("price>=-5", "`price` cannot be negative", "-5"),
    ("gpu_ram>=-1.5", "`gpu_ram` cannot be negative", "-1.5"),
    ("price<=1500.5", "needs a whole number", "1500.5"),
    (
        "price<=99999999999999999999999",
        "too large",
        "99999999999999999999999",
    ),
    ("reliability>=1.5", "from 0 to 1", "1.5"),
    ("gpu_ram>=1e3", "needs a number", "1e3"),
    ("gpu_ram>=inf", "needs a number", "inf"),
    ("cuda>=12.x", "a version such as 12.2", "12.x"),
    ("cuda>=12.2.1", "a version such as 12.2", "12.2.1"),
    ("cuda>=70000.1", "too large", "70000.1"),
    ("location=Germany", "two-letter ISO country code", "Germany"),
    ("simulated=yes", "`true` or `false`", "yes"),
    ("provider=abc", "base58", "abc"),
    ("gpu_name=\"--\"", "letters or digits", "\"--\""),
    ("price", "needs an operator and a value", "price"),
    ("price<=", "expected a value after `<=`", ""),
    ("price 1500", "expected an operator", "1500"),
    ("price<=1500 1600", "expected a field name", "1600"),
    ("gpu_name=RTX 4090", "quote the value", "4090"),
    ("location in DE", "takes a list in brackets", "in"),
    ("price<=[1,2]", "takes one value", "<="),
    ("location in [DE,FR", "unclosed list", ""),
    ("location in [DE FR]", "expected `,` or `]`", "FR"),
    ("location in [DE,]", "expected a value after `,`", "]"),
    ("location in [DE,,FR]", "expected a value after `,`", ","),
    (
        "sort=gpu_name",
        "cannot sort by `gpu_name`; sortable: num_gpus, gpu_ram, price",
        "gpu_name",
    ),
    (
        "sort=-relability",
        "did you mean `reliability`?",
        "-relability",
    ),
    ("sort=price,-price", "sorted on twice", "-price"),
    ("sort=", "expected a value after `=`", ""),
    ("price!5", "unexpected `!`", "!"),
    ("= 5", "expected a field name", "="),
    ("\"price\"<=5", "expected a field name", "\"price\""),
    ("[DE]", "expected a field name", "["),
    ("price=<5", "expected a value after `=`", "<"),
];

#[test]
fn invalid_queries_say_what_is_wrong_and_point_at_it() {
    for &(input, message, token) in INVALID {
        let err = Query::parse(input).expect_err(input);
        assert!(
            err.message.contains(message),
            "{input:?}: {:?} lacks {message:?}",
            err.message
        );
        let start = if token.is_empty() {
            input.len()
        } else {
            input.rfind(token).unwrap()
        };
        assert_eq!(
            (err.start, err.end),
            (start, start + token.len()),
            "span of {input:?}: {err:?}"
        );
    }
}

#[test]
fn limits_bound_the_query() {
    let long = "price<=1 ".repeat(MAX_QUERY_BYTES / 9 + 1);
    let err = Query::parse(&long).unwrap_err();
    assert!(err.message.contains("the most is 4096"), "{err}");
    assert_eq!((err.start, err.end), (0, long.len()));

    let many = "price<=1 ".repeat(MAX_CONSTRAINTS + 1);
    let err = Query::parse(&many).unwrap_err();
    assert!(err.message.contains("at most 64 constraints"), "{err}");
    assert_eq!(err.start, MAX_CONSTRAINTS * 9);

    // Within the limit as typed, over it written out in full (`1` → `1.0`): refused, so
    // that every query that parses has canonical text that parses too.
    let list = format!("cuda in [{}]", vec!["1"; 64].join(","));
    let err = Query::parse(&vec![list; 20].join(" ")).unwrap_err();
    assert!(err.message.contains("written out in full is 5"), "{err}");

    let values: Vec<String> = (0..65).map(|i| format!("{i}")).collect();
    let err = Query::parse(&format!("price in [{}]", values.join(","))).unwrap_err();
    assert!(err.message.contains("at most 64 values"), "{err}");
}

#[test]
fn a_single_constraint_parses_alone() {
    let c: Constraint = "Cuda >= 12.2".parse().unwrap();
    assert_eq!(
        (c.field(), c.op(), c.to_string()),
        (Field::Cuda, Op::Ge, "cuda>=12.2".to_owned())
    );
    for text in ["", "price<=1 cuda>=12.2", "sort=price", "price<=1 limit=5"] {
        let err = text.parse::<Constraint>().unwrap_err();
        assert!(
            err.message.contains("exactly one constraint"),
            "{text:?}: {err}"
        );
    }
}

#[test]
fn render_puts_carets_under_the_span() {
    let input = "gpu_rma>=24 price<=1500";
    let err = Query::parse(input).unwrap_err();
    assert_eq!(
        err.render(input),
        "gpu_rma>=24 price<=1500\n^^^^^^^\nunknown field `gpu_rma`; did you mean `gpu_ram`?"
    );
    // Characters before the span count once each, whatever their byte length.
    let input = "gpu_name=\"Größe\" price>=x";
    let err = Query::parse(input).unwrap_err();
    assert_eq!(
        err.render(input).lines().nth(1),
        Some("                        ^")
    );
    // A missing value is shown just after the end; a bad span is clamped, never a panic.
    let err = Query::parse("price<=").unwrap_err();
    assert_eq!(err.render("price<=").lines().nth(1), Some("       ^"));
    let odd = QueryError {
        message: "m".into(),
        start: 1,
        end: 99,
    };
    assert_eq!(odd.render("ö"), "ö\n^\nm");
}

#[test]
fn errors_and_queries_travel_as_json() {
    let err = Query::parse("price>=cheap").unwrap_err();
    let json = serde_json::to_value(&err).unwrap();
    assert_eq!(json["start"], 7);
    assert_eq!(json["end"], 12);
    assert_eq!(serde_json::from_value::<QueryError>(json).unwrap(), err);
    assert_eq!(err.to_string(), err.message);

    let q = query("gpu=rtx_4090 location in [de] sort=-reliability");
    let json = serde_json::to_string(&q).unwrap();
    assert_eq!(
        json,
        "\"gpu_name=rtx_4090 location in [DE] sort=-reliability\""
    );
    assert_eq!(serde_json::from_str::<Query>(&json).unwrap(), q);
    assert!(serde_json::from_str::<Query>("\"price<=x\"").is_err());
}

#[test]
fn every_field_name_and_alias_is_recognised() {
    for field in Field::ALL {
        for name in std::iter::once(field.name()).chain(field.aliases().iter().copied()) {
            assert_eq!(
                Field::from_name(&name.to_uppercase()),
                Some(field),
                "{name}"
            );
        }
        let example = field.example().replace('…', "");
        if field != Field::Provider {
            assert_eq!(query(&example).constraints[0].field(), field, "{example}");
        }
    }
}
