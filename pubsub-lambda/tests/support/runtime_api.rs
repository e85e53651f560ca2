//! A Lambda Runtime API of our own on 127.0.0.1, enough for `lambda_runtime`: a bootstrap
//! started with `AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT` polls
//! `GET /2018-06-01/runtime/invocation/next` (held until the test queues an event, as Lambda
//! holds it), and answers with `POST .../invocation/{id}/response` or `.../error`; a function
//! that cannot start posts `/2018-06-01/runtime/init/error`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// The function's ARN, as the runtime is told it.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:simple-lambda";

/// What the function answered to one invocation.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct Answer {
    /// The invocation's request id.
    pub request_id: String,
    /// `response`, `error` or `init/error`.
    pub kind: String,
    /// The body posted.
    pub body: String,
    /// `Lambda-Runtime-Function-Error-Type`, on errors.
    pub error_type: Option<String>,
    /// When it arrived.
    pub at: Instant,
}

#[derive(Default)]
struct State {
    events: Mutex<VecDeque<(String, String, u64)>>,
    queued: Notify,
    answers: Mutex<Vec<Answer>>,
    answered: Notify,
    polls: Mutex<Vec<Instant>>,
}

/// The server; it stops with the test's runtime.
pub struct RuntimeApi {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
}

#[allow(dead_code)]
impl RuntimeApi {
    /// Starts listening on a free port of 127.0.0.1.
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| serve(state.clone(), request));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        RuntimeApi { addr, state }
    }

    /// `AWS_LAMBDA_RUNTIME_API`'s value.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an invocation of `body` with `request_id`, due `timeout` from now.
    pub fn invoke(&self, request_id: &str, body: &str, timeout: Duration) {
        let deadline = (SystemTime::now() + timeout).duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        self.state.events.lock().unwrap().push_back((request_id.to_owned(), body.to_owned(), deadline));
        self.state.queued.notify_waiters();
        self.state.queued.notify_one();
    }

    /// The answer to `request_id`, waiting up to `wait` for it.
    pub async fn answer(&self, request_id: &str, wait: Duration) -> Answer {
        let until = Instant::now() + wait;
        loop {
            let answered = self.state.answered.notified();
            if let Some(answer) =
                self.state.answers.lock().unwrap().iter().find(|a| a.request_id == request_id)
            {
                return answer.clone();
            }
            let left = until.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, answered).await.is_err() {
                panic!("no answer to {request_id} within {wait:?}; answers: {:?}", self.answers());
            }
        }
    }

    /// Every answer so far.
    pub fn answers(&self) -> Vec<Answer> {
        self.state.answers.lock().unwrap().clone()
    }

    /// When the function polled for its next invocation.
    pub fn polls(&self) -> Vec<Instant> {
        self.state.polls.lock().unwrap().clone()
    }
}

async fn serve(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let error_type = request
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body = String::from_utf8_lossy(&body).into_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let answer = |request_id: &str, kind: &str| {
        state.answers.lock().unwrap().push(Answer {
            request_id: request_id.to_owned(),
            kind: kind.to_owned(),
            body: body.clone(),
            error_type: error_type.clone(),
            at: Instant::now(),
        });
        state.answered.notify_waiters();
        reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
    };
    Ok(match (&method, parts.as_slice()) {
        (&Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => {
            state.polls.lock().unwrap().push(Instant::now());
            let (request_id, event, deadline) = loop {
                let queued = state.queued.notified();
                if let Some(next) = state.events.lock().unwrap().pop_front() {
                    break next;
                }
                queued.await;
            };
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", &request_id)
                .header("lambda-runtime-deadline-ms", deadline.to_string())
                .header("lambda-runtime-invoked-function-arn", FUNCTION_ARN)
                .header(
                    "lambda-runtime-trace-id",
                    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                )
                .body(Full::new(Bytes::from(event)))
                .unwrap()
        }
        (&Method::POST, ["2018-06-01", "runtime", "invocation", request_id, "response"]) => {
            answer(request_id, "response")
        }
        (&Method::POST, ["2018-06-01", "runtime", "invocation", request_id, "error"]) => {
            answer(request_id, "error")
        }
        (&Method::POST, ["2018-06-01", "runtime", "init", "error"]) => answer("init", "init/error"),
        _ => reply(StatusCode::NOT_FOUND, r#"{"errorMessage":"not found"}"#),
    })
}

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}
