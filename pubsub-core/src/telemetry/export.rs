//! OTLP export set up from the standard `OTEL_*` environment variables (feature `otlp`), for
//! binaries: the daemons and the `pubsub` command line call [`Export::from_env`] once, before
//! they build a daemon or a producer, and keep what it returns until they exit.
//!
//! | Variable | Effect |
//! |---|---|
//! | `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` | where to send (`http://localhost:4318` by default); setting one turns its signals on |
//! | `OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER` | `otlp` turns the signal on, `none` off |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL` (and `_TRACES_`, `_METRICS_`) | `http/protobuf` (the default) or `http/json`; `grpc` is not built in |
//! | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | the resource; the service name defaults to the one the binary gives |
//! | `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` | `cumulative` (the default), `delta` or `lowmemory` |
//! | `OTEL_SDK_DISABLED` | `true` exports nothing |
//!
//! With none of the first two rows set nothing is exported: a deliberate departure from the
//! specification's `otlp` default, so that a run on a laptop does not try to reach a
//! collector. What the SDK and the exporter read for themselves works as documented there:
//! `OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`, `_COMPRESSION`, `OTEL_TRACES_SAMPLER` and its
//! argument, `OTEL_BSP_*`, `OTEL_METRIC_EXPORT_INTERVAL`.
//!
//! ```no_run
//! # fn main() -> Result<(), pubsub_core::telemetry::export::ExportError> {
//! let export = pubsub_core::telemetry::export::Export::from_env("orders-daemon")?;
//! // ... build and run the daemon ...
//! export.shutdown()?; // or drop it: the spans and metrics still pending are sent first
//! # Ok(())
//! # }
//! ```

use std::fmt;

use opentelemetry::global;
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::metrics::{SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

/// A signal this module exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Spans.
    Traces,
    /// Counters and histograms.
    Metrics,
}

impl Signal {
    fn exporter_variable(self) -> &'static str {
        match self {
            Signal::Traces => "OTEL_TRACES_EXPORTER",
            Signal::Metrics => "OTEL_METRICS_EXPORTER",
        }
    }

    fn endpoint_variable(self) -> &'static str {
        match self {
            Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        }
    }

    fn protocol_variable(self) -> &'static str {
        match self {
            Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        })
    }
}

/// How a signal is sent: OTLP over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `http/protobuf`, the default.
    HttpProtobuf,
    /// `http/json`.
    HttpJson,
}

impl OtlpProtocol {
    fn to_otlp(self) -> Protocol {
        match self {
            OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
            OtlpProtocol::HttpJson => Protocol::HttpJson,
        }
    }
}

/// Metric aggregation temporality (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricsTemporality {
    /// Totals since the start (Prometheus-style backends), the default.
    #[default]
    Cumulative,
    /// Changes since the last export.
    Delta,
    /// Delta for counters and histograms, cumulative for up-down counters.
    LowMemory,
}

/// What [`Export::from_env`] will do, read from the environment: which signals are exported
/// and how. Read on its own to report the configuration, or to test it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSettings {
    /// The traces' protocol; `None` when traces are not exported.
    pub traces: Option<OtlpProtocol>,
    /// The metrics' protocol; `None` when metrics are not exported.
    pub metrics: Option<OtlpProtocol>,
    /// The metrics' temporality.
    pub temporality: MetricsTemporality,
}

