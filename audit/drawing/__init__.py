"""The drawing kit: map overlays, charts, ROC/PR curves and mask figures as PNG data URIs, and the number format
every report context shares. It needs only scores (``audit.scoring``) and numpy arrays, so tasks and report
contexts both draw with it."""
