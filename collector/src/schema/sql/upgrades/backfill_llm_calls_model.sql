-- From schema version 2 or older: rows stored before llm_calls.Model existed get the normalised
-- name of the model asked for (else the one that answered): the catalog id for dated snapshots
-- (gpt-4o-2024-08-06 -> gpt-4o), the name itself for aliases and unknown models. New rows get the
-- catalog's canonical id from the view. Waited for (mutations_sync); a re-run changes nothing.
ALTER TABLE {{local:llm_calls}}{{on_cluster}}
UPDATE Model = {{model_name:if(RequestModel != '', RequestModel, ResponseModel)}}
WHERE Model = ''
SETTINGS mutations_sync = 2
