-- pg_tenant 0.2.0 -> 0.3.0 (committed whole; scripts/upgrade.sh checks that an upgraded database
-- equals a fresh 0.3.0 install object for object).
\echo Use "ALTER EXTENSION pg_tenant UPDATE TO '0.3.0'" to load this file. \quit
