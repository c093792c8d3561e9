//! Errors as the API server reports them: `meta.k8s.io/v1 Status` objects.
//!
//! Owns [`ApiError`] (one failed request: HTTP code, reason, message, details) and
//! [`FieldError`] (one invalid field, rendered like apimachinery's `field.Error`). The messages
//! follow kube-apiserver's wording (`services "web" not found`, `Operation cannot be fulfilled on
//! …`, `Service "web" is invalid: spec.ports: Required value`) so that clients and tests that
//! match on them behave the same against this server and the real one. It does not decide when
//! an error happens; the request handlers do.

use serde_json::{Map, Value, json};

/// The group/resource/kind triple an error is about, as kube-apiserver names it in messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// API group, empty for the core group.
    pub group: String,
    /// Plural resource name (`services`).
    pub resource: String,
    /// Kind (`Service`).
    pub kind: String,
}

impl Subject {
    /// `services` or `leases.coordination.k8s.io`: the qualified resource used in most messages.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// `Service` or `Lease.coordination.k8s.io`: the qualified kind used in `Invalid` messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// A failed request, answered with a `Status` body and the matching HTTP code.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` of the Status (name, group, kind, causes, retryAfterSeconds).
    pub details: Map<String, Value>,
    /// Extra response headers (`Retry-After`).
    pub retry_after_seconds: Option<u32>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

fn subject_details(subject: &Subject, name: &str) -> Map<String, Value> {
    let mut details = Map::new();
    if !name.is_empty() {
        details.insert("name".into(), json!(name));
    }
    if !subject.group.is_empty() {
        details.insert("group".into(), json!(subject.group));
    }
    details.insert("kind".into(), json!(subject.resource));
    details
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: Map::new(),
            retry_after_seconds: None,
        }
    }

    /// `services "web" not found`.
    pub fn not_found(subject: &Subject, name: &str) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", subject.qualified_resource(), name),
        );
        e.details = subject_details(subject, name);
        e
    }

    /// `services "web" already exists`.
    pub fn already_exists(subject: &Subject, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!(
                "{} \"{}\" already exists",
                subject.qualified_resource(),
                name
            ),
        );
        e.details = subject_details(subject, name);
        e
    }

    /// The optimistic-concurrency failure of an update with a stale `resourceVersion`.
    pub fn conflict_modified(subject: &Subject, name: &str) -> Self {
        Self::conflict(
            subject,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// `Operation cannot be fulfilled on services "web": <why>`.
    pub fn conflict(subject: &Subject, name: &str, why: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                subject.qualified_resource(),
                name,
                why
            ),
        );
        e.details = subject_details(subject, name);
        e
    }

    /// A server-side apply conflict: `causes` list each contested field.
    pub fn apply_conflict(message: String, causes: Vec<Value>) -> Self {
        let mut e = Self::new(409, "Conflict", message);
        e.details.insert("causes".into(), Value::Array(causes));
        e
    }

    /// `Service "web" is invalid: <errors>` with one cause per field error.
    pub fn invalid(subject: &Subject, name: &str, errors: &[FieldError]) -> Self {
        let rendered = if errors.len() == 1 {
            errors[0].to_string()
        } else {
            format!(
                "[{}]",
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!(
                "{} \"{}\" is invalid: {}",
                subject.qualified_kind(),
                name,
                rendered
            ),
        );
        let mut details = Map::new();
        if !name.is_empty() {
            details.insert("name".into(), json!(name));
        }
        if !subject.group.is_empty() {
            details.insert("group".into(), json!(subject.group));
        }
        details.insert("kind".into(), json!(subject.kind));
        details.insert(
            "causes".into(),
            Value::Array(
                errors
                    .iter()
                    .map(|fe| {
                        json!({
                            "reason": fe.kind.cause_type(),
                            "message": fe.body(),
                            "field": fe.field,
                        })
                    })
                    .collect(),
            ),
        );
        e.details = details;
        e
    }

    /// A 422 without field causes (a failed JSON Patch `test`, for instance).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// A `resourceVersion` or `continue` token older than the retained history.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// kube-apiserver's answer to a `resourceVersion` newer than it has seen.
    pub fn too_large_resource_version(requested: u64, current: u64) -> Self {
        let mut e = Self::new(
            504,
            "Timeout",
            format!("Timeout: Too large resource version: {requested}, current: {current}"),
        );
        e.details.insert(
            "causes".into(),
            json!([{
                "reason": "ResourceVersionTooLarge",
                "message": "Too large resource version"
            }]),
        );
        e.details.insert("retryAfterSeconds".into(), json!(1));
        e
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// An error with a given code, as fault injection produces; the reason follows the code the
    /// way apimachinery's `NewGenericServerResponse` picks it.
    pub fn with_code(code: u16, message: impl Into<String>) -> Self {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            406 => "NotAcceptable",
            409 => "Conflict",
            410 => "Expired",
            413 => "RequestEntityTooLarge",
            415 => "UnsupportedMediaType",
            422 => "Invalid",
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "Unknown",
        };
        Self::new(code, reason, message)
    }

    /// Sets `details.retryAfterSeconds` and the `Retry-After` header.
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.details
            .insert("retryAfterSeconds".into(), json!(seconds));
        self.retry_after_seconds = Some(seconds);
        self
    }

    /// The `Status` object sent as the response body (or inside a watch `ERROR` event).
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !self.details.is_empty()
            && let Some(obj) = status.as_object_mut()
        {
            obj.insert("details".into(), Value::Object(self.details.clone()));
        }
        status
    }
}

