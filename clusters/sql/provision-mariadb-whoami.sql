-- The account the server matched the console's login to, and whether it may grant everything.
SELECT CURRENT_USER() AS account,
       (SELECT COUNT(*) FROM information_schema.user_privileges
        WHERE grantee = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''',
                               SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')
          AND is_grantable = 'YES') AS grantable_privileges
