DROP TABLE IF EXISTS settlements;
DROP TABLE IF EXISTS settlement_partials;
DROP TABLE IF EXISTS settlement_runs;
