-- A catalog entry's prices per million tokens and its canonical model id.
CREATE DICTIONARY IF NOT EXISTS {{database}}.llm_price_entries{{on_cluster}}
(
    PriceId UInt64,
    InputPerMTok Float64,
    OutputPerMTok Float64,
    CacheReadPerMTok Float64,
    CacheWritePerMTok Float64,
    ReasoningPerMTok Float64,
    CatalogModel String
)
PRIMARY KEY PriceId
SOURCE(CLICKHOUSE(DB '{{database}}' TABLE 'llm_price_entries_source'))
LAYOUT(HASHED())
LIFETIME(MIN 60 MAX 120)
