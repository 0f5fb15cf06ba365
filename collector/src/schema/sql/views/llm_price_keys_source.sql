-- The source of dictionaries/llm_price_keys.sql: each lookup key of the newest catalog version
-- (provider, key kind, model name; and the same key for any provider, '') to its first entry.
CREATE VIEW IF NOT EXISTS {{database}}.llm_price_keys_source{{on_cluster}}
AS SELECT cityHash64(Provider, KeyKind, Model) AS KeyHash, toUInt64(min(Rank)) AS PriceId
FROM
(
    SELECT Provider, KeyKind, Model, Rank FROM (SELECT *
    FROM {{database}}.llm_prices
    WHERE Version = (SELECT max(Version) FROM {{database}}.llm_prices))
    UNION ALL
    SELECT '' AS Provider, KeyKind, Model, Rank FROM (SELECT *
    FROM {{database}}.llm_prices
    WHERE Version = (SELECT max(Version) FROM {{database}}.llm_prices))
)
GROUP BY Provider, KeyKind, Model
