"""A family of models (``[[family]]``): k-fold checkpoints, seeds and their mean ensemble audited beside the
released model. ``stage.run_family`` scores every member through the engine; ``stats`` holds the statistics
across members; ``result.FamilyRun`` is the product the family rules (``rules.family``) and the report read;
``compare`` sets it against a baseline family."""
