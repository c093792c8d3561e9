//! The HTTP endpoint every long-running subcommand serves: `/metrics` (Prometheus text format
//! of a registry), `/healthz` (the process answers) and `/readyz` (the subcommand's own
//! readiness check, with its reason when not ready).
//!
//! Owns HTTP only; what is measured and what "ready" means belong to the subcommand.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tracing::debug;

/// A readiness check: `Ok` when ready, else why not.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What the endpoint serves.
#[derive(Clone)]
pub struct Observed {
    /// Gathered at each scrape.
    pub registry: Registry,
    /// Asked at each `/readyz`.
    pub ready: Readiness,
}

fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut buf) {
        return format!("# encoding failed: {e}\n");
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn respond(observed: &Observed, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, content_type: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = content_type.parse() {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            render(&observed.registry),
        ),
        "/healthz" => text(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => match (observed.ready)() {
            Ok(()) => text(StatusCode::OK, "text/plain", "ready\n".into()),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("{why}\n"),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` over HTTP/1 on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, observed: Observed, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    debug!(error = %e, "metrics: accept failed");
                    continue;
                }
            },
        };
        let observed = observed.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let response = respond(&observed, &req);
                async move { Ok::<_, Infallible>(response) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                debug!(error = %e, "metrics: connection failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicBool, Ordering};

    use prometheus::IntCounter;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    async fn get(address: SocketAddr, method: &str, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream
            .write_all(
                format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    async fn start(ready: Arc<AtomicBool>) -> (SocketAddr, IntCounter) {
        let registry = Registry::new();
        let counter = IntCounter::new("ferrolb_test_total", "A test counter.").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let observed = Observed {
            registry,
            ready: Arc::new(move || {
                if ready.load(Ordering::SeqCst) {
                    Ok(())
                } else {
                    Err("waiting for the first configuration".into())
                }
            }),
        };
        tokio::spawn(serve(listener, observed, std::future::pending()));
        (address, counter)
    }

    #[tokio::test]
    async fn metrics_are_gathered_at_each_scrape() {
        let (address, counter) = start(Arc::new(AtomicBool::new(true))).await;
        counter.inc_by(3);
        let (status, body) = get(address, "GET", "/metrics").await;
        assert_eq!(status, 200);
        assert!(body.lines().any(|l| l == "ferrolb_test_total 3"), "{body}");
        counter.inc();
        let (_, body) = get(address, "GET", "/metrics").await;
        assert!(body.lines().any(|l| l == "ferrolb_test_total 4"), "{body}");
    }

    #[tokio::test]
    async fn healthz_is_always_ok_and_readyz_says_why_it_is_not_ready() {
        let ready = Arc::new(AtomicBool::new(false));
        let (address, _) = start(ready.clone()).await;
        assert_eq!(get(address, "GET", "/healthz").await.0, 200);
        assert_eq!(
            get(address, "GET", "/readyz").await,
            (503, "waiting for the first configuration\n".to_string())
        );
        ready.store(true, Ordering::SeqCst);
        assert_eq!(get(address, "GET", "/readyz").await.0, 200);
        assert_eq!(get(address, "GET", "/nope").await.0, 404);
        assert_eq!(get(address, "POST", "/metrics").await.0, 405);
    }
}
