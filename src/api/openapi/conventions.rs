//! Rules every operation of the API shares, written into the OpenAPI document once.
//!
//! The per-handler annotations say what is special about an operation. What is true of
//! all of them lives here, so that the document a salon app generates its client from
//! cannot drift from what the server enforces:
//!
//! * the token and Origin/Host checks run before every handler: 401 and 403;
//! * a bad path parameter or query string is a 400 from the framework, a body over the
//!   limit a 413, and every error is `application/problem+json`;
//! * the Idempotency-Key header is 1 to 128 printable ASCII characters and required;
//! * a well-formed body whose fields do not fit is a 422, like a broken business rule;
//! * `since`/`until` are RFC 3339 instants, `status` one of the job statuses; a long-poll `wait` is at most 60 seconds,
//!   a list `limit` at most 1000.

use serde_json::{json, Map, Value};

/// Longest long-poll the server grants, in seconds; a longer `wait` is a 400.
pub const MAX_WAIT_SECONDS: u64 = 60;

/// Most jobs one list answer holds; a larger `limit` is a 400 (0 means the default, 100).
pub const MAX_LIST_LIMIT: u32 = 1000;

const PROBLEM: &str = "application/problem+json";

pub fn apply(doc: &mut Value) {
    if let Some(q) = doc.pointer_mut("/components/schemas/Quantity") {
        // What the Quantity deserializer accepts: a plain decimal text with at most three
        // decimals (surrounding spaces are trimmed), or a non-negative JSON number.
        *q = json!({
            "description": "Quantity: \"1.5\" or 1.5; at most three decimals",
            "example": "1.5",
            "oneOf": [
                {"type": "string", "pattern": "^\\s*[0-9]+([.][0-9]{0,3})?\\s*$"},
                {"type": "number", "minimum": 0}
            ]
        });
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            if matches!(method.as_str(), "get" | "post" | "put" | "patch" | "delete") {
                operation(op);
            }
        }
    }
}

fn operation(op: &mut Value) {
    let has_params = op.get("parameters").and_then(Value::as_array).is_some_and(|p| !p.is_empty());
    let has_body = op.get("requestBody").is_some();
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        params.iter_mut().for_each(parameter);
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { return };
    add(responses, "401", "Missing or wrong bearer token");
    add(responses, "403", "Origin or Host not allowed");
    if has_params || has_body {
        add(responses, "400", "Bad path parameter, query string, header or JSON body");
    }
    if has_body {
        add(responses, "413", "Body over the limit");
    }
    for (status, response) in responses.iter_mut() {
        if status.starts_with('4') || status.starts_with('5') {
            problem_content(response);
        }
    }
}

fn add(responses: &mut Map<String, Value>, status: &str, description: &str) {
    responses.entry(status).or_insert_with(|| {
        json!({"description": description, "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}})
    });
}

/// An error answer is problem+json, whatever the annotation said.
fn problem_content(response: &mut Value) {
    let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else { return };
    if let Some(json) = content.remove("application/json") {
        content.entry(PROBLEM).or_insert(json);
    }
}

fn parameter(p: &mut Value) {
    let name = p.get("name").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    let place = p.get("in").and_then(Value::as_str).unwrap_or_default().to_string();
    let schema = match (place.as_str(), name.as_str()) {
        ("header", "idempotency-key") => {
            p["required"] = json!(true);
            json!({"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[!-~]+$"})
        }
        ("query", "since" | "until") => json!({"type": "string", "format": "date-time"}),
        ("query", "limit") => json!({"type": "integer", "format": "int32", "minimum": 0, "maximum": MAX_LIST_LIMIT}),
        ("query", "format") => json!({"type": "string", "enum": ["json", "csv", "text"]}),
        ("query", "status") => json!({"$ref": "#/components/schemas/JobStatus"}),
        ("query", "wait") => json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_WAIT_SECONDS}),
        _ => return,
    };
    p["schema"] = schema;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        let mut d = serde_json::to_value(crate::api::openapi::document()).unwrap();
        apply(&mut d);
        d
    }

    #[test]
    fn every_operation_documents_auth_failures_as_problems() {
        let d = doc();
        for (path, item) in d["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for status in ["401", "403"] {
                    let r = &op["responses"][status];
                    assert!(r["content"][PROBLEM].is_object(), "{method} {path}: {status} is not problem+json");
                }
                for (status, r) in op["responses"].as_object().unwrap() {
                    if status.starts_with('4') {
                        assert!(r["content"].get("application/json").is_none(), "{method} {path}: {status} says application/json");
                    }
                }
            }
        }
    }

    #[test]
    fn the_idempotency_key_rule_is_in_the_document() {
        let d = doc();
        let params = d["paths"]["/api/v1/receipts"]["post"]["parameters"].as_array().unwrap();
        let key = params.iter().find(|p| p["name"] == "Idempotency-Key").unwrap();
        assert_eq!(key["required"], true);
        assert_eq!(key["schema"]["maxLength"], 128);
        assert_eq!(key["schema"]["pattern"], "^[!-~]+$");
    }
}
