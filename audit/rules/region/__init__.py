"""The confounder_region rule kind and its parts: the regions it edits (``regions``), its settings (``params``), the
image edits and donor pools (``swap``, ``match``), the effects measured per cell (``effects``) and its message."""
