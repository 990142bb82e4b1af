-- Every parameter of a PostgreSQL server, or the one named (%(name)s, NULL for all), as
-- pg_settings has it, with the value as SHOW prints it, the entry postgresql.auto.conf (ALTER
-- SYSTEM's file) holds for it now, the time the configuration was last loaded, and the errors
-- the configuration files hold (other than a change waiting for a restart). pg_file_settings
-- reads the files as they are on disk; it is read once (MATERIALIZED), not once per parameter.
WITH files AS MATERIALIZED (
    SELECT sourcefile, seqno, name, setting, error FROM pg_file_settings
), auto AS (
    SELECT DISTINCT ON (name) name, setting, error
      FROM files
     WHERE sourcefile = current_setting('data_directory') || '/postgresql.auto.conf'
     ORDER BY name, seqno DESC
), problems AS (
    SELECT string_agg(coalesce(name, '?') || ' (' || sourcefile || '): ' || error, '; ')
           AS config_errors
      FROM files
     WHERE error IS NOT NULL AND error <> 'setting could not be applied'
)
SELECT s.name, s.setting, coalesce(s.unit, '') AS unit, s.category, s.short_desc, s.context,
       s.vartype, s.source, coalesce(s.sourcefile, '') AS sourcefile,
       coalesce(s.boot_val, '') AS boot_val, coalesce(s.reset_val, '') AS reset_val,
       coalesce(s.enumvals, '{}') AS enumvals, s.min_val, s.max_val, s.pending_restart,
       current_setting(s.name, true) AS shown,
       auto.setting AS auto_setting, auto.error AS auto_error,
       pg_conf_load_time() AS loaded, problems.config_errors
  FROM pg_settings s
  LEFT JOIN auto ON auto.name = s.name
 CROSS JOIN problems
 WHERE %(name)s::text IS NULL OR s.name = %(name)s::text
 ORDER BY s.name
