"""Framework-free online serving, one idea per module (docs/contracts.md, "Inference protocol"):

    protocol.py    the wire names, `BadRequest`, `ModelInfo` and `SearchResult`
    limits.py      `ServiceLimits`: every request limit, defined once
    validation.py  one request instance -> a validated `SearchRequest` (400/413)
    envelopes.py   server side of KServe v1 and v2 (Open Inference Protocol) bodies
    client.py      client side: request builders and reading a v2 response back (monitoring/, bench/, tests)
    search.py      `SearchService`: a bundle's retriever behind both server adapters in serving/
"""
