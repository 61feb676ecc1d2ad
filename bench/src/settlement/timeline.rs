//! Where the time of one settlement run goes: a tracing layer that keeps the step timings the
//! scheduler and the worker log (`settlement run started`, `partition counted`, `settlement run
//! completed`) with the instant each was logged, plus the bench's own marks (a message handed
//! to the worker), and turns them into a breakdown relative to the start of the run.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Instant,
};

use serde_json::{Value, json};
use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    Layer, filter::Targets, layer::Context, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::report::round;

/// One logged step.
#[derive(Debug, Clone)]
pub struct Mark {
    pub at: Instant,
    pub message: String,
    pub fields: BTreeMap<String, f64>,
}

/// The marks of the run being measured; cleared before each run.
#[derive(Debug, Clone, Default)]
pub struct Timeline(Arc<Mutex<Vec<Mark>>>);

impl Timeline {
    /// Installs the layer (and, when `RUST_LOG` is set, readable logs) as the global subscriber.
    pub fn install() -> Self {
        let timeline = Self::default();
        let targets = Targets::new()
            .with_target("settlement_worker", Level::INFO)
            .with_target("shared::services::settlement_run", Level::INFO);
        let logs = std::env::var_os("RUST_LOG").is_some().then(|| {
            tracing_subscriber::fmt::layer()
                .compact()
                .with_filter(tracing_subscriber::EnvFilter::from_default_env())
        });
        let _ = tracing_subscriber::registry()
            .with(timeline.clone().with_filter(targets))
            .with(logs)
            .try_init();
        timeline
    }

    pub fn clear(&self) {
        self.marks().clear();
    }

    /// Records a step of the bench's own.
    pub fn mark(&self, message: &str) {
        self.marks().push(Mark {
            at: Instant::now(),
            message: message.to_owned(),
            fields: BTreeMap::new(),
        });
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, Vec<Mark>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The run's steps in milliseconds from `started` (the call of `start_run`).
    pub fn breakdown(&self, started: Instant, completed: Instant) -> Value {
        let marks = self.marks().clone();
        let ms = |at: Instant| round(at.saturating_duration_since(started).as_secs_f64() * 1e3, 1);
        let field = |mark: &Mark, name: &str| mark.fields.get(name).map(|ms| round(*ms, 1));
        let find = |message: &str| marks.iter().find(|mark| mark.message == message);
        let scheduler = find("settlement run started");
        let receives: Vec<&Mark> = marks
            .iter()
            .filter(|mark| mark.message == "received")
            .collect();
        let partitions: Vec<Value> = marks
            .iter()
            .filter(|mark| mark.message == "partition counted")
            .map(|mark| {
                json!({
                    "partition": field(mark, "partition"),
                    "counted_at_ms": ms(mark.at),
                    "group_by_ms": field(mark, "aggregate_ms"),
                    "partials_upsert_ms": field(mark, "partials_ms"),
                    "run_state_marks_ms": field(mark, "marks_ms"),
                })
            })
            .collect();
        let finalized = find("settlement run completed");
        json!({
            "start_run_ms": scheduler.and_then(|m| field(m, "total_ms")),
            "day_lock_ms": scheduler.and_then(|m| field(m, "acquire_ms")),
            "record_and_enqueue_ms": scheduler.and_then(|m| field(m, "record_enqueue_ms")),
            "first_receive_at_ms": receives.first().map(|m| ms(m.at)),
            "last_receive_at_ms": receives.last().map(|m| ms(m.at)),
            "partitions": partitions,
            "finalize": finalized.map(|m| json!({
                "settlements_written_ms": field(m, "write_ms"),
                "invariant_query_ms": field(m, "check_ms"),
                "run_state_check_ms": field(m, "run_state_ms"),
                "commit_ms": field(m, "commit_ms"),
            })),
            "completed_at_ms": ms(completed),
        })
    }
}

impl<S: Subscriber> Layer<S> for Timeline {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        self.marks().push(Mark {
            at: Instant::now(),
            message: visitor.message,
            fields: visitor.numbers,
        });
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    numbers: BTreeMap<String, f64>,
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.numbers.insert(field.name().to_owned(), value);
    }

    // Counts and partition numbers are far below 2^53.
    #[allow(clippy::cast_precision_loss)]
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.numbers.insert(field.name().to_owned(), value as f64);
    }

    #[allow(clippy::cast_precision_loss)]
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.numbers.insert(field.name().to_owned(), value as f64);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}
