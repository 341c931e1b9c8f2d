/** Terminal output: JSON for scripts, tables and colours for people. No dependencies. */

export interface Output {
  json: boolean;
  color: boolean;
  /** stdout is a terminal (progress bars redraw in place only then). */
  tty: boolean;
  out(line?: string): void;
  err(line: string): void;
  /** Print `value` as JSON (one document). */
  data(value: unknown): void;
}

export function createOutput(opts: { json?: boolean; color?: boolean }): Output {
  const tty = Boolean(process.stdout.isTTY);
  const color =
    opts.color !== false && tty && !("NO_COLOR" in process.env && process.env.NO_COLOR !== "");
  return {
    json: Boolean(opts.json),
    color,
    tty,
    out: (line = "") => process.stdout.write(line + "\n"),
    err: (line) => process.stderr.write(line + "\n"),
    data: (value) => process.stdout.write(JSON.stringify(value, null, 2) + "\n"),
  };
}

const CODES = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  blue: [34, 39],
  magenta: [35, 39],
  cyan: [36, 39],
  gray: [90, 39],
} as const;
export type Colour = keyof typeof CODES;

export function paint(o: Pick<Output, "color">, colour: Colour, text: string): string {
  if (!o.color) return text;
  const [open, close] = CODES[colour];
  return `\u001b[${open}m${text}\u001b[${close}m`;
}

const STATUS_COLOURS: Record<string, Colour> = {
  pending: "gray",
  claimed: "blue",
  running: "cyan",
  retrying: "yellow",
  completed: "green",
  failed: "red",
  failed_crash: "magenta",
  cancelled: "dim",
};

export const paintStatus = (o: Pick<Output, "color">, status: string): string =>
  paint(o, STATUS_COLOURS[status] ?? "bold", status);

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;
const visibleLength = (s: string) => s.replace(ANSI, "").length;

/** A plain aligned table; cells may hold colour codes. */
export function table(o: Pick<Output, "color">, headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ""))),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + " ".repeat(widths[i]! - visibleLength(c))))
      .join("  ")
      .trimEnd();
  return [paint(o, "bold", line(headers)), ...rows.map(line)].join("\n");
}

/** `12s`, `3m 4s`, `2h 5m`, `3d 1h` for a duration in ms. */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** `5s ago` style age of a date, from `now`. */
export const ago = (d: Date | null, now = Date.now()): string =>
  d ? `${humanDuration(Math.max(0, now - d.getTime()))} ago` : "-";

/** `[#######-----]  42% note` */
export function progressBar(pct: number, width = 30): string {
  const p = Math.max(0, Math.min(100, pct));
  const full = Math.round((p / 100) * width);
  return `[${"#".repeat(full)}${"-".repeat(width - full)}] ${String(Math.round(p)).padStart(3)}%`;
}

/** Shorten a JSON value for one table cell. */
export function brief(value: unknown, max = 40): string {
  if (value === null || value === undefined) return "-";
  const s = typeof value === "string" ? value : JSON.stringify(value);
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}
