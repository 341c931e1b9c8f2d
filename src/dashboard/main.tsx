import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { auth, getToken, setToken } from "./api.js";
import { onStreamState, restartEvents, startEvents, type StreamState } from "./events.js";
import { href, useRoute } from "./router.js";
import { Flows } from "./views/flows.js";
import { Lanes } from "./views/lanes.js";
import { Overview } from "./views/overview.js";
import { Schedules } from "./views/schedules.js";
import { Tasks } from "./views/tasks.js";
import { Workflows } from "./views/workflows.js";

const VIEWS = [
  ["", "Overview"],
  ["tasks", "Tasks"],
  ["workflows", "Workflows"],
  ["flows", "Flows"],
  ["lanes", "Lanes"],
  ["schedules", "Schedules"],
] as const;

type Theme = "light" | "dark" | "system";
const THEME_KEY = "loom.theme";

function applyTheme(t: Theme): void {
  if (t === "system") delete document.documentElement.dataset["theme"];
  else document.documentElement.dataset["theme"] = t;
}

function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(
    () => (localStorage.getItem(THEME_KEY) as Theme) ?? "system",
  );
  useEffect(() => {
    applyTheme(theme);
    localStorage.setItem(THEME_KEY, theme);
  }, [theme]);
  return (
    <label class="theme">
      Theme{" "}
      <select value={theme} onChange={(e) => setTheme(e.currentTarget.value as Theme)}>
        <option value="system">system</option>
        <option value="light">light</option>
        <option value="dark">dark</option>
      </select>
    </label>
  );
}

function TokenPrompt({ onToken }: { onToken: () => void }) {
  const [needed, setNeeded] = useState(auth.needed);
  const [value, setValue] = useState("");
  useEffect(() => auth.subscribe(() => setNeeded(auth.needed)), []);
  if (!needed) return null;
  return (
    <form
      class="token card"
      aria-label="Sign in"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(value.trim() || null);
        setValue("");
        auth.satisfied();
        restartEvents();
        onToken(); // views refetch
      }}
    >
      <p>
        {getToken() ? "The saved token was refused." : "This server needs a bearer token."} It is
        kept for this tab only (sessionStorage).
      </p>
      <label>
        Token{" "}
        <input
          type="password"
          autoComplete="off"
          required
          value={value}
          onInput={(e) => setValue(e.currentTarget.value)}
        />
      </label>{" "}
      <button type="submit">Use token</button>
    </form>
  );
}

function StreamBadge() {
  const [s, setS] = useState<StreamState>("offline");
  useEffect(() => onStreamState(setS), []);
  return (
    <span class={`stream ${s}`} role="status" aria-label={`live updates: ${s}`}>
      ● {s}
    </span>
  );
}

function App() {
  const route = useRoute();
  const [section = "", ...rest] = route.path;
  // Remount a view when the hash changes so it refetches (also after a token is entered).
  const [gen, setGen] = useState(0);
  const key = `${location.hash}#${gen}`;
  let view;
  switch (section) {
    case "tasks":
      view = <Tasks key={key} id={rest[0]} query={route.query} />;
      break;
    case "workflows":
      view = <Workflows key={key} id={rest[0]} />;
      break;
    case "flows":
      view = <Flows key={key} id={rest[0]} />;
      break;
    case "lanes":
      view = <Lanes key={key} />;
      break;
    case "schedules":
      view = <Schedules key={key} />;
      break;
    default:
      view = <Overview key={key} />;
  }
  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById("main")?.focus();
        }}
      >
        Skip to content
      </a>
      <header>
        <strong class="brand">Loom</strong>
        <nav aria-label="Views">
          {VIEWS.map(([path, label]) => (
            <a
              href={href(...(path ? [path] : []))}
              aria-current={section === path ? "page" : undefined}
            >
              {label}
            </a>
          ))}
        </nav>
        <StreamBadge />
        <ThemeToggle />
      </header>
      <TokenPrompt onToken={() => setGen((g) => g + 1)} />
      <main id="main" tabIndex={-1}>
        {view}
      </main>
    </>
  );
}

startEvents();
render(<App />, document.getElementById("app")!);
