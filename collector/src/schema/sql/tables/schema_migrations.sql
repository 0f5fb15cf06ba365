-- One row per schema version applied (migrate() reads the highest).
CREATE TABLE IF NOT EXISTS {{database}}.{{table}}{{on_cluster}} (
    Version UInt32,
    AppliedAt DateTime64(3),
    Description String
) ENGINE = {{engine:MergeTree()}}
ORDER BY (Version, AppliedAt)
