//! W3C trace context in message attributes: `traceparent` (`00-<trace id>-<span id>-<flags>`)
//! and `tracestate`, as OpenTelemetry's botocore, JavaScript and Java instrumentations write
//! them.

use std::str::FromStr;

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

use crate::transport::{Attributes, MAX_MESSAGE_ATTRIBUTES};

/// The message attribute that carries the W3C `traceparent`.
pub const TRACEPARENT: &str = "traceparent";

/// The message attribute that carries the W3C `tracestate`.
pub const TRACESTATE: &str = "tracestate";

/// The trace context of the environment variables `TRACEPARENT` and `TRACESTATE`
/// (OpenTelemetry's environment carriers), as a context to publish under: a script that sets
/// them has what it publishes join its trace. `None` when `TRACEPARENT` is unset or malformed
/// (logged at debug).
///
/// ```
/// # std::env::remove_var("TRACEPARENT");
/// assert!(pubsub_core::telemetry::context_from_environment().is_none());
/// ```
pub fn context_from_environment() -> Option<opentelemetry::Context> {
    use opentelemetry::trace::TraceContextExt as _;
    let traceparent = std::env::var("TRACEPARENT").ok()?;
    let tracestate = std::env::var("TRACESTATE").ok();
    match extract(&traceparent, tracestate.as_deref()) {
        Ok(remote) => Some(opentelemetry::Context::new().with_remote_span_context(remote)),
        Err(reason) => {
            tracing::debug!(%reason, "TRACEPARENT ignored");
            None
        }
    }
}

/// The remote span context `traceparent` (with `tracestate`) names, or why it names none.
pub(crate) fn extract(traceparent: &str, tracestate: Option<&str>) -> Result<SpanContext, String> {
    let parts: Vec<&str> = traceparent.trim().split('-').collect();
    let [version, trace_id, span_id, flags, rest @ ..] = parts.as_slice() else {
        return Err(format!("`{traceparent}` is not `version-traceid-parentid-flags`"));
    };
    let lower_hex = |text: &str, len: usize| {
        text.len() == len && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    // Version 00 has exactly four fields; a later version may add more, ff is invalid.
    if !lower_hex(version, 2) || *version == "ff" || (*version == "00" && !rest.is_empty()) {
        return Err(format!("`{traceparent}` has an unknown version"));
    }
    if !lower_hex(trace_id, 32) || !lower_hex(span_id, 16) || !lower_hex(flags, 2) {
        return Err(format!("`{traceparent}` is not lower-case hex of 32, 16 and 2 digits"));
    }
    let trace_id = TraceId::from_hex(trace_id).map_err(|e| e.to_string())?;
    let span_id = SpanId::from_hex(span_id).map_err(|e| e.to_string())?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return Err(format!("`{traceparent}` has an all-zero id"));
    }
    let flags = u8::from_str_radix(flags, 16).map_err(|e| e.to_string())?;
    // A malformed tracestate is dropped, the traceparent kept (W3C's rule).
    let state = tracestate.and_then(|text| TraceState::from_str(text).ok()).unwrap_or_default();
    Ok(SpanContext::new(trace_id, span_id, TraceFlags::new(flags & TraceFlags::SAMPLED.to_u8()), true, state))
}

/// The remote span context of an X-Ray trace header (the `AWSTraceHeader` system attribute):
/// `Root=1-<8 hex epoch>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`, keys in any order.
pub(crate) fn extract_xray(header: &str) -> Result<SpanContext, String> {
    let (mut root, mut parent, mut sampled) = (None, None, false);
    for field in header.split(';') {
        match field.trim().split_once('=') {
            Some(("Root", value)) => root = Some(value),
            Some(("Parent", value)) => parent = Some(value),
            Some(("Sampled", value)) => sampled = value == "1",
            _ => {}
        }
    }
    let (Some(root), Some(parent)) = (root, parent) else {
        return Err(format!("`{header}` has no Root or no Parent"));
    };
    let trace_id = match root.split('-').collect::<Vec<_>>().as_slice() {
        ["1", epoch, unique] if epoch.len() == 8 && unique.len() == 24 => format!("{epoch}{unique}"),
        _ => return Err(format!("`{root}` is not an X-Ray trace id (1-<8 hex>-<24 hex>)")),
    };
    let hex = |text: &str| text.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(&trace_id) || parent.len() != 16 || !hex(parent) {
        return Err(format!("`{header}` is not hex where X-Ray has hex"));
    }
    let trace_id = TraceId::from_hex(&trace_id).map_err(|e| e.to_string())?;
    let span_id = SpanId::from_hex(parent).map_err(|e| e.to_string())?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return Err(format!("`{header}` has an all-zero id"));
    }
    let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
    Ok(SpanContext::new(trace_id, span_id, flags, true, TraceState::default()))
}

