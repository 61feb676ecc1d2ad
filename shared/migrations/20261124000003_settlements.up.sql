-- Settlement runs, mirrored from the DynamoDB run state for history and the admin API.
CREATE TABLE settlement_runs (
    id              CHAR(36)    NOT NULL,
    settlement_date DATE        NOT NULL,
    status          VARCHAR(16) NOT NULL,
    partitions      INT         NOT NULL,
    partitions_done INT         NOT NULL DEFAULT 0,
    error           TEXT        NULL,
    started_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    finished_at     DATETIME(6) NULL,
    PRIMARY KEY (id),
    -- the runs of one day, newest first
    KEY idx_settlement_runs_date (settlement_date, started_at),
    CONSTRAINT ck_settlement_runs_status CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED')),
    CONSTRAINT ck_settlement_runs_partitions CHECK (partitions > 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- What one partition of a run counted per partner. The primary key makes a redelivered partition
-- overwrite its own row instead of adding to it.
CREATE TABLE settlement_partials (
    run_id       CHAR(36) NOT NULL,
    partition_no INT      NOT NULL,
    partner_id   BIGINT   NOT NULL,
    order_count  BIGINT   NOT NULL,
    gross_amount BIGINT   NOT NULL,
    PRIMARY KEY (run_id, partition_no, partner_id),
    CONSTRAINT fk_settlement_partials_run FOREIGN KEY (run_id) REFERENCES settlement_runs (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One payout per partner and day.
CREATE TABLE settlements (
    partner_id      BIGINT      NOT NULL,
    settlement_date DATE        NOT NULL,
    order_count     BIGINT      NOT NULL,
    gross_amount    BIGINT      NOT NULL,
    commission      BIGINT      NOT NULL,
    payout          BIGINT      NOT NULL,
    run_id          CHAR(36)    NOT NULL,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    -- a partner is paid once per day; re-running a day replaces its rows
    PRIMARY KEY (partner_id, settlement_date),
    -- the admin's view of one day
    KEY idx_settlements_date (settlement_date, partner_id),
    CONSTRAINT ck_settlements_payout CHECK (payout = gross_amount - commission)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
