-- Whether each library named for a *_preload_libraries parameter (%(names)s, a text[]) exists
-- where the server looks for it: a bare name in PKGLIBDIR with the .so suffix, a path (with
-- $libdir standing for PKGLIBDIR) as given or with the suffix. A missing one passes ALTER SYSTEM
-- and the reload, and stops the next start. pg_stat_file(…, true) is NULL for a missing file.
SELECT n AS name,
       CASE WHEN position('/' IN n) = 0
            THEN (pg_stat_file(d.dir || '/' || n || '.so', true)).size IS NOT NULL
            ELSE (pg_stat_file(replace(n, '$libdir', d.dir), true)).size IS NOT NULL
              OR (pg_stat_file(replace(n, '$libdir', d.dir) || '.so', true)).size IS NOT NULL
       END AS found
  FROM unnest(%(names)s::text[]) AS n,
       (SELECT setting AS dir FROM pg_config WHERE name = 'PKGLIBDIR') AS d