/// The kinds of `field.Error` kube-apiserver reports, with their fixed texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    Required,
    Invalid,
    Forbidden,
    NotSupported,
    Duplicate,
    TooLong,
}

impl FieldErrorKind {
    fn text(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid => "Invalid value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::TooLong => "Too long",
        }
    }

    fn cause_type(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::TooLong => "FieldValueTooLong",
        }
    }
}

/// One invalid field, rendered as apimachinery renders `field.Error`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub kind: FieldErrorKind,
    /// Dotted path with indices: `spec.ports[0].port`.
    pub field: String,
    /// The offending value; `None` for kinds that print none (Required, Forbidden).
    pub value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: FieldErrorKind::Required,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        FieldError {
            kind: FieldErrorKind::Invalid,
            field: field.into(),
            value: Some(value),
            detail: detail.into(),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: FieldErrorKind::Forbidden,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    pub fn not_supported(field: impl Into<String>, value: Value, supported: &[&str]) -> Self {
        let detail = format!(
            "supported values: {}",
            supported
                .iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        FieldError {
            kind: FieldErrorKind::NotSupported,
            field: field.into(),
            value: Some(value),
            detail,
        }
    }

    pub fn duplicate(field: impl Into<String>, value: Value) -> Self {
        FieldError {
            kind: FieldErrorKind::Duplicate,
            field: field.into(),
            value: Some(value),
            detail: String::new(),
        }
    }

    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        FieldError {
            kind: FieldErrorKind::TooLong,
            field: field.into(),
            value: None,
            detail: format!("must have at most {max} bytes"),
        }
    }

    /// The message without the field prefix, as it appears in a Status cause.
    pub fn body(&self) -> String {
        let mut s = match (&self.kind, &self.value) {
            (FieldErrorKind::Required | FieldErrorKind::Forbidden | FieldErrorKind::TooLong, _)
            | (_, None) => self.kind.text().to_string(),
            (_, Some(v)) => format!("{}: {}", self.kind.text(), go_value(v)),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Renders a bad value the way Go's `%q`/`%v`/`%#v` do for the types we report.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "\"null\"".to_string(),
        Value::Array(items) if items.iter().all(Value::is_string) => format!(
            "[]string{{{}}}",
            items
                .iter()
                .map(|i| format!("{:?}", i.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services() -> Subject {
        Subject {
            group: String::new(),
            resource: "services".into(),
            kind: "Service".into(),
        }
    }

    #[test]
    fn not_found_names_the_resource_like_kube_apiserver() {
        let e = ApiError::not_found(&services(), "web");
        assert_eq!(e.message, "services \"web\" not found");
        let status = e.to_status();
        assert_eq!(
            status["details"],
            json!({"name": "web", "kind": "services"})
        );
        assert_eq!(status["code"], 404);
    }

    #[test]
    fn grouped_resources_are_qualified() {
        let leases = Subject {
            group: "coordination.k8s.io".into(),
            resource: "leases".into(),
            kind: "Lease".into(),
        };
        assert_eq!(
            ApiError::conflict_modified(&leases, "l").message,
            "Operation cannot be fulfilled on leases.coordination.k8s.io \"l\": the object has been modified; please apply your changes to the latest version and try again"
        );
        let e = ApiError::invalid(
            &leases,
            "l",
            &[FieldError::invalid(
                "spec.leaseDurationSeconds",
                json!(0),
                "must be greater than 0",
            )],
        );
        assert_eq!(
            e.message,
            "Lease.coordination.k8s.io \"l\" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
        );
    }

    #[test]
    fn several_field_errors_are_bracketed() {
        let e = ApiError::invalid(
            &services(),
            "web",
            &[
                FieldError::required("spec.ports", ""),
                FieldError::invalid("spec.clusterIP", json!("x"), "must be a valid IP address"),
            ],
        );
        assert_eq!(
            e.message,
            "Service \"web\" is invalid: [spec.ports: Required value, spec.clusterIP: Invalid value: \"x\": must be a valid IP address]"
        );
        assert_eq!(e.details["causes"][0]["reason"], "FieldValueRequired");
        assert_eq!(
            e.details["causes"][1]["message"],
            "Invalid value: \"x\": must be a valid IP address"
        );
    }
}
