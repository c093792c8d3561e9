//! One API request as the core sees it, and the answer it gives.
//!
//! Owns [`ApiRequest`] (method, path, query pairs, the headers that matter, body), the parsed
//! [`QueryOptions`] (list, watch, write and delete options with kube-apiserver's validation of
//! their values), content negotiation of the `Accept` header, and [`ApiReply`]. The HTTP shell
//! builds requests and sends replies; the core never sees hyper types.

use std::time::Duration;

use serde_json::Value;

use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::watch::WatchPlan;

/// An API request.
#[derive(Clone, Debug, Default)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub user_agent: Option<String>,
    pub body: Vec<u8>,
}

impl ApiRequest {
    pub fn new(method: &str, path: &str) -> Self {
        ApiRequest {
            method: method.to_string(),
            path: path.to_string(),
            ..Default::default()
        }
    }

    /// Parses a raw query string (`a=b&c=d`).
    pub fn with_query_string(mut self, query: &str) -> Self {
        self.query = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        self
    }

    pub fn with_body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some(content_type.to_string());
        self.body = body.into();
        self
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The media type of the body without parameters (`application/json`).
    pub fn media_type(&self) -> Option<String> {
        self.content_type.as_deref().map(|c| {
            c.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }
}

/// What the core answers.
#[derive(Debug)]
pub enum ApiReply {
    /// A JSON body with a status code.
    Json {
        code: u16,
        body: Value,
        content_type: &'static str,
        /// `Warning` headers (unknown fields dropped, for instance).
        warnings: Vec<String>,
    },
    /// A plain-text body (`404 page not found`, `ok`).
    Text { code: u16, body: String },
    /// An error, sent as a `Status`.
    Error(ApiError),
    /// A watch stream to be served by the shell.
    Watch(Box<WatchPlan>),
}

impl ApiReply {
    pub fn json(code: u16, body: Value) -> Self {
        ApiReply::Json {
            code,
            body,
            content_type: "application/json",
            warnings: Vec::new(),
        }
    }

    pub fn code(&self) -> u16 {
        match self {
            ApiReply::Json { code, .. } | ApiReply::Text { code, .. } => *code,
            ApiReply::Error(e) => e.code,
            ApiReply::Watch(_) => 200,
        }
    }
}

impl From<ApiError> for ApiReply {
    fn from(e: ApiError) -> Self {
        ApiReply::Error(e)
    }
}

/// How the response body should be shaped, from the `Accept` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Representation {
    /// The full object (or list).
    Full,
    /// `meta.k8s.io/v1 PartialObjectMetadata(List)`.
    Metadata,
    /// Aggregated discovery (`apidiscovery.k8s.io/v2`).
    AggregatedDiscovery,
}

/// Picks the first acceptable media type of the `Accept` list, as kube-apiserver negotiates.
pub fn negotiate(accept: Option<&str>, discovery: bool) -> Result<Representation, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Representation::Full);
    };
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let params: Vec<(String, String)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let param = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let json_like = matches!(
            media.as_str(),
            "application/json" | "application/*" | "*/*" | "application/yaml"
        );
        if !json_like {
            continue;
        }
        match param("as") {
            None => return Ok(Representation::Full),
            Some("PartialObjectMetadata" | "PartialObjectMetadataList")
                if param("g") == Some("meta.k8s.io")
                    && matches!(param("v"), Some("v1" | "v1beta1"))
                    && !discovery =>
            {
                return Ok(Representation::Metadata);
            }
            Some("APIGroupDiscoveryList")
                if param("g") == Some("apidiscovery.k8s.io")
                    && param("v") == Some("v2")
                    && discovery =>
            {
                return Ok(Representation::AggregatedDiscovery);
            }
            // Tables, older discovery versions and anything else: try the next entry.
            Some(_) => continue,
        }
    }
    Err(ApiError::not_acceptable(
        "only the following media types are accepted: application/json, application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1 (this test server serves no protobuf, YAML or Table output)",
    ))
}

/// `fieldValidation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

/// `propagationPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

/// The query parameters (and delete options) a request may carry.
#[derive(Clone, Debug)]
pub struct QueryOptions {
    pub watch: bool,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub timeout: Option<Duration>,
    pub allow_bookmarks: bool,
    pub send_initial_events: bool,
    pub field_manager: Option<String>,
    pub force: Option<bool>,
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    pub propagation: Option<Propagation>,
}

