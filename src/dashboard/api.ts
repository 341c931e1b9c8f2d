// The dashboard's only door to the server: same-origin fetches to /api/v1 with the bearer token
// (kept in sessionStorage) and problem+json errors turned into typed errors.

const TOKEN_KEY = "loom.token";
const API = "./api/v1";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The route does not exist on this server (another feature not installed yet). */
export class UnavailableError extends ApiError {}

/** The server wants a (valid) token. */
export class UnauthorizedError extends ApiError {}

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  for (const fn of authListeners) fn();
}

const authListeners = new Set<() => void>();
let authNeeded = false;

/** Whether the last API answer was 401: the app then shows the token prompt. */
export const auth = {
  get needed(): boolean {
    return authNeeded;
  },
  subscribe(fn: () => void): () => void {
    authListeners.add(fn);
    return () => authListeners.delete(fn);
  },
  demand(): void {
    authNeeded = true;
    for (const fn of authListeners) fn();
  },
  satisfied(): void {
    if (!authNeeded) return;
    authNeeded = false;
    for (const fn of authListeners) fn();
  },
};

export function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

interface Problem {
  status?: number;
  code?: string;
  detail?: string;
  title?: string;
}

export async function api<T>(
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json", ...authHeaders() };
  let body: string | undefined;
  if (init.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(init.body);
  }
  const res = await fetch(API + path, {
    method: init.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
  });
  if (res.ok) {
    auth.satisfied();
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }
  let problem: Problem = {};
  try {
    problem = (await res.json()) as Problem;
  } catch {
    // not JSON: keep the status line
  }
  const code = problem.code ?? `HTTP_${res.status}`;
  const message = problem.detail ?? problem.title ?? res.statusText;
  if (res.status === 401) {
    auth.demand();
    throw new UnauthorizedError(401, code, message);
  }
  // The server's catch-all 404 says "no such route": that feature is not mounted here.
  if (res.status === 404 && code === "NOT_FOUND" && message === "no such route") {
    throw new UnavailableError(404, code, message);
  }
  throw new ApiError(res.status, code, message);
}

export const q = (params: Record<string, string | number | undefined | null>): string => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== "") s.set(k, String(v));
  const out = s.toString();
  return out ? `?${out}` : "";
};

export const enc = encodeURIComponent;
