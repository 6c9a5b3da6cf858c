"""Vector indexes for 1:N search, kept as derived state of a template store.

``ports`` defines the ``VectorIndex`` protocol; ``faiss_exact`` and ``faiss_ann`` adapt FAISS;
``gallery`` partitions indexes per tenant and follows the store's change feed.
"""
