// Shared pieces: data loading hooks, live refresh, status badges, JSON and time rendering.
// Everything user-supplied is rendered as text nodes (Preact escapes it); no raw HTML anywhere.

import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, UnauthorizedError, UnavailableError } from "./api.js";
import { onEvent, onReset } from "./events.js";
import type { LoomEvent } from "./types.js";

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` on mount and whenever `deps` change; `reload()` refetches without flicker. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  const gen = useRef(0);
  const run = useCallback(() => {
    const mine = ++gen.current;
    load().then(
      (d) => {
        if (mine !== gen.current) return;
        setData(d);
        setError(undefined);
        setLoading(false);
      },
      (e: unknown) => {
        if (mine !== gen.current) return;
        setError(e);
        setLoading(false);
      },
    );
  }, deps);
  useEffect(() => {
    setLoading(true);
    run();
  }, [run]);
  return { data, error, loading, reload: run };
}

/** Calls `fn` (at most every `ms`) when a matching live event arrives or the stream resets. */
export function useLive(match: (e: LoomEvent) => boolean, fn: () => void, ms = 250): void {
  const latest = useRef({ match, fn });
  latest.current = { match, fn };
  useEffect(() => {
    let pending: ReturnType<typeof setTimeout> | undefined;
    const schedule = () => {
      if (pending !== undefined) return;
      pending = setTimeout(() => {
        pending = undefined;
        latest.current.fn();
      }, ms);
    };
    const offEvent = onEvent((e) => {
      if (latest.current.match(e)) schedule();
    });
    const offReset = onReset(schedule);
    return () => {
      offEvent();
      offReset();
      clearTimeout(pending);
    };
  }, [ms]);
}

export function Unavailable({ feature }: { feature: string }) {
  return (
    <div class="empty" role="status">
      <h2>{feature} are not available</h2>
      <p>This server does not offer the {feature.toLowerCase()} API yet.</p>
    </div>
  );
}

/** Renders a load error: unavailable feature, token needed, or the problem's text. */
export function LoadError({ error, feature }: { error: unknown; feature: string }) {
  if (error instanceof UnavailableError) return <Unavailable feature={feature} />;
  if (error instanceof UnauthorizedError) {
    return (
      <p class="empty" role="status">
        A token is needed to read {feature.toLowerCase()}.
      </p>
    );
  }
  const msg = error instanceof ApiError ? `${error.code}: ${error.message}` : String(error);
  return (
    <p class="error" role="alert">
      {msg}
    </p>
  );
}

export function Status({ status }: { status: string }) {
  return (
    <span class={`badge s-${status.replace(/[^a-z_]/g, "")}`}>{status.replace("_", " ")}</span>
  );
}

export function Json({ value, label }: { value: unknown; label: string }) {
  const text = value === undefined ? "—" : JSON.stringify(value, null, 2);
  return (
    <pre class="json" aria-label={label} tabIndex={0}>
      {text}
    </pre>
  );
}

export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 90) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = s / 60;
  if (m < 90) return `${m.toFixed(0)} min`;
  return `${(m / 60).toFixed(1)} h`;
}

export function ago(iso: string | null | undefined): string {
  if (!iso) return "—";
  const ms = Date.now() - new Date(iso).getTime();
  return ms >= 0 ? `${fmtMs(ms)} ago` : `in ${fmtMs(-ms)}`;
}

export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section class="card" aria-label={title}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

/** A button that runs an async action and shows its error beside it. */
export function Action({
  label,
  run,
  danger,
  disabled,
}: {
  label: string;
  run: () => Promise<unknown>;
  danger?: boolean;
  disabled?: boolean;
}) {
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  return (
    <span class="action">
      <button
        type="button"
        class={danger ? "danger" : ""}
        disabled={busy || disabled}
        onClick={() => {
          setBusy(true);
          setErr(null);
          run().then(
            () => setBusy(false),
            (e: unknown) => {
              setBusy(false);
              setErr(e instanceof Error ? e.message : String(e));
            },
          );
        }}
      >
        {label}
      </button>
      {err && (
        <span class="error" role="alert">
          {err}
        </span>
      )}
    </span>
  );
}
