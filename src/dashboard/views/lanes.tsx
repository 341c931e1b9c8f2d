import { useState } from "preact/hooks";
import { api, enc } from "../api.js";
import { href } from "../router.js";
import type { LaneStats } from "../types.js";
import { Action, ago, fmtMs, LoadError, useLive, useLoad } from "../ui.js";

/** Running / queued / concurrency per lane (the overview's summary). */
export function LaneTable({ lanes }: { lanes: LaneStats[] }) {
  return (
    <table class="list" aria-label="Lanes">
      <thead>
        <tr>
          <th scope="col">Lane</th>
          <th scope="col">Running / slots</th>
          <th scope="col">Queued</th>
          <th scope="col">ETA</th>
        </tr>
      </thead>
      <tbody>
        {lanes.map((l) => (
          <tr key={l.name}>
            <td>
              <a href={href("lanes")}>{l.name}</a>
            </td>
            <td>
              {l.running} / {l.concurrency}
            </td>
            <td>{l.queued}</td>
            <td>{fmtMs(l.etaMs)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Shares({ lane }: { lane: LaneStats }) {
  const total = lane.perCaller.reduce((a, c) => a + c.running, 0);
  if (lane.perCaller.length === 0) return <p class="empty">No callers with work.</p>;
  return (
    <table class="list" aria-label={`Callers of lane ${lane.name}`}>
      <thead>
        <tr>
          <th scope="col">Caller</th>
          <th scope="col">Running</th>
          <th scope="col">Queued</th>
          <th scope="col">Share of running</th>
        </tr>
      </thead>
      <tbody>
        {lane.perCaller.map((c) => {
          const share = total ? Math.round((c.running / total) * 100) : 0;
          return (
            <tr key={c.caller}>
              <td>{c.caller}</td>
              <td>{c.running}</td>
              <td>{c.queued}</td>
              <td>
                <meter min={0} max={100} value={share} aria-label={`${c.caller} share`} /> {share}%
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function ConcurrencyForm({ lane, onDone }: { lane: LaneStats; onDone: () => void }) {
  const [value, setValue] = useState(String(lane.concurrency));
  const n = Number(value);
  return (
    <form
      class="inline"
      aria-label={`Concurrency of lane ${lane.name}`}
      onSubmit={(e) => e.preventDefault()}
    >
      <label>
        Concurrency{" "}
        <input
          type="number"
          min={1}
          step={1}
          value={value}
          onInput={(e) => setValue(e.currentTarget.value)}
        />
      </label>{" "}
      <Action
        label="Set"
        disabled={!Number.isInteger(n) || n < 1}
        run={async () => {
          await api(`/lanes/${enc(lane.name)}/concurrency`, { body: { concurrency: n } });
          onDone();
        }}
      />
    </form>
  );
}

export function Lanes() {
  const lanes = useLoad(() => api<{ items: LaneStats[] }>("/lanes"), []);
  useLive((e) => e.type.startsWith("task."), lanes.reload, 1000);
  return (
    <div>
      <h1>Lanes</h1>
      {lanes.error ? (
        <LoadError error={lanes.error} feature="Lanes" />
      ) : !lanes.data ? (
        <p aria-busy="true">Loading…</p>
      ) : lanes.data.items.length === 0 ? (
        <p class="empty">No lanes declared.</p>
      ) : (
        lanes.data.items.map((l) => (
          <section class="card" key={l.name} aria-label={`Lane ${l.name}`}>
            <h2>{l.name}</h2>
            <p>
              {l.running} running / {l.concurrency} slots, {l.queued} queued (oldest{" "}
              {ago(l.oldestQueuedAt)}), {l.throughput1m} done in the last minute, ETA for new work{" "}
              {fmtMs(l.etaMs)}.
            </p>
            <ConcurrencyForm lane={l} onDone={lanes.reload} />
            <Shares lane={l} />
          </section>
        ))
      )}
    </div>
  );
}
