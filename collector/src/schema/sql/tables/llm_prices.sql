-- The price catalog (@modelmaxx/pricing), one row per key a model is looked up by, versioned
-- by catalog version; read by the dictionaries in ../dictionaries/ through ../views/*_source.sql.
CREATE TABLE IF NOT EXISTS {{database}}.{{table}}{{on_cluster}} (
    Provider LowCardinality(String),
    KeyKind LowCardinality(String),
    Model LowCardinality(String),
    InputPerMTok Float64,
    OutputPerMTok Float64,
    CacheReadPerMTok Float64,
    CacheWritePerMTok Float64,
    ReasoningPerMTok Float64,
    CatalogModel LowCardinality(String),
    Source String,
    PriceDate Date,
    Version String,
    Rank UInt32,
    LoadedAt DateTime64(3)
) ENGINE = {{engine:ReplacingMergeTree(LoadedAt)}}
ORDER BY (Provider, KeyKind, Model, Version, Rank)
