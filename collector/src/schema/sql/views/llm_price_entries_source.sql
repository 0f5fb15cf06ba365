-- The source of dictionaries/llm_price_entries.sql: the prices of each entry of the newest
-- catalog version, by rank (catalog order).
CREATE VIEW IF NOT EXISTS {{database}}.llm_price_entries_source{{on_cluster}}
AS SELECT
    toUInt64(Rank) AS PriceId,
    argMax(InputPerMTok, LoadedAt) AS InputPerMTok,
    argMax(OutputPerMTok, LoadedAt) AS OutputPerMTok,
    argMax(CacheReadPerMTok, LoadedAt) AS CacheReadPerMTok,
    argMax(CacheWritePerMTok, LoadedAt) AS CacheWritePerMTok,
    argMax(ReasoningPerMTok, LoadedAt) AS ReasoningPerMTok,
    argMax(CatalogModel, LoadedAt) AS CatalogModel
FROM (SELECT *
    FROM {{database}}.llm_prices
    WHERE Version = (SELECT max(Version) FROM {{database}}.llm_prices))
GROUP BY Rank
