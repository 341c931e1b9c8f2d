-- Access tokens created by `loom token create`. Only the sha256 of a token is kept.
-- Times are epoch milliseconds; scopes a comma-separated list.
CREATE TABLE IF NOT EXISTS {{schema}}.access_tokens (
  id          text PRIMARY KEY,
  token_hash  text NOT NULL UNIQUE,
  name        text,
  tenant      text NOT NULL,
  project     text,
  scopes      text NOT NULL,
  created_at  bigint NOT NULL,
  revoked_at  bigint
);
