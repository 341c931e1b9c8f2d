const SLOTS = 60;
const SLOT_MS = 1_000;

/**
 * Counts events (finished jobs) over the last minute in 60 one-second slots: recording is O(1)
 * and allocation-free, reading sums at most 60 numbers. `count(now)` covers the current, partly
 * elapsed second and the 59 whole seconds before it, so it can be up to one second generous.
 */
export class ThroughputWindow {
  private readonly seconds = new Float64Array(SLOTS).fill(-1);
  private readonly counts = new Float64Array(SLOTS);

  record(now: number): void {
    const sec = Math.floor(now / SLOT_MS);
    const i = sec % SLOTS;
    if (this.seconds[i] !== sec) {
      this.seconds[i] = sec;
      this.counts[i] = 0;
    }
    this.counts[i]!++;
  }

  count(now: number): number {
    const sec = Math.floor(now / SLOT_MS);
    let n = 0;
    for (let i = 0; i < SLOTS; i++) {
      const s = this.seconds[i]!;
      if (s > sec - SLOTS && s <= sec) n += this.counts[i]!;
    }
    return n;
  }
}

/**
 * Estimated run time of one job: an exponentially weighted moving average of the observed run
 * times (start to settle) with weight `alpha` for the newest one, seeded by the first
 * observation. Until something has finished, `estimate(lowerBound)` returns `lowerBound` — the
 * lane passes how long its oldest running job has been running, which its run time is at least.
 */
export class RunTimeEstimator {
  private mean = 0;
  private observed = false;

  constructor(private readonly alpha = 0.2) {}

  observe(ms: number): void {
    if (this.observed) this.mean += this.alpha * (ms - this.mean);
    else {
      this.mean = ms;
      this.observed = true;
    }
  }

  get hasObservations(): boolean {
    return this.observed;
  }

  estimate(lowerBound: number): number {
    return this.observed ? this.mean : lowerBound;
  }
}
