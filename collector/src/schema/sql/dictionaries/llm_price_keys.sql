-- cityHash64(provider, key kind, model) -> the catalog entry it names (the store reloads it with
-- the prices). views/llm_calls_mv.sql looks prices up through it.
CREATE DICTIONARY IF NOT EXISTS {{database}}.llm_price_keys{{on_cluster}}
(
    KeyHash UInt64,
    PriceId UInt64
)
PRIMARY KEY KeyHash
SOURCE(CLICKHOUSE(DB '{{database}}' TABLE 'llm_price_keys_source'))
LAYOUT(HASHED())
LIFETIME(MIN 60 MAX 120)
