//! The health endpoints over HTTP/1, on hyper.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::task::JoinSet;

use super::Health;

/// How long a client may take to send its request's headers before its connection is closed,
/// so that idle or slow clients cannot pile up connections.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the server waits for requests under way when it stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The pause after a failed accept (out of file descriptors, most likely), so that the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves a daemon's [`Health`] over HTTP/1 (feature `health`), for container probes:
///
/// - `GET /health/live`: 200 while the daemon is [live](Health::live), else 503;
/// - `GET /health/ready`: 200 while it is [ready](Health::ready), else 503;
///
/// each with the [`HealthSnapshot`](super::HealthSnapshot) as a JSON body. Any other path is
/// 404, another method on these paths 405.
///
/// [`bind`](HealthServer::bind) binds at once, so that a bad address or a port in use is an
/// error before the daemon starts (and port 0 gives a free port, read with
/// [`local_addr`](HealthServer::local_addr)); [`serve`](HealthServer::serve) serves until the
/// future it is given resolves. Serve until the daemon has stopped, so that probes see the
/// drain (503 on ready) rather than a refused connection:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use pubsub_core::health::HealthServer;
/// use pubsub_core::{DaemonBuilder, MemoryBroker};
///
/// let broker = MemoryBroker::new();
/// broker.create_queue("jobs", Default::default());
/// let daemon = DaemonBuilder::new("jobs")
///     .allow_no_handlers()
///     .wait_time(Duration::from_millis(20))
///     .build(broker.subscriber("jobs")?)?;
///
/// let server = HealthServer::bind("127.0.0.1:0").await?; // a configuration error if it fails
/// println!("health on http://{}/health/ready", server.local_addr());
/// let health = daemon.health();
/// let serving = tokio::spawn(server.serve(health.clone(), health.stopped()));
///
/// let report = daemon.run_until_idle().await; // a service: run_until_signal()
/// serving.await?; // over once the daemon has stopped
/// # let _ = report;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct HealthServer {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl HealthServer {
    /// Binds `addr` (`"0.0.0.0:8080"`, a [`SocketAddr`], port 0 for any free port). An error
    /// here (an address in use, one that does not parse or resolve) is a configuration error.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<HealthServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(HealthServer { listener, local_addr })
    }

    /// The address bound (with the port chosen when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Answers probes with `health` until `shutdown` resolves (pass
    /// [`health.stopped()`](Health::stopped) to serve through the drain until the daemon has
    /// stopped); then stops accepting, lets requests under way finish (2 s at most), and
    /// returns. Failed connections and accepts are logged at debug and warn; nothing ends the
    /// server but `shutdown`.
    pub async fn serve(self, health: Health, shutdown: impl Future<Output = ()> + Send) {
        let HealthServer { listener, local_addr } = self;
        tracing::info!(daemon = %health.daemon(), address = %local_addr, "serving /health/live and /health/ready");
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let health = health.clone();
                        let service = service_fn(move |request| {
                            let response = respond(&health, &request);
                            async move { Ok::<_, Infallible>(response) }
                        });
                        let connection = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEADER_READ_TIMEOUT)
                            .serve_connection(TokioIo::new(stream), service);
                        let connection = graceful.watch(connection);
                        connections.spawn(async move {
                            if let Err(error) = connection.await {
                                tracing::debug!(%error, %peer, "health connection failed");
                            }
                        });
                    }
                    Err(error) => {
                        tracing::warn!(%error, "health server: accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                // Reaps finished connections, so that a long-running server does not keep them.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
            tracing::debug!(
                open = connections.len(),
                "health server: connections still open at shutdown, closed"
            );
        }
        // Dropping the set aborts whatever is left.
        drop(connections);
        tracing::debug!(address = %local_addr, "health server stopped");
    }
}

/// Which endpoint a request asks for.
#[derive(Clone, Copy)]
enum Probe {
    Live,
    Ready,
}

fn respond(health: &Health, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let probe = match request.uri().path() {
        "/health/live" => Probe::Live,
        "/health/ready" => Probe::Ready,
        _ => return error(StatusCode::NOT_FOUND, "not found: GET /health/live or /health/ready"),
    };
    if request.method() != Method::GET {
        let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: GET only");
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    let snapshot = health.snapshot();
    let up = match probe {
        Probe::Live => snapshot.live,
        Probe::Ready => snapshot.ready,
    };
    match serde_json::to_vec(&snapshot) {
        Ok(body) => json(if up { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, body),
        Err(error) => error_response(&error),
    }
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(status, serde_json::json!({ "error": message }).to_string().into_bytes())
}

/// A snapshot holds no value JSON refuses; should one ever, the probe fails with a reason.
fn error_response(error: &serde_json::Error) -> Response<Full<Bytes>> {
    tracing::warn!(%error, "health snapshot not serializable");
    json(
        StatusCode::INTERNAL_SERVER_ERROR,
        serde_json::json!({ "error": error.to_string() }).to_string().into_bytes(),
    )
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // A probe's answer is for now only.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
