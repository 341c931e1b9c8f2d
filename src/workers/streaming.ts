import { StringDecoder } from "node:string_decoder";
import type { HandlerFn, RunningTask, TaskContext } from "../core/types.js";
import { OutputLimitError } from "./errors.js";
import {
  checkLimit,
  checkProcessOptions,
  DEFAULT_MAX_OUTPUT_BYTES,
  processSpec,
  runProcess,
  type ProcessOptions,
} from "./process.js";

/** Progress found in one line of output. */
export interface ProgressUpdate {
  /** 0–100. */
  pct: number;
  note?: string;
}

export interface StreamingOptions<I = unknown, R = unknown> extends ProcessOptions<I> {
  /**
   * Recognises progress in a line of stdout: returns `{ pct, note? }` (pct from 0 to 100) or
   * `null` for a line that is output. Default: `defaultProgress`, which takes a JSON object with a
   * numeric `progress` field (`{"progress": 40, "note": "resizing"}`) and a line that starts or
   * ends with a percentage (`42%`, `42% resizing`, `resizing: 42%`).
   */
  progress?: (line: string) => ProgressUpdate | null;
  /**
   * Turns the output lines (every stdout line that was not progress, without its line break)
   * into the task's result. Default: `parseLines` — the last non-empty line when it is a JSON
   * object or array, otherwise all lines joined with `\n` (trailing whitespace removed), and
   * `undefined` when there is no output.
   */
  parse?: (lines: readonly string[], task: RunningTask<I>) => R | Promise<R>;
}

const PCT = String.raw`(\d{1,3}(?:\.\d+)?)\s*%`;
const LEADING_PCT = new RegExp(String.raw`^${PCT}(?:\s*[:\-–]?\s+(.*))?$`);
const TRAILING_PCT = new RegExp(String.raw`^(?:(.*?)[\s:\-–]+)?${PCT}$`);

function validPct(pct: unknown): pct is number {
  return typeof pct === "number" && Number.isFinite(pct) && pct >= 0 && pct <= 100;
}

function update(pct: number, note: string | undefined): ProgressUpdate | null {
  if (!validPct(pct)) return null;
  const text = note?.trim();
  return text ? { pct, note: text } : { pct };
}

/**
 * The default progress recogniser: `{"progress": 40, "note": "…"}` (a JSON object with a numeric
 * `progress` from 0 to 100; `note` optional), or a line that starts or ends with a percentage:
 * `42%`, `42% resizing`, `resizing: 42%` (the rest of the line is the note).
 */
export function defaultProgress(line: string): ProgressUpdate | null {
  const text = line.trim();
  if (text.startsWith("{")) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return null;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
    const { progress, note } = value as { progress?: unknown; note?: unknown };
    return validPct(progress)
      ? update(progress, typeof note === "string" ? note : undefined)
      : null;
  }
  let m = LEADING_PCT.exec(text);
  if (m) return update(Number(m[1]), m[2]);
  m = TRAILING_PCT.exec(text);
  if (m) return update(Number(m[2]), m[1]);
  return null;
}

/** The default `parse`: a final JSON object/array line, else the joined text, else nothing. */
export function parseLines(lines: readonly string[]): unknown {
  let last = lines.length - 1;
  while (last >= 0 && lines[last]!.trim() === "") last--;
  if (last < 0) return undefined;
  const final = lines[last]!.trim();
  if (final.startsWith("{") || final.startsWith("[")) {
    try {
      return JSON.parse(final) as unknown;
    } catch {
      // not JSON after all: fall back to the text
    }
  }
  return lines
    .slice(0, last + 1)
    .join("\n")
    .trimEnd();
}

/** Splits a byte stream into lines (`\n` or `\r\n`), decoding UTF-8 across chunk boundaries. */
class LineSplitter {
  private readonly decoder = new StringDecoder("utf8");
  private partial = "";

  constructor(
    private readonly maxLine: number,
    private readonly tooLong: () => Error,
  ) {}

  push(chunk: Buffer, onLine: (line: string) => void): void {
    const text = this.partial + this.decoder.write(chunk);
    const parts = text.split("\n");
    this.partial = parts.pop()!;
    if (this.partial.length > this.maxLine) throw this.tooLong();
    for (const part of parts) onLine(part.endsWith("\r") ? part.slice(0, -1) : part);
  }

  end(onLine: (line: string) => void): void {
    const rest = this.partial + this.decoder.end();
    this.partial = "";
    if (rest !== "") onLine(rest.endsWith("\r") ? rest.slice(0, -1) : rest);
  }
}

/**
 * Sends progress to the engine without letting writes pile up: while one report is being
 * written, newer ones replace the one waiting, so a chatty command costs at most one write in
 * flight. Failures (an attempt that lost its task) are left to `ctx.signal`.
 */
class ProgressReporter {
  private inFlight: Promise<void> | null = null;
  private waiting: ProgressUpdate | null = null;

  constructor(private readonly ctx: TaskContext) {}

  report(update: ProgressUpdate): void {
    this.waiting = update;
    if (!this.inFlight) this.next();
  }

  private next(): void {
    const update = this.waiting;
    this.waiting = null;
    this.inFlight = update
      ? this.ctx
          .progress(update.pct, update.note)
          .catch((err: unknown) => this.ctx.log.debug({ err }, "progress report failed"))
          .then(() => this.next())
      : null;
  }

  /** Resolves once every report has been written. */
  async flush(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }
}

/**
 * A worker that runs a command and reads its stdout line by line: lines that carry progress
 * (see `progress`) call `ctx.progress(pct, note)` and emit `task.progress`; the other lines are
 * the output, turned into the result by `parse`. Input, timeouts, process-group kills and errors
 * work as in `subprocess`. While a progress report is being written, a newer one replaces the
 * one waiting (so a command printing thousands of updates a second costs one write at a time);
 * the last report is written before the attempt completes.
 *
 * @example
 * engine.register("encode", streaming({ command: "ffmpeg-wrapper", args: (t) => [t.input.file] }));
 */
export function streaming<I = unknown, R = unknown>(
  opts: StreamingOptions<I, R>,
): HandlerFn<I, Awaited<R>> {
  checkProcessOptions(opts);
  const maxBytes = checkLimit(opts.maxOutputBytes, "maxOutputBytes", DEFAULT_MAX_OUTPUT_BYTES);
  const recognise = opts.progress ?? defaultProgress;
  const parse = opts.parse ?? (parseLines as (lines: readonly string[]) => R);

  return async (task: RunningTask<I>, ctx: TaskContext): Promise<Awaited<R>> => {
    const spec = processSpec(opts, task);
    const reporter = new ProgressReporter(ctx);
    const tooMuch = () => new OutputLimitError("stdout", maxBytes, spec.command);
    const splitter = new LineSplitter(maxBytes, tooMuch);
    const lines: string[] = [];
    let kept = 0;
    const onLine = (line: string) => {
      const found = recognise(line);
      if (found) {
        if (validPct(found.pct)) reporter.report(found);
        return;
      }
      kept += Buffer.byteLength(line) + 1;
      if (kept > maxBytes) throw tooMuch();
      lines.push(line);
    };
    try {
      await runProcess(spec, ctx.signal, {
        onStdout: (chunk) => splitter.push(chunk, onLine),
      });
      splitter.end(onLine);
    } finally {
      await reporter.flush();
    }
    return await parse(lines, task);
  };
}
