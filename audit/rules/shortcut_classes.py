"""The kinds of shortcut the built-in rule kinds look for. A rule kind names those it can catch on its class
(``Rule.shortcuts``); a kind that catches a new one defines it in its own module."""

from __future__ import annotations

from .base import ShortcutClass

FIXED_POSITION = ShortcutClass("fixed_position", "marks at a fixed place: corner tags, rulers, frames, letterbox or "
                                                 "pillarbox bars")
BACKGROUND = ShortcutClass("background", "content around the object: burnt-in text and markers at any position, "
                                         "background texture")
COLOUR = ShortcutClass("colour", "colour and intensity statistics: a tint, a brightness or contrast shift")
ACQUISITION = ShortcutClass("acquisition", "acquisition quality: blur, compression, noise, fine texture")
METADATA = ShortcutClass("metadata", "a site, scanner or other attribute listed in the manifest")
DATA_PROPERTY = ShortcutClass("data_property", "an image property or metadata column that alone predicts the label "
                                               "(data level)")
