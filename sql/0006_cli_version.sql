-- 0006_cli_version.sql - the CLI release that ran an update (from its User-Agent), so a journaled
-- update's replayed state is stamped with the CLI's version, as the CLI's own replay stamps it.

ALTER TABLE extension_pulumi_state_updates ADD COLUMN IF NOT EXISTS cli_version text;
