import {
  metrics,
  trace,
  context,
  propagation,
  type Counter,
  type Histogram,
  type Meter,
  type Tracer,
} from "@opentelemetry/api";

/**
 * Loom's instruments, created once per engine from the injected (or global) meter. Without an
 * OpenTelemetry SDK registered, these are the API's no-ops and cost next to nothing.
 */
export class Instruments {
  readonly submitted: Counter;
  readonly completed: Counter;
  readonly failed: Counter;
  readonly retried: Counter;
  readonly crashed: Counter;
  readonly cancelled: Counter;
  readonly gateDecisions: Counter;
  readonly queueWait: Histogram;
  readonly runTime: Histogram;
  readonly tracer: Tracer;
  /** For instruments other modules own (lane gauges). */
  readonly meter: Meter;

  constructor(meter?: Meter, tracer?: Tracer) {
    const m = meter ?? metrics.getMeter("loomkit");
    this.meter = m;
    this.tracer = tracer ?? trace.getTracer("loomkit");
    this.submitted = m.createCounter("loom.tasks.submitted", { description: "Tasks submitted" });
    this.completed = m.createCounter("loom.tasks.completed", { description: "Tasks completed" });
    this.failed = m.createCounter("loom.tasks.failed", { description: "Tasks failed for good" });
    this.retried = m.createCounter("loom.tasks.retried", { description: "Attempts retried" });
    this.crashed = m.createCounter("loom.tasks.crashed", {
      description: "Attempts found crashed (lease expired or engine restarted)",
    });
    this.cancelled = m.createCounter("loom.tasks.cancelled", { description: "Tasks cancelled" });
    this.gateDecisions = m.createCounter("loom.gate.decisions", {
      description: "Quality gate decisions by reason",
    });
    this.queueWait = m.createHistogram("loom.task.queue_wait", {
      description: "Time from runnable to started",
      unit: "ms",
    });
    this.runTime = m.createHistogram("loom.task.run_time", {
      description: "Time an attempt ran",
      unit: "ms",
    });
  }
}

/** The W3C trace context of the active span, to store on a task so its trace crosses processes. */
export function captureTraceContext(): Record<string, string> | null {
  const span = trace.getActiveSpan();
  if (!span) return null;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return Object.keys(carrier).length ? carrier : null;
}

export function contextFrom(carrier: Record<string, string> | null) {
  return carrier ? propagation.extract(context.active(), carrier) : context.active();
}