fn parse_bool(name: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        other => Err(ApiError::bad_request(format!(
            "failed to parse query parameter {name}: strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

impl QueryOptions {
    pub fn parse(req: &ApiRequest) -> Result<QueryOptions, ApiError> {
        let p = |n: &str| req.param(n);
        let limit = match p("limit") {
            None | Some("") => None,
            Some(l) => {
                let n: i64 = l.parse().map_err(|_| {
                    ApiError::bad_request(format!("failed to parse query parameter limit: strconv.ParseInt: parsing {l:?}: invalid syntax"))
                })?;
                if n > 0 { usize::try_from(n).ok() } else { None }
            }
        };
        let timeout = match p("timeoutSeconds") {
            None | Some("") => None,
            Some(t) => {
                let n: u64 = t.parse().map_err(|_| {
                    ApiError::bad_request(format!("failed to parse query parameter timeoutSeconds: strconv.ParseInt: parsing {t:?}: invalid syntax"))
                })?;
                Some(Duration::from_secs(n))
            }
        };
        let labels = LabelSelector::parse(p("labelSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.0))?;
        let fields = FieldSelector::parse(p("fieldSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.0))?;
        let field_validation = match p("fieldValidation") {
            None | Some("") | Some("Warn") => FieldValidation::Warn,
            Some("Ignore") => FieldValidation::Ignore,
            Some("Strict") => FieldValidation::Strict,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "fieldValidation must be one of Ignore, Warn, or Strict, got {other}"
                )));
            }
        };
        let dry_run = match p("dryRun") {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "dryRun: Unsupported value: {other:?}: supported values: \"All\""
                )));
            }
        };
        let propagation = p("propagationPolicy").map(parse_propagation).transpose()?;
        Ok(QueryOptions {
            watch: p("watch")
                .map(|w| parse_bool("watch", w))
                .transpose()?
                .unwrap_or(false),
            resource_version: p("resourceVersion")
                .filter(|s| !s.is_empty())
                .map(String::from),
            resource_version_match: p("resourceVersionMatch")
                .filter(|s| !s.is_empty())
                .map(String::from),
            limit,
            continue_token: p("continue").filter(|s| !s.is_empty()).map(String::from),
            labels,
            fields,
            timeout,
            allow_bookmarks: p("allowWatchBookmarks")
                .map(|w| parse_bool("allowWatchBookmarks", w))
                .transpose()?
                .unwrap_or(false),
            send_initial_events: p("sendInitialEvents")
                .map(|w| parse_bool("sendInitialEvents", w))
                .transpose()?
                .unwrap_or(false),
            field_manager: p("fieldManager").map(String::from),
            force: p("force").map(|w| parse_bool("force", w)).transpose()?,
            dry_run,
            field_validation,
            propagation,
        })
    }
}

pub fn parse_propagation(v: &str) -> Result<Propagation, ApiError> {
    match v {
        "Orphan" => Ok(Propagation::Orphan),
        "Background" => Ok(Propagation::Background),
        "Foreground" => Ok(Propagation::Foreground),
        other => Err(ApiError::unprocessable(format!(
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_lists_are_negotiated_in_order() {
        assert_eq!(negotiate(None, false).unwrap(), Representation::Full);
        assert_eq!(
            negotiate(
                Some("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"),
                false
            )
            .unwrap(),
            Representation::Metadata
        );
        assert_eq!(
            negotiate(
                Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"),
                false
            )
            .unwrap(),
            Representation::Full
        );
        assert_eq!(
            negotiate(
                Some("application/vnd.kubernetes.protobuf,application/json"),
                false
            )
            .unwrap(),
            Representation::Full
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf"), false)
                .unwrap_err()
                .code,
            406
        );
        let aggregated =
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            negotiate(Some(aggregated), true).unwrap(),
            Representation::AggregatedDiscovery
        );
        assert_eq!(
            negotiate(
                Some("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"),
                true
            )
            .unwrap_err()
            .code,
            406
        );
    }

    #[test]
    fn query_options_parse_watch_and_selectors() {
        let req = ApiRequest::new("GET", "/api/v1/services")
            .with_query_string("watch=1&resourceVersion=12&labelSelector=app%3Dweb&timeoutSeconds=30&allowWatchBookmarks=true");
        let q = QueryOptions::parse(&req).unwrap();
        assert!(q.watch && q.allow_bookmarks);
        assert_eq!(q.resource_version.as_deref(), Some("12"));
        assert_eq!(q.timeout, Some(Duration::from_secs(30)));
        assert!(!q.labels.is_empty());
        let bad = ApiRequest::new("GET", "/api/v1/services").with_query_string("limit=x");
        assert_eq!(QueryOptions::parse(&bad).unwrap_err().code, 400);
    }
}