/// Writes `context` as `traceparent` (and `tracestate`, if any) into `attributes`, unless
/// there is no room for them beside `media_type` under SNS's limit, or a `traceparent` is
/// there already.
pub(crate) fn inject(context: &SpanContext, attributes: &mut Attributes) {
    if !context.is_valid() || attributes.contains_key(TRACEPARENT) {
        return;
    }
    let state = context.trace_state().header();
    let needed = 1 + usize::from(!state.is_empty());
    // `media_type` is one of SNS's ten.
    if attributes.len() + 1 + needed > MAX_MESSAGE_ATTRIBUTES {
        tracing::debug!(
            attributes = attributes.len() + 1,
            "no room for the trace context in the message's attributes; it is sent without"
        );
        return;
    }
    attributes.insert(
        TRACEPARENT.to_owned(),
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags().to_u8()
        )
        .into(),
    );
    if !state.is_empty() {
        attributes.insert(TRACESTATE.to_owned(), state.into());
    }
}

/// Drops `tracestate`, then `traceparent`, while `attributes` (with `media_type`) are over
/// SNS's limit.
pub(crate) fn give_way(attributes: &mut Attributes) {
    for name in [TRACESTATE, TRACEPARENT] {
        // `media_type` is one of the ten.
        if attributes.len() < MAX_MESSAGE_ATTRIBUTES {
            return;
        }
        if attributes.remove(name).is_some() {
            tracing::debug!(
                attribute = name,
                "no room for the trace context in the message's attributes; dropped"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_w3c_traceparent_round_trips() {
        let context = extract(PARENT, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(format!("{:032x}", context.trace_id()), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(format!("{:016x}", context.span_id()), "00f067aa0ba902b7");
        assert!(context.is_sampled() && context.is_remote());
        let mut attributes = Attributes::new();
        inject(&context, &mut attributes);
        assert_eq!(attributes[TRACEPARENT], PARENT);
        assert_eq!(attributes[TRACESTATE], "congo=t61rcWkgMzE");
    }

    #[test]
    fn malformed_contexts_are_refused_with_a_reason() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(extract(bad, None).is_err(), "{bad}");
        }
        // A later version may carry more fields; a bad tracestate only loses the state.
        assert!(extract("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more", None).is_ok());
        assert!(extract(PARENT, Some("not a valid=state=")).unwrap().trace_state().header().is_empty());
    }

    #[test]
    fn an_x_ray_trace_header_names_the_same_ids() {
        let context =
            extract_xray("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
                .unwrap();
        assert_eq!(format!("{:032x}", context.trace_id()), "5759e988bd862e3fe1be46a994272793");
        assert_eq!(format!("{:016x}", context.span_id()), "53995c3f42cd8ad8");
        assert!(context.is_sampled() && context.is_remote());
        let unsampled =
            extract_xray("Parent=53995c3f42cd8ad8;Root=1-5759e988-bd862e3fe1be46a994272793").unwrap();
        assert!(!unsampled.is_sampled());
        for bad in [
            "Root=1-5759e988-bd862e3fe1be46a994272793",
            "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=zz995c3f42cd8ad8",
        ] {
            assert!(extract_xray(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_context_is_left_out_when_sns_has_no_room_for_it() {
        let context = extract(PARENT, None).unwrap();
        let mut full: Attributes = (0..9).map(|i| (format!("a{i}"), "v".into())).collect();
        inject(&context, &mut full);
        assert!(!full.contains_key(TRACEPARENT));
        let mut room: Attributes = (0..8).map(|i| (format!("a{i}"), "v".into())).collect();
        inject(&context, &mut room);
        assert_eq!(room[TRACEPARENT], PARENT);
        // Attributes added after the context push it out, rather than fail the publish.
        room.insert("late".to_owned(), "v".into());
        give_way(&mut room);
        assert!(!room.contains_key(TRACEPARENT));
        assert_eq!(room.len(), 9);
    }
}
