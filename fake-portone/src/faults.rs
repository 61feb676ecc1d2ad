//! Injected failures: PortOne answering 5xx, or answering so late that the caller gives up. They
//! are how tests prove the code under test retries, times out and stays consistent when the
//! payment provider misbehaves.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which API calls a fault affects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultTarget {
    /// Every PortOne API request.
    #[default]
    Any,
    /// `GET /payments/{paymentId}`.
    Get,
    /// `POST /payments/{paymentId}/cancel`.
    Cancel,
}

/// A failure to inject into the next API calls; `times: None` means until cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answers 500, then 502, then 503 (and round again) with an error body, doing nothing.
    ServerError { times: Option<u32>, on: FaultTarget },
    /// Sleeps `delay`, then answers normally (the request takes effect even if the caller left).
    Slow {
        delay: Duration,
        times: Option<u32>,
        on: FaultTarget,
    },
}

impl Fault {
    fn target(&self) -> FaultTarget {
        match self {
            Fault::ServerError { on, .. } | Fault::Slow { on, .. } => *on,
        }
    }

    fn times(&self) -> Option<u32> {
        match self {
            Fault::ServerError { times, .. } | Fault::Slow { times, .. } => *times,
        }
    }
}

/// What a request meets: the kind of API call it is, for matching faults against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    Get,
    Cancel,
    Other,
}

impl CallKind {
    fn matches(self, target: FaultTarget) -> bool {
        match target {
            FaultTarget::Any => true,
            FaultTarget::Get => self == CallKind::Get,
            FaultTarget::Cancel => self == CallKind::Cancel,
        }
    }
}

/// What the request gets instead of (or before) a normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    ServerError(u16),
    Slow(Duration),
}

const SERVER_ERRORS: [u16; 3] = [500, 502, 503];

/// A fault with the calls it has left and how often it fired.
#[derive(Debug, Clone)]
pub(crate) struct ActiveFault {
    pub fault: Fault,
    pub remaining: Option<u32>,
    pub hits: u32,
}

impl ActiveFault {
    pub fn new(fault: Fault) -> Self {
        Self {
            remaining: fault.times(),
            fault,
            hits: 0,
        }
    }

    /// The control routes' view: `{kind, times (left, null = unlimited), delayMs?, path, hits}`.
    pub fn describe(&self) -> serde_json::Value {
        let mut view = serde_json::json!({
            "times": self.remaining,
            "path": self.fault.target(),
            "hits": self.hits,
        });
        match &self.fault {
            Fault::ServerError { .. } => view["kind"] = "server-error".into(),
            Fault::Slow { delay, .. } => {
                view["kind"] = "slow".into();
                let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                view["delayMs"] = millis.into();
            }
        }
        view
    }
}

/// Fires the first active fault matching `call`, using up one of its calls.
pub(crate) fn take(faults: &mut Vec<ActiveFault>, call: CallKind) -> Option<Applied> {
    let index = faults
        .iter()
        .position(|active| call.matches(active.fault.target()))?;
    let active = &mut faults[index];
    let applied = match &active.fault {
        Fault::ServerError { .. } => {
            let cycle = usize::try_from(active.hits).unwrap_or(0) % SERVER_ERRORS.len();
            Applied::ServerError(SERVER_ERRORS[cycle])
        }
        Fault::Slow { delay, .. } => Applied::Slow(*delay),
    };
    active.hits = active.hits.saturating_add(1);
    if let Some(remaining) = active.remaining.as_mut() {
        *remaining = remaining.saturating_sub(1);
        if *remaining == 0 {
            faults.remove(index);
        }
    }
    Some(applied)
}

/// The body a server-error fault answers with, shaped like PortOne's `{type, message}` errors.
pub(crate) fn server_error_body(status: u16) -> serde_json::Value {
    let kind = match status {
        502 => "BAD_GATEWAY",
        503 => "SERVICE_UNAVAILABLE",
        _ => "INTERNAL_SERVER_ERROR",
    };
    serde_json::json!({ "type": kind, "message": "fake PortOne: injected server error" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_fault_fires_its_times_then_goes() {
        let mut faults = vec![ActiveFault::new(Fault::ServerError {
            times: Some(2),
            on: FaultTarget::Any,
        })];
        assert_eq!(
            take(&mut faults, CallKind::Get),
            Some(Applied::ServerError(500))
        );
        assert_eq!(
            take(&mut faults, CallKind::Cancel),
            Some(Applied::ServerError(502))
        );
        assert_eq!(take(&mut faults, CallKind::Get), None);
        assert!(faults.is_empty());
    }

    #[test]
    fn a_targeted_fault_leaves_other_calls_alone() {
        let delay = Duration::from_millis(5);
        let mut faults = vec![ActiveFault::new(Fault::Slow {
            delay,
            times: None,
            on: FaultTarget::Cancel,
        })];
        assert_eq!(take(&mut faults, CallKind::Get), None);
        assert_eq!(take(&mut faults, CallKind::Other), None);
        assert_eq!(
            take(&mut faults, CallKind::Cancel),
            Some(Applied::Slow(delay))
        );
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0].describe()["delayMs"], 5);
    }
}
