"""The report of one audit, built from its AuditResult: the results.json record (``record``, ``criteria``), the
template contexts (``context/``), one writer per output format (``writers/``), the output-folder policy
(``folder``) and ``output.write_outputs``, which writes them all and moves the folder into place."""
