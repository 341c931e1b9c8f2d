import { Cron } from "croner";
import { ValidationError } from "../core/errors.js";

/**
 * Cron patterns through `croner` (time zones, DST, 5 or 6 fields — a leading seconds field).
 * Paused instances: Loom only asks them for times; it never lets them run timers.
 */
export interface CronTicker {
  /** The first tick strictly after `after` (epoch ms), or `null` when the pattern has no more. */
  next(after: number): number | null;
}

function checkTimezone(timezone: string): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    throw new ValidationError(`unknown time zone "${timezone}"`, "timezone");
  }
}

/** Compile a pattern for a time zone; a bad pattern or zone is a `ValidationError`. */
export function compileCron(pattern: string, timezone: string): CronTicker {
  if (typeof pattern !== "string" || pattern.trim() === "")
    throw new ValidationError("must be a cron pattern", "cron");
  if (typeof timezone !== "string" || timezone === "")
    throw new ValidationError("must be an IANA time zone name", "timezone");
  checkTimezone(timezone);
  let cron: Cron;
  try {
    // UTC as an offset: croner's time-zone path costs ~1 ms per lookup (Intl), the offset ~20 µs.
    const zone = timezone === "UTC" || timezone === "Etc/UTC" ? { utcOffset: 0 } : { timezone };
    cron = new Cron(pattern, { ...zone, paused: true });
    cron.nextRun(new Date(0));
  } catch (err) {
    throw new ValidationError(
      `invalid cron pattern "${pattern}": ${(err as Error).message}`,
      "cron",
    );
  }
  return {
    next(after) {
      const at = cron.nextRun(new Date(after));
      return at === null ? null : at.getTime();
    },
  };
}
