"""Comparison with a baseline audit: two results.json documents (``reports``), their maps sample by sample
(``explanations``), multi-label sets (``labelsets``), and the compare stage of ``audit run --baseline``."""
