"""``python -m optiplug``: the ``optiplug`` command."""

from optiplug.cli import main

raise SystemExit(main())
