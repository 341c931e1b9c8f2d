import type { Checkpoint, WorkflowStore } from "../store/workflows.js";

interface Item {
  cp: Checkpoint;
  resolve(ok: boolean): void;
  reject(err: unknown): void;
}

/**
 * Group commit of workflow checkpoints: every checkpoint asked for while a write is in flight (or
 * in the same turn of the event loop) goes into the next single transaction, up to `maxBatch`.
 * Under load many runs share one commit (one fsync on SQLite, one round trip on PostgreSQL);
 * alone, a checkpoint is written at once, with no added delay.
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
      this.queue.push({ cp, resolve, reject });
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
    try {
      const results = await this.store.appendCheckpoints(batch.map((i) => i.cp));
      batch.forEach((item, i) => item.resolve(results[i] ?? false));
    } catch (err) {
      for (const item of batch) item.reject(err);
    } finally {
      this.inFlight--;
      this.schedule();
    }
  }
}
