-- 0007_listen.sql - LISTEN through a parameter: LISTEN takes an identifier, not a value, so the
-- listener (lib/notify.c) calls this function with the channel as a parameter instead of building SQL.
CREATE OR REPLACE FUNCTION extension_pulumi_state_listen(channel text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('LISTEN %I', channel);
END
$$;
