//! An OTLP/HTTP receiver of our own on 127.0.0.1: what a collector would receive from a
//! binary run with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at it, decoded (protobuf) or kept
//! as it came (JSON).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message as _;

/// One exported span, as received.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub service_name: String,
    pub name: String,
    /// `SPAN_KIND_CONSUMER` and so on.
    pub kind: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub attributes: BTreeMap<String, String>,
    /// `STATUS_CODE_ERROR` and so on.
    pub status: String,
}

/// One request body the receiver could not decode as protobuf (JSON, say), with its path and
/// content type.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub path: String,
    pub content_type: String,
    pub body: String,
}

#[derive(Default)]
struct Received {
    spans: Vec<ReceivedSpan>,
    /// Sum of every data point of a sum metric (a counter) by name, over every export.
    sums: Vec<(String, BTreeMap<String, String>, f64)>,
    metric_names: Vec<(String, String)>,
    raw: Vec<RawRequest>,
}

/// The receiver; it serves until the test's runtime ends.
pub struct OtlpReceiver {
    /// `http://127.0.0.1:PORT`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    received: Arc<Mutex<Received>>,
}

impl OtlpReceiver {
    /// Listens on a free loopback port.
    pub async fn start() -> OtlpReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Received::default()));
        let shared = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| receive(shared.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        OtlpReceiver { endpoint, received }
    }

    /// The spans received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received.lock().unwrap().spans.clone()
    }

    /// The bodies received that were not protobuf.
    pub fn raw(&self) -> Vec<RawRequest> {
        self.received.lock().unwrap().raw.clone()
    }

    /// `(service.name, metric name)` of every metric received.
    pub fn metric_names(&self) -> Vec<(String, String)> {
        self.received.lock().unwrap().metric_names.clone()
    }

    /// The latest value of the sum metric `name` whose data point has the attributes `having`
    /// (a subset), added over such data points: with cumulative temporality, the total.
    pub fn latest_sum(&self, name: &str, having: &[(&str, &str)]) -> Option<f64> {
        let received = self.received.lock().unwrap();
        let matching: Vec<_> = received
            .sums
            .iter()
            .filter(|(metric, attributes, _)| {
                metric == name
                    && having
                        .iter()
                        .all(|(key, value)| attributes.get(*key).map(String::as_str) == Some(*value))
            })
            .collect();
        // Each export repeats the cumulative points: count the last export's only, one per
        // attribute set.
        let mut latest: BTreeMap<&BTreeMap<String, String>, f64> = BTreeMap::new();
        for (_, attributes, value) in matching {
            latest.insert(attributes, *value);
        }
        (!latest.is_empty()).then(|| latest.values().sum())
    }
}

async fn receive(
    received: Arc<Mutex<Received>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_string();
    let content_type = request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(Response::builder().status(400).body(Full::default()).unwrap()),
    };
    let mut received = received.lock().unwrap();
    let protobuf = content_type == "application/x-protobuf";
    match path.as_str() {
        "/v1/traces" if protobuf => {
            let Ok(export) = ExportTraceServiceRequest::decode(body) else {
                return Ok(Response::builder().status(400).body(Full::default()).unwrap());
            };
            for resource_spans in export.resource_spans {
                let service_name = service_name(resource_spans.resource.as_ref().map(|r| &r.attributes[..]));
                for span in resource_spans.scope_spans.into_iter().flat_map(|scope| scope.spans) {
                    received.spans.push(ReceivedSpan {
                        service_name: service_name.clone(),
                        kind: span.kind().as_str_name().to_string(),
                        name: span.name,
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        attributes: attributes(&span.attributes),
                        status: span
                            .status
                            .map(|status| status.code().as_str_name().to_string())
                            .unwrap_or_default(),
                    });
                }
            }
        }
        "/v1/metrics" if protobuf => {
            let Ok(export) = ExportMetricsServiceRequest::decode(body) else {
                return Ok(Response::builder().status(400).body(Full::default()).unwrap());
            };
            for resource_metrics in export.resource_metrics {
                let service_name =
                    service_name(resource_metrics.resource.as_ref().map(|r| &r.attributes[..]));
                for metric in resource_metrics.scope_metrics.into_iter().flat_map(|scope| scope.metrics) {
                    received.metric_names.push((service_name.clone(), metric.name.clone()));
                    if let Some(metric::Data::Sum(sum)) = &metric.data {
                        for point in &sum.data_points {
                            let value = match point.value {
                                Some(number_data_point::Value::AsInt(value)) => value as f64,
                                Some(number_data_point::Value::AsDouble(value)) => value,
                                None => continue,
                            };
                            received.sums.push((metric.name.clone(), attributes(&point.attributes), value));
                        }
                    }
                }
            }
        }
        _ => received.raw.push(RawRequest {
            path,
            content_type,
            body: String::from_utf8_lossy(&body).into_owned(),
        }),
    }
    Ok(Response::builder()
        .header(hyper::header::CONTENT_TYPE, "application/x-protobuf")
        .body(Full::default())
        .unwrap())
}

fn service_name(attributes: Option<&[KeyValue]>) -> String {
    attributes.map(self::attributes).and_then(|mut map| map.remove("service.name")).unwrap_or_default()
}

fn attributes(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes.iter().map(|pair| (pair.key.clone(), text(pair.value.as_ref()))).collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => text.clone(),
        Some(any_value::Value::IntValue(number)) => number.to_string(),
        Some(any_value::Value::BoolValue(flag)) => flag.to_string(),
        Some(any_value::Value::DoubleValue(number)) => number.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
