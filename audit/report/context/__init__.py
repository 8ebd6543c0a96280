"""Context builders: the JSON-safe dicts templates read (``document.build_context`` and the sections it gathers),
with figures drawn by ``audit.drawing``."""
