-- Processes that want the lifecycle events of other processes (the event relay). A listener
-- keeps its row alive; publishers send events (by NOTIFY) only while a row of another origin
-- exists, so the relay costs nothing while nobody listens. Times are epoch milliseconds.

CREATE TABLE IF NOT EXISTS {{schema}}.event_listeners (
  origin     text PRIMARY KEY,
  expires_at bigint NOT NULL
);
