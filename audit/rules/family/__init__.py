"""The family-phase rule kinds (``[[family]]``): they read the family stage's product (``evidence.family``) after
every member has been judged by the pack's rules (``outcomes``); without a family each is not_applicable."""
