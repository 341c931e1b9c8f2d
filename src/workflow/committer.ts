import type {
  Checkpoint,
  LoadedWorkflow,
  NewWorkflowRun,
  WorkflowRunRow,
  WorkflowStore,
} from "../store/workflows.js";

type Started = { run: WorkflowRunRow; created: boolean };

type CheckpointItem = {
  kind: "checkpoint";
  cp: Checkpoint;
  resolve(ok: boolean): void;
  reject(err: unknown): void;
};
type StartItem = {
  kind: "start";
  run: NewWorkflowRun;
  resolve(s: Started): void;
  reject(err: unknown): void;
};
type Item = CheckpointItem | StartItem;

/**
 * Group commit of workflow writes: every checkpoint or start asked for while a write is in flight
 * (or in the same turn of the event loop) goes into the next single transaction, up to
 * `maxBatch`. Under load many runs share one commit (one fsync on SQLite, one round trip on
 * PostgreSQL), and concurrent callers' starts share it with the steps of running runs; alone, a
 * write goes out at once, with no added delay.
 */
export class GroupCommitter {
  private queue: Item[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly store: WorkflowStore,
    private readonly maxBatch = 256,
    private readonly maxInFlight = 1,
  ) {}

  commit(cp: Checkpoint): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ kind: "checkpoint", cp, resolve, reject });
      this.schedule();
    });
  }

  /** Create a run (`createWorkflowRun`), in the next group commit. */
  start(run: NewWorkflowRun): Promise<Started> {
    return new Promise<Started>((resolve, reject) => {
      this.queue.push({ kind: "start", run, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.maxBatch);
    this.inFlight++;
    const starts: StartItem[] = [];
    const cps: CheckpointItem[] = [];
    for (const item of batch) {
      if (item.kind === "start") starts.push(item);
      else cps.push(item);
    }
    try {
      if (starts.length === 0) await this.writeCheckpoints(cps);
      else if (cps.length === 0) await this.writeStarts(starts);
      else {
        let out: Awaited<ReturnType<WorkflowStore["writeWorkflows"]>>;
        try {
          out = await this.store.writeWorkflows(
            starts.map((i) => i.run),
            cps.map((i) => i.cp),
          );
        } catch {
          // Write the two kinds apart, so a caller's start() fails only for a reason of its own
          // kind. (Had the failed transaction committed after all, a checkpoint written again
          // fails its fence and a start again finds its run.)
          await Promise.all([this.writeStarts(starts), this.writeCheckpoints(cps)]);
          return;
        }
        starts.forEach((item, i) => item.resolve(out.starts[i]!));
        cps.forEach((item, i) => item.resolve(out.checkpoints[i] ?? false));
      }
    } finally {
      this.inFlight--;
      this.schedule();
    }
  }

  private async writeCheckpoints(items: CheckpointItem[]): Promise<void> {
    try {
      const results = await this.store.appendCheckpoints(items.map((i) => i.cp));
      items.forEach((item, i) => item.resolve(results[i] ?? false));
    } catch (err) {
      for (const item of items) item.reject(err);
    }
  }

  private async writeStarts(items: StartItem[]): Promise<void> {
    try {
      const out = await this.store.writeWorkflows(
        items.map((i) => i.run),
        [],
      );
      items.forEach((item, i) => item.resolve(out.starts[i]!));
    } catch (err) {
      for (const item of items) item.reject(err);
    }
  }
}

/**
 * Loads of runs asked for in the same turn of the event loop (the wake-ups one claim handed to
 * this process start together) go to the store as one call: on PostgreSQL one round trip for
 * all of them instead of one each.
 */
export class GroupLoader {
  private queue: {
    id: string;
    resolve(l: LoadedWorkflow | null): void;
    reject(err: unknown): void;
  }[] = [];

  constructor(
    private readonly store: WorkflowStore,
    private readonly maxBatch = 256,
  ) {}

  load(id: string): Promise<LoadedWorkflow | null> {
    return new Promise((resolve, reject) => {
      if (this.queue.push({ id, resolve, reject }) === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const all = this.queue;
    this.queue = [];
    for (let i = 0; i < all.length; i += this.maxBatch) {
      const batch = all.slice(i, i + this.maxBatch);
      this.store.loadWorkflows(batch.map((b) => b.id)).then(
        (out) => batch.forEach((b, k) => b.resolve(out[k] ?? null)),
        (err: unknown) => batch.forEach((b) => b.reject(err)),
      );
    }
  }
}
