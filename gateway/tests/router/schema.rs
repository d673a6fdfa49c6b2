//! A small JSON Schema checker for the subset utoipa emits (OpenAPI 3.1): `$ref` into
//! `components/schemas`, `type` (one or several, `null` included), `properties`, `required`,
//! `additionalProperties`, `items`, `prefixItems`, `enum`, `oneOf`, `anyOf`, `allOf`,
//! `minimum`. Objects are checked strictly: a property the schema does not declare is an
//! error, so a response that grows a field the document lacks is caught.

use serde_json::{Map, Value};

/// Checks `value` against `schema`, resolving references in `doc`. Errors name the JSON path.
pub(crate) fn validate(doc: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    Checker { doc }.check(schema, value, "$", true)
}

/// The schema of a response: `paths[path][method].responses[status].content[application/json].schema`.
pub(crate) fn response_schema<'a>(
    doc: &'a Value,
    method: &str,
    path: &str,
    status: u16,
) -> &'a Value {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"];
    assert!(
        !schema.is_null(),
        "openapi.json documents no JSON body for {method} {path} → {status}"
    );
    schema
}

struct Checker<'a> {
    doc: &'a Value,
}

impl Checker<'_> {
    /// `strict`: refuse properties the schema does not declare (off inside `allOf`, where
    /// each member declares only part of the object; the union is checked instead).
    fn check(&self, schema: &Value, value: &Value, path: &str, strict: bool) -> Result<(), String> {
        let schema = self.resolve(schema)?;
        let Some(obj) = schema.as_object() else {
            return Ok(());
        };
        if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
            for s in all {
                self.check(s, value, path, false)?;
            }
            if strict {
                self.check_declared_by_any(all, value, path)?;
            }
        }
        if let Some(one) = obj.get("oneOf").and_then(Value::as_array) {
            let matches = one
                .iter()
                .filter(|s| self.check(s, value, path, strict).is_ok())
                .count();
            if matches != 1 {
                return Err(format!(
                    "{path}: {value} matches {matches} of the oneOf alternatives, not exactly one"
                ));
            }
        }
        if let Some(any) = obj.get("anyOf").and_then(Value::as_array) {
            if !any
                .iter()
                .any(|s| self.check(s, value, path, strict).is_ok())
            {
                let why: Vec<String> = any
                    .iter()
                    .filter_map(|s| self.check(s, value, path, strict).err())
                    .collect();
                return Err(format!("{path}: matches no anyOf alternative: {why:?}"));
            }
        }
        if let Some(allowed) = obj.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                return Err(format!("{path}: {value} is not one of {allowed:?}"));
            }
        }
        if let Some(constant) = obj.get("const") {
            if constant != value {
                return Err(format!("{path}: {value} is not {constant}"));
            }
        }
        self.check_type(obj, value, path)?;
        match value {
            Value::Object(map) => self.check_object(obj, map, path, strict),
            Value::Array(items) => self.check_array(obj, items, path),
            Value::Number(n) => check_minimum(obj, n.as_f64().unwrap_or_default(), path),
            _ => Ok(()),
        }
    }

    fn resolve<'s>(&'s self, schema: &'s Value) -> Result<&'s Value, String> {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference
                    .strip_prefix("#/components/schemas/")
                    .ok_or(format!("unsupported $ref {reference}"))?;
                let target = &self.doc["components"]["schemas"][name];
                if target.is_null() {
                    return Err(format!("$ref {reference} names no component"));
                }
                self.resolve(target)
            }
            None => Ok(schema),
        }
    }

    fn check_type(
        &self,
        obj: &Map<String, Value>,
        value: &Value,
        path: &str,
    ) -> Result<(), String> {
        let types: Vec<&str> = match obj.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return Ok(()),
        };
        if types.iter().any(|t| type_matches(t, value)) {
            Ok(())
        } else {
            Err(format!("{path}: {value} is not of type {types:?}"))
        }
    }

    fn check_declared_by_any(
        &self,
        members: &[Value],
        value: &Value,
        path: &str,
    ) -> Result<(), String> {
        let Some(map) = value.as_object() else {
            return Ok(());
        };
        let mut declared = Vec::new();
        for member in members {
            let member = self.resolve(member)?;
            declared.extend(
                member["properties"]
                    .as_object()
                    .into_iter()
                    .flat_map(|p| p.keys().cloned()),
            );
        }
        match map.keys().find(|k| !declared.contains(k)) {
            Some(extra) => Err(format!(
                "{path}.{extra}: the response has a property the document does not declare"
            )),
            None => Ok(()),
        }
    }

    fn check_object(
        &self,
        obj: &Map<String, Value>,
        map: &Map<String, Value>,
        path: &str,
        strict: bool,
    ) -> Result<(), String> {
        let empty = Map::new();
        let properties = obj
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        for required in obj
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = required.as_str().unwrap_or_default();
            if !map.contains_key(name) {
                return Err(format!("{path}: required property `{name}` is missing"));
            }
        }
        for (name, value) in map {
            let here = format!("{path}.{name}");
            match (properties.get(name), obj.get("additionalProperties")) {
                (Some(schema), _) => self.check(schema, value, &here, true)?,
                (None, Some(Value::Bool(false))) => {
                    return Err(format!("{here}: not allowed by the schema"));
                }
                (None, Some(extra @ Value::Object(_))) => self.check(extra, value, &here, true)?,
                (None, Some(_)) => {}
                (None, None) if strict && obj.contains_key("properties") => {
                    return Err(format!(
                        "{here}: the response has a property the document does not declare"
                    ));
                }
                (None, None) => {}
            }
        }
        Ok(())
    }

    fn check_array(
        &self,
        obj: &Map<String, Value>,
        items: &[Value],
        path: &str,
    ) -> Result<(), String> {
        let prefix = obj.get("prefixItems").and_then(Value::as_array);
        for (i, item) in items.iter().enumerate() {
            let here = format!("{path}[{i}]");
            match (prefix.and_then(|p| p.get(i)), obj.get("items")) {
                (Some(schema), _) => self.check(schema, item, &here, true)?,
                (None, Some(schema)) if schema.is_object() => {
                    self.check(schema, item, &here, true)?
                }
                (None, Some(Value::Bool(false))) => {
                    return Err(format!("{here}: beyond the declared tuple"));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn type_matches(t: &str, value: &Value) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        _ => false,
    }
}

fn check_minimum(obj: &Map<String, Value>, n: f64, path: &str) -> Result<(), String> {
    match obj.get("minimum").and_then(Value::as_f64) {
        Some(min) if n < min => Err(format!("{path}: {n} is below the minimum {min}")),
        _ => Ok(()),
    }
}

#[test]
fn the_checker_catches_what_it_should() {
    let doc = serde_json::json!({ "components": { "schemas": {
        "P": { "type": "object", "required": ["a"], "properties": { "a": { "type": "integer", "minimum": 0 },
            "b": { "type": ["string", "null"] } } } } } });
    let p = serde_json::json!({ "$ref": "#/components/schemas/P" });
    assert!(validate(&doc, &p, &serde_json::json!({ "a": 1, "b": null })).is_ok());
    assert!(
        validate(&doc, &p, &serde_json::json!({ "b": "x" }))
            .unwrap_err()
            .contains("`a` is missing")
    );
    assert!(
        validate(&doc, &p, &serde_json::json!({ "a": -1 }))
            .unwrap_err()
            .contains("minimum")
    );
    assert!(
        validate(&doc, &p, &serde_json::json!({ "a": 1, "c": 2 }))
            .unwrap_err()
            .contains("does not declare")
    );
    assert!(
        validate(&doc, &p, &serde_json::json!({ "a": "1" }))
            .unwrap_err()
            .contains("type")
    );
}
