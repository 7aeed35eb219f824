//! A JSON Schema validator for the subset the OpenAPI 3.1 document of `/api/v1` uses: `$ref` (local, into the
//! document), `type` (one or a list, `null` among them), `enum`, `properties`, `required`,
//! `additionalProperties` (`false` or a schema), `items`, `oneOf`, `anyOf`, `allOf`, `minimum` and `maximum`.
//! `format`, `description`, `examples`, `title` and `default` are ignored; any other keyword is reported as
//! unsupported rather than skipped, so a schema that grows past this subset cannot pass unchecked.

use serde_json::{Map, Value};

/// Keywords that say nothing about validity.
const ANNOTATIONS: &[&str] = &["format", "description", "examples", "title", "default"];

/// The ways `value` breaks `schema` (empty when it is valid), each as `<where in value>: <why>`, the place a JSON
/// pointer fragment (`#` the value itself, `#/data/0/id` inside it). `doc` is the document `$ref`s point into.
pub fn validate(doc: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(doc, schema, value, "#", &mut errors);
    errors
}

fn check(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let rules = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => return errors.push(format!("{at}: no value is allowed here")),
        Value::Object(rules) => rules,
        other => return errors.push(format!("{at}: the schema {other} is not a schema")),
    };
    for (keyword, rule) in rules {
        match keyword.as_str() {
            "$ref" => match rule
                .as_str()
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|p| doc.pointer(p))
            {
                Some(target) => check(doc, target, value, at, errors),
                None => errors.push(format!("{at}: cannot resolve $ref {rule}")),
            },
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    t => t.as_str().into_iter().collect(),
                };
                if !types.iter().any(|t| is_of_type(t, value)) {
                    errors.push(format!("{at}: {} is not of type {rule}", brief(value)));
                }
            }
            "enum" => {
                if !rule.as_array().is_some_and(|allowed| allowed.contains(value)) {
                    errors.push(format!("{at}: {} is not one of {rule}", brief(value)));
                }
            }
            "properties" => {
                if let (Some(props), Some(fields)) = (rule.as_object(), value.as_object()) {
                    for (name, sub) in props {
                        if let Some(v) = fields.get(name) {
                            check(doc, sub, v, &format!("{at}/{name}"), errors);
                        }
                    }
                }
            }
            "required" => {
                if let Some(fields) = value.as_object() {
                    for name in rule.as_array().into_iter().flatten().filter_map(Value::as_str) {
                        if !fields.contains_key(name) {
                            errors.push(format!("{at}: the required field {name} is missing"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(fields) = value.as_object() {
                    additional(doc, rules, rule, fields, at, errors);
                }
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    check(doc, rule, item, &format!("{at}/{i}"), errors);
                }
            }
            "oneOf" | "anyOf" | "allOf" => {
                let subs = rule.as_array().map(Vec::as_slice).unwrap_or_default();
                let passing = subs.iter().filter(|sub| validate(doc, sub, value).is_empty()).count();
                let ok = match keyword.as_str() {
                    "oneOf" => passing == 1,
                    "anyOf" => passing >= 1,
                    _ => passing == subs.len(),
                };
                if !ok {
                    errors.push(format!(
                        "{at}: {} passes {passing} of the {} schemas of {keyword}",
                        brief(value),
                        subs.len()
                    ));
                }
            }
            "minimum" | "maximum" => {
                if let (Some(bound), Some(n)) = (rule.as_f64(), value.as_f64()) {
                    if (keyword == "minimum" && n < bound) || (keyword == "maximum" && n > bound) {
                        errors.push(format!("{at}: {} is beyond the {keyword} {rule}", brief(value)));
                    }
                }
            }
            k if ANNOTATIONS.contains(&k) => {}
            k => errors.push(format!("{at}: the keyword {k} is not supported by this validator")),
        }
    }
}

/// `additionalProperties`: the fields `properties` does not name must each pass `rule` (`false`: there are none).
fn additional(
    doc: &Value,
    rules: &Map<String, Value>,
    rule: &Value,
    fields: &Map<String, Value>,
    at: &str,
    errors: &mut Vec<String>,
) {
    let named = rules.get("properties").and_then(Value::as_object);
    for (name, v) in fields {
        if named.is_some_and(|p| p.contains_key(name)) {
            continue;
        }
        match rule {
            Value::Bool(false) => errors.push(format!("{at}: the field {name} is not allowed")),
            other => check(doc, other, v, &format!("{at}/{name}"), errors),
        }
    }
}

/// Whether `v` is of the JSON Schema type `t`. An integer is a number without a fraction, however large (the
/// counts of IPv6 networks pass 2^64; `serde_json` keeps their digits).
fn is_of_type(t: &str, v: &Value) -> bool {
    match (t, v) {
        ("null", Value::Null) | ("boolean", Value::Bool(_)) | ("number", Value::Number(_)) => true,
        ("string", Value::String(_)) | ("array", Value::Array(_)) | ("object", Value::Object(_)) => true,
        ("integer", Value::Number(n)) => {
            let text = n.to_string();
            !text.contains(['.', 'e', 'E']) || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

/// A value as an error message shows it: scalars as they are, containers by kind.
fn brief(v: &Value) -> String {
    match v {
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
        scalar => scalar.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "Thing": {"type": "object", "required": ["id", "name"], "additionalProperties": false, "properties": {
                "id": {"type": "integer", "minimum": 1},
                "name": {"type": ["string", "null"], "description": "ignored"},
                "kind": {"type": "string", "enum": ["a", "b"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "extra": {"type": "object", "additionalProperties": {"type": "string"}},
                "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                "any": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
            }},
            "List": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}}},
        }}})
    }

    fn errors(value: Value) -> Vec<String> {
        let doc = doc();
        validate(
            &doc,
            &json!({"$ref": "#/components/schemas/List"}),
            &json!({"data": [value]}),
        )
    }

    /// The validator accepts what fits and refuses, naming the place, each kind of misfit the REST check relies on,
    /// so the check of the replies cannot pass everything by accident.
    #[test]
    fn schema_validator_refuses_each_kind_of_misfit() {
        let good = json!({"id": 18446744073709551616_u128, "name": null, "kind": "a", "tags": ["x"],
                          "extra": {"k": "v"}, "either": 3, "any": true});
        assert_eq!(errors(good), Vec::<String>::new());
        assert_eq!(
            errors(json!({"id": 1})),
            ["#/data/0: the required field name is missing"]
        );
        assert_eq!(
            errors(json!({"id": "1", "name": "n"})),
            ["#/data/0/id: \"1\" is not of type \"integer\""]
        );
        assert_eq!(
            errors(json!({"id": 1.5, "name": "n"})),
            ["#/data/0/id: 1.5 is not of type \"integer\""]
        );
        assert_eq!(
            errors(json!({"id": 1, "name": 2})),
            ["#/data/0/name: 2 is not of type [\"string\",\"null\"]"]
        );
        assert_eq!(
            errors(json!({"id": 1, "name": "n", "colour": "red"})),
            ["#/data/0: the field colour is not allowed"]
        );
        assert_eq!(
            errors(json!({"id": 0, "name": "n"})),
            ["#/data/0/id: 0 is beyond the minimum 1"]
        );
        assert_eq!(
            errors(json!({"id": 1, "name": "n", "kind": "c"})),
            ["#/data/0/kind: \"c\" is not one of [\"a\",\"b\"]"]
        );
        assert_eq!(
            errors(json!({"id": 1, "name": "n", "tags": [1]})),
            ["#/data/0/tags/0: 1 is not of type \"string\""]
        );
        assert_eq!(
            errors(json!({"id": 1, "name": "n", "extra": {"k": 1}})),
            ["#/data/0/extra/k: 1 is not of type \"string\""]
        );
        assert_eq!(
            errors(json!({"id": 1, "name": "n", "either": null})),
            ["#/data/0/either: null passes 0 of the 2 schemas of oneOf"]
        );
        assert_eq!(
            errors(json!({"id": 1, "name": "n", "any": "x"})),
            ["#/data/0/any: \"x\" passes 0 of the 2 schemas of anyOf"]
        );
        let doc = doc();
        assert_eq!(
            validate(&doc, &json!({"$ref": "#/nowhere"}), &json!(1)),
            ["#: cannot resolve $ref \"#/nowhere\""]
        );
        assert_eq!(
            validate(&doc, &json!({"type": "string", "pattern": "^a"}), &json!("a")),
            ["#: the keyword pattern is not supported by this validator"]
        );
    }
}
