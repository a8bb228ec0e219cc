-- 0003_events_json.sql - keep engine events as the CLI sent them (json, not jsonb): no re-encoding
-- on the hot path, and NUL characters in event text are kept.
ALTER TABLE extension_pulumi_state_events ALTER COLUMN event TYPE json USING event::json;