impl ExportSettings {
    /// The settings of this process's environment.
    pub fn from_env() -> Result<ExportSettings, ExportError> {
        ExportSettings::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings of the variables `lookup` gives (`None` for an unset variable).
    ///
    /// ```
    /// use pubsub_core::telemetry::export::{ExportSettings, OtlpProtocol};
    ///
    /// let env = |name: &str| match name {
    ///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:4318".to_string()),
    ///     "OTEL_METRICS_EXPORTER" => Some("none".to_string()),
    ///     _ => None,
    /// };
    /// let settings = ExportSettings::from_lookup(env).unwrap();
    /// assert_eq!(settings.traces, Some(OtlpProtocol::HttpProtobuf));
    /// assert_eq!(settings.metrics, None);
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ExportSettings, ExportError> {
        // An empty variable counts as unset, as the specification says.
        let get =
            |name: &str| lookup(name).map(|value| value.trim().to_string()).filter(|value| !value.is_empty());
        let disabled = get("OTEL_SDK_DISABLED").is_some_and(|value| value.eq_ignore_ascii_case("true"));
        let signal = |signal: Signal| -> Result<Option<OtlpProtocol>, ExportError> {
            let asked = match get(signal.exporter_variable()) {
                Some(value) => exporter_asked(signal.exporter_variable(), &value)?,
                None => {
                    get("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() || get(signal.endpoint_variable()).is_some()
                }
            };
            if disabled || !asked {
                return Ok(None);
            }
            let (variable, value) = match get(signal.protocol_variable()) {
                Some(value) => (signal.protocol_variable(), value),
                None => match get("OTEL_EXPORTER_OTLP_PROTOCOL") {
                    Some(value) => ("OTEL_EXPORTER_OTLP_PROTOCOL", value),
                    None => return Ok(Some(OtlpProtocol::HttpProtobuf)),
                },
            };
            match value.to_ascii_lowercase().as_str() {
                "http/protobuf" => Ok(Some(OtlpProtocol::HttpProtobuf)),
                "http/json" => Ok(Some(OtlpProtocol::HttpJson)),
                _ => Err(ExportError::UnsupportedProtocol { variable, value }),
            }
        };
        let temporality = match get("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE") {
            None => MetricsTemporality::Cumulative,
            Some(value) => match value.to_ascii_lowercase().as_str() {
                "cumulative" => MetricsTemporality::Cumulative,
                "delta" => MetricsTemporality::Delta,
                "lowmemory" => MetricsTemporality::LowMemory,
                _ => return Err(ExportError::UnsupportedTemporality { value }),
            },
        };
        Ok(ExportSettings { traces: signal(Signal::Traces)?, metrics: signal(Signal::Metrics)?, temporality })
    }

    /// Whether anything is exported.
    pub fn exports_anything(&self) -> bool {
        self.traces.is_some() || self.metrics.is_some()
    }
}

/// Whether an `OTEL_*_EXPORTER` value (a comma-separated list) asks for OTLP.
fn exporter_asked(variable: &'static str, value: &str) -> Result<bool, ExportError> {
    let mut otlp = false;
    for exporter in value.split(',').map(str::trim).filter(|exporter| !exporter.is_empty()) {
        match exporter.to_ascii_lowercase().as_str() {
            "otlp" => otlp = true,
            "none" => return Ok(false),
            _ => return Err(ExportError::UnsupportedExporter { variable, value: value.to_string() }),
        }
    }
    Ok(otlp)
}

/// Why export could not be set up or shut down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// An `OTEL_*_EXPORTER` names an exporter this build does not have.
    #[error("{variable}={value:?} is not supported: this build exports `otlp` (over HTTP) or `none`")]
    UnsupportedExporter {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// An `OTEL_EXPORTER_OTLP_*PROTOCOL` names a protocol this build does not have.
    #[error(
        "{variable}={value:?} is not supported: this build sends OTLP over HTTP, `http/protobuf` \
         or `http/json` (a collector listens for it on port 4318; gRPC is port 4317)"
    )]
    UnsupportedProtocol {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` is none of the three.
    #[error(
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE={value:?} is not supported: use \
         `cumulative`, `delta` or `lowmemory`"
    )]
    UnsupportedTemporality {
        /// Its value.
        value: String,
    },
    /// The exporter refused its configuration (an endpoint that is not a URL, say).
    #[error("the OTLP {signal} exporter could not be built: {source}")]
    Exporter {
        /// The signal.
        signal: Signal,
        /// Why.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// Shutting a provider down failed: what was pending may not have been sent.
    #[error("{signal} export did not shut down cleanly: {source}")]
    Shutdown {
        /// The signal.
        signal: Signal,
        /// Why.
        #[source]
        source: opentelemetry_sdk::error::OTelSdkError,
    },
}

/// The installed providers: the global tracer and meter providers, exporting over OTLP.
///
/// Dropping it (or [`Export::shutdown`]) sends what is pending and stops export: keep it until
/// the process ends, past the daemon's graceful stop on SIGTERM.
#[must_use = "dropping it stops export: keep it until the process ends"]
pub struct Export {
    traces: Option<SdkTracerProvider>,
    metrics: Option<SdkMeterProvider>,
}

impl fmt::Debug for Export {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Export")
            .field("traces", &self.traces.is_some())
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl Export {
    /// Reads the environment ([`ExportSettings::from_env`]) and installs the global providers
    /// of the signals it asks for, with `service.name` `default_service_name` unless
    /// `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` names one. With nothing asked for it
    /// installs nothing.
    pub fn from_env(default_service_name: &str) -> Result<Export, ExportError> {
        Export::install(&ExportSettings::from_env()?, default_service_name)
    }

    /// Installs the global providers `settings` asks for. The endpoints, headers and timeouts
    /// are still the environment's (the OTLP exporter reads them).
    pub fn install(settings: &ExportSettings, default_service_name: &str) -> Result<Export, ExportError> {
        if !settings.exports_anything() {
            return Ok(Export { traces: None, metrics: None });
        }
        let resource = resource(default_service_name);
        let traces = match settings.traces {
            None => None,
            Some(protocol) => {
                let exporter = SpanExporter::builder()
                    .with_http()
                    .with_protocol(protocol.to_otlp())
                    .build()
                    .map_err(|source| ExportError::Exporter { signal: Signal::Traces, source })?;
                let provider = SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource.clone())
                    .build();
                global::set_tracer_provider(provider.clone());
                Some(provider)
            }
        };
        let metrics = match settings.metrics {
            None => None,
            Some(protocol) => {
                let temporality = match settings.temporality {
                    MetricsTemporality::Cumulative => Temporality::Cumulative,
                    MetricsTemporality::Delta => Temporality::Delta,
                    MetricsTemporality::LowMemory => Temporality::LowMemory,
                };
                let exporter = MetricExporter::builder()
                    .with_http()
                    .with_protocol(protocol.to_otlp())
                    .with_temporality(temporality)
                    .build()
                    .map_err(|source| ExportError::Exporter { signal: Signal::Metrics, source })?;
                let provider = SdkMeterProvider::builder()
                    .with_periodic_exporter(exporter)
                    .with_resource(resource)
                    .build();
                global::set_meter_provider(provider.clone());
                Some(provider)
            }
        };
        tracing::debug!(traces = ?settings.traces, metrics = ?settings.metrics, "OpenTelemetry export on");
        Ok(Export { traces, metrics })
    }

    /// Whether spans are exported.
    pub fn exports_traces(&self) -> bool {
        self.traces.is_some()
    }

    /// Whether metrics are exported.
    pub fn exports_metrics(&self) -> bool {
        self.metrics.is_some()
    }

    /// Sends what is pending (spans, the last metrics) and stops export.
    pub fn shutdown(mut self) -> Result<(), ExportError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), ExportError> {
        // Both are stopped even when the first fails.
        let traces = self.traces.take().map(|provider| provider.shutdown()).transpose();
        let metrics = self.metrics.take().map(|provider| provider.shutdown()).transpose();
        traces.map_err(|source| ExportError::Shutdown { signal: Signal::Traces, source })?;
        metrics.map_err(|source| ExportError::Shutdown { signal: Signal::Metrics, source })?;
        Ok(())
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::warn!(%error, "OpenTelemetry export");
        }
    }
}

/// The SDK's resource (it reads `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`), with the
/// binary's service name where the environment names none.
fn resource(default_service_name: &str) -> Resource {
    let resource = Resource::builder().build();
    let named = resource
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if named {
        resource
    } else {
        Resource::builder().with_service_name(default_service_name.to_string()).build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(variables: &[(&str, &str)]) -> Result<ExportSettings, ExportError> {
        ExportSettings::from_lookup(|name| {
            variables.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn nothing_is_exported_unless_asked() {
        let off = settings(&[]).unwrap();
        assert!(!off.exports_anything());
        let on = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]).unwrap();
        assert_eq!(
            (on.traces, on.metrics),
            (Some(OtlpProtocol::HttpProtobuf), Some(OtlpProtocol::HttpProtobuf))
        );
        // An empty variable is an unset one.
        assert!(!settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]).unwrap().exports_anything());
    }

    #[test]
    fn each_signal_follows_its_own_variables() {
        let traces = settings(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces")]).unwrap();
        assert_eq!((traces.traces.is_some(), traces.metrics.is_some()), (true, false));
        let metrics = settings(&[("OTEL_METRICS_EXPORTER", "otlp")]).unwrap();
        assert_eq!((metrics.traces.is_some(), metrics.metrics.is_some()), (false, true));
        let none =
            settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_TRACES_EXPORTER", "none")])
                .unwrap();
        assert_eq!((none.traces.is_some(), none.metrics.is_some()), (false, true));
        let disabled =
            settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_SDK_DISABLED", "TRUE")])
                .unwrap();
        assert!(!disabled.exports_anything());
    }

    #[test]
    fn the_protocol_is_http_protobuf_or_json() {
        let json =
            settings(&[("OTEL_TRACES_EXPORTER", "otlp"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")])
                .unwrap();
        assert_eq!(json.traces, Some(OtlpProtocol::HttpJson));
        // The signal's own variable wins over the general one.
        let both = settings(&[
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ])
        .unwrap();
        assert_eq!(both.traces, Some(OtlpProtocol::HttpProtobuf));
        let grpc = settings(&[("OTEL_TRACES_EXPORTER", "otlp"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])
            .unwrap_err();
        assert!(grpc.to_string().contains("http/protobuf"), "{grpc}");
        // A protocol for a signal that is off is not an error.
        assert!(settings(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).is_ok());
    }

    #[test]
    fn unknown_values_are_errors_that_say_what_works() {
        let exporter = settings(&[("OTEL_TRACES_EXPORTER", "zipkin")]).unwrap_err();
        assert!(matches!(
            exporter,
            ExportError::UnsupportedExporter { variable: "OTEL_TRACES_EXPORTER", .. }
        ));
        assert!(exporter.to_string().contains("`otlp`"), "{exporter}");
        let temporality =
            settings(&[("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "weekly")]).unwrap_err();
        assert!(temporality.to_string().contains("`delta`"), "{temporality}");
        let delta = settings(&[("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta")]).unwrap();
        assert_eq!(delta.temporality, MetricsTemporality::Delta);
    }

    #[test]
    fn nothing_asked_installs_nothing() {
        let export = Export::install(&settings(&[]).unwrap(), "test").unwrap();
        assert!(!export.exports_traces() && !export.exports_metrics());
        export.shutdown().unwrap();
    }
}
