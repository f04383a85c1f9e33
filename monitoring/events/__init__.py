"""The event sink: KServe payload-logger CloudEvents and click/order feedback in, partitioned Parquet out.

One idea per module: `schema` (the tables, their columns and partitions: the contract), `errors` (the typed
rejection), `arms` (which arm an event belongs to), `cloudevent` and `feedback` (parse and validate one
event into rows), `buffer` (in-memory batch with de-duplication), `writer` (Parquet parts into the store),
`metrics` (Prometheus counters), `app` (the HTTP routes), `sink` (the process: flusher thread, SIGTERM).
Downstream: `join` (the tables joined into the request log the drift report reads), `validate` (its GX gate);
upstream, for local servers that have no payload logger: `emit` (KServe's logger events and feedback, posted).
"""
